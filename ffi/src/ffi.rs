//! Casting between opaque C handles and their Rust types (after rustls-ffi
//! `librustls/src/ffi.rs`).
//!
//! Each opaque handle type (`mp_planner`, a zero-sized `pub struct` that C only ever sees
//! behind a pointer) implements [`Castable`], which names the Rust type it stands for and how
//! it is owned. Only the helpers in this module cast handle pointers; the exported functions
//! use the macros below.
//!
//! Invariant: a non-NULL `*const C`/`*mut C` handed to C by [`to_boxed_mut_ptr`] points to a
//! live `Box<C::RustType>` allocation until [`free_box`] is called on it.

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

/// `try_mut_from_ptr!(p)`: the `&mut RustType` behind handle `p`, or returns
/// `MP_RESULT_NULL_PARAMETER` from the enclosing body when `p` is NULL.
///
/// Only for use in an exported `unsafe fn` whose `# Safety` section requires the handle to be
/// NULL or live and not used concurrently.
macro_rules! try_mut_from_ptr {
    ($ptr:expr) => {
        // SAFETY: the exported function's contract (its `# Safety` section) requires `$ptr` to
        // be NULL or a live handle not used concurrently, which is `try_from_mut`'s contract.
        match unsafe { $crate::ffi::try_from_mut($ptr) } {
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
