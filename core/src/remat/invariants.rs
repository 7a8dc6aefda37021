//! The runtime's invariant checker: [`Runtime::check_invariants`] checks the representation
//! invariants of every part (`runtime.rs`, `graph.rs`, `pool.rs`, `neighbourhoods.rs`,
//! `arena.rs`, `swap.rs`) against each other.
//!
//! In debug builds every mutating call ends with `debug_check`: the O(1) counter invariants
//! each call, and the full O(storages + edges + regions) check every few calls — after every
//! call while the runtime holds at most [`FULL_EVERY`] storages, then after every
//! `storages / FULL_EVERY`-th call, so that the checks cost amortized O(1) per call (a full
//! check each call would make long replays quadratic).

use super::runtime::Runtime;

/// See the module docs.
const FULL_EVERY: u64 = 32;

impl Runtime {
    /// After a public call in debug builds: the cheap checks each time, the full one every
    /// `max(1, storages / FULL_EVERY)` calls. A no-op in release builds.
    pub(super) fn debug_check(&mut self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.check_counters();
        self.calls_since_check += 1;
        let every = (self.graph.storages.len() as u64 / FULL_EVERY).max(1);
        if self.calls_since_check >= every {
            self.calls_since_check = 0;
            self.check_invariants();
        }
    }

    /// The O(1) invariants: byte counters within the budget and the peak, the clock equal to
    /// the work done, the pool no larger than the storages.
    fn check_counters(&self) {
        let c = &self.counters;
        assert!(c.memory <= self.budget, "memory {} > budget", c.memory);
        assert!(c.memory <= c.peak, "memory {} > peak {}", c.memory, c.peak);
        let stall = self.swap.as_ref().map_or(0, |w| w.stall);
        assert_eq!(
            c.clock,
            1u64.saturating_add(c.model_compute)
                .saturating_add(c.remat_compute)
                .saturating_add(stall),
            "clock != 1 + model + remat + stall"
        );
        assert!(self.pool.len() <= self.graph.storages.len(), "pool size");
    }

    /// Checks every representation invariant (see `runtime.rs` and the files of each part).
    /// After a failed call (the runtime is then stuck in its middle) the invariants that
    /// only hold between calls (lock counts, equivalence classes) are skipped.
    ///
    /// # Panics
    /// If one is broken (a bug in this module).
    ///
    /// # Complexity
    /// O(storages + tensors + edges + the regions' sizes + union-find nodes).
    pub fn check_invariants(&self) {
        self.check_counters();
        let between_calls = self.failed.is_none();
        let g = &self.graph;
        // graph.rs 1–3, runtime.rs 1–3.
        let mut memory: u64 = 0;
        for (s, st) in g.storages.iter().enumerate() {
            let root = *st
                .tensors
                .first()
                .unwrap_or_else(|| panic!("storage {s}: no tensor"));
            let rt = &g.tensors[root.0 as usize];
            let args = &g.ops[rt.op.0 as usize].args;
            assert!(
                !args.iter().any(|&a| g.storage_of(a) == s),
                "storage {s}: its first tensor is not the fresh output that created it"
            );
            let mut refs: u64 = 0;
            for &t in &st.tensors {
                let tt = &g.tensors[t.0 as usize];
                assert_eq!(tt.storage.0 as usize, s, "tensor {} in storage {s}", t.0);
                assert!(
                    !tt.defined || st.material,
                    "tensor {} defined, storage {s} not",
                    t.0
                );
                refs += tt.ref_ext;
            }
            assert_eq!(refs, st.ref_ext, "storage {s}: references");
            assert_eq!(
                rt.defined, st.material,
                "storage {s}: residency vs its root tensor"
            );
            if st.material {
                memory += st.size;
            }
            assert_eq!(
                self.pool.contains(s),
                st.material && st.ref_int == 0,
                "storage {s}: pool membership (resident {}, locks {})",
                st.material,
                st.ref_int
            );
            if st.pinned || st.ref_int > 0 {
                assert!(
                    st.material,
                    "storage {s}: pinned or locked but not resident"
                );
            }
            if between_calls {
                assert_eq!(
                    st.ref_int,
                    st.user_locks + u64::from(st.pinned),
                    "storage {s}: locks (pinned {})",
                    st.pinned
                );
            }
        }
        assert_eq!(memory, self.counters.memory, "memory != resident bytes");
        for t in &g.tensors {
            assert!(
                (t.storage.0 as usize) < g.storages.len(),
                "tensor storage in range"
            );
        }
        // graph.rs 4.
        for (p, out) in g.adj_out.iter().enumerate() {
            for (i, &c) in out.iter().enumerate() {
                assert!(c as usize != p && !out[..i].contains(&c), "adj_out[{p}]");
                assert!(g.adj_in[c as usize].contains(&(p as u32)), "edge {p}->{c}");
            }
        }
        let edges_in: usize = g.adj_in.iter().map(alloc::vec::Vec::len).sum();
        let edges_out: usize = g.adj_out.iter().map(alloc::vec::Vec::len).sum();
        assert_eq!(edges_in, edges_out, "adj_in and adj_out differ");
        // pool.rs
        self.pool.check();
        // neighbourhoods.rs
        let nb = &self.neighbourhoods;
        assert_eq!(
            nb.regions.is_some(),
            self.heuristic.uses_regions(),
            "regions kept"
        );
        assert_eq!(
            nb.classes.is_some(),
            self.heuristic.uses_eq_classes(),
            "classes kept"
        );
        if let Some(r) = &nb.regions {
            assert_eq!(r.len(), g.storages.len(), "a region per storage");
            for (s, st) in g.storages.iter().enumerate() {
                assert_eq!(
                    r.is_resident(s),
                    st.material,
                    "storage {s}: the regions' residency mirror"
                );
                for reverse in [false, true] {
                    let reg = r.get(s, reverse);
                    assert!(
                        reg.interior.is_consistent() && reg.frontier.is_consistent(),
                        "storage {s}: region sets"
                    );
                    if !st.material {
                        assert!(
                            reg.interior.iter().next().is_none()
                                && reg.frontier.iter().next().is_none()
                                && reg.compute == 0,
                            "storage {s} (evicted) keeps a region"
                        );
                    }
                }
            }
        }
        if let Some(c) = &nb.classes {
            assert_eq!(c.len(), g.storages.len(), "a class slot per storage");
            c.check_forest();
            if between_calls {
                for (s, st) in g.storages.iter().enumerate() {
                    assert_eq!(
                        c.node(s).is_some(),
                        !st.material,
                        "storage {s}: class node vs residency"
                    );
                    let Some(n) = c.node(s) else { continue };
                    let root = c.root(n);
                    for &m in g.adj_in[s].iter().chain(&g.adj_out[s]) {
                        if let Some(e) = c.node(m as usize) {
                            assert_eq!(c.root(e), root, "evicted neighbours {s}, {m}: classes");
                        }
                    }
                }
            }
        }
        // arena.rs
        if let Some(a) = &self.arena {
            a.check(g, between_calls);
        }
        // swap.rs
        if let Some(w) = &self.swap {
            assert_eq!(w.copies(), w.outs, "host copies vs swap-outs");
        }
    }
}
