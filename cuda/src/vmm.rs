//! Virtual-memory segments: [`ExpandableSegment`] (one reserved range, physical pages mapped
//! and unmapped one by one, as PyTorch's expandable segments) and [`Stitcher`] (free physical
//! pages from anywhere mapped into one fresh contiguous range, as GMLake's stitching).
//!
//! Both work through [`Backend`] calls (`va_reserve`, `phys_create`, `map`, `unmap`,
//! `phys_release`, `va_free`) with the page size from [`Backend::granularity`], so the same
//! bookkeeping runs on a GPU and on [`crate::HostBackend`].
//!
//! ```text
//!  ExpandableSegment: base                                          base + va_size
//!                     | page 0 | page 1 | page 2 | page 3 |  ....  unmapped VA  ....|
//!                     | h7     | h8     |  --    | h9     |
//!                       pages[i] = Some(handle) iff page i is mapped
//!
//!  Stitcher:  free pages {h3, h5, h6}  --stitch(3 pages)-->  new VA: | h3 | h5 | h6 |
//! ```
//!
//! Neither type owns its backend: each call takes `&mut B`, and the same backend must be
//! passed every time (a different one returns errors from the driver, or maps nothing).
//! Dropping a segment without [`ExpandableSegment::release`] leaks its device memory.

use std::collections::BTreeMap;

use crate::backend::{Backend, DevPtr, PhysHandle};
use crate::error::{Error, Result, invalid, round_up};

/// A table of `n` entries of `T::default()` for a range of `bytes`, or an error (not an abort)
/// when host memory cannot hold it: the range's size is the caller's input.
pub(crate) fn page_table<T: Clone + Default>(n: usize, bytes: u64) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        invalid(format!(
            "a range of {bytes} bytes has {n} pages, too many to keep a table of in host memory"
        ))
    })?;
    v.resize(n, T::default());
    Ok(v)
}

/// One reserved virtual range whose pages are mapped on demand. See the [module docs](self).
///
/// Invariants: `pages.len() * page == va_size`; `mapped` counts the `Some` entries; each
/// `Some(h)` page is mapped at `base + i * page` with its own physical allocation `h`.
#[derive(Debug)]
pub struct ExpandableSegment {
    base: DevPtr,
    va_size: u64,
    page: u64,
    pages: Vec<Option<PhysHandle>>,
    mapped: u64,
}

impl ExpandableSegment {
    /// Reserves `va_bytes` (rounded up to whole pages) of virtual address space.
    ///
    /// # Errors
    /// `va_bytes == 0`; a range whose page table (one entry per page) host memory cannot
    /// hold; the backend's errors.
    pub fn new<B: Backend + ?Sized>(backend: &mut B, va_bytes: u64) -> Result<Self> {
        if va_bytes == 0 {
            return Err(invalid("a segment of 0 bytes"));
        }
        let page = backend.granularity()?;
        let va_size = round_up(va_bytes, page)?;
        let n = usize::try_from(va_size / page).map_err(|_| Error::Overflow)?;
        let pages = page_table(n, va_size)?;
        let base = backend.va_reserve(va_size)?;
        Ok(ExpandableSegment {
            base,
            va_size,
            page,
            pages,
            mapped: 0,
        })
    }

    /// First address of the range.
    pub fn base(&self) -> DevPtr {
        self.base
    }

    /// Bytes of virtual address space reserved.
    pub fn va_size(&self) -> u64 {
        self.va_size
    }

    /// Page size (the backend's granularity).
    pub fn page_size(&self) -> u64 {
        self.page
    }

    /// Bytes mapped now.
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped * self.page
    }

    /// Whether page `index` is mapped.
    pub fn is_mapped(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.pages.get(i))
            .is_some_and(Option::is_some)
    }

    /// The page indices covering `[offset, offset + len)`, checked against the range.
    fn page_span(&self, offset: u64, len: u64) -> Result<core::ops::Range<usize>> {
        let end = offset.checked_add(len).ok_or(Error::Overflow)?;
        if end > self.va_size {
            return Err(invalid(format!(
                "range {offset}+{len} outside a {}-byte segment",
                self.va_size
            )));
        }
        let first = (offset / self.page) as usize;
        let last = round_up(end, self.page)? / self.page;
        Ok(first..last as usize)
    }

    /// Maps every unmapped page touching `[offset, offset + len)`; returns the bytes newly
    /// mapped. On failure the pages mapped by this call are unmapped again, so the segment is
    /// as before.
    ///
    /// # Errors
    /// A range outside the segment; [`Error::OutOfMemory`] and other backend errors.
    ///
    /// # Complexity
    /// Two backend calls (`phys_create`, `map`) per page mapped.
    pub fn map_range<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        offset: u64,
        len: u64,
    ) -> Result<u64> {
        let span = self.page_span(offset, len)?;
        let mut done = Vec::new();
        for i in span {
            if self.pages[i].is_some() {
                continue;
            }
            let va = self.base + i as u64 * self.page;
            let r = backend.phys_create(self.page).and_then(|h| {
                backend.map(va, self.page, h).map(|()| h).inspect_err(|_| {
                    let _ = backend.phys_release(h);
                })
            });
            match r {
                Ok(h) => {
                    self.pages[i] = Some(h);
                    self.mapped += 1;
                    done.push(i);
                }
                Err(e) => {
                    for j in done {
                        let _ = self.unmap_page(backend, j);
                    }
                    return Err(e);
                }
            }
        }
        Ok(done.len() as u64 * self.page)
    }

    /// Grows the mapped prefix so that `[0, bytes)` is mapped (expandable-segment growth).
    ///
    /// # Errors
    /// As [`ExpandableSegment::map_range`].
    pub fn grow_to<B: Backend + ?Sized>(&mut self, backend: &mut B, bytes: u64) -> Result<u64> {
        self.map_range(backend, 0, bytes)
    }

    fn unmap_page<B: Backend + ?Sized>(&mut self, backend: &mut B, i: usize) -> Result<()> {
        if let Some(h) = self.take_page(backend, i)? {
            backend.phys_release(h)?;
        }
        Ok(())
    }

    /// Unmaps page `i` without releasing its physical memory; returns its handle (or `None`
    /// when it was not mapped).
    fn take_page<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        i: usize,
    ) -> Result<Option<PhysHandle>> {
        let Some(h) = self.pages[i] else {
            return Ok(None);
        };
        backend.unmap(self.base + i as u64 * self.page, self.page)?;
        self.pages[i] = None;
        self.mapped -= 1;
        Ok(Some(h))
    }

    /// Unmaps and releases the mapped pages lying wholly inside `[offset, offset + len)`;
    /// returns the bytes unmapped. Queued work using them must be finished (synchronize
    /// first: unmapping does not wait for the device).
    ///
    /// # Errors
    /// A range outside the segment; backend errors (pages unmapped before the error stay
    /// unmapped).
    pub fn unmap_range<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        offset: u64,
        len: u64,
    ) -> Result<u64> {
        self.page_span(offset, len)?;
        let first = round_up(offset, self.page)? / self.page;
        let last = (offset + len) / self.page;
        let mut n = 0;
        for i in first..last.max(first) {
            if self.pages[i as usize].is_some() {
                self.unmap_page(backend, i as usize)?;
                n += 1;
            }
        }
        Ok(n * self.page)
    }

    /// Unmaps page `index` and hands its physical page to `stitcher` instead of releasing it.
    ///
    /// # Errors
    /// An index outside the segment or a page not mapped; backend errors.
    pub fn donate_page<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        index: u64,
        stitcher: &mut Stitcher,
    ) -> Result<()> {
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.pages.len())
            .ok_or_else(|| invalid(format!("page {index} outside the segment")))?;
        let h = self
            .take_page(backend, i)?
            .ok_or_else(|| invalid(format!("page {index} is not mapped")))?;
        stitcher.adopt(h);
        Ok(())
    }

    /// Unmaps and releases every page, then frees the virtual range.
    ///
    /// # Errors
    /// Backend errors (the first one; the rest of the teardown is still attempted).
    pub fn release<B: Backend + ?Sized>(mut self, backend: &mut B) -> Result<()> {
        let mut first = Ok(());
        for i in 0..self.pages.len() {
            if let Err(e) = self.unmap_page(backend, i) {
                first = first.and(Err(e));
            }
        }
        first.and(backend.va_free(self.base, self.va_size))
    }
}

/// GMLake-style stitching: physical pages kept in a free list and mapped, any of them, into a
/// fresh contiguous virtual range. See the [module docs](self).
///
/// Invariants: every handle is either in `free` or in exactly one `stitched` range; a
/// stitched range of `n` pages at `base` maps `pages[i]` at `base + i * page`.
#[derive(Debug)]
pub struct Stitcher {
    page: u64,
    free: Vec<PhysHandle>,
    stitched: BTreeMap<DevPtr, Vec<PhysHandle>>,
    created: u64,
}

impl Stitcher {
    /// An empty stitcher using `backend`'s page size.
    ///
    /// # Errors
    /// Backend errors.
    pub fn new<B: Backend + ?Sized>(backend: &mut B) -> Result<Self> {
        Ok(Stitcher {
            page: backend.granularity()?,
            free: Vec::new(),
            stitched: BTreeMap::new(),
            created: 0,
        })
    }

    /// Page size.
    pub fn page_size(&self) -> u64 {
        self.page
    }

    /// Takes ownership of an unmapped physical page of [`Stitcher::page_size`] bytes.
    pub fn adopt(&mut self, handle: PhysHandle) {
        self.free.push(handle);
    }

    /// Physical pages free for stitching.
    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// Physical pages this stitcher created itself (the rest were adopted).
    pub fn created_pages(&self) -> u64 {
        self.created
    }

    /// The stitched ranges as `(base, pages)`, in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (DevPtr, &[PhysHandle])> + '_ {
        self.stitched.iter().map(|(&b, p)| (b, p.as_slice()))
    }

    /// Maps enough physical pages for `bytes` (free ones first, most recently freed first;
    /// then new ones) into one fresh contiguous range; returns its base. On failure nothing
    /// changes (new pages are released, free ones go back).
    ///
    /// # Errors
    /// `bytes == 0`; [`Error::OutOfMemory`] when the free pages are too few and the device
    /// cannot create the rest; backend errors.
    ///
    /// # Complexity
    /// One `map` per page, one `phys_create` per page not taken from the free list.
    pub fn stitch<B: Backend + ?Sized>(&mut self, backend: &mut B, bytes: u64) -> Result<DevPtr> {
        if bytes == 0 {
            return Err(invalid("stitch of 0 bytes"));
        }
        let va = round_up(bytes, self.page)?;
        let n = usize::try_from(va / self.page).map_err(|_| Error::Overflow)?;
        let reuse = n.min(self.free.len());
        let mut pages: Vec<PhysHandle> = self.free.split_off(self.free.len() - reuse);
        pages.reverse();
        let reused = pages.len();
        let undo = |this: &mut Self, backend: &mut B, pages: Vec<PhysHandle>| {
            for (k, h) in pages.into_iter().enumerate() {
                if k < reused {
                    this.free.push(h);
                } else {
                    let _ = backend.phys_release(h);
                    this.created -= 1;
                }
            }
        };
        while pages.len() < n {
            match backend.phys_create(self.page) {
                Ok(h) => {
                    self.created += 1;
                    pages.push(h);
                }
                Err(e) => {
                    undo(self, backend, pages);
                    return Err(e);
                }
            }
        }
        let base = match backend.va_reserve(va) {
            Ok(b) => b,
            Err(e) => {
                undo(self, backend, pages);
                return Err(e);
            }
        };
        for (i, &h) in pages.iter().enumerate() {
            if let Err(e) = backend.map(base + i as u64 * self.page, self.page, h) {
                for j in 0..i {
                    let _ = backend.unmap(base + j as u64 * self.page, self.page);
                }
                let _ = backend.va_free(base, va);
                undo(self, backend, pages);
                return Err(e);
            }
        }
        self.stitched.insert(base, pages);
        Ok(base)
    }

    /// Unmaps a stitched range and frees its virtual addresses; its physical pages go back to
    /// the free list (their contents are kept). Queued work using the range must be finished.
    ///
    /// # Errors
    /// `base` is not a stitched range; backend errors.
    pub fn unstitch<B: Backend + ?Sized>(&mut self, backend: &mut B, base: DevPtr) -> Result<()> {
        let pages = self
            .stitched
            .get(&base)
            .ok_or_else(|| invalid(format!("unstitch of {base:#x}, not a stitched range")))?;
        let va = pages.len() as u64 * self.page;
        backend.unmap(base, va)?;
        backend.va_free(base, va)?;
        let pages = self.stitched.remove(&base).unwrap_or_default();
        self.free.extend(pages);
        Ok(())
    }

    /// Releases every free physical page; returns the bytes given back.
    ///
    /// # Errors
    /// Backend errors (pages released before the error stay released).
    pub fn trim<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<u64> {
        let mut n = 0;
        while let Some(h) = self.free.pop() {
            if let Err(e) = backend.phys_release(h) {
                self.free.push(h);
                return Err(e);
            }
            n += self.page;
        }
        Ok(n)
    }

    /// Unstitches every range and releases every page.
    ///
    /// # Errors
    /// The first backend error.
    pub fn release<B: Backend + ?Sized>(mut self, backend: &mut B) -> Result<()> {
        let bases: Vec<DevPtr> = self.stitched.keys().copied().collect();
        for b in bases {
            self.unstitch(backend, b)?;
        }
        self.trim(backend).map(|_| ())
    }
}
