//! Tests of `shard`: coverage and equal-size laws against a per-element oracle.

use super::*;
use alloc::vec;
use proptest::prelude::*;

fn opts(world: u32, group: u32, param_align: u64, shard_align: u64) -> ShardOptions {
    ShardOptions {
        world,
        group,
        param_align,
        shard_align,
    }
}

#[test]
fn small_example() {
    // 3 params of 5, 7, 2 elements, params aligned to 4: offsets 0, 8, 16; end 18.
    let l = ShardLayout::new(&[5, 7, 2], opts(6, 3, 4, 2)).unwrap();
    assert_eq!(
        (l.flat_numel(), l.shard_numel(), l.padded_numel()),
        (18, 6, 18)
    );
    assert_eq!(l.param_range(1).unwrap(), 8..15);
    assert_eq!(l.ranks_of(1), vec![1, 4]);
    assert_eq!(l.shard_of(5).unwrap(), 2);
    let p = l.owners(1, 2).unwrap();
    assert_eq!(
        p,
        vec![
            Piece {
                shard: 1,
                param_bytes: 0..8,
                shard_offset: 4
            },
            Piece {
                shard: 2,
                param_bytes: 8..14,
                shard_offset: 0
            },
        ]
    );
    // ZeRO-3: 2 + 2 + 12 bytes per element of a 6-element shard.
    assert_eq!(l.rank_state_bytes(ZeroStage::Zero3), Some([12, 12, 72]));
    assert_eq!(l.rank_state_bytes(ZeroStage::Zero1), Some([36, 36, 72]));
}

#[test]
fn bad_options_are_errors() {
    assert_eq!(
        ShardLayout::new(&[1], opts(0, 1, 1, 1)),
        Err(ShardError::ZeroWorld)
    );
    assert_eq!(
        ShardLayout::new(&[1], opts(6, 4, 1, 1)),
        Err(ShardError::BadGroup { world: 6, group: 4 })
    );
    assert_eq!(
        ShardLayout::new(&[1], opts(6, 3, 0, 1)),
        Err(ShardError::ZeroAlignment)
    );
    assert_eq!(
        ShardLayout::new(&[u64::MAX, 1], opts(1, 1, 1, 1)),
        Err(ShardError::Overflow)
    );
    let l = ShardLayout::new(&[1], opts(2, 2, 1, 1)).unwrap();
    assert_eq!(
        l.owners(1, 1),
        Err(ShardError::NoSuchParam { param: 1, len: 1 })
    );
    assert_eq!(
        l.shard_of(2),
        Err(ShardError::NoSuchRank { rank: 2, world: 2 })
    );
    // A shard past the group was an overflow panic (debug) or a wrong range (release).
    let big = ShardLayout::new(&[u64::MAX / 64], opts(2, 2, 1, 1)).unwrap();
    assert_eq!(
        big.shard_range(u32::MAX),
        Err(ShardError::NoSuchShard {
            shard: u32::MAX,
            group: 2
        })
    );
    assert_eq!(big.shard_range(1).unwrap().end, big.padded_numel());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 0, ..ProptestConfig::default() })]

    /// Every byte of every parameter is owned by exactly one shard, at the place the oracle
    /// (flat byte / shard bytes) says; shards are equal and minimal; replicas partition ranks.
    #[test]
    fn shards_cover_every_byte_once(
        numels in prop::collection::vec(0u64..40, 0..12),
        groups in 1u32..5, group in 1u32..6,
        param_align in 1u64..9, shard_align in 1u64..9, elem in 1u64..5,
    ) {
        let world = group * groups;
        let l = ShardLayout::new(&numels, opts(world, group, param_align, shard_align)).unwrap();
        let s = l.shard_numel();
        prop_assert_eq!(s % shard_align, 0);
        prop_assert!(l.padded_numel() >= l.flat_numel());
        prop_assert!(s < shard_align || (s - shard_align) * u64::from(group) < l.flat_numel());
        let mut owner = vec![None; (l.padded_numel() * elem) as usize];
        for (i, &n) in numels.iter().enumerate() {
            let r = l.param_range(i).unwrap();
            prop_assert_eq!(r.start % param_align, 0);
            prop_assert_eq!(r.end - r.start, n);
            let mut covered = 0;
            for p in l.owners(i, elem).unwrap() {
                prop_assert_eq!(p.param_bytes.start, covered);
                covered = p.param_bytes.end;
                for b in p.param_bytes.clone() {
                    let flat = r.start * elem + b;
                    prop_assert_eq!(u64::from(p.shard), flat / (s * elem));
                    prop_assert_eq!(p.shard_offset + (b - p.param_bytes.start), flat % (s * elem));
                    prop_assert!(owner[flat as usize].is_none(), "byte owned twice");
                    owner[flat as usize] = Some(i);
                }
            }
            prop_assert_eq!(covered, n * elem);
        }
        let mut seen = vec![0; world as usize];
        for sh in 0..group {
            for r in l.ranks_of(sh) {
                seen[r as usize] += 1;
                prop_assert_eq!(l.shard_of(r).unwrap(), sh);
            }
            let r = l.shard_range(sh).unwrap();
            prop_assert_eq!((r.start, r.end - r.start), (u64::from(sh) * s, s));
        }
        prop_assert_eq!(
            l.shard_range(group),
            Err(ShardError::NoSuchShard { shard: group, group })
        );
        prop_assert!(seen.iter().all(|&k| k == 1));
    }
}
