//! A large connected problem must not overflow a 2 MiB thread stack: the exact search recurses
//! once per buffer it places, so the packer bounds the leaves it searches.

use memplan_core::{Budget, Buffer, PackOptions, Problem, check, pack};

/// `n` buffers in one time component: each starts before the previous one ends.
fn chain(n: u64) -> Problem {
    let mut p = Problem::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = 0u64;
    for i in 0..n {
        let len = 2 + next() % 40;
        let size = 1 + next() % 1000;
        p.push(Buffer::new(format!("{i}"), t, t + len, size))
            .unwrap();
        t += 1 + next() % 3;
    }
    p
}

/// Packs `p` on a thread with a 2 MiB stack (a common default for threads) and verifies it.
fn pack_on_small_stack(p: Problem) {
    let solution = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let options = PackOptions {
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

/// The largest leaf that is searched: its search goes about 2,000 levels deep.
#[test]
fn largest_searched_leaf_fits_a_small_stack() {
    pack_on_small_stack(chain(2000));
}

/// Larger leaves are not searched (without the limit this overflowed: decomfl's 7,549).
#[test]
fn large_leaf_fits_a_small_stack() {
    pack_on_small_stack(chain(8000));
}
