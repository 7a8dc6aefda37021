//! Unit and property tests of the size classes behind the online allocator: the class map's
//! laws, and [`Classes`] against a naive best-fit model (a plain list scanned in full). The
//! allocator as a whole is checked against its shadow model in `core/tests/online_shadow.rs`.

use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;

/// Largest block size: `u64::MAX` rounded down to a granule.
const MAX_SIZE: u64 = u64::MAX / ALIGN * ALIGN;

#[test]
fn small_classes_hold_one_size_each() {
    for u in 1..2 * SUB {
        assert_eq!(class_of(u * ALIGN), u as usize);
    }
}

#[test]
fn classes_cover_every_size_below_the_count() {
    assert_eq!(class_of(MAX_SIZE), CLASSES - 1);
    const { assert!(CLASSES <= WORDS * 64) };
    // Each power of two starts a class of its own, 32 classes after the previous one.
    for f in SUB_BITS..55 {
        let c = class_of((1 << f) * ALIGN);
        assert_eq!(
            c,
            (f - SUB_BITS + 1) as usize * SUB as usize,
            "2^{f} granules"
        );
        assert_eq!(class_of(((1 << f) - 1) * ALIGN), c - 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 1024 },
        ..ProptestConfig::default()
    })]

    /// Classes grow with size, and a class's sizes differ by less than 1/32 of the smallest.
    #[test]
    fn class_map_is_monotone_and_narrow(a in 1..=MAX_SIZE / ALIGN, b in 1..=MAX_SIZE / ALIGN) {
        let (lo, hi) = (a.min(b), a.max(b));
        let (cl, ch) = (class_of(lo * ALIGN), class_of(hi * ALIGN));
        prop_assert!(cl <= ch);
        if cl == ch {
            prop_assert!((hi - lo) * SUB < lo.max(SUB), "{lo} and {hi} granules share class {cl}");
        }
    }

    /// Insert, remove and best-fit take on [`Classes`] agree with a list scanned in full, and
    /// the invariants of the classes (sorted, bits set iff non-empty) hold after each step.
    /// Sizes come from a few granule counts (many ties, several per class) or anywhere.
    #[test]
    fn classes_match_a_naive_best_fit(
        ops in prop::collection::vec((0u8..4, 0u64..64, any::<u64>()), 0..300),
    ) {
        let mut classes = Classes::new();
        let mut model: Vec<Entry> = Vec::new();
        let mut next_addr: Addr = 0;
        let size_of = |pick: u64, x: u64| match pick % 4 {
            0 => (1 + x % 3) * ALIGN,
            1 => (SUB * 4 + x % 8) * ALIGN,
            2 => (1 + x % (1 << 20)) * ALIGN,
            _ => (1 + x % (MAX_SIZE / ALIGN)) * ALIGN,
        };
        for (op, pick, x) in ops {
            match op {
                0 | 1 => {
                    let e = Entry { size: size_of(pick, x), addr: next_addr, node: model.len() as u32 };
                    next_addr += ALIGN;
                    classes.insert(e);
                    model.push(e);
                }
                2 => {
                    let want = size_of(pick, x);
                    let best = model
                        .iter()
                        .filter(|e| e.size >= want)
                        .min_by_key(|e| (e.size, e.addr))
                        .copied();
                    prop_assert_eq!(classes.take_best_fit(want), best, "best fit for {}", want);
                    model.retain(|e| Some(*e) != best);
                }
                _ => {
                    if !model.is_empty() {
                        let e = model.swap_remove(x as usize % model.len());
                        classes.remove(e.size, e.addr);
                    }
                }
            }
            prop_assert_eq!(classes.len, model.len());
            prop_assert_eq!(classes.largest(), model.iter().map(|e| e.size).max().unwrap_or(0));
            for e in &model {
                prop_assert!(classes.contains(*e));
            }
            for (c, list) in classes.lists.iter().enumerate() {
                prop_assert_eq!(classes.words[c / 64] >> (c % 64) & 1 == 1, !list.is_empty());
                prop_assert!(list.windows(2).all(|w| (w[0].size, w[0].addr) > (w[1].size, w[1].addr)));
            }
            for (w, &word) in classes.words.iter().enumerate() {
                prop_assert_eq!(classes.top >> w & 1 == 1, word != 0);
            }
        }
    }
}
