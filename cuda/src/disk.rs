//! [`DiskTier`]: fixed-size slots in one file, written and read with `pwrite`/`pread` from
//! aligned buffers, opened with `O_DIRECT` where the filesystem supports it.
//!
//! `O_DIRECT` bypasses the page cache (what an NVMe offload tier wants) but needs buffers,
//! offsets and lengths aligned to the device's block size; slots are multiples of 4096 bytes
//! and [`crate::PinnedBuf`]s are 4096-aligned, so both hold. Filesystems without `O_DIRECT`
//! (tmpfs on older kernels, some overlay setups) refuse the flag with `EINVAL`, at `open` or
//! at the first transfer; the tier then reopens the file without it and says so through
//! [`DiskTier::is_direct`] — data is still written, but through the page cache.
//!
//! Invariants: the file is `slots * slot_size` bytes or shorter (holes read as zero); a slot
//! index is either in `free`, below `next` and handed out, or `>= next`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, invalid};
use crate::pinned::PINNED_ALIGN;

/// A slot of a [`DiskTier`] (its index). Move-only: giving it back with [`DiskTier::free`]
/// consumes it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiskSlot(u64);

impl DiskSlot {
    /// The slot's index in the file.
    pub fn index(&self) -> u64 {
        self.0
    }

    /// A second handle to the same slot, for reading it before it is freed (crate-internal,
    /// so that the move-only rule holds for users).
    pub(crate) fn clone_index(&self) -> DiskSlot {
        DiskSlot(self.0)
    }
}

/// A file of fixed-size slots. See the [module docs](self).
#[derive(Debug)]
pub struct DiskTier {
    file: File,
    path: PathBuf,
    slot_size: u64,
    direct: bool,
    free: BTreeSet<u64>,
    next: u64,
}

fn io(op: &'static str, e: std::io::Error) -> Error {
    Error::Io {
        op,
        message: e.to_string(),
    }
}

fn open(path: &Path, direct: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

impl DiskTier {
    /// Creates (or truncates) `path` as a tier of `slot_size`-byte slots (rounded up to 4096).
    /// Tries `O_DIRECT` first and falls back to buffered I/O when the filesystem refuses it.
    ///
    /// # Errors
    /// `slot_size == 0`; the file cannot be created.
    pub fn create(path: impl AsRef<Path>, slot_size: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if slot_size == 0 {
            return Err(invalid("disk slots of 0 bytes"));
        }
        let slot_size = slot_size
            .checked_next_multiple_of(PINNED_ALIGN)
            .ok_or(Error::Overflow)?;
        let (file, direct) = match open(&path, true) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (open(&path, false).map_err(|e| io("open", e))?, false)
            }
            Err(e) => return Err(io("open (O_DIRECT)", e)),
        };
        Ok(DiskTier {
            file,
            path,
            slot_size,
            direct,
            free: BTreeSet::new(),
            next: 0,
        })
    }

    /// Whether the file is open with `O_DIRECT` (false after a fallback).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> u64 {
        self.slot_size
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Slots handed out now.
    pub fn used_slots(&self) -> u64 {
        self.next - self.free.len() as u64
    }

    fn check_buf(&self, ptr: *const u8, len: usize) -> Result<()> {
        if len as u64 != self.slot_size {
            return Err(invalid(format!(
                "a {len}-byte buffer for {}-byte slots",
                self.slot_size
            )));
        }
        if self.direct && (ptr as usize) % PINNED_ALIGN as usize != 0 {
            return Err(invalid("O_DIRECT buffer not 4096-byte aligned"));
        }
        Ok(())
    }

    /// Drops `O_DIRECT` after the filesystem refused a transfer with `EINVAL`.
    fn fall_back(&mut self) -> Result<()> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| io("reopen without O_DIRECT", e))?;
        self.file = f;
        self.direct = false;
        Ok(())
    }

    /// Writes one slot's worth of `data` (exactly [`DiskTier::slot_size`] bytes, 4096-aligned
    /// in direct mode) to a free slot; returns it.
    ///
    /// # Errors
    /// A buffer of the wrong size or alignment; I/O errors.
    pub fn write(&mut self, data: &[u8]) -> Result<DiskSlot> {
        self.check_buf(data.as_ptr(), data.len())?;
        let slot = match self.free.pop_first() {
            Some(s) => s,
            None => {
                self.next += 1;
                self.next - 1
            }
        };
        let off = slot.checked_mul(self.slot_size).ok_or(Error::Overflow)?;
        let mut r = self.file.write_all_at(data, off);
        if self.direct && r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EINVAL) {
            self.fall_back()?;
            r = self.file.write_all_at(data, off);
        }
        match r {
            Ok(()) => Ok(DiskSlot(slot)),
            Err(e) => {
                self.free.insert(slot);
                Err(io("pwrite", e))
            }
        }
    }

    /// Reads slot `slot` into `out` (exactly [`DiskTier::slot_size`] bytes, aligned in direct
    /// mode). The slot stays allocated.
    ///
    /// # Errors
    /// A buffer of the wrong size or alignment; a slot not handed out; I/O errors.
    pub fn read(&mut self, slot: &DiskSlot, out: &mut [u8]) -> Result<()> {
        self.check_buf(out.as_ptr(), out.len())?;
        if slot.0 >= self.next || self.free.contains(&slot.0) {
            return Err(invalid(format!("read of slot {}, not in use", slot.0)));
        }
        let off = slot.0 * self.slot_size;
        let mut r = self.file.read_exact_at(out, off);
        if self.direct && r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EINVAL) {
            self.fall_back()?;
            r = self.file.read_exact_at(out, off);
        }
        r.map_err(|e| io("pread", e))
    }

    /// Gives a slot back.
    ///
    /// # Errors
    /// A slot not handed out by this tier.
    pub fn free(&mut self, slot: DiskSlot) -> Result<()> {
        if slot.0 >= self.next || !self.free.insert(slot.0) {
            return Err(invalid(format!("free of slot {}, not in use", slot.0)));
        }
        Ok(())
    }
}

impl Drop for DiskTier {
    fn drop(&mut self) {
        // The file is scratch space: remove it. Failure (already removed) is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}
