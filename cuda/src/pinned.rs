//! Page-locked host buffers: [`PinnedBuf`] (one buffer, owned, moved into copies while they
//! run) and [`PinnedPool`] (equal-sized buffers, recycled).
//!
//! Buffers come from [`Backend::host_alloc`]: page-locked and *not* write-combined, because
//! the CPU reads them (the disk tier writes them out), and aligned to 4096 bytes with a
//! length that is a multiple of 4096, so they can be used for `O_DIRECT` I/O as they are.
//! Backends never free a buffer they handed out except through [`PinnedPool::trim`], so a
//! `PinnedBuf` stays valid as long as it exists; dropping one without giving it back to its
//! pool leaks it.

use core::ptr::NonNull;

use crate::backend::Backend;
use crate::error::{Error, Result, invalid};

/// Alignment and size granule of pinned buffers (the disk tier's `O_DIRECT` block).
pub const PINNED_ALIGN: u64 = 4096;

/// One page-locked host buffer, owned. Moving it into a copy (see [`crate::CopyEngine`]) is
/// what keeps the CPU off it until the copy completes.
#[derive(Debug)]
pub struct PinnedBuf {
    ptr: NonNull<u8>,
    len: u64,
}

// SAFETY: a `PinnedBuf` is the unique owner of its buffer (like a `Box<[u8]>`); the memory is
// ordinary host memory usable from any thread.
unsafe impl Send for PinnedBuf {}
// SAFETY: `&PinnedBuf` only gives `&[u8]` access.
unsafe impl Sync for PinnedBuf {}

impl PinnedBuf {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the length is 0 (never, for pool buffers).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of `len` bytes (it came from `host_alloc(len)`,
        // which zero-initialises or is written before reading in the Cuda case — the driver's
        // memory is initialised bytes as far as Rust is concerned) and this value owns it.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only borrow.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }

    /// Raw pointer for a copy.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Raw mutable pointer for a copy.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

/// A pool of equal-sized pinned buffers. See the [module docs](self).
#[derive(Debug)]
pub struct PinnedPool {
    buf_size: u64,
    max_buffers: u64,
    free: Vec<PinnedBuf>,
    /// Buffers allocated from the backend and not yet trimmed (free or handed out).
    allocated: u64,
}

impl PinnedPool {
    /// A pool of buffers of `buf_size` bytes (rounded up to 4096), at most `max_buffers` of
    /// them allocated at once.
    ///
    /// # Errors
    /// `buf_size == 0` or overflow.
    pub fn new(buf_size: u64, max_buffers: u64) -> Result<Self> {
        if buf_size == 0 {
            return Err(invalid("pinned buffers of 0 bytes"));
        }
        let buf_size = buf_size
            .checked_next_multiple_of(PINNED_ALIGN)
            .ok_or(Error::Overflow)?;
        Ok(PinnedPool {
            buf_size,
            max_buffers,
            free: Vec::new(),
            allocated: 0,
        })
    }

    /// Size of each buffer.
    pub fn buf_size(&self) -> u64 {
        self.buf_size
    }

    /// Buffers allocated (free or handed out).
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Buffers free in the pool.
    pub fn free_buffers(&self) -> usize {
        self.free.len()
    }

    /// A buffer: a recycled one, or a new one from `backend`.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when `max_buffers` are out; backend errors.
    pub fn acquire<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<PinnedBuf> {
        if let Some(b) = self.free.pop() {
            return Ok(b);
        }
        if self.allocated >= self.max_buffers {
            return Err(Error::OutOfMemory {
                size: self.buf_size,
            });
        }
        let ptr = backend.host_alloc(self.buf_size)?;
        self.allocated += 1;
        Ok(PinnedBuf {
            ptr,
            len: self.buf_size,
        })
    }

    /// Gives a buffer back.
    ///
    /// # Errors
    /// A buffer of another size (it is then dropped, i.e. leaked).
    pub fn release(&mut self, buf: PinnedBuf) -> Result<()> {
        if buf.len != self.buf_size {
            return Err(invalid(format!(
                "a {}-byte buffer given to a pool of {}-byte buffers",
                buf.len, self.buf_size
            )));
        }
        self.free.push(buf);
        Ok(())
    }

    /// Frees the pool's free buffers back to `backend` (which must be the one they came
    /// from); returns how many.
    ///
    /// # Errors
    /// Backend errors (buffers not yet freed stay in the pool).
    pub fn trim<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<u64> {
        let mut n = 0;
        while let Some(b) = self.free.pop() {
            // SAFETY: `b` came from `host_alloc(buf_size)` on this backend (the pool's only
            // source), is owned by the pool (so not freed and not in a queued copy: buffers
            // in flight are owned by the copy engine, not here).
            if let Err(e) = unsafe { backend.host_free(b.ptr, b.len) } {
                self.free.push(b);
                return Err(e);
            }
            self.allocated -= 1;
            n += 1;
        }
        Ok(n)
    }
}
