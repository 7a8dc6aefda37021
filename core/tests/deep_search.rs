//! A large connected problem must not overflow a 2 MiB thread stack: the exact search recurses
//! once per buffer it places, so the packer bounds the leaves it searches.

use memplan_core::{Budget, Buffer, Problem, SolveOptions, check, pack};

#[test]
fn large_leaf_fits_a_small_stack() {
    let mut p = Problem::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // 4,000 buffers in one time component: each starts before the previous one ends.
    let mut t = 0u64;
    for i in 0..4000u64 {
        let len = 2 + next() % 40;
        let size = 1 + next() % 1000;
        p.push(Buffer::new(format!("{i}"), t, t + len, size))
            .unwrap();
        t += 1 + next() % 3;
    }
    let solution = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let options = SolveOptions {
                capacity: None,
                budget: Budget {
                    max_nodes: Some(200_000),
                    stop: None,
                },
            };
            let s = pack(&p, options).unwrap();
            check::verify(p.buffers(), &s.placements(&p), None).unwrap();
            s
        })
        .unwrap()
        .join()
        .expect("pack must not overflow a 2 MiB stack");
    assert!(solution.peak >= solution.max_load);
}
