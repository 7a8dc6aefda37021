//! One module per subcommand of `memplan`, each with its arguments (`…Args`, parsed by clap in
//! `src/main.rs`) and its `run`. What several commands share is here: the search [`Limit`] and
//! its parser.

use std::time::Duration;

pub mod analyze;
pub mod bench;
pub mod chunks;
pub mod convert;
pub mod estimate;
pub mod plan;
pub mod plan_trace;
pub mod remat;
pub mod replay;

/// A search time limit; `None` means unlimited.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub Option<Duration>);

/// Parses a time limit in seconds (`--time-limit`): 0 or more, `inf` (or anything too large
/// for a [`Duration`]) meaning no limit.
///
/// # Errors
/// A message for clap when `s` is not a number or is negative.
pub fn parse_seconds(s: &str) -> Result<Limit, String> {
    let t: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if t.is_nan() || t < 0.0 {
        return Err(format!("time limit must be 0 or more seconds, got {s}"));
    }
    // Limits too large for a `Duration` (including "inf") mean no limit.
    Ok(Limit(Duration::try_from_secs_f64(t).ok()))
}
