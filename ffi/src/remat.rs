//! The `mp_remat` handle: memplan's tensor-rematerialization runtime
//! (`memplan_core::remat::Runtime`, DTR-style) behind the C API.
//!
//! A framework registers every tensor as its op runs (size, compute cost, parent tensors, or
//! a constant), pins the tensors an op of its own is about to read, releases references, and
//! asks for room or for an evicted tensor back. Every mutating call records what the caller
//! must do, in order: evict a tensor's buffer, or (re)run the op that produces a tensor. The
//! list of the last call is read with `mp_remat_actions` (count first, then fill).
//!
//! In this API every op has exactly one output with its own buffer, so one `uint32_t` tensor
//! id names the tensor, its buffer and the op that produces it.
//!
//! Representation invariant of [`RematHandle`]: `poisoned` is true iff a mutating call
//! panicked part-way; `tensor_of_storage[s]` / `tensor_of_op[o]` name the registered tensor
//! whose storage / producing op is `s` / `o`.

use memplan_core::remat::{Action, Heuristic, OpId, RematError, Runtime, StorageId, TensorId};

use crate::error::mp_result;
use crate::ffi::{Castable, OwnershipBox, Poisonable, free_box, slice_from_raw, to_boxed_mut_ptr};

#[cfg(test)]
mod tests;

/// `heuristic` of `mp_remat_new`: h_DTR, `(c + C_fwd + C_bwd) / (size × staleness)`.
pub const MP_REMAT_HEURISTIC_DTR: u32 = 0;
/// `heuristic`: h_DTR^eq (equivalence classes of evicted neighbours).
pub const MP_REMAT_HEURISTIC_DTR_EQ: u32 = 1;
/// `heuristic`: h_DTR^local, `c / (size × staleness)`.
pub const MP_REMAT_HEURISTIC_DTR_LOCAL: u32 = 2;
/// `heuristic`: h_MSPS, `(c + C_bwd) / size`.
pub const MP_REMAT_HEURISTIC_MSPS: u32 = 3;
/// `heuristic`: least recently used first.
pub const MP_REMAT_HEURISTIC_LRU: u32 = 4;
/// `heuristic`: largest buffer first.
pub const MP_REMAT_HEURISTIC_LARGEST: u32 = 5;
/// `heuristic`: memplan's own (without a known schedule, as here: MSPS's cost over
/// `size × staleness`).
pub const MP_REMAT_HEURISTIC_MEMPLAN: u32 = 6;

/// `flags` bit of `mp_remat_register`: the tensor is a constant (parameter, input): no
/// parents, cost 0, resident and pinned for good.
pub const MP_REMAT_CONSTANT: u32 = 1 << 0;

/// `kind` of `mp_remat_action`: free the buffer of `tensor` (it becomes undefined).
pub const MP_REMAT_EVICT: u32 = 1;
/// `kind`: run the op that produces `tensor` for the first time (the op being registered).
pub const MP_REMAT_COMPUTE: u32 = 2;
/// `kind`: run the op that produces `tensor` again (rematerialization).
pub const MP_REMAT_RECOMPUTE: u32 = 3;
/// `kind` (swap mode, `mp_remat_set_swap_bandwidth`): copy the buffer of `tensor` to host
/// memory; its `MP_REMAT_EVICT` follows.
pub const MP_REMAT_OFFLOAD: u32 = 4;
/// `kind` (swap mode): copy the buffer of `tensor` back from its host copy instead of
/// recomputing it.
pub const MP_REMAT_FETCH: u32 = 5;

/// One thing the caller must do, in list order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_remat_action {
    /// `MP_REMAT_EVICT`, `MP_REMAT_COMPUTE`, `MP_REMAT_RECOMPUTE`, or in swap mode
    /// (`mp_remat_set_swap_bandwidth`) `MP_REMAT_OFFLOAD` or `MP_REMAT_FETCH`.
    pub kind: u32,
    /// The tensor (id from `mp_remat_register`).
    pub tensor: u32,
}

/// Counters of a runtime, as returned by `mp_remat_stats`. (Not named `mp_remat_stats`: in C
/// a typedef and a function cannot share a name.)
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_remat_counters {
    /// 1 + the cost of every op run so far (first runs and recomputations).
    pub clock: u64,
    /// Cost of first runs.
    pub model_compute: u64,
    /// Cost of recomputations.
    pub remat_compute: u64,
    /// Buffers evicted (by the heuristic and when their last reference went).
    pub evictions: u64,
    /// Bytes resident now.
    pub memory: u64,
    /// Highest resident byte count.
    pub peak: u64,
    /// Tensors registered.
    pub tensors: u64,
}

/// An opaque rematerialization runtime: a byte budget, an eviction heuristic, and the tensors
/// registered so far.
///
/// Create with `mp_remat_new`, destroy with `mp_remat_free`.
pub struct mp_remat {
    _private: [u8; 0],
}

impl Castable for mp_remat {
    type Ownership = OwnershipBox;
    type RustType = RematHandle;
}

/// The Rust object behind an `mp_remat` handle. See the module docs for its invariant.
pub(crate) struct RematHandle {
    rt: Runtime,
    /// The actions of the last mutating call.
    actions: Vec<mp_remat_action>,
    tensor_of_storage: Vec<u32>,
    tensor_of_op: Vec<u32>,
    poisoned: bool,
}

const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<RematHandle>();
};

fn heuristic(code: u32) -> Option<Heuristic> {
    Some(match code {
        MP_REMAT_HEURISTIC_DTR => Heuristic::Dtr,
        MP_REMAT_HEURISTIC_DTR_EQ => Heuristic::DtrEq,
        MP_REMAT_HEURISTIC_DTR_LOCAL => Heuristic::DtrLocal,
        MP_REMAT_HEURISTIC_MSPS => Heuristic::Msps,
        MP_REMAT_HEURISTIC_LRU => Heuristic::Lru,
        MP_REMAT_HEURISTIC_LARGEST => Heuristic::Largest,
        MP_REMAT_HEURISTIC_MEMPLAN => Heuristic::Memplan,
        _ => return None,
    })
}

impl Poisonable for RematHandle {
    type Error = RematError;

    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn finish(&mut self, result: Result<(), RematError>) -> mp_result {
        match result {
            Ok(()) => mp_result::Ok,
            Err(e) => mp_result::from(&e),
        }
    }
}

impl RematHandle {
    /// Moves the runtime's pending actions into `self.actions`, as tensor ids.
    fn collect_actions(&mut self) {
        for a in self.rt.take_actions() {
            let (kind, tensor) = match a {
                Action::Evict(StorageId(s)) => (MP_REMAT_EVICT, self.tensor_of_storage[s as usize]),
                Action::Offload(StorageId(s)) => {
                    (MP_REMAT_OFFLOAD, self.tensor_of_storage[s as usize])
                }
                Action::Fetch(StorageId(s)) => (MP_REMAT_FETCH, self.tensor_of_storage[s as usize]),
                Action::Compute { op: OpId(o), remat } => (
                    if remat {
                        MP_REMAT_RECOMPUTE
                    } else {
                        MP_REMAT_COMPUTE
                    },
                    self.tensor_of_op[o as usize],
                ),
            };
            self.actions.push(mp_remat_action { kind, tensor });
        }
    }

    /// Registers one tensor and records its ids.
    fn register(
        &mut self,
        size: u64,
        cost: u64,
        parents: &[TensorId],
        constant: bool,
    ) -> Result<u32, RematError> {
        // The op's own Compute action is recorded before its id mapping exists: map after.
        let next = self.rt.tensor_count();
        let r = self.rt.register(size, cost, parents, constant);
        if self.rt.tensor_count() > next {
            let t = TensorId(next as u32);
            let s = self.rt.storage_of(t)?.0 as usize;
            let o = self.rt.producer(t)?.0 as usize;
            if self.tensor_of_storage.len() <= s {
                self.tensor_of_storage.resize(s + 1, u32::MAX);
            }
            if self.tensor_of_op.len() <= o {
                self.tensor_of_op.resize(o + 1, u32::MAX);
            }
            self.tensor_of_storage[s] = t.0;
            self.tensor_of_op[o] = t.0;
        }
        r.map(|t| t.0)
    }
}

/// Runs a mutating call `f` on the handle behind `remat` with the poisoning protocol of
/// [`crate::ffi::mutate`]; clears the action list first and collects the actions `f` decided
/// (also when it fails).
///
/// # Safety
/// 1. `remat` is NULL or a live handle from `mp_remat_new`, not used by another thread
///    during the call.
unsafe fn mutate(
    remat: *mut mp_remat,
    f: impl FnOnce(&mut RematHandle) -> Result<(), RematError>,
) -> mp_result {
    let with_actions = |handle: &mut RematHandle| {
        handle.actions.clear();
        let r = f(handle);
        handle.collect_actions();
        r
    };
    // SAFETY: by (1).
    unsafe { crate::ffi::mutate(remat, with_actions) }
}

/// Writes the action count of the last call to `out_n` when it is not NULL.
///
/// # Safety
/// 1. `out_n` is NULL, or aligned (checked by the caller) and valid for one `size_t` write.
unsafe fn write_count(remat: *mut mp_remat, out_n: *mut usize) {
    if out_n.is_null() {
        return;
    }
    // SAFETY: the exported caller checked `remat` non-NULL and live before (it just ran
    // `mutate` on it) and nothing else uses it during the call.
    if let Some(h) = unsafe { crate::ffi::try_from(remat.cast_const()) } {
        // SAFETY: by (1).
        unsafe { out_n.write(h.actions.len()) };
    }
}

/// Creates a runtime with a budget of `budget` bytes and the given eviction heuristic
/// (`MP_REMAT_HEURISTIC_*`), and stores it in `*out_remat`. There is no recomputation limit.
/// Errors: `MP_RESULT_NULL_PARAMETER` (NULL `out_remat`), `MP_RESULT_INVALID_ARGUMENT`
/// (unknown heuristic, misaligned `out_remat`).
///
/// # Safety
/// - `out_remat`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new runtime and must free it with `mp_remat_free`, exactly once.
///
/// # Copies
/// Nothing is retained from the arguments.
///
/// # Thread safety
/// Safe to call from any thread. A runtime is not internally synchronised: it may move
/// between threads; calls taking `const mp_remat *` may run concurrently with each other, a
/// call taking `mp_remat *` must not overlap any other call on it.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `out_remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_new(
    budget: u64,
    heuristic_code: u32,
    out_remat: *mut *mut mp_remat,
) -> mp_result {
    ffi_panic_boundary! {
        let out_remat = check_out!(out_remat);
        let Some(h) = heuristic(heuristic_code) else {
            return mp_result::InvalidArgument;
        };
        let handle = RematHandle {
            rt: Runtime::new(budget, h, None),
            actions: Vec::new(),
            tensor_of_storage: Vec::new(),
            tensor_of_op: Vec::new(),
            poisoned: false,
        };
        let remat = to_boxed_mut_ptr::<mp_remat>(handle);
        // SAFETY: `out_remat` is non-NULL and aligned (checked), and the caller guarantees it
        // is valid for one pointer write.
        unsafe { out_remat.write(remat) };
        mp_result::Ok
    }
}

/// Swap mode: from now on a buffer chosen for eviction is copied to host memory over a link
/// of `bytes_per_second` (action `MP_REMAT_OFFLOAD` before its `MP_REMAT_EVICT`) when copying
/// it out and back costs less than recomputing it (costs in ns: pass `cost` to
/// `mp_remat_register` in nanoseconds); bringing it back is then `MP_REMAT_FETCH`, not a
/// recomputation. Errors: `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT`
/// (`bytes_per_second` is 0), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_set_swap_bandwidth(
    remat: *mut mp_remat,
    bytes_per_second: u64,
) -> mp_result {
    ffi_panic_boundary! {
        let f = |h: &mut RematHandle| h.rt.set_swap_bandwidth(bytes_per_second);
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Destroys a runtime.
///
/// # Safety
/// - `remat`: NULL, or a runtime from `mp_remat_new` not yet freed (poisoned ones included).
///
/// # Ownership
/// Ends the caller's ownership: `remat` must not be used again.
///
/// # Copies
/// Consumes `remat`.
///
/// # Thread safety
/// No other call on the same runtime may run concurrently or afterwards.
///
/// # NULL
/// NULL is a no-op. Freeing twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_free(remat: *mut mp_remat) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `remat` is NULL or a live runtime not used again;
        // `free_box` handles NULL.
        unsafe { free_box(remat) };
    }
}

/// Registers a tensor and runs the op that produces it: `size` bytes, compute cost `cost`
/// (any unit, e.g. ns), computed from `parents[0..n_parents]` (tensor ids, duplicates
/// allowed). Evicted parents are recomputed first and buffers are evicted until `size` fits:
/// the action list (`mp_remat_actions`) says what to do, ending with `MP_REMAT_COMPUTE` of
/// the new tensor. With `MP_REMAT_CONSTANT` in `flags` the tensor is a constant (no parents,
/// `cost` ignored), pinned for good. The new tensor holds one reference (drop it with
/// `mp_remat_release`). Its id, stored in `*out_tensor`, is the number of tensors registered
/// before it.
///
/// Errors: `MP_RESULT_NULL_PARAMETER` (NULL `remat` or `out_tensor`, NULL `parents` with
/// `n_parents > 0`), `MP_RESULT_INVALID_ARGUMENT` (unknown `flags` bits, a constant with
/// parents, misaligned pointers), `MP_RESULT_INDEX_OUT_OF_RANGE` (a parent id not
/// registered), `MP_RESULT_OVERFLOW`, `MP_RESULT_OUT_OF_MEMORY` (nothing left to evict: the
/// runtime stopped half-way and every later mutating call returns this code again),
/// `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `parents`: when `n_parents > 0`, valid for reading `n_parents` aligned `uint32_t`.
/// - `out_tensor`: non-NULL, aligned, valid for one `uint32_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of `parents` and `out_tensor`.
///
/// # Copies
/// `parents` is copied.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// See the errors above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_register(
    remat: *mut mp_remat,
    size: u64,
    cost: u64,
    parents: *const u32,
    n_parents: usize,
    flags: u32,
    out_tensor: *mut u32,
) -> mp_result {
    ffi_panic_boundary! {
        if remat.is_null() {
            return mp_result::NullParameter;
        }
        let out_tensor = check_out!(out_tensor);
        if flags & !MP_REMAT_CONSTANT != 0 {
            return mp_result::InvalidArgument;
        }
        // SAFETY: the caller guarantees `n_parents` readable elements at `parents` when
        // `n_parents > 0`.
        let parents: Vec<TensorId> = match unsafe { slice_from_raw(parents, n_parents) } {
            Ok(p) => p.iter().map(|&t| TensorId(t)).collect(),
            Err(code) => return code,
        };
        let constant = flags & MP_REMAT_CONSTANT != 0;
        let f = |h: &mut RematHandle| {
            let t = h.register(size, cost, &parents, constant)?;
            // SAFETY: `out_tensor` is non-NULL and aligned (checked), and the caller
            // guarantees it is valid for one `uint32_t` write.
            unsafe { out_tensor.write(t) };
            Ok(())
        };
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Records an access to `tensor` now (refreshing its staleness) and makes it resident,
/// recomputing it and what it needs (see `mp_remat_actions`). Errors:
/// `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INDEX_OUT_OF_RANGE` (unknown tensor),
/// `MP_RESULT_OUT_OF_MEMORY`, `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_access(remat: *mut mp_remat, tensor: u32) -> mp_result {
    ffi_panic_boundary! {
        let f = |h: &mut RematHandle| h.rt.access(TensorId(tensor)).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Makes `tensor` resident (recomputing as needed; see `mp_remat_actions`) and locks its
/// buffer against eviction until `mp_remat_unpin`, e.g. while an op of the caller reads
/// it. Pins nest. Errors: as `mp_remat_access`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_pin(remat: *mut mp_remat, tensor: u32) -> mp_result {
    ffi_panic_boundary! {
        let f = |h: &mut RematHandle| h.rt.lock(TensorId(tensor)).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Drops one pin taken by `mp_remat_pin`; a buffer left without pins and references is
/// evicted at once. Errors: `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INDEX_OUT_OF_RANGE`,
/// `MP_RESULT_INVALID_ARGUMENT` (not pinned), `MP_RESULT_OUT_OF_MEMORY` (runtime stopped
/// earlier), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_unpin(remat: *mut mp_remat, tensor: u32) -> mp_result {
    ffi_panic_boundary! {
        let f = |h: &mut RematHandle| h.rt.unlock(TensorId(tensor)).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Drops one reference to `tensor` (the caller no longer needs it); a buffer left without
/// references is evicted at once unless pinned. It stays registered: a tensor computed
/// from it may still need it recomputed. Errors: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_INDEX_OUT_OF_RANGE`, `MP_RESULT_INVALID_ARGUMENT` (no reference left),
/// `MP_RESULT_OUT_OF_MEMORY` (runtime stopped earlier), `MP_RESULT_POISONED`,
/// `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_release(remat: *mut mp_remat, tensor: u32) -> mp_result {
    ffi_panic_boundary! {
        let f = |h: &mut RematHandle| h.rt.release(TensorId(tensor)).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        unsafe { mutate(remat, f) }
    }
}

/// Evicts buffers (heuristic order) until `bytes` more fit in the budget; the list
/// (`MP_REMAT_EVICT` actions) is read with `mp_remat_actions`, and its length stored in
/// `*out_n` when `out_n` is not NULL. Errors: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_n`), `MP_RESULT_OUT_OF_MEMORY` (not enough
/// evictable; the evictions made stay listed), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `out_n`: NULL, or aligned and valid for one `size_t` write (written also on
///   `MP_RESULT_OUT_OF_MEMORY`).
///
/// # Ownership
/// The caller keeps ownership of `out_n`.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL; `out_n` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_make_room(
    remat: *mut mp_remat,
    bytes: u64,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        if !out_n.is_null() && !out_n.is_aligned() {
            return mp_result::InvalidArgument;
        }
        let f = |h: &mut RematHandle| h.rt.make_room(bytes).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        let rc = unsafe { mutate(remat, f) };
        if rc == mp_result::Ok || rc == mp_result::OutOfMemory {
            // SAFETY: `out_n` is NULL or aligned (checked) and writable (caller).
            unsafe { write_count(remat, out_n) };
        }
        rc
    }
}

/// Makes `tensor` resident without counting an access: the recomputations and evictions
/// needed are read with `mp_remat_actions`, their number stored in `*out_n` when `out_n` is
/// not NULL. Errors: as `mp_remat_make_room`, plus `MP_RESULT_INDEX_OUT_OF_RANGE`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `out_n`: NULL, or aligned and valid for one `size_t` write.
///
/// # Ownership
/// The caller keeps ownership of `out_n`.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same runtime.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` is NULL; `out_n` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_materialize(
    remat: *mut mp_remat,
    tensor: u32,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        if !out_n.is_null() && !out_n.is_aligned() {
            return mp_result::InvalidArgument;
        }
        let f = |h: &mut RematHandle| h.rt.materialize(TensorId(tensor)).map(|_| ());
        // SAFETY: the caller guarantees `remat` is NULL or live and not used concurrently.
        let rc = unsafe { mutate(remat, f) };
        if rc == mp_result::Ok || rc == mp_result::OutOfMemory {
            // SAFETY: `out_n` is NULL or aligned (checked) and writable (caller).
            unsafe { write_count(remat, out_n) };
        }
        rc
    }
}

/// Copies the actions decided by the last mutating call on `remat` (register, access, pin,
/// unpin, release, make_room, materialize), in the order the caller must carry them out.
///
/// `*out_n` receives their number. They are written to `out` only when `cap` is at least
/// that number; call with `out = NULL, cap = 0` to size the array (then only `*out_n` is
/// written). Errors: `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT`
/// (`0 < cap <` the number, or misaligned pointers), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `out`: NULL when `cap` is 0, else valid for writing `cap` aligned `mp_remat_action`.
/// - `out_n`: non-NULL, aligned, valid for one `size_t` write.
///
/// # Ownership
/// The caller owns `out` and `out_n`.
///
/// # Copies
/// The actions are copied into `out`; the runtime keeps its list until the next mutating call.
///
/// # Thread safety
/// May run concurrently with other calls taking `const mp_remat *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` for a NULL `remat` or `out_n`, or a NULL `out` with
/// `cap > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_actions(
    remat: *const mp_remat,
    out: *mut mp_remat_action,
    cap: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let h = try_ref_from_ptr!(remat);
        let out_n = check_out!(out_n);
        if h.poisoned {
            return mp_result::Poisoned;
        }
        if cap > 0 && out.is_null() {
            return mp_result::NullParameter;
        }
        if cap > 0 && !out.is_aligned() {
            return mp_result::InvalidArgument;
        }
        let n = h.actions.len();
        if cap > 0 && cap < n {
            return mp_result::InvalidArgument;
        }
        if cap > 0 {
            for (i, a) in h.actions.iter().enumerate() {
                // SAFETY: `out` is non-NULL and aligned (checked) and valid for `cap` writes
                // (caller); `i < n <= cap`.
                unsafe { out.add(i).write(*a) };
            }
        }
        // SAFETY: non-NULL and aligned (checked), valid for one write (caller).
        unsafe { out_n.write(n) };
        mp_result::Ok
    }
}

/// Stores the runtime's counters in `*out_stats`. Errors: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_stats`), `MP_RESULT_POISONED`,
/// `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `out_stats`: non-NULL, aligned, valid for one `mp_remat_counters` write.
///
/// # Ownership
/// The caller owns `out_stats`.
///
/// # Copies
/// The counters are copied.
///
/// # Thread safety
/// May run concurrently with other calls taking `const mp_remat *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` or `out_stats` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_stats(
    remat: *const mp_remat,
    out_stats: *mut mp_remat_counters,
) -> mp_result {
    ffi_panic_boundary! {
        let h = try_ref_from_ptr!(remat);
        let out_stats = check_out!(out_stats);
        if h.poisoned {
            return mp_result::Poisoned;
        }
        let s = h.rt.stats();
        let stats = mp_remat_counters {
            clock: s.clock,
            model_compute: s.model_compute,
            remat_compute: s.remat_compute,
            evictions: s.evictions,
            memory: s.memory,
            peak: s.peak,
            tensors: h.rt.tensor_count() as u64,
        };
        // SAFETY: non-NULL and aligned (checked), valid for one write (caller).
        unsafe { out_stats.write(stats) };
        mp_result::Ok
    }
}

/// Stores in `*out_resident` whether `tensor` is currently computed and not evicted. Errors:
/// `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_resident`),
/// `MP_RESULT_INDEX_OUT_OF_RANGE`, `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `remat`: NULL or a live runtime from `mp_remat_new`.
/// - `out_resident`: non-NULL, aligned, valid for one `bool` write.
///
/// # Ownership
/// The caller owns `out_resident`.
///
/// # Copies
/// Nothing is retained.
///
/// # Thread safety
/// May run concurrently with other calls taking `const mp_remat *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `remat` or `out_resident` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_remat_is_resident(
    remat: *const mp_remat,
    tensor: u32,
    out_resident: *mut bool,
) -> mp_result {
    ffi_panic_boundary! {
        let h = try_ref_from_ptr!(remat);
        let out_resident = check_out!(out_resident);
        if h.poisoned {
            return mp_result::Poisoned;
        }
        match h.rt.is_defined(TensorId(tensor)) {
            Ok(d) => {
                // SAFETY: non-NULL and aligned (checked), valid for one write (caller).
                unsafe { out_resident.write(d) };
                mp_result::Ok
            }
            Err(e) => mp_result::from(&e),
        }
    }
}
