//! `memplan_cli`: the library behind the `memplan` command — file readers, one module per
//! subcommand, and the SVG drawing. The binary (`src/main.rs`) only parses the command line and
//! dispatches to [`commands`].
//!
//! Module map:
//!
//! - [`io`]: reading (and writing) the files `memplan` takes, each format in its own module:
//!   - [`io::csv`]: allocation problems as CSV (`id,lower,upper,size`), with `FILE:LINE:` errors;
//!   - [`io::trace`]: memplan's own trace format (read and write), and [`io::trace::read`], which
//!     detects any supported trace format and reads it;
//!   - [`io::snapshot`]: PyTorch memory snapshots (`_dump_snapshot` pickles of every format
//!     generation, and histories exported as CSV), as a format-independent recording;
//!   - [`io::kineto`]: PyTorch profiler (Kineto) Chrome-trace JSON, and memory events exported
//!     as CSV;
//!   - [`io::timeline`]: PyTorch profiler memory timelines; [`io::pairing`] pairs frees by size
//!     where a format has no identity;
//!   - [`io::files`]: opening inputs and outputs (`-` for stdin/stdout, size limit, directory
//!     walks);
//!   - [`io::dtr`]: DTR operator logs, read as an allocation trace or as a remat program
//!     (`io/dtr/records.rs` is the one parser of the log grammar, [`io::dtr::trace`] and
//!     [`io::dtr::program`] its two interpreters).
//! - [`commands`]: one module per subcommand, each with its `…Args` and `run`:
//!   - [`commands::plan`]: `memplan plan`, plan one problem, verify, write, draw;
//!   - [`commands::analyze`]: `memplan analyze`, peaks, fragmentation, stranded ranges, what
//!     each allocator would reserve, one recommendation;
//!   - [`commands::bench`]: `memplan bench`, plan every problem CSV under some paths;
//!   - [`commands::replay`]: `memplan replay`, replay a trace through allocators;
//!   - [`commands::plan_trace`]: `memplan plan-trace`, profile a trace and write its plan;
//!   - [`commands::convert`]: `memplan convert`, any trace to memplan's trace format;
//!   - [`commands::estimate`]: `memplan estimate`, training memory per GPU and host;
//!   - [`commands::chunks`]: `memplan chunks`, chunk layout and tier moves;
//!   - [`commands::remat`]: `memplan remat`, the rematerialization (DTR) simulator.
//! - [`workload`]: multi-iteration workloads from a one-iteration trace (`replay --repeat`,
//!   `--dynamic`).
//! - [`plot`]: drawing a plan, and a replay's timeline, as SVG.
//! - [`progress`]: a spinner and a progress bar on stderr (only on a terminal) for slow work.
//! - [`output`]: writing to stdout (a closed pipe ends quietly) and `--json` with its
//!   `schema_version`.
//! - [`units`]: byte sizes (`16GiB`, `1.5e9`) for every size option.
//!
//! Errors of every command are a [`Failure`], whose kind gives the exit code.
#![doc = include_str!("../README.md")]

pub mod commands;
pub mod io;
pub mod output;
pub mod plot;
pub mod progress;
pub mod units;
pub mod workload;

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad input, bad usage or an I/O error: exit 1. The message is printed as is.
    Input(String),
    /// The plan does not fit in the capacity: exit 2. The report was already printed.
    DoesNotFit,
    /// A bug: the packer's output failed verification. Exit 3.
    Internal(String),
    /// Standard output was closed by its reader (`memplan ... | head -1`): stop quietly,
    /// exit 0 ([`output::out`]).
    Closed,
}

impl From<io::InputError> for Failure {
    fn from(e: io::InputError) -> Self {
        Failure::Input(e.to_string())
    }
}
