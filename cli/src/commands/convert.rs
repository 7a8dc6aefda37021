//! `memplan convert`: read any trace `memplan` knows ([`crate::io::trace::read`]) and write it
//! in memplan's trace format.

use std::path::PathBuf;

use clap::Args;

use crate::Failure;
use crate::io::files::{read_input, write_output};
use crate::io::{DeviceChoice, trace};

/// Arguments of `memplan convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The trace to read: a PyTorch memory snapshot pickle, a PyTorch profiler (Kineto) JSON
    /// (.json or .json.gz), a DTR operator log, memplan's trace format, or an
    /// id,lower,upper,size CSV (detected from the content); `-` reads standard input.
    pub input: PathBuf,
    /// The device whose events to take (snapshots and profiler traces record several): an
    /// index, or `auto` for the one with the most allocations.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub device: DeviceChoice,
    /// Where to write it in memplan's trace format (`-` for standard output).
    pub output: PathBuf,
}

/// Runs `memplan convert`: read any supported trace, write memplan's format.
///
/// # Errors
/// [`Failure::Input`] when the input cannot be read or parsed, or the output cannot be written.
pub fn run(args: &ConvertArgs) -> Result<(), Failure> {
    let (name, data) = read_input(&args.input)?;
    let trace = trace::read_with_segments(&name, &data, args.device)?.0;
    let text = trace::write(&trace);
    write_output(&args.output, text)
}
