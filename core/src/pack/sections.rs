//! A leaf in compressed time: the static index the exact search works on.
//!
//! Only the order of lifetime endpoints matters to the search, so time is compressed to
//! *sections*: section `s` is the time between the `s`-th and `(s + 1)`-th distinct endpoint
//! of the leaf's buffers, and a buffer alive over `[lower, upper)` is alive in the sections
//! `ls..us`. Nothing here changes once built.
//!
//! Invariants of [`Sections`]: `ls < us <= nsec` for every item; `rem[s]` is the total size of
//! the items alive in section `s`, and `cuts[s]` the number alive in both `s` and `s + 1`;
//! `sec_items[sec_start[s]..sec_start[s + 1]]` lists the items alive in section `s` by
//! increasing index; `adj[adj_start[i]..adj_start[i + 1]]` lists, by increasing index, the
//! other items alive in a section with item `i`; `twin[i]` is the previous item (by index)
//! with the same sections, size and alignment, or [`NONE`].

use alloc::vec;
use alloc::vec::Vec;

use super::problem::Item;

/// An item in compressed time: alive in sections `ls..us`.
pub(super) struct SItem {
    pub(super) ls: u32,
    pub(super) us: u32,
    pub(super) size: u64,
    pub(super) align: u64,
}

/// No item.
pub(super) const NONE: u32 = u32::MAX;

/// The leaf's items in compressed time. See the module docs for the invariants.
pub(super) struct Sections {
    /// The items, in the leaf's order.
    pub(super) items: Vec<SItem>,
    /// Number of sections.
    pub(super) nsec: usize,
    /// Total size of the items alive in each section.
    pub(super) rem: Vec<u64>,
    /// `cuts[s]`: items alive in both section `s` and `s + 1`.
    pub(super) cuts: Vec<u32>,
    /// Items alive in each section (CSR: `sec_items[sec_start[s]..sec_start[s + 1]]`).
    pub(super) sec_start: Vec<u32>,
    pub(super) sec_items: Vec<u32>,
    /// Adjacency of "alive at the same time" (CSR: `adj[adj_start[i]..adj_start[i + 1]]`).
    pub(super) adj_start: Vec<u32>,
    pub(super) adj: Vec<u32>,
    /// Lifetime length of each item (a ranking key).
    pub(super) width: Vec<u64>,
    /// Size × lifetime length of each item, saturated (a ranking key).
    pub(super) area: Vec<u64>,
    /// `twin[i]`: the previous item (by index) with the same sections, size and alignment, or
    /// [`NONE`]. Identical items are interchangeable.
    pub(super) twin: Vec<u32>,
}

impl Sections {
    /// Indexes `local` (items with non-empty lifetimes).
    pub(super) fn new(local: &[Item]) -> Self {
        let n = local.len();
        let mut times: Vec<u64> = local.iter().flat_map(|it| [it.lower, it.upper]).collect();
        times.sort_unstable();
        times.dedup();
        let sec = |t: u64| times.binary_search(&t).unwrap_or(0) as u32;
        let nsec = times.len().saturating_sub(1);
        let items: Vec<SItem> = local
            .iter()
            .map(|it| SItem {
                ls: sec(it.lower),
                us: sec(it.upper),
                size: it.size,
                align: it.align,
            })
            .collect();
        let mut rem = vec![0u64; nsec];
        let mut cuts = vec![0u32; nsec];
        for it in &items {
            for r in &mut rem[it.ls as usize..it.us as usize] {
                *r += it.size;
            }
            for c in &mut cuts[it.ls as usize..it.us as usize - 1] {
                *c += 1;
            }
        }
        // Members of each section.
        let mut sec_start = vec![0u32; nsec + 1];
        for it in &items {
            for s in it.ls as usize..it.us as usize {
                sec_start[s + 1] += 1;
            }
        }
        for s in 0..nsec {
            sec_start[s + 1] += sec_start[s];
        }
        let mut fill = sec_start.clone();
        let mut sec_items = vec![0u32; sec_start[nsec] as usize];
        for (i, it) in items.iter().enumerate() {
            for s in it.ls as usize..it.us as usize {
                sec_items[fill[s] as usize] = i as u32;
                fill[s] += 1;
            }
        }
        // Adjacency by a sweep over start order.
        let mut by_start: Vec<u32> = (0..n as u32).collect();
        by_start.sort_unstable_by_key(|&i| (items[i as usize].ls, i));
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (k, &i) in by_start.iter().enumerate() {
            let a = &items[i as usize];
            for &j in &by_start[k + 1..] {
                let b = &items[j as usize];
                if b.ls >= a.us {
                    break;
                }
                lists[i as usize].push(j);
                lists[j as usize].push(i);
            }
        }
        let mut adj_start = Vec::with_capacity(n + 1);
        let mut adj = Vec::new();
        adj_start.push(0u32);
        for l in &mut lists {
            l.sort_unstable();
            adj.extend_from_slice(l);
            adj_start.push(adj.len() as u32);
        }
        // Ranking keys.
        let width: Vec<u64> = local.iter().map(|it| it.upper - it.lower).collect();
        let area: Vec<u64> = local
            .iter()
            .map(|it| it.size.saturating_mul(it.upper - it.lower))
            .collect();
        // Identical twins.
        let mut twin = vec![NONE; n];
        let mut keyed: Vec<(u32, u32, u64, u64, u32)> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.ls, it.us, it.size, it.align, i as u32))
            .collect();
        keyed.sort_unstable();
        for w in keyed.windows(2) {
            if (w[0].0, w[0].1, w[0].2, w[0].3) == (w[1].0, w[1].1, w[1].2, w[1].3) {
                twin[w[1].4 as usize] = w[0].4;
            }
        }
        Sections {
            items,
            nsec,
            rem,
            cuts,
            sec_start,
            sec_items,
            adj_start,
            adj,
            width,
            area,
            twin,
        }
    }
}
