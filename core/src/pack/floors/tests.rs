//! The floors against a naive scan (the shadow model): random raises, settles and undos, as
//! the search does them, on random sections.

use alloc::vec::Vec;

use super::super::problem::Item;
use super::super::sections::Sections;
use super::Floors;

/// A deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The least key over the items alive in each section and how many have it, by a naive scan.
fn naive(sec: &Sections, key: &[u64]) -> Vec<(u64, u32)> {
    (0..sec.nsec)
        .map(|s| {
            let alive = || {
                (0..sec.items.len())
                    .filter(|&j| sec.items[j].ls as usize <= s && s < sec.items[j].us as usize)
            };
            let f = alive().map(|j| key[j]).min().unwrap_or(u64::MAX);
            let c = if f == u64::MAX {
                0
            } else {
                alive().filter(|&j| key[j] == f).count() as u32
            };
            (f, c)
        })
        .collect()
}

fn check(fl: &Floors, sec: &Sections, key: &[u64]) {
    let want = naive(sec, key);
    for (s, &(f, c)) in want.iter().enumerate() {
        assert_eq!(fl.floors()[s], f, "floor[{s}]");
        assert_eq!(fl.at_floor(s), c, "at_floor[{s}]");
    }
    for (j, &k) in key.iter().enumerate() {
        assert_eq!(fl.key(j), k, "key[{j}]");
    }
}

#[test]
fn floors_match_a_naive_scan_on_random_operations() {
    let mut g = Lcg(7);
    for _ in 0..200 {
        let n = 1 + g.below(24) as usize;
        let items: Vec<Item> = (0..n)
            .map(|_| {
                let lower = g.below(20);
                Item {
                    lower,
                    upper: lower + 1 + g.below(10),
                    size: 1 + g.below(8),
                    align: 1,
                }
            })
            .collect();
        let sec = Sections::new(&items);
        let mut fl = Floors::new(&sec);
        // Few distinct keys, so that counts above 1 are common.
        let mut key: Vec<u64> = (0..n).map(|_| g.below(4)).collect();
        for (j, &k) in key.iter().enumerate() {
            fl.set(j, k);
        }
        fl.rescan_all();
        check(&fl, &sec, &key);
        // A stack of (floor mark, keys before) per level, as the search's undo logs.
        let mut stack: Vec<(usize, Vec<u64>)> = Vec::new();
        for _ in 0..60 {
            if g.below(3) == 0 && !stack.is_empty() {
                let (mark, before) = stack.pop().unwrap_or_default();
                fl.undo(mark);
                for (j, &k) in before.iter().enumerate() {
                    if key[j] != k {
                        fl.set(j, k);
                    }
                }
                key = before;
            } else if g.below(2) == 0 {
                // Place an unplaced item as the search does: its neighbours below its top
                // rise (to the top or a little above, as alignment does), the others fold in.
                let Some(p) = (0..n).find(|&j| key[j] != u64::MAX && g.below(3) == 0) else {
                    continue;
                };
                stack.push((fl.mark(), key.clone()));
                let top = key[p] + 1 + g.below(3);
                fl.begin_place(p, top);
                key[p] = u64::MAX;
                let (pi, items) = (&sec.items[p], &sec.items);
                for j in 0..n {
                    let alive_with = items[j].ls < pi.us && pi.ls < items[j].us;
                    if j == p || key[j] == u64::MAX || !alive_with {
                        continue;
                    }
                    if key[j] < top {
                        let k = top + g.below(2);
                        fl.raise_beside(j, k, p);
                        key[j] = k;
                    } else {
                        fl.fold(j, p);
                    }
                }
                fl.end_place(p);
                fl.settle();
            } else {
                stack.push((fl.mark(), key.clone()));
                // Raise a few keys, some to u64::MAX (placed).
                for _ in 0..1 + g.below(4) {
                    let j = g.below(n as u64) as usize;
                    if key[j] == u64::MAX {
                        continue;
                    }
                    let k = if g.below(4) == 0 {
                        u64::MAX
                    } else {
                        key[j] + 1 + g.below(3)
                    };
                    fl.raise(j, k);
                    key[j] = k;
                }
                fl.settle();
            }
            check(&fl, &sec, &key);
        }
    }
}
