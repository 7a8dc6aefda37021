//! Multi-iteration workloads made from a one-iteration trace: `memplan replay --repeat N
//! [--dynamic SEED]`.
//!
//! # Repetition ([`repeat`])
//!
//! The trace is replayed as `n` iterations, in order. Each copy starts with a
//! [`Marker::IterationStart`] (unless the trace's own first event already is one, in which case
//! that marker starts each copy and no second one is added); every other marker is copied as is.
//!
//! * **Persistent allocations** — an `Alloc` that the trace never frees afterwards (weights,
//!   optimizer state, caches) — are allocated only in the first copy, at their original
//!   position and with their original id, and stay live to the end: later copies skip them
//!   instead of allocating them again, as a training loop keeps its weights across steps.
//! * **Per-iteration allocations** (every `Alloc` that is freed later in the trace) are made in
//!   every copy. In copy `k` (0-based) the id `id` becomes `id + k·(M + 1)`, where `M` is the
//!   largest id the trace allocates, so the copies' ids never collide with each other or with
//!   the persistent allocations (which keep copy 0's ids). When `(n − 1)·(M + 1) + M` does not
//!   fit in 64 bits the transformation fails with [`WorkloadError::IdOverflow`].
//!
//! `repeat(t, 1)` has the same allocations, frees and peak as `t`.
//!
//! # Variation ([`dynamic`])
//!
//! Like [`repeat`], and each iteration `k` then varies the size of every per-iteration
//! allocation (persistent ones keep their size: weights do not depend on the batch):
//!
//! * **Variable sequence length**: a factor `s_k`, uniform in [0.75, 1.0] and drawn once per
//!   iteration, scales every per-iteration allocation (activations grow linearly with the
//!   number of tokens).
//! * **MoE token routing**: a fixed subset of the per-iteration allocations — the one at
//!   allocation position `p` (its index among the trace's `Alloc` events) is in it when
//!   `hash(seed, p) mod 5 = 0`, about 20 % — is further scaled by a factor `r_{k,p}`, uniform in
//!   [0.5, 1.5] and drawn per iteration and allocation (the share of tokens routed to an expert).
//!
//! The new size is `size · s_k · r_{k,p}` (with `r = 1` outside the subset), computed exactly
//! in fixed point (factors in units of 2⁻¹⁶), rounded to the nearest multiple of 512 bytes and
//! never below 512. A zero-size allocation stays zero-size. All draws come from SplitMix64
//! seeded from `seed`, so the same seed gives the same trace on every platform, and different
//! iterations (almost surely) differ.

use std::fmt;

use memplan_core::trace::{Event, Marker, Trace, TraceBuilder};

use crate::Failure;

/// Sizes of varied allocations are multiples of this many bytes.
pub const GRANULE: u64 = 512;

/// Fixed-point unit of the variation factors (2¹⁶ = 1.0).
const ONE: u64 = 1 << 16;

/// Why a workload could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadError {
    /// Zero iterations were asked for.
    NoIterations,
    /// The remapped ids of the last copy would not fit in 64 bits.
    IdOverflow {
        /// The largest id the trace allocates.
        max_id: u64,
        /// The number of iterations asked for.
        iterations: usize,
    },
    /// The generated trace was invalid (a bug).
    Invalid(String),
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::NoIterations => write!(f, "the number of iterations must be at least 1"),
            WorkloadError::IdOverflow { max_id, iterations } => write!(
                f,
                "cannot repeat {iterations} times: the trace's largest id {max_id} leaves no room \
                 for distinct ids in every iteration (they would overflow 64 bits)"
            ),
            WorkloadError::Invalid(e) => write!(f, "generated an invalid trace: {e}"),
        }
    }
}

impl std::error::Error for WorkloadError {}

impl From<WorkloadError> for Failure {
    fn from(e: WorkloadError) -> Self {
        match e {
            WorkloadError::Invalid(_) => Failure::Internal(e.to_string()),
            _ => Failure::Input(e.to_string()),
        }
    }
}

/// `trace` replayed as `n` iterations (see the module docs for the rules).
///
/// # Errors
/// [`WorkloadError::NoIterations`] when `n` is 0; [`WorkloadError::IdOverflow`] when the
/// remapped ids would overflow.
pub fn repeat(trace: &Trace, n: usize) -> Result<Trace, WorkloadError> {
    expand(trace, n, |_, _, size| size)
}

/// `trace` replayed as `n` iterations with seeded MoE-like and sequence-length variation of the
/// per-iteration allocations' sizes (see the module docs for the exact model).
///
/// # Errors
/// As [`repeat`].
pub fn dynamic(trace: &Trace, n: usize, seed: u64) -> Result<Trace, WorkloadError> {
    // The sequence-length factor of the current iteration and its routing-factor stream.
    let mut current: Option<(usize, u64, SplitMix64)> = None;
    expand(trace, n, |k, p, size| {
        if size == 0 {
            return 0;
        }
        if current.as_ref().is_some_and(|c| c.0 != k) {
            current = None;
        }
        let (_, s, rng) = current.get_or_insert_with(|| {
            let mut rng = SplitMix64(hash(seed, 1, k as u64));
            let s = uniform(&mut rng, ONE * 3 / 4, ONE);
            (k, s, rng)
        });
        let r = if hash(seed, 2, p as u64) % 5 == 0 {
            uniform(rng, ONE / 2, ONE * 3 / 2)
        } else {
            ONE
        };
        let scaled = u128::from(size) * u128::from(*s) * u128::from(r);
        let unit = u128::from(ONE) * u128::from(ONE) * u128::from(GRANULE);
        let granules = (scaled + unit / 2) / unit;
        u64::try_from(granules.max(1) * u128::from(GRANULE)).unwrap_or(u64::MAX / GRANULE * GRANULE)
    })
}

/// A one-line description of what `--repeat n [--dynamic seed]` did to `trace` (the original).
pub fn describe(trace: &Trace, n: usize, seed: Option<u64>) -> String {
    let persistent = persistent_allocs(trace).iter().filter(|&&p| p).count();
    let mut s = format!(
        "repeated as {n} iterations ({persistent} persistent allocations made once and kept live)"
    );
    if let Some(seed) = seed {
        s.push_str(&format!(
            ", dynamic with seed {seed} (sequence length x0.75-1.0 per iteration, MoE routing \
             x0.5-1.5 on ~20% of the allocations, sizes rounded to {GRANULE} bytes)"
        ));
    }
    s
}

/// For each event of `trace`, whether it is an `Alloc` that the trace never frees afterwards.
fn persistent_allocs(trace: &Trace) -> Vec<bool> {
    let events = trace.events();
    let mut persistent = vec![false; events.len()];
    // Walking backwards: an id freed later is not persistent at its (most recent) allocation.
    let mut freed_later = std::collections::HashSet::new();
    for (i, e) in events.iter().enumerate().rev() {
        match *e {
            Event::Free { id } => {
                freed_later.insert(id);
            }
            Event::Alloc { id, .. } => {
                persistent[i] = !freed_later.remove(&id);
            }
            Event::Marker(_) => {}
        }
    }
    persistent
}

/// The copies of `trace`; `size_of(k, p, size)` gives the size of the per-iteration allocation
/// at allocation position `p` in iteration `k`, called in trace order.
fn expand(
    trace: &Trace,
    n: usize,
    mut size_of: impl FnMut(usize, usize, u64) -> u64,
) -> Result<Trace, WorkloadError> {
    if n == 0 {
        return Err(WorkloadError::NoIterations);
    }
    let max_id = trace
        .events()
        .iter()
        .filter_map(|e| match *e {
            Event::Alloc { id, .. } => Some(id),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let overflow = WorkloadError::IdOverflow {
        max_id,
        iterations: n,
    };
    let stride = max_id.checked_add(1).ok_or_else(|| overflow.clone())?;
    u64::try_from(n - 1)
        .ok()
        .and_then(|last| last.checked_mul(stride))
        .and_then(|base| base.checked_add(max_id))
        .ok_or(overflow)?;
    let persistent = persistent_allocs(trace);
    let starts_with_marker = matches!(
        trace.events().first(),
        Some(Event::Marker(Marker::IterationStart))
    );
    let invalid = |e: memplan_core::Error| WorkloadError::Invalid(e.to_string());
    let mut b = TraceBuilder::new().allow_zero_size(true);
    for k in 0..n {
        // Cannot overflow: checked above for the last copy.
        let base = k as u64 * stride;
        if !starts_with_marker {
            b.marker(Marker::IterationStart);
        }
        let mut position = 0;
        for (i, e) in trace.events().iter().enumerate() {
            match e {
                &Event::Alloc { id, size, stream } => {
                    let p = position;
                    position += 1;
                    if persistent[i] {
                        if k == 0 {
                            b.alloc(id, size, stream).map_err(invalid)?;
                        }
                    } else {
                        b.alloc(id + base, size_of(k, p, size), stream)
                            .map_err(invalid)?;
                    }
                }
                &Event::Free { id } => b.free(id + base).map_err(invalid)?,
                Event::Marker(m) => b.marker(m.clone()),
            }
        }
    }
    Ok(b.finish())
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, well-mixed 64-bit generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `(seed, tag, x)`.
fn hash(seed: u64, tag: u64, x: u64) -> u64 {
    SplitMix64(mix(seed ^ mix(tag.wrapping_add(mix(x))))).next_u64()
}

/// Uniform in `lo..=hi` (the modulo bias is below 2⁻⁴⁰ for these ranges).
fn uniform(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    lo + rng.next_u64() % (hi - lo + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights (id 1, never freed), then activations 2 and 3 freed in the iteration, and an
    /// optimizer state (id 9) allocated late and never freed.
    fn one_iteration() -> Trace {
        let mut b = TraceBuilder::new();
        b.alloc(1, 1 << 20, 0).unwrap();
        b.marker(Marker::Phase("forward".to_owned()));
        b.alloc(2, 3 << 20, 0).unwrap();
        b.alloc(3, 5000, 1).unwrap();
        b.free(2).unwrap();
        b.alloc(2, 7 << 20, 0).unwrap();
        b.free(3).unwrap();
        b.free(2).unwrap();
        b.alloc(9, 4096, 0).unwrap();
        b.finish()
    }

    /// Replays `t` through the validating builder (panics on an invalid event).
    fn rebuild(t: &Trace) -> TraceBuilder {
        let mut b = TraceBuilder::new().allow_zero_size(true);
        for e in t.events() {
            match e {
                &Event::Alloc { id, size, stream } => b.alloc(id, size, stream).unwrap(),
                &Event::Free { id } => b.free(id).unwrap(),
                Event::Marker(m) => b.marker(m.clone()),
            }
        }
        b
    }

    fn revalidate(t: &Trace) -> Trace {
        rebuild(t).finish()
    }

    fn alloc_ids(t: &Trace) -> Vec<u64> {
        t.events()
            .iter()
            .filter_map(|e| match *e {
                Event::Alloc { id, .. } => Some(id),
                _ => None,
            })
            .collect()
    }

    fn markers(t: &Trace) -> usize {
        t.events()
            .iter()
            .filter(|e| **e == Event::Marker(Marker::IterationStart))
            .count()
    }

    #[test]
    fn repeat_makes_n_copies_with_persistent_allocations_once() {
        let t = one_iteration();
        let r = repeat(&t, 3).unwrap();
        assert_eq!(revalidate(&r), r);
        assert_eq!(markers(&r), 3);
        assert_eq!(r.events()[0], Event::Marker(Marker::IterationStart));
        // 5 allocations in copy 0, the 3 per-iteration ones in copies 1 and 2.
        assert_eq!(r.allocs(), 5 + 2 * 3);
        // 9 events + 1 marker, then (9 - 2 persistent) + 1 per further copy.
        assert_eq!(r.len(), 10 + 2 * 8);
        let ids = alloc_ids(&r);
        assert_eq!(ids, [1, 2, 3, 2, 9, 12, 13, 12, 22, 23, 22]);
        assert_eq!(ids.iter().filter(|&&i| i == 1 || i == 9).count(), 2);
        // Persistent allocations stay live to the end, the rest are freed.
        assert_eq!(rebuild(&r).live_ids().collect::<Vec<_>>(), [1, 9]);
        // The optimizer state stays live into the next iterations: peak grows by its size.
        assert_eq!(r.peak_requested(), t.peak_requested() + 4096);
    }

    #[test]
    fn repeat_once_keeps_the_trace() {
        let t = one_iteration();
        let r = repeat(&t, 1).unwrap();
        assert_eq!(r.peak_requested(), t.peak_requested());
        assert_eq!(&r.events()[1..], t.events());
        // A trace that starts with its own iteration marker gets no second one.
        let mut b = TraceBuilder::new();
        b.marker(Marker::IterationStart);
        b.alloc(4, 512, 0).unwrap();
        b.free(4).unwrap();
        let t = b.finish();
        let r = repeat(&t, 2).unwrap();
        assert_eq!((r.len(), markers(&r)), (6, 2));
    }

    #[test]
    fn repeat_rejects_zero_and_id_overflow() {
        let t = one_iteration();
        assert_eq!(repeat(&t, 0), Err(WorkloadError::NoIterations));
        let mut b = TraceBuilder::new();
        b.alloc(u64::MAX / 2, 512, 0).unwrap();
        b.free(u64::MAX / 2).unwrap();
        let big = b.finish();
        assert!(repeat(&big, 2).is_ok());
        let e = repeat(&big, 3).unwrap_err();
        assert!(matches!(e, WorkloadError::IdOverflow { iterations: 3, .. }));
        assert!(e.to_string().contains("overflow"), "{e}");
        let mut b = TraceBuilder::new();
        b.alloc(u64::MAX, 512, 0).unwrap();
        let max = b.finish();
        assert!(repeat(&max, 1).is_err());
        assert!(dynamic(&max, 2, 7).is_err());
    }

    /// A long iteration: 200 activations of assorted sizes, weights and a zero-size tensor.
    fn long_iteration() -> Trace {
        let mut b = TraceBuilder::new().allow_zero_size(true);
        b.alloc(0, 1000, 0).unwrap();
        b.alloc(1, 0, 0).unwrap();
        for i in 2..202 {
            b.alloc(i, 4096 * i + 17, (i % 2) as u32).unwrap();
            if i >= 4 {
                b.free(i - 2).unwrap();
            }
        }
        b.free(200).unwrap();
        b.free(201).unwrap();
        b.finish()
    }

    #[test]
    fn dynamic_is_deterministic_valid_and_varies() {
        let t = long_iteration();
        let n = 4;
        let d = dynamic(&t, n, 7).unwrap();
        assert_eq!(d, dynamic(&t, n, 7).unwrap());
        assert_ne!(d, dynamic(&t, n, 8).unwrap());
        assert_eq!(revalidate(&d), d);
        // Same structure as the plain repetition: only sizes change.
        let r = repeat(&t, n).unwrap();
        assert_eq!((d.len(), alloc_ids(&d)), (r.len(), alloc_ids(&r)));
        // Sizes per iteration, by allocation position (persistent ones only in iteration 0).
        let mut sizes: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut k = 0;
        for e in d.events() {
            match *e {
                Event::Marker(Marker::IterationStart) => k += 1,
                Event::Alloc { id, size, .. } if id != 0 && id != 1 => sizes[k - 1].push(size),
                Event::Alloc { id, size, .. } => {
                    assert_eq!(k, 1);
                    assert_eq!(size, if id == 0 { 1000 } else { 0 }, "persistent kept");
                }
                _ => {}
            }
        }
        for s in &sizes {
            assert_eq!(s.len(), 200);
            assert!(s.iter().all(|&x| x > 0 && x % GRANULE == 0), "{s:?}");
        }
        // The MoE subset: positions whose size/original ratio changes between iterations
        // beyond the shared sequence-length factor.
        let original: Vec<u64> = (2..202).map(|i| 4096 * i + 17).collect();
        let ratio = |k: usize, j: usize| sizes[k][j] as f64 / original[j] as f64;
        let moe: Vec<usize> = (0..original.len())
            .filter(|&j| hash(7, 2, j as u64 + 2) % 5 == 0)
            .collect();
        assert!(
            (20..=60).contains(&moe.len()),
            "about 20 % chosen: {}",
            moe.len()
        );
        for k in 0..n {
            for j in 0..original.len() {
                let f = ratio(k, j);
                if moe.contains(&j) {
                    assert!((0.36..=1.55).contains(&f), "{k} {j} {f}");
                } else {
                    assert!((0.72..=1.04).contains(&f), "{k} {j} {f}");
                }
            }
        }
        for &j in &moe {
            let distinct: std::collections::BTreeSet<u64> = sizes.iter().map(|s| s[j]).collect();
            assert!(distinct.len() > 1, "position {j} never varies");
        }
        for k in 1..n {
            assert_ne!(sizes[k], sizes[0], "iteration {k} equals iteration 0");
        }
    }

    #[test]
    fn dynamic_sizes_never_round_to_zero() {
        let mut b = TraceBuilder::new();
        for i in 0..50 {
            b.alloc(i, 1, 0).unwrap();
            b.free(i).unwrap();
        }
        let d = dynamic(&b.finish(), 3, 1).unwrap();
        for e in d.events() {
            if let Event::Alloc { size, .. } = *e {
                assert_eq!(size, GRANULE);
            }
        }
    }

    #[test]
    fn describe_names_the_transformation() {
        let t = one_iteration();
        assert_eq!(
            describe(&t, 5, None),
            "repeated as 5 iterations (2 persistent allocations made once and kept live)"
        );
        assert!(describe(&t, 5, Some(7)).contains("dynamic with seed 7"));
    }
}
