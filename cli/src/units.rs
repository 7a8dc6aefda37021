//! Byte sizes on the command line: one parser, [`parse_bytes`], behind every size option
//! (`--capacity`, `--gpu-bytes`, ...), so they all take the same spellings.
//!
//! Parsing is the `parse-size` crate's, with its defaults:
//!
//! - a plain integer (`1048576`), digits grouped with `_` (`1_048_576`);
//! - a decimal or scientific number (`1.5e9`, `14.2e+8`); fractional bytes round to the nearest
//!   byte (`0.3333 KB` is 333);
//! - an optional unit, case-insensitive, with or without the `B` and a space before it:
//!   `K`, `M`, `G`, `T`, `P`, `E` (so `2E` is 2·10^18, not float notation) and `KB`, `MB`, ... are powers of **1000** (SI: `512MB` is
//!   512 000 000); `KiB`, `MiB`, `GiB`, ... (and `Ki`, `Mi`, ...) are powers of **1024** (IEC:
//!   `16GiB` is 17 179 869 184). This is the convention of `nvidia-smi` and PyTorch's
//!   `memory_summary`, which print MiB/GiB.
//!
//! Rejected: an empty string, a negative number, anything else after the number, and sizes of
//! 2^64 bytes or more (no silent overflow or wrap-around).

/// Parses a byte size (see the module doc for the spellings).
///
/// # Examples
/// ```
/// use memplan_cli::units::parse_bytes;
/// assert_eq!(parse_bytes("16GiB"), Ok(16 << 30));
/// assert_eq!(parse_bytes("1.5e9"), Ok(1_500_000_000));
/// assert_eq!(parse_bytes("512MB"), Ok(512_000_000));
/// assert!(parse_bytes("-1").is_err());
/// ```
///
/// # Errors
/// A message for clap (or for an environment variable) saying what is wrong with `s`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    use parse_size::Error;
    parse_size::parse_size(s).map_err(|e| match e {
        Error::Empty => {
            "expected a byte size (e.g. 16GiB, 512MB, 1.5e9, 1048576), got nothing".to_owned()
        }
        Error::PosOverflow => format!("{s:?} is too large: byte sizes must be below 2^64 (16 EiB)"),
        // `parse-size` reports a sign as an invalid digit.
        _ if s.trim_start().starts_with('-') => {
            format!("{s:?} is negative: a byte size is 0 or more")
        }
        _ => format!(
            "{s:?} is not a byte size: give a number with an optional unit, e.g. 16GiB \
             (2^30 bytes each), 512MB (10^6 bytes each), 1.5e9 or 1048576"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn every_spelling() {
        let cases: [(&str, u64); 16] = [
            ("0", 0),
            ("1048576", 1 << 20),
            ("1_048_576", 1 << 20),
            (" 42 ", 42),
            ("16GiB", 16 << 30),
            ("16 GiB", 16 << 30),
            ("16gib", 16 << 30),
            ("16Gi", 16 << 30),
            ("512MB", 512_000_000),
            ("512M", 512_000_000),
            ("2KiB", 2048),
            ("1.5e9", 1_500_000_000),
            ("14.2e+8", 1_420_000_000),
            ("1.5GiB", 3 << 29),
            ("100B", 100),
            ("18446744073709551615", u64::MAX),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (s, why) in [
            ("", "got nothing"),
            ("  ", "got nothing"),
            ("-1", "negative"),
            ("-1GiB", "negative"),
            ("lots", "not a byte size"),
            ("16 GiBs", "not a byte size"),
            ("1.5.0", "not a byte size"),
            ("0x10", "not a byte size"),
            ("inf", "not a byte size"),
            ("NaN", "not a byte size"),
            ("18446744073709551616", "too large"),
            ("16EiB", "too large"),
            ("1e20", "too large"),
            ("99999999999999999999999", "too large"),
        ] {
            let e = parse_bytes(s).expect_err(s);
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }
}
