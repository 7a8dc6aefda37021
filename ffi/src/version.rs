//! The library version.

use core::ffi::{CStr, c_char};

/// `CARGO_PKG_VERSION` as a C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
    };

/// Returns the library version as a static NUL-terminated string, `"MAJOR.MINOR.PATCH"`
/// (the same numbers as the `MP_VERSION_*` macros of the header it was built with).
///
/// # Safety
/// None: takes no pointers. (`unsafe` only for uniformity with the other exported functions.)
///
/// # Ownership
/// The string is static: never free or modify it.
///
/// # Copies
/// Nothing is copied.
///
/// # Thread safety
/// Safe to call from any thread at any time.
///
/// # NULL
/// Never returns NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_version() -> *const c_char {
    ffi_panic_boundary! {
        VERSION.as_ptr()
    }
}
