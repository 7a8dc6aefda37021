//! Swap mode ([`Runtime::set_swap_bandwidth`](super::Runtime::set_swap_bandwidth)): a storage
//! chosen for eviction is copied to the host instead of dropped when copying it out and back
//! is cheaper than recomputing it; bringing it back is then a copy, not a recomputation.
//!
//! Transfers overlap with the next op's compute: the transfer time issued since the last
//! executed op is *pending*, and only its excess over that op's cost stalls the clock.
//!
//! # Representation invariants
//!
//! 1. `bytes_per_second > 0`.
//! 2. A host copy, once made, is kept (storages never change): `on_host[s]` never goes back
//!    to false, and `outs` is the number of storages with a host copy.

use alloc::vec::Vec;

use super::error::RematError;

pub(super) struct SwapMode {
    /// Host link bandwidth, bytes per second.
    bytes_per_second: u64,
    /// Whether each storage has a host copy (index = storage; missing = no).
    on_host: Vec<bool>,
    /// Transfer time (ns) issued since the last executed op, hidden behind its compute.
    pending: u64,
    /// Storages copied to the host.
    pub(super) outs: u64,
    /// Storages copied back from the host.
    pub(super) ins: u64,
    /// Transfer time not hidden behind compute (ns).
    pub(super) stall: u64,
}

impl SwapMode {
    /// A host link of `bytes_per_second`.
    ///
    /// # Errors
    /// [`RematError::BadOp`] for a bandwidth of 0.
    pub(super) fn new(bytes_per_second: u64) -> Result<Self, RematError> {
        let mut w = SwapMode {
            bytes_per_second: 1,
            on_host: Vec::new(),
            pending: 0,
            outs: 0,
            ins: 0,
            stall: 0,
        };
        w.set_bandwidth(bytes_per_second)?;
        Ok(w)
    }

    /// Changes the bandwidth; copies already made stay.
    ///
    /// # Errors
    /// [`RematError::BadOp`] for a bandwidth of 0.
    pub(super) fn set_bandwidth(&mut self, bytes_per_second: u64) -> Result<(), RematError> {
        if bytes_per_second == 0 {
            return Err(RematError::BadOp("swap bandwidth must be positive"));
        }
        self.bytes_per_second = bytes_per_second;
        Ok(())
    }

    /// Nanoseconds to copy `size` bytes over the link (rounded up).
    fn transfer_ns(&self, size: u64) -> u64 {
        let ns = (u128::from(size) * 1_000_000_000).div_ceil(u128::from(self.bytes_per_second));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Whether storage `s` has a host copy.
    pub(super) fn on_host(&self, s: usize) -> bool {
        self.on_host.get(s).copied().unwrap_or(false)
    }

    /// Number of storages with a host copy.
    pub(super) fn copies(&self) -> u64 {
        self.on_host.iter().filter(|&&h| h).count() as u64
    }

    /// Storage `s` (`size` bytes, recomputing it costs `remat_cost`) is about to be evicted:
    /// copies it out when it has no host copy yet and a copy out and back costs less than
    /// the recomputation. True when it issued the copy.
    pub(super) fn offload_if_cheaper(&mut self, s: usize, size: u64, remat_cost: u64) -> bool {
        if self.on_host(s) {
            return false;
        }
        let out = self.transfer_ns(size);
        if out.saturating_add(out) >= remat_cost {
            return false;
        }
        if self.on_host.len() <= s {
            self.on_host.resize(s + 1, false);
        }
        self.on_host[s] = true;
        self.outs += 1;
        self.pending = self.pending.saturating_add(out);
        true
    }

    /// Issues the copy back of a storage of `size` bytes.
    pub(super) fn fetch(&mut self, size: u64) {
        self.pending = self.pending.saturating_add(self.transfer_ns(size));
        self.ins += 1;
    }

    /// An op of `cost` ns runs: the pending transfers overlap with it; returns the excess
    /// (the stall), which is also added to `stall`.
    pub(super) fn overlap(&mut self, cost: u64) -> u64 {
        let stall = self.pending.saturating_sub(cost);
        self.pending = 0;
        self.stall = self.stall.saturating_add(stall);
        stall
    }
}
