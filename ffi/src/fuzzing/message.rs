//! The string ops of the `capi` check: `mp_result_message` and `mp_packer_last_error`
//! into buffers of every length, checked against the documented `snprintf`-style copy rule.

use super::*;

impl Session {
    /// Op 13: `mp_result_message` for any code, into buffers of any length.
    pub(super) fn message(r: &mut Reader<'_>) {
        let code_arg = match r.byte() % 20 {
            c @ 0..=14 => u32::from(c),
            15 => 15,
            16 => u32::MAX,
            17 => 1 << 31,
            _ => r.u32(),
        };
        let len = usize::from(r.byte() % 80);
        let mode = r.byte();
        let full = c_string_full(|buf, len, out_n| {
            // SAFETY: `buf` is NULL with `len` 0 or valid for `len` byte writes, `out_n` valid
            // for one `usize` write (both from `c_string_full`).
            unsafe { mp_result_message(code_arg, buf, len, out_n) }
        });
        assert!(!full.is_empty(), "empty message for code {code_arg}");
        c_string_case(mode, len, &full, false, |buf, len, out_n| {
            // SAFETY: `c_string_case` passes NULL or a buffer valid for `len` byte writes, and
            // NULL or a pointer into its own storage for `out_n` (refused if misaligned).
            unsafe { mp_result_message(code_arg, buf, len, out_n) }
        });
    }

    /// Op 14: `mp_packer_last_error` into buffers of any length, checked against the model.
    pub(super) fn last_error(&mut self, r: &mut Reader<'_>) {
        let len = usize::from(r.byte() % 80);
        let mode = r.byte();
        let packer = self.packer;
        let full = c_string_full(|buf, len, out_n| {
            // SAFETY: the packer is live; `buf` is NULL with `len` 0 or valid for `len` byte
            // writes, `out_n` valid for one `usize` write.
            unsafe { mp_packer_last_error(packer, buf, len, out_n) }
        });
        match &mut self.model.last_error {
            LastError::Empty => assert!(
                full.is_empty(),
                "last error {:?} after a success",
                String::from_utf8_lossy(&full)
            ),
            LastError::Failed { names, text } => {
                assert!(!full.is_empty(), "no last error after a failure");
                if let Some(id) = names {
                    let s = core::str::from_utf8(&full).expect("UTF-8 (checked)");
                    assert!(
                        s.contains(id.as_str()),
                        "last error {s:?} does not name {id:?}"
                    );
                }
                match text {
                    Some(t) => assert_eq!(*t, full, "last error changed without an add/pack"),
                    None => *text = Some(full.clone()),
                }
            }
        }
        c_string_case(mode, len, &full, true, |buf, len, out_n| {
            let packer = if mode % 8 == 7 { null() } else { packer };
            // SAFETY: `packer` is NULL or live; `c_string_case` passes NULL or a buffer valid
            // for `len` byte writes, and NULL or a pointer into its own storage for `out_n`
            // (refused if misaligned).
            unsafe { mp_packer_last_error(packer, buf, len, out_n) }
        });
    }
}

/// Calls a string function with `buf = NULL, len = 0` to size it, then with room for the
/// whole text, and returns the text (checked: NUL-terminated, no interior NUL, UTF-8, length
/// as reported).
pub(super) fn c_string_full(
    mut f: impl FnMut(*mut c_char, usize, *mut usize) -> mp_result,
) -> Vec<u8> {
    let mut n = usize::MAX;
    assert_eq!(code(f(null_mut(), 0, &mut n)), mp_result::Ok, "sizing call");
    assert!(n < 1 << 20, "message length {n}");
    let mut buf = vec![SENTINEL; n + 1];
    let mut n2 = usize::MAX;
    assert_eq!(
        code(f(buf.as_mut_ptr().cast(), n + 1, &mut n2)),
        mp_result::Ok
    );
    assert_eq!(n2, n, "full length differs between calls");
    assert_eq!(buf[n], 0, "no NUL after the full text");
    buf.truncate(n);
    assert!(!buf.contains(&0), "interior NUL in {buf:?}");
    assert!(core::str::from_utf8(&buf).is_ok(), "not UTF-8: {buf:?}");
    buf
}

/// Calls a string function (`mp_result_message` or `mp_packer_last_error`) once as `mode`
/// says: a sizing call, a NULL buffer with `len > 0`, a NULL or misaligned `out_n`, a NULL
/// packer (mode 7, `has_packer` only), or a buffer of `len` bytes; then checks the result
/// against the documented copy rule, given the full text `full`.
pub(super) fn c_string_case(
    mode: u8,
    len: usize,
    full: &[u8],
    has_packer: bool,
    mut f: impl FnMut(*mut c_char, usize, *mut usize) -> mp_result,
) {
    const GUARD: usize = 16;
    let mut storage = vec![SENTINEL; len + GUARD];
    let mut out_n = Slot::<usize>::new(OutKind::Valid);
    let (buf, len, expected): (*mut c_char, usize, mp_result) = match mode % 8 {
        0 => (null_mut(), 0, mp_result::Ok),
        1 => (null_mut(), len.max(1), mp_result::NullParameter),
        2 => {
            out_n = Slot::new(OutKind::Null);
            (storage.as_mut_ptr().cast(), len, mp_result::NullParameter)
        }
        3 => {
            out_n = Slot::new(OutKind::Misaligned);
            (storage.as_mut_ptr().cast(), len, mp_result::InvalidArgument)
        }
        7 if has_packer => (storage.as_mut_ptr().cast(), len, mp_result::NullParameter),
        _ => (storage.as_mut_ptr().cast(), len, mp_result::Ok),
    };
    let rc = code(f(buf, len, out_n.ptr()));
    assert_eq!(rc, expected, "string call, mode {}, len {len}", mode % 8);
    if rc != mp_result::Ok {
        assert!(out_n.untouched(), "out_n written on failure");
        assert!(
            storage.iter().all(|&b| b == SENTINEL),
            "buf written on failure"
        );
        return;
    }
    let n = out_n.value();
    assert_eq!(n, full.len(), "*out_n is not the full length");
    if buf.is_null() || len == 0 {
        assert!(storage.iter().all(|&b| b == SENTINEL), "written with len 0");
        return;
    }
    // The longest prefix of at most `len - 1` bytes that ends on a character boundary.
    let text = core::str::from_utf8(full).expect("UTF-8 (checked)");
    let mut k = n.min(len - 1);
    while !text.is_char_boundary(k) {
        k -= 1;
    }
    assert_eq!(&storage[..k], &full[..k], "copied prefix, len {len}");
    assert_eq!(
        storage[k], 0,
        "no NUL after {k} bytes (len {len}, full {n})"
    );
    assert!(
        storage[len..].iter().all(|&b| b == SENTINEL),
        "written past len {len}"
    );
    // Truncated exactly when `*out_n >= len`.
    assert_eq!(k < n, n >= len, "truncation rule: k {k}, n {n}, len {len}");
}
