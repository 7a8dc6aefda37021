//! Evicted neighbourhoods, the state behind the graph-aware heuristics: the regions of h_DTR,
//! h_MSPS and memplan's heuristic, and the equivalence classes of h_DTR^eq.
//!
//! Both are maintained incrementally exactly as `simrd` does, not recomputed:
//!
//! * **Regions.** Each resident storage `S` has a forward and a backward region: the evicted
//!   storages reachable from `S` through evicted storages along the storage graph's edges
//!   (`interior`), the resident storages where that search stops (`frontier`), and the sum of
//!   the interior's c(S) (`compute`). On eviction of `S` every frontier neighbour *absorbs*
//!   `S`'s region; on materialization the new storages and their frontier neighbours are
//!   *rebuilt* by a search. The two differ from a from-scratch search when an op is
//!   registered while one of its arguments is evicted (the new, not yet computed output is
//!   part of a from-scratch neighbourhood but not of the incremental one).
//! * **Equivalence classes.** A union-find over evicted storages: an evicted storage gets a
//!   fresh node valued at its c(S) and is united with the classes of its evicted neighbours;
//!   classes are never split (a materialized storage only subtracts its c(S) from its class).
//!   Values are `i128`: the subtractions may leave a class below the sum of its members.
//!
//! # Representation invariants
//!
//! Checked by `Runtime::check_invariants` (`invariants.rs`):
//!
//! 1. Regions exist only when the heuristic uses them; an evicted storage has empty regions
//!    (a pinned one keeps its last regions until the next rebuild empties them: they are
//!    never read), and every [`IdSet`] of a region is consistent.
//! 2. Union-find parents are in range and lead to a root; a storage has a node iff it is not
//!    resident (between calls; a failed call may leave an unfinished op's outputs behind);
//!    two evicted neighbours have nodes in the same class.

use alloc::vec::Vec;

use super::graph::Graph;
use super::ids::{IdSet, NONE};

/// One direction of a storage's evicted neighbourhood.
#[derive(Default, Clone)]
pub(super) struct Region {
    /// Evicted storages reached.
    pub(super) interior: IdSet,
    /// Resident storages where the search stopped.
    pub(super) frontier: IdSet,
    /// Sum of the interior's c(S) (saturating).
    pub(super) compute: u64,
}

/// The forward and backward region of every storage (index = storage).
#[derive(Default)]
pub(super) struct Regions {
    fwd: Vec<Region>,
    bwd: Vec<Region>,
    /// Reused search stack.
    scratch: Vec<u32>,
}

/// Union-find equivalence classes of evicted storages.
#[derive(Default)]
pub(super) struct EqClasses {
    /// Parent of each node (`NONE` = a root).
    parent: Vec<u32>,
    /// Value of each node; a root's is its class's.
    value: Vec<i128>,
    /// The node of each storage (index = storage) while it is evicted.
    node: Vec<Option<u32>>,
}

/// The neighbourhood state a heuristic needs (nothing for the others).
#[derive(Default)]
pub(super) struct Neighbourhoods {
    pub(super) regions: Option<Regions>,
    pub(super) classes: Option<EqClasses>,
}

impl Neighbourhoods {
    /// A new storage, not resident yet.
    pub(super) fn add_storage(&mut self) {
        if let Some(r) = &mut self.regions {
            r.fwd.push(Region::default());
            r.bwd.push(Region::default());
        }
        if let Some(c) = &mut self.classes {
            let n = c.new_node(0);
            c.node.push(Some(n));
        }
    }

    /// C_bwd(S): the backward region's compute (0 when regions are not kept).
    pub(super) fn bwd_compute(&self, s: usize) -> u64 {
        self.regions.as_ref().map_or(0, |r| r.bwd[s].compute)
    }

    /// C_fwd(S): the forward region's compute (0 when regions are not kept).
    pub(super) fn fwd_compute(&self, s: usize) -> u64 {
        self.regions.as_ref().map_or(0, |r| r.fwd[s].compute)
    }

    /// Bookkeeping after the storages `fresh` became resident: rebuild their regions and
    /// their frontier neighbours', detach them from their equivalence classes.
    pub(super) fn on_materialized(&mut self, g: &Graph, fresh: &[usize]) {
        if let Some(r) = &mut self.regions {
            let mut aff_fwd: Vec<u32> = Vec::new();
            let mut aff_bwd: Vec<u32> = Vec::new();
            for &s in fresh {
                r.rebuild(g, s, false);
                r.rebuild(g, s, true);
                aff_fwd.extend(r.bwd[s].frontier.iter());
                aff_bwd.extend(r.fwd[s].frontier.iter());
            }
            aff_fwd.sort_unstable();
            aff_fwd.dedup();
            aff_bwd.sort_unstable();
            aff_bwd.dedup();
            for s in aff_fwd {
                r.rebuild(g, s as usize, false);
            }
            for s in aff_bwd {
                r.rebuild(g, s as usize, true);
            }
        }
        if let Some(c) = &mut self.classes {
            for &s in fresh {
                if let Some(n) = c.node[s].take() {
                    let root = c.find(n);
                    c.value[root as usize] -= i128::from(g.storages[s].compute);
                }
            }
        }
    }

    /// Bookkeeping after storage `s` was evicted (`g` already says so): its frontier
    /// neighbours absorb its regions, which are dropped; it joins its evicted neighbours'
    /// classes.
    pub(super) fn on_evicted(&mut self, g: &Graph, s: usize) {
        if let Some(r) = &mut self.regions {
            let bwd_frontier: Vec<u32> = r.bwd[s].frontier.iter().collect();
            let fwd_frontier: Vec<u32> = r.fwd[s].frontier.iter().collect();
            for p in bwd_frontier {
                r.absorb(g, p as usize, s, false);
            }
            for c in fwd_frontier {
                r.absorb(g, c as usize, s, true);
            }
            r.fwd[s] = Region::default();
            r.bwd[s] = Region::default();
        }
        if let Some(c) = &mut self.classes {
            let n = c.new_node(i128::from(g.storages[s].compute));
            c.node[s] = Some(n);
            for m in g.evicted_neighbors(s) {
                if let Some(e) = c.node[m as usize] {
                    c.union(e, n);
                }
            }
        }
    }
}

impl Regions {
    pub(super) fn get(&self, s: usize, reverse: bool) -> &Region {
        if reverse { &self.bwd[s] } else { &self.fwd[s] }
    }

    fn get_mut(&mut self, s: usize, reverse: bool) -> &mut Region {
        if reverse {
            &mut self.bwd[s]
        } else {
            &mut self.fwd[s]
        }
    }

    /// Number of storages with regions.
    pub(super) fn len(&self) -> usize {
        self.fwd.len()
    }

    fn rebuild(&mut self, g: &Graph, base: usize, reverse: bool) {
        // A pinned storage is never scored nor evicted (so never absorbed into another
        // region): its regions are dead weight, and the largest ones (a weight's forward
        // region spans much of the evicted graph). Skipping them changes no decision.
        if g.storages[base].pinned {
            *self.get_mut(base, reverse) = Region::default();
            return;
        }
        let mut r = core::mem::take(self.get_mut(base, reverse));
        r.interior.clear();
        r.frontier.clear();
        r.compute = 0;
        let mut stack = core::mem::take(&mut self.scratch);
        stack.clear();
        stack.push(base as u32);
        while let Some(s) = stack.pop() {
            let adj = if reverse {
                &g.adj_in[s as usize]
            } else {
                &g.adj_out[s as usize]
            };
            for &u in adj {
                let us = &g.storages[u as usize];
                if us.material {
                    if u as usize != base {
                        r.frontier.insert(u);
                    }
                    continue;
                }
                if r.interior.insert(u) {
                    r.compute = r.compute.saturating_add(us.compute);
                    stack.push(u);
                }
            }
        }
        self.scratch = stack;
        *self.get_mut(base, reverse) = r;
    }

    /// `p`'s region (direction `reverse`) absorbs the just-evicted `s`.
    fn absorb(&mut self, g: &Graph, p: usize, s: usize, reverse: bool) {
        // `s`'s frontier may be stale and name an evicted `p`: an evicted storage's regions
        // are never read (not scored) and are rebuilt from scratch when it comes back, so
        // `simrd`'s update of them is skipped, like a pinned storage's (see `rebuild`).
        if p == s || g.storages[p].pinned || !g.storages[p].material {
            return;
        }
        let mut r = core::mem::take(self.get_mut(p, reverse));
        let sr = self.get(s, reverse);
        r.frontier.remove(s as u32);
        for x in sr.frontier.iter() {
            r.frontier.insert(x);
        }
        let mut add = g.storages[s].compute;
        for x in sr.interior.iter() {
            if x as usize != s && r.interior.insert(x) {
                add = add.saturating_add(g.storages[x as usize].compute);
            }
        }
        r.interior.insert(s as u32);
        r.compute = r.compute.saturating_add(add);
        *self.get_mut(p, reverse) = r;
    }
}

impl EqClasses {
    fn new_node(&mut self, v: i128) -> u32 {
        self.parent.push(NONE);
        self.value.push(v);
        (self.parent.len() - 1) as u32
    }

    /// The root of `x`, compressing the path.
    fn find(&mut self, mut x: u32) -> u32 {
        let root = self.root(x);
        while self.parent[x as usize] != NONE {
            let next = self.parent[x as usize];
            self.parent[x as usize] = root;
            x = next;
        }
        root
    }

    /// The root of `x`.
    pub(super) fn root(&self, mut x: u32) -> u32 {
        while self.parent[x as usize] != NONE {
            x = self.parent[x as usize];
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let l = self.find(a);
        let r = self.find(b);
        if l != r {
            self.parent[l as usize] = r;
            self.value[r as usize] += self.value[l as usize];
        }
    }

    /// The node of storage `s` while it is evicted.
    pub(super) fn node(&self, s: usize) -> Option<u32> {
        self.node[s]
    }

    /// The value of the class of root `r`.
    pub(super) fn value(&self, r: u32) -> i128 {
        self.value[r as usize]
    }

    /// Test hook: gives evicted storage `s` a node of its own, splitting it off its class.
    #[cfg(test)]
    pub(super) fn detach(&mut self, s: usize) {
        let n = self.new_node(0);
        self.node[s] = Some(n);
    }

    /// Number of storages with a node slot.
    pub(super) fn len(&self) -> usize {
        self.node.len()
    }

    /// Checks that every parent is in range and every node reaches a root (no cycle).
    ///
    /// # Panics
    /// If not.
    pub(super) fn check_forest(&self) {
        assert_eq!(self.parent.len(), self.value.len(), "union-find tables");
        // Depth of each node, computed once (memo): a chain longer than the node count is a
        // cycle.
        let n = self.parent.len();
        let mut depth: Vec<u32> = alloc::vec![NONE; n];
        for start in 0..n {
            let mut path: Vec<usize> = Vec::new();
            let mut x = start;
            while depth[x] == NONE {
                path.push(x);
                assert!(path.len() <= n, "union-find cycle through node {start}");
                let p = self.parent[x];
                if p == NONE {
                    depth[x] = 0;
                    path.pop();
                    break;
                }
                assert!((p as usize) < n, "union-find parent {p} out of range");
                x = p as usize;
            }
            let mut d = depth[x];
            while let Some(y) = path.pop() {
                d += 1;
                depth[y] = d;
            }
        }
    }
}
