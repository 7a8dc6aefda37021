//! The plan file format: round trips, corruption, truncation, wrong magic or version, huge
//! counts, and invalid plans.

use memplan_core::plan::{
    CHECKSUM_LEN, HEADER_LEN, MAGIC, Plan, PlanFileError, SLOT_LEN, Slot, SlotRef, checksum,
};
use proptest::prelude::*;

fn slot(size: u64, offset: u64, start: u32, end: u32) -> Slot {
    Slot {
        size,
        stream: 0,
        offset,
        start,
        end,
    }
}

fn persistent(size: u64, offset: u64) -> Slot {
    slot(size, offset, 0, u32::MAX)
}

/// A small valid plan: two persistent prologue slots and a transient one, three iteration
/// slots (two reuse one range, as the transient prologue slot does).
fn sample() -> Plan {
    Plan {
        arena_size: 1000,
        prologue: vec![
            persistent(100, 0),
            persistent(50, 100),
            slot(300, 150, 2, 3),
        ],
        iteration: vec![
            Slot {
                stream: 7,
                ..slot(300, 150, 0, 4)
            },
            slot(300, 150, 4, 9),
            slot(200, 450, 2, 6),
        ],
    }
}

/// Rewrites the checksum so that only the field edited before is wrong.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - CHECKSUM_LEN;
    let sum = checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum.to_le_bytes());
}

/// Random valid plans: persistent slots stacked from 0, then iteration slots stacked above
/// them (so nothing overlaps whatever the lifetimes), with some slack in the arena.
fn plans() -> impl Strategy<Value = Plan> {
    let p = prop::collection::vec((1u64..1 << 40, any::<u32>()), 0..8);
    let i = prop::collection::vec(
        (1u64..1 << 40, any::<u32>(), any::<u32>(), 1u32..1000),
        0..24,
    );
    (p, i, 0u64..1 << 20).prop_map(|(p, i, slack)| {
        let mut top = 0;
        let mut plan = Plan::default();
        for (size, stream) in p {
            plan.prologue.push(Slot {
                stream,
                ..persistent(size, top)
            });
            top += size;
        }
        for (size, stream, start, len) in i {
            let start = start % (u32::MAX - 1000);
            plan.iteration.push(Slot {
                stream,
                ..slot(size, top, start, start + len)
            });
            top += size;
        }
        plan.arena_size = top + slack;
        plan
    })
}

proptest! {
    #[test]
    fn round_trip(plan in plans()) {
        prop_assert_eq!(plan.validate(), Ok(()));
        let bytes = plan.to_bytes();
        prop_assert_eq!(
            bytes.len(),
            HEADER_LEN + SLOT_LEN * (plan.prologue.len() + plan.iteration.len()) + CHECKSUM_LEN
        );
        prop_assert_eq!(Plan::from_bytes(&bytes), Ok(plan));
    }
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let bytes = sample().to_bytes();
    for i in 0..bytes.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= delta;
            assert!(
                Plan::from_bytes(&bad).is_err(),
                "flipping byte {i} by {delta:#x} was accepted"
            );
        }
    }
    // Past the magic and version, it is the checksum that catches it.
    let mut bad = bytes.clone();
    bad[HEADER_LEN + 3] ^= 1;
    assert!(matches!(
        Plan::from_bytes(&bad),
        Err(PlanFileError::ChecksumMismatch { .. })
    ));
}

#[test]
fn every_truncation_is_rejected_as_truncated() {
    let bytes = sample().to_bytes();
    for n in 0..bytes.len() {
        match Plan::from_bytes(&bytes[..n]) {
            Err(PlanFileError::Truncated { at }) => assert!(at <= n, "len {n}: at {at}"),
            other => panic!("prefix of length {n}: {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = sample().to_bytes();
    bytes.push(0);
    assert_eq!(
        Plan::from_bytes(&bytes),
        Err(PlanFileError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn wrong_magic_and_version() {
    let bytes = sample().to_bytes();
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(Plan::from_bytes(&bad), Err(PlanFileError::BadMagic));
    assert_eq!(
        Plan::from_bytes(b"PK\x03\x04"),
        Err(PlanFileError::BadMagic)
    );
    for version in [1u32, 3] {
        let mut other = bytes.clone();
        other[8..12].copy_from_slice(&version.to_le_bytes());
        reseal(&mut other);
        assert_eq!(
            Plan::from_bytes(&other),
            Err(PlanFileError::UnsupportedVersion { found: version })
        );
    }
}

#[test]
fn huge_counts_with_few_bytes_are_rejected_before_allocating() {
    for (np, ni) in [(u32::MAX, u32::MAX), (u32::MAX, 0), (0, u32::MAX), (1, 0)] {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&memplan_core::plan::VERSION.to_le_bytes());
        bytes.extend_from_slice(&1000u64.to_le_bytes());
        bytes.extend_from_slice(&np.to_le_bytes());
        bytes.extend_from_slice(&ni.to_le_bytes());
        bytes.extend_from_slice(&[0; CHECKSUM_LEN]);
        let t = std::time::Instant::now();
        assert_eq!(
            Plan::from_bytes(&bytes),
            Err(PlanFileError::Truncated { at: HEADER_LEN })
        );
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
    }
}

/// Encodes `plan` without validating it, so decoding reaches `validate`.
fn decode(plan: &Plan) -> Result<Plan, PlanFileError> {
    Plan::from_bytes(&plan.to_bytes())
}

#[test]
fn invalid_plans_are_rejected() {
    let mut overlap = sample();
    overlap.iteration[2].offset = 400; // [400, 600) meets [150, 450) during [2, 4)
    assert_eq!(
        decode(&overlap),
        Err(PlanFileError::Overlap {
            a: SlotRef::Iteration(0),
            b: SlotRef::Iteration(2)
        })
    );

    // Touching lifetimes (end is exclusive) and touching ranges do not overlap.
    let mut touching = sample();
    touching.iteration[2] = slot(200, 150 + 300, 4, 9);
    assert_eq!(decode(&touching), Ok(touching));

    let mut persistent_overlap = sample();
    persistent_overlap.prologue[1].offset = 99;
    assert_eq!(
        decode(&persistent_overlap),
        Err(PlanFileError::Overlap {
            a: SlotRef::Prologue(0),
            b: SlotRef::Prologue(1)
        })
    );

    // An iteration slot may not meet a persistent slot, at any time of the lap.
    let mut under_persistent = sample();
    under_persistent.iteration[1] = slot(10, 120, 7, 8);
    assert_eq!(
        decode(&under_persistent),
        Err(PlanFileError::Overlap {
            a: SlotRef::Prologue(1),
            b: SlotRef::Iteration(1)
        })
    );
    // A transient prologue slot may: it is gone when the laps start.
    let mut reuse = sample();
    reuse.prologue[2] = slot(300, 150, 0, 1);
    assert_eq!(decode(&reuse), Ok(reuse));

    let mut out = sample();
    out.iteration[1].offset = 800;
    assert_eq!(
        decode(&out),
        Err(PlanFileError::OutOfArena {
            slot: SlotRef::Iteration(1),
            arena_size: 1000
        })
    );

    let mut wrap = sample();
    wrap.arena_size = u64::MAX;
    wrap.iteration[0].offset = u64::MAX - 10;
    assert!(matches!(
        decode(&wrap),
        Err(PlanFileError::OutOfArena { .. })
    ));

    let mut empty = sample();
    empty.iteration[0].end = 0;
    assert!(matches!(
        decode(&empty),
        Err(PlanFileError::EmptyLifetime { .. })
    ));

    let mut zero = sample();
    zero.iteration[0].size = 0;
    assert!(matches!(decode(&zero), Err(PlanFileError::ZeroSize { .. })));
}

#[test]
fn errors_display() {
    let e = PlanFileError::UnsupportedVersion { found: 9 };
    assert!(e.to_string().contains('9'));
    let e: &dyn core::error::Error = &PlanFileError::BadMagic;
    assert!(!e.to_string().is_empty());
}
