//! Everything `memplan` writes on standard output goes through here, so that:
//!
//! - a closed pipe (`memplan replay X | head -1`) ends the command quietly with exit 0
//!   ([`Failure::Closed`]) instead of the panic of `println!` ("failed printing to stdout:
//!   Broken pipe");
//! - every `--json` object starts with `"schema_version": 1` ([`json`], [`SCHEMA_VERSION`]).
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe returns `BrokenPipe`, which [`out`] turns
//! into [`Failure::Closed`]; the commands pass it up with `?` and `main` exits 0.

use std::io::{ErrorKind, Write};

use serde::Serialize;

use crate::Failure;

/// The version of the `--json` output of every command; bumped when a key is renamed or
/// removed (adding a key keeps the version).
pub const SCHEMA_VERSION: u32 = 1;

/// Writes `bytes` to standard output and flushes.
///
/// # Errors
/// [`Failure::Closed`] when the reader went away (broken pipe); [`Failure::Input`] for any
/// other write error (a full disk behind a redirection).
pub fn out(bytes: impl AsRef<[u8]>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes.as_ref())
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            if e.kind() == ErrorKind::BrokenPipe {
                Failure::Closed
            } else {
                Failure::Input(format!("memplan: cannot write to standard output: {e}"))
            }
        })
}

/// Writes `bytes` to standard error; errors are ignored (there is nowhere left to report them).
pub fn err(bytes: impl AsRef<[u8]>) {
    let _ = std::io::stderr().lock().write_all(bytes.as_ref());
}

/// A `--json` object with its schema version first.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// `value` as one line of JSON: an object whose first key is `"schema_version"`, followed by
/// the fields of `value` (which must serialize as a struct or map), and a newline.
///
/// # Errors
/// [`Failure::Internal`] when `value` cannot be encoded (not an object).
pub fn json_line<T: Serialize>(value: &T) -> Result<String, Failure> {
    let v = Versioned {
        schema_version: SCHEMA_VERSION,
        body: value,
    };
    let mut s = serde_json::to_string(&v)
        .map_err(|e| Failure::Internal(format!("cannot encode JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Prints [`json_line`] of `value` on standard output ([`out`]).
///
/// # Errors
/// As [`json_line`] and [`out`].
pub fn json<T: Serialize>(value: &T) -> Result<(), Failure> {
    out(json_line(value)?)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::json_line;

    #[test]
    fn schema_version_comes_first() {
        #[derive(Serialize)]
        struct R {
            a: u32,
            schema: &'static str,
        }
        let s = json_line(&R { a: 1, schema: "x" }).unwrap();
        assert_eq!(s, "{\"schema_version\":1,\"a\":1,\"schema\":\"x\"}\n");
        assert!(json_line(&3).is_err());
    }
}
