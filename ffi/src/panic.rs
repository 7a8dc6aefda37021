//! The panic boundary (after rustls-ffi `librustls/src/panic.rs`).
//!
//! Every exported function runs its body inside `ffi_panic_boundary!`. A panic that reaches
//! it is caught and turned into the function's [`PanicOrDefault`] value
//! (`MP_RESULT_PANIC` for the functions that return an [`mp_result`]). Since Rust 1.81 a panic
//! escaping an `extern "C"` function aborts the process, so the boundary is about graceful
//! error codes, not soundness.
//!
//! Functions that mutate a packer also catch panics one level further in
//! (`packer::mutate`), where the handle is known, so that they can mark it poisoned and record
//! the panic message; see doc/DESIGN.md, "Panic policy".

use core::ffi::c_char;

use crate::error::mp_result;

/// The value an exported function returns when its body panicked.
pub(crate) trait PanicOrDefault {
    /// That value.
    fn value() -> Self;
}

impl PanicOrDefault for mp_result {
    fn value() -> Self {
        mp_result::Panic
    }
}

impl PanicOrDefault for () {
    fn value() -> Self {}
}

impl PanicOrDefault for *const c_char {
    fn value() -> Self {
        core::ptr::null()
    }
}

/// Runs the body in `catch_unwind`; on a panic, returns [`PanicOrDefault::value`] from the
/// enclosing function. `return` inside the body returns from the body (a closure), which is
/// what the NULL-check macros rely on.
///
/// `AssertUnwindSafe` is justified because nothing observed after a caught panic can be in a
/// broken state: packers are poisoned by `packer::mutate` before this boundary is reached,
/// and the other bodies only read.
macro_rules! ffi_panic_boundary {
    ( $($body:tt)* ) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(_payload) => return $crate::panic::PanicOrDefault::value(),
        }
    };
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn payload_message(payload: &(dyn core::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}
