//! Naive oracles for the offline packer, sharing no code with it: the max load by definition
//! and the optimal peak by brute force. Used by the [`pack`](super::pack) check and by core's
//! property tests (`core/tests/proptest.rs`); so this file uses nothing of core but the
//! [`Buffer`] type.

use alloc::vec;
use alloc::vec::Vec;

use crate::pack::Buffer;

/// The max load computed naively: at each moment a buffer starts, the sum of the sizes of
/// the buffers alive then (in `u128`, so it cannot overflow).
pub fn naive_max_load(buffers: &[Buffer]) -> u128 {
    buffers
        .iter()
        .map(|t| {
            buffers
                .iter()
                .filter(|b| b.lower <= t.lower && t.lower < b.upper)
                .map(|b| u128::from(b.size))
                .sum::<u128>()
        })
        .max()
        .unwrap_or(0)
}

/// The smallest peak of any valid plan, by brute force: every order of the buffers, each
/// placed at the lowest aligned offset free of the buffers already placed that share a moment
/// with it. Exact: placing buffers in the offset order of an optimal plan this way never puts
/// one above its optimal offset (induction), so some order reaches the optimum.
///
/// # Complexity
/// O(n! · n²): only for tiny `n` (≤ 8).
pub fn optimal_peak(buffers: &[Buffer]) -> u64 {
    assert!(
        buffers.len() <= 8,
        "brute force on {} buffers",
        buffers.len()
    );
    let mut best = u64::MAX;
    let mut placed: Vec<(usize, u64)> = Vec::new();
    let mut used = vec![false; buffers.len()];
    orders(buffers, &mut placed, &mut used, 0, &mut best);
    if buffers.is_empty() { 0 } else { best }
}

fn orders(
    buffers: &[Buffer],
    placed: &mut Vec<(usize, u64)>,
    used: &mut [bool],
    peak: u64,
    best: &mut u64,
) {
    if peak >= *best {
        return;
    }
    if placed.len() == buffers.len() {
        *best = peak;
        return;
    }
    for i in 0..buffers.len() {
        if used[i] {
            continue;
        }
        let off = lowest_free_offset(buffers, placed, i);
        used[i] = true;
        placed.push((i, off));
        orders(buffers, placed, used, peak.max(off + buffers[i].size), best);
        placed.pop();
        used[i] = false;
    }
}

/// Lowest offset, a multiple of `buffers[i].alignment`, where buffer `i` overlaps none of the
/// `placed` buffers alive with it.
fn lowest_free_offset(buffers: &[Buffer], placed: &[(usize, u64)], i: usize) -> u64 {
    let b = &buffers[i];
    let mut busy: Vec<(u64, u64)> = placed
        .iter()
        .filter(|&&(j, _)| {
            let o = &buffers[j];
            b.lower < o.upper && o.lower < b.upper
        })
        .map(|&(j, off)| (off, off + buffers[j].size))
        .collect();
    busy.sort_unstable();
    let align_up = |x: u64| x.div_ceil(b.alignment) * b.alignment;
    let mut cand = 0;
    for (start, end) in busy {
        if start >= cand + b.size {
            break;
        }
        cand = cand.max(align_up(end));
    }
    cand
}
