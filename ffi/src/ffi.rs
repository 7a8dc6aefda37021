//! Casting between opaque C handles and their Rust types (after rustls-ffi
//! `librustls/src/ffi.rs`), the poisoning protocol of mutable handles ([`Poisonable`],
//! [`mutate`]), and reading C arrays and structs ([`slice_from_raw`], [`read_from_raw`]).
//!
//! Each opaque handle type (`mp_packer`, a zero-sized `pub struct` that C only ever sees
//! behind a pointer) implements [`Castable`], which names the Rust type it stands for and how
//! it is owned. Only the helpers in this module cast handle pointers; the exported functions
//! use the macros below.
//!
//! Invariant: a non-NULL `*const C`/`*mut C` handed to C by [`to_boxed_mut_ptr`] points to a
//! live `Box<C::RustType>` allocation until [`free_box`] is called on it.

use crate::error::mp_result;

/// Ownership kinds of handles. Only `Box` exists for now: one owner (the C caller), created by
/// `_new`, destroyed by `_free`.
pub(crate) trait OwnershipMarker {}

/// The handle owns a `Box<RustType>`; C holds the only pointer to it.
pub(crate) struct OwnershipBox;

impl OwnershipMarker for OwnershipBox {}

/// Binds an opaque C handle type to the Rust type behind it and to its ownership kind.
pub(crate) trait Castable {
    /// How the handle is owned.
    type Ownership: OwnershipMarker;
    /// The Rust type the handle points to.
    type RustType;
}

/// Moves `value` into a new box and returns it as an opaque handle pointer (never NULL).
/// The caller (ultimately C) owns it and must pass it to [`free_box`] exactly once.
pub(crate) fn to_boxed_mut_ptr<C: Castable<Ownership = OwnershipBox>>(
    value: C::RustType,
) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Borrows the object behind a handle, or `None` for NULL.
///
/// # Safety
/// 1. `ptr` is NULL or came from [`to_boxed_mut_ptr::<C>`] and has not been freed.
/// 2. No `&mut` to the same object is alive during `'a` (the C caller does not mutate the
///    handle from another thread meanwhile).
pub(crate) unsafe fn try_from<'a, C: Castable>(ptr: *const C) -> Option<&'a C::RustType> {
    // SAFETY: by (1) `ptr` is NULL (`as_ref` gives `None`) or points to a live, aligned,
    // initialised `C::RustType` inside its box; by (2) a shared borrow does not alias a `&mut`.
    unsafe { ptr.cast::<C::RustType>().as_ref() }
}

/// Borrows the object behind a handle mutably, or `None` for NULL.
///
/// # Safety
/// 1. `ptr` is NULL or came from [`to_boxed_mut_ptr::<C>`] and has not been freed.
/// 2. No other reference to the same object is alive during `'a` (the C caller does not use
///    the handle from another thread meanwhile).
pub(crate) unsafe fn try_from_mut<'a, C: Castable>(ptr: *mut C) -> Option<&'a mut C::RustType> {
    // SAFETY: by (1) `ptr` is NULL (`as_mut` gives `None`) or points to a live, aligned,
    // initialised `C::RustType` inside its box; by (2) this borrow is unique.
    unsafe { ptr.cast::<C::RustType>().as_mut() }
}

/// Drops the object behind a handle and frees its box. NULL is a no-op.
///
/// # Safety
/// 1. `ptr` is NULL or came from [`to_boxed_mut_ptr::<C>`] and has not been freed (no double
///    free).
/// 2. No reference to the object is alive, and `ptr` is not used again.
pub(crate) unsafe fn free_box<C: Castable<Ownership = OwnershipBox>>(ptr: *mut C) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: by (1) `ptr` is the pointer `Box::into_raw` returned in `to_boxed_mut_ptr`, cast
    // back to its original type, and the box is still live; by (2) nothing uses it afterwards.
    drop(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) });
}

/// The Rust object behind a handle that a mutating call may leave half-updated when it panics:
/// [`mutate`] then marks it poisoned, and every later call but `_free` (and, for the packer,
/// `_last_error`) refuses it with `MP_RESULT_POISONED`.
pub(crate) trait Poisonable {
    /// What a mutating call fails with (a core error, or a code with its detail).
    type Error;

    /// The poisoned flag: true iff a mutating call panicked part-way.
    fn poisoned(&mut self) -> &mut bool;

    /// Whether the handle is poisoned (for the reader functions).
    fn is_poisoned(&self) -> bool;

    /// Turns the result of a mutating call that returned (did not panic) into its code, and
    /// records whatever detail the handle keeps (the packer's last error).
    fn finish(&mut self, result: Result<(), Self::Error>) -> mp_result;

    /// Records the message of a panic caught inside a mutating call. Default: nothing.
    fn record_panic(&mut self, _message: &str) {}
}

#[cfg(test)]
thread_local! {
    /// Test hook: when set, the next [`mutate`] on this thread panics inside its boundary.
    pub(crate) static PANIC_NEXT_MUTATION: core::cell::Cell<bool> =
        const { core::cell::Cell::new(false) };
}

/// Runs a mutating call `f` on the object behind `handle`, with the poisoning protocol: NULL
/// is `MP_RESULT_NULL_PARAMETER`, a poisoned object is refused (`MP_RESULT_POISONED`);
/// otherwise the flag is set while `f` runs and cleared when it returns, so a panic inside `f`
/// (caught here, giving `MP_RESULT_PANIC`) leaves the object poisoned, with the panic's
/// message passed to [`Poisonable::record_panic`]. When `f` returns, its result goes through
/// [`Poisonable::finish`].
///
/// # Safety
/// 1. `handle` is NULL or a live handle from [`to_boxed_mut_ptr::<C>`], not used by another
///    thread during the call.
pub(crate) unsafe fn mutate<C>(
    handle: *mut C,
    f: impl FnOnce(&mut C::RustType) -> Result<(), <C::RustType as Poisonable>::Error>,
) -> mp_result
where
    C: Castable,
    C::RustType: Poisonable,
{
    // SAFETY: by (1), `try_from_mut`'s contract.
    let Some(object) = (unsafe { try_from_mut(handle) }) else {
        return mp_result::NullParameter;
    };
    if object.is_poisoned() {
        return mp_result::Poisoned;
    }
    *object.poisoned() = true;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        #[cfg(test)]
        if PANIC_NEXT_MUTATION.with(|p| p.replace(false)) {
            panic!("test-injected panic");
        }
        f(&mut *object)
    }));
    match result {
        Ok(r) => {
            *object.poisoned() = false;
            object.finish(r)
        }
        Err(payload) => {
            // The flag stays set: `f` may have stopped half-way through an update.
            object.record_panic(crate::panic::payload_message(&*payload));
            mp_result::Panic
        }
    }
}

/// The slice behind the C array `(ptr, len)`: empty for `len == 0` (any `ptr`, NULL
/// included); `MP_RESULT_NULL_PARAMETER` for a NULL `ptr` with `len > 0`;
/// `MP_RESULT_INVALID_ARGUMENT` for a misaligned `ptr`, or when `len * size_of::<T>()`
/// overflows or exceeds `isize::MAX` (`PTRDIFF_MAX`), which `slice::from_raw_parts` forbids.
/// Every `(pointer, length)` argument of the C API goes through here.
///
/// # Safety
/// 1. When `len > 0` and `ptr` is non-NULL and aligned, `ptr` is valid for reads of `len`
///    initialised `T`, not written during `'a`.
pub(crate) unsafe fn slice_from_raw<'a, T>(
    ptr: *const T,
    len: usize,
) -> Result<&'a [T], mp_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(mp_result::NullParameter);
    }
    if !ptr.is_aligned() {
        return Err(mp_result::InvalidArgument);
    }
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => {}
        _ => return Err(mp_result::InvalidArgument),
    }
    // SAFETY: non-NULL, aligned, `len` elements within `isize::MAX` bytes (checked); by (1)
    // valid for reads and not written during `'a`.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Reads the C struct `*ptr`: `MP_RESULT_NULL_PARAMETER` when NULL,
/// `MP_RESULT_INVALID_ARGUMENT` when misaligned.
///
/// # Safety
/// 1. `ptr` is NULL, misaligned, or valid for one read of `T`, and every bit pattern is a
///    valid `T` (a `#[repr(C)]` struct of plain integers).
pub(crate) unsafe fn read_from_raw<T: Copy>(ptr: *const T) -> Result<T, mp_result> {
    if ptr.is_null() {
        return Err(mp_result::NullParameter);
    }
    if !ptr.is_aligned() {
        return Err(mp_result::InvalidArgument);
    }
    // SAFETY: non-NULL and aligned (checked); by (1) valid for one read of a valid `T`.
    Ok(unsafe { ptr.read() })
}

/// Reads the options struct `*ptr`, or `T::default()` when `ptr` is NULL;
/// `MP_RESULT_INVALID_ARGUMENT` when misaligned.
///
/// # Safety
/// As [`read_from_raw`].
pub(crate) unsafe fn read_or_default<T: Copy + Default>(ptr: *const T) -> Result<T, mp_result> {
    if ptr.is_null() {
        return Ok(T::default());
    }
    // SAFETY: by the caller's contract (that of `read_from_raw`).
    unsafe { read_from_raw(ptr) }
}

/// `try_ref_from_ptr!(p)`: the `&RustType` behind handle `p`, or returns
/// `MP_RESULT_NULL_PARAMETER` from the enclosing body when `p` is NULL.
///
/// Only for use in an exported `unsafe fn` whose `# Safety` section requires the handle to be
/// NULL or live and not used concurrently by a writer.
macro_rules! try_ref_from_ptr {
    ($ptr:expr) => {
        // SAFETY: the exported function's contract (its `# Safety` section) requires `$ptr` to
        // be NULL or a live handle with no concurrent writer, which is `try_from`'s contract.
        match unsafe { $crate::ffi::try_from($ptr) } {
            Some(r) => r,
            None => return $crate::error::mp_result::NullParameter,
        }
    };
}

/// `check_out!(p)`: returns from the enclosing body with `MP_RESULT_NULL_PARAMETER` when the
/// out-pointer `p` is NULL and with `MP_RESULT_INVALID_ARGUMENT` when it is misaligned for its
/// type (both checkable preconditions of a later `p.write(..)`); otherwise evaluates to `p`.
macro_rules! check_out {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::error::mp_result::NullParameter;
        }
        if !ptr.is_aligned() {
            return $crate::error::mp_result::InvalidArgument;
        }
        ptr
    }};
}
