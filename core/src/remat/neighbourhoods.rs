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
//!   *rebuilt* by a search (the frontier neighbours of one materialization all at once, on
//!   shared closures: `Regions::rebuild_many`, the same sets as a search from each, which
//!   tests check at every rebuild). The two differ from a from-scratch search when an op is
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
    /// Reused tables of [`Regions::rebuild_many`].
    many: ManyScratch,
    /// Residency bitmap (bit `s` = storage `s` is resident), a mirror of the graph's
    /// `material` flags that the searches read (it fits in L1 where the storages do not).
    resident: Vec<u64>,
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
            for &s in fresh {
                r.set_resident(s, true);
            }
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
            r.rebuild_many(g, &aff_fwd, false);
            r.rebuild_many(g, &aff_bwd, true);
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
            r.set_resident(s, false);
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

    fn set_resident(&mut self, s: usize, on: bool) {
        let w = s / 64;
        if w >= self.resident.len() {
            self.resident.resize(w + 1, 0);
        }
        if on {
            self.resident[w] |= 1 << (s % 64);
        } else {
            self.resident[w] &= !(1 << (s % 64));
        }
    }

    /// Whether the residency mirror says `s` is resident.
    pub(super) fn is_resident(&self, s: usize) -> bool {
        self.resident
            .get(s / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
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
        let resident = &self.resident;
        let is_resident = |u: u32| {
            resident
                .get((u / 64) as usize)
                .is_some_and(|w| w & (1 << (u % 64)) != 0)
        };
        let adjacency = if reverse { &g.adj_in } else { &g.adj_out };
        while let Some(s) = stack.pop() {
            for &u in &adjacency[s as usize] {
                if is_resident(u) {
                    if u as usize != base {
                        r.frontier.insert(u);
                    }
                    continue;
                }
                if r.interior.insert(u) {
                    r.compute = r.compute.saturating_add(g.storages[u as usize].compute);
                    stack.push(u);
                }
            }
        }
        self.scratch = stack;
        *self.get_mut(base, reverse) = r;
    }

    /// Rebuilds the regions (direction `reverse`) of every storage of `bases` on the same
    /// graph state, with the result of [`Regions::rebuild`] on each, as sets.
    ///
    /// A search from a resident base reaches the union of the *closures* (evicted storages
    /// reachable through evicted storages, and the resident ones where that stops) of its
    /// evicted neighbours. The bases of one materialization share most of one evicted blob,
    /// so each closure is computed once, as a bitmap over the blob, per strongly connected
    /// component (Tarjan, which finishes a component after every component it reaches), and
    /// a base's region is the union of its neighbours' closures.
    ///
    /// # Complexity
    /// O(V + E + C · (V + F) / 64 + Σ region sizes) for a blob of V storages and E edges,
    /// C components, F frontier storages; a search per base is O(Σ (region + its edges)).
    fn rebuild_many(&mut self, g: &Graph, bases: &[u32], reverse: bool) {
        // Few bases: plain searches are as fast. (Tests take the shared path always.)
        let few = if cfg!(test) { 0 } else { 4 };
        if bases.len() <= few {
            for &b in bases {
                self.rebuild(g, b as usize, reverse);
            }
            return;
        }
        let adjacency = if reverse { &g.adj_in } else { &g.adj_out };
        let mut m = core::mem::take(&mut self.many);
        m.number_blob(self, adjacency, bases, g);
        // Searches cost about bases × blob; closures about (blob edges + bases) × the
        // bitmap width: a small blob in a wide graph (LSTM) is searched.
        let (v, k, w) = (m.nodes.len(), bases.len(), g.storages.len().div_ceil(64));
        if !cfg!(test) && k * v < 2 * w * (2 * v + k) {
            m.reset();
            self.many = m;
            for &b in bases {
                self.rebuild(g, b as usize, reverse);
            }
            return;
        }
        m.closures(self, adjacency, g.storages.len());
        // Closures are bitmaps over storage ids: a region is a copy of their union.
        let (wi, wf) = (g.storages.len().div_ceil(64), g.storages.len().div_ceil(64));
        let mut acc_i: Vec<u64> = alloc::vec![0; wi];
        let mut acc_f: Vec<u64> = alloc::vec![0; wf];
        // Σ c(S) over each component's closure, computed when first needed.
        let mut closure_compute: Vec<Option<u64>> = alloc::vec![None; m.components];
        let cost = &m.cost;
        let sum = |words: &[u64]| {
            let mut total = 0u64;
            for_each_bit(words, |x| {
                total = total.saturating_add(cost[x]);
            });
            total
        };
        for &b in bases {
            let base = b as usize;
            if g.storages[base].pinned {
                *self.get_mut(base, reverse) = Region::default();
                continue;
            }
            acc_i.iter_mut().for_each(|w| *w = 0);
            acc_f.iter_mut().for_each(|w| *w = 0);
            // The one component the base's evicted neighbours lie in, if one.
            let mut only: Option<usize> = None;
            let mut several = false;
            for &u in &adjacency[base] {
                let l = m.local[u as usize];
                if self.is_resident(u as usize) {
                    acc_f[(u / 64) as usize] |= 1 << (u % 64);
                } else {
                    let c = m.comp[l as usize] as usize;
                    match only {
                        None => only = Some(c),
                        Some(o) if o != c => several = true,
                        Some(_) => {}
                    }
                    for (a, x) in acc_i.iter_mut().zip(&m.int_bits[c * wi..(c + 1) * wi]) {
                        *a |= x;
                    }
                    for (a, x) in acc_f.iter_mut().zip(&m.front_bits[c * wf..(c + 1) * wf]) {
                        *a |= x;
                    }
                }
            }
            let mut r = core::mem::take(self.get_mut(base, reverse));
            r.interior.set_words(&acc_i);
            r.frontier.clear();
            r.compute = match only {
                None => 0,
                Some(c) if !several => *closure_compute[c]
                    .get_or_insert_with(|| sum(&m.int_bits[c * wi..(c + 1) * wi])),
                Some(_) => sum(&acc_i),
            };
            r.frontier.set_words(&acc_f);
            r.frontier.remove(b);
            *self.get_mut(base, reverse) = r;
            #[cfg(test)]
            {
                SHARED_REBUILDS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                // The oracle: a plain search on the same state gives the same sets.
                let got = core::mem::take(self.get_mut(base, reverse));
                self.rebuild(g, base, reverse);
                let want = self.get(base, reverse);
                assert!(
                    same_set(&got.interior, &want.interior)
                        && same_set(&got.frontier, &want.frontier)
                        && got.compute == want.compute,
                    "shared rebuild of storage {base} (reverse {reverse}) differs from a search"
                );
                *self.get_mut(base, reverse) = got;
            }
        }
        m.reset();
        self.many = m;
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
        r.frontier.union_with(&sr.frontier, |_| {});
        // c(S) of `s` counts even when `s` was in the region already (as in `simrd`); its
        // interior's members count when new. Inserting `s` first skips it in the union.
        let mut add = g.storages[s].compute;
        r.interior.insert(s as u32);
        r.interior.union_with(&sr.interior, |x| {
            add = add.saturating_add(g.storages[x as usize].compute);
        });
        r.compute = r.compute.saturating_add(add);
        *self.get_mut(p, reverse) = r;
    }
}

/// Calls `f` with the index of every set bit, in increasing order.
fn for_each_bit(words: &[u64], mut f: impl FnMut(usize)) {
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            f(i * 64 + w.trailing_zeros() as usize);
            w &= w - 1;
        }
    }
}

/// Bases rebuilt on shared closures so far (tests: proof that the oracle ran).
#[cfg(test)]
pub(super) static SHARED_REBUILDS: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
fn same_set(a: &IdSet, b: &IdSet) -> bool {
    let mut x: Vec<u32> = a.iter().collect();
    let mut y: Vec<u32> = b.iter().collect();
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

/// The tables of one [`Regions::rebuild_many`], kept between calls for their allocations.
///
/// Invariant between calls: `local` is all [`NONE`] (or empty) and the other tables are
/// empty.
#[derive(Default)]
struct ManyScratch {
    /// Local index of each storage in the blob (`nodes`) or in the frontier (`front`),
    /// [`NONE`] otherwise (index = storage).
    local: Vec<u32>,
    /// The evicted storages reachable from the bases' evicted neighbours.
    nodes: Vec<u32>,
    /// The resident storages adjacent to a base or to the blob.
    front: Vec<u32>,
    /// Component of each blob node (local index).
    comp: Vec<u32>,
    /// c(S) of each blob storage (index = storage; others stale), dense for the sums.
    cost: Vec<u64>,
    /// Number of components.
    components: usize,
    /// Per component: its closure's storages and its closure's frontier, as bitmaps of
    /// `⌈storages/64⌉` words over storage ids.
    int_bits: Vec<u64>,
    front_bits: Vec<u64>,
}

impl ManyScratch {
    /// Numbers the blob and its frontier (a search from every base).
    fn number_blob(&mut self, r: &Regions, adjacency: &[Vec<u32>], bases: &[u32], g: &Graph) {
        if self.local.len() < g.storages.len() {
            self.local.resize(g.storages.len(), NONE);
            self.cost.resize(g.storages.len(), 0);
        }
        let mut stack: Vec<u32> = Vec::new();
        for &b in bases {
            stack.push(b);
            while let Some(s) = stack.pop() {
                for &u in &adjacency[s as usize] {
                    if self.local[u as usize] != NONE {
                        continue;
                    }
                    if r.is_resident(u as usize) {
                        self.local[u as usize] = self.front.len() as u32;
                        self.front.push(u);
                    } else {
                        self.local[u as usize] = self.nodes.len() as u32;
                        self.nodes.push(u);
                        self.cost[u as usize] = g.storages[u as usize].compute;
                        stack.push(u);
                    }
                }
            }
        }
    }

    /// Tarjan's components of the blob, and each one's closure bitmaps, sinks first.
    fn closures(&mut self, r: &Regions, adjacency: &[Vec<u32>], storages: usize) {
        let n = self.nodes.len();
        let (wi, wf) = (storages.div_ceil(64), storages.div_ceil(64));
        let mut index: Vec<u32> = alloc::vec![NONE; n];
        let mut low: Vec<u32> = alloc::vec![0; n];
        let mut on_stack: Vec<bool> = alloc::vec![false; n];
        self.comp.clear();
        self.comp.resize(n, NONE);
        let mut tstack: Vec<u32> = Vec::new();
        // (local node, next edge position)
        let mut call: Vec<(u32, usize)> = Vec::new();
        let mut next_index = 0u32;
        let mut ncomp = 0usize;
        for root in 0..n as u32 {
            if index[root as usize] != NONE {
                continue;
            }
            call.push((root, 0));
            index[root as usize] = next_index;
            low[root as usize] = next_index;
            next_index += 1;
            tstack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                let adj = &adjacency[self.nodes[v as usize] as usize];
                if *pos < adj.len() {
                    let u = adj[*pos];
                    *pos += 1;
                    if r.is_resident(u as usize) {
                        continue;
                    }
                    let w = self.local[u as usize];
                    if index[w as usize] == NONE {
                        index[w as usize] = next_index;
                        low[w as usize] = next_index;
                        next_index += 1;
                        tstack.push(w);
                        on_stack[w as usize] = true;
                        call.push((w, 0));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] != index[v as usize] {
                    continue;
                }
                // v roots a component: pop it, then its closure from its own members and
                // the (finished) components its edges reach.
                let c = ncomp;
                ncomp += 1;
                self.int_bits.resize((c + 1) * wi, 0);
                self.front_bits.resize((c + 1) * wf, 0);
                let start = {
                    let mut k = tstack.len();
                    loop {
                        k -= 1;
                        let w = tstack[k];
                        on_stack[w as usize] = false;
                        self.comp[w as usize] = c as u32;
                        if w == v {
                            break k;
                        }
                    }
                };
                for &w in &tstack[start..] {
                    let w = w as usize;
                    let x = self.nodes[w] as usize;
                    self.int_bits[c * wi + x / 64] |= 1 << (x % 64);
                    for &u in &adjacency[self.nodes[w] as usize] {
                        let l = self.local[u as usize] as usize;
                        if r.is_resident(u as usize) {
                            self.front_bits[c * wf + u as usize / 64] |= 1 << (u % 64);
                            continue;
                        }
                        let d = self.comp[l] as usize;
                        if d == c {
                            continue;
                        }
                        let (head, tail) = self.int_bits.split_at_mut(c * wi);
                        for (a, x) in tail[..wi].iter_mut().zip(&head[d * wi..(d + 1) * wi]) {
                            *a |= x;
                        }
                        let (head, tail) = self.front_bits.split_at_mut(c * wf);
                        for (a, x) in tail[..wf].iter_mut().zip(&head[d * wf..(d + 1) * wf]) {
                            *a |= x;
                        }
                    }
                }
                tstack.truncate(start);
            }
        }
        self.components = ncomp;
    }

    /// Back to the between-calls invariant.
    fn reset(&mut self) {
        for &x in self.nodes.iter().chain(&self.front) {
            self.local[x as usize] = NONE;
        }
        self.nodes.clear();
        self.front.clear();
        self.comp.clear();
        self.int_bits.clear();
        self.components = 0;
        self.front_bits.clear();
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
