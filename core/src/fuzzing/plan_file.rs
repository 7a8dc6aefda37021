//! The `plan_file` fuzz case: arbitrary bytes → [`Plan::from_bytes`] → checks.
//!
//! Random bytes almost never carry a correct checksum, so [`check`] also decodes a copy whose
//! last 8 bytes are replaced by the checksum of the rest: that lets the fuzzer reach the slot
//! table and [`Plan::validate`] instead of stopping at `ChecksumMismatch`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::allocator::{Allocator, GuidedAllocator, GuidedConfig};
use crate::plan::{CHECKSUM_LEN, Plan, checksum};

/// Decodes `data` (as given, and with its checksum fixed up) and checks every decoded plan:
/// it validates, re-encodes to exactly the input, and decodes again to the same plan.
pub fn check(data: &[u8]) {
    check_one(data);
    if data.len() >= CHECKSUM_LEN {
        let n = data.len() - CHECKSUM_LEN;
        let mut fixed = data.to_vec();
        let sum = checksum(&fixed[..n]);
        fixed[n..].copy_from_slice(&sum.to_le_bytes());
        check_one(&fixed);
    }
}

fn check_one(data: &[u8]) {
    let Ok(plan) = Plan::from_bytes(data) else {
        return;
    };
    plan.validate().expect("a decoded plan validates");
    let bytes = plan.to_bytes();
    assert_eq!(bytes, data, "the encoding is canonical");
    let again = Plan::from_bytes(&bytes).expect("a re-encoded plan decodes");
    assert_eq!(again, plan, "decode(encode(plan)) == plan");
    serve(plan);
}

/// Serves every slot's request of the plan twice over (prologue, then two laps, each
/// request a little larger than its slot every third time), freeing in the plan's order, and
/// checks that no two live allocations overlap.
fn serve(plan: Plan) {
    let Ok(mut a) = GuidedAllocator::new(plan.clone(), GuidedConfig::default()) else {
        return; // e.g. an arena too large for the address space: an error, not a crash
    };
    let mut requests: Vec<(u32, u32, u64, u32)> = plan
        .prologue
        .iter()
        .map(|s| (s.start, s.end, s.size, s.stream))
        .collect();
    let off = plan.prologue.iter().map(|s| s.start).max().unwrap_or(0);
    for lap in 0..2u32 {
        let shift = off
            .saturating_add(1)
            .saturating_add(lap.saturating_mul(1 << 16));
        requests.extend(plan.iteration.iter().map(|s| {
            (
                s.start.saturating_add(shift),
                s.end.saturating_add(shift),
                s.size,
                s.stream,
            )
        }));
    }
    requests.truncate(4096);
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut frees: BTreeMap<(u32, usize), u64> = BTreeMap::new();
    for (i, &(start, end, size, stream)) in requests.iter().enumerate() {
        while let Some((&(t, _), _)) = frees.first_key_value() {
            if t > start {
                break;
            }
            let (_, addr) = frees.pop_first().expect("non-empty");
            live.remove(&addr);
            a.free(addr).expect("free of a live allocation");
        }
        let size = if i % 3 == 0 {
            size.saturating_add(1)
        } else {
            size
        };
        let Ok(addr) = a.alloc(size, stream) else {
            continue;
        };
        let end_addr = addr.checked_add(size.max(1)).expect("address fits");
        if let Some((_, &e)) = live.range(..=addr).next_back() {
            assert!(e <= addr, "overlap below {addr:#x}");
        }
        if let Some((&o, _)) = live.range(addr..).next() {
            assert!(o >= end_addr, "overlap above {addr:#x}");
        }
        live.insert(addr, end_addr);
        if end != u32::MAX {
            frees.insert((end, i), addr);
        }
    }
}
