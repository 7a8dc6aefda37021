//! `memplan convert`: read any trace `memplan` knows ([`crate::io::trace::read`]) and write it
//! in memplan's trace format.

use std::path::PathBuf;

use clap::Args;

use crate::Failure;
use crate::io::{DeviceChoice, trace};

/// Arguments of `memplan convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The trace to read.
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
    let name = args.input.display().to_string();
    let data = std::fs::read(&args.input)
        .map_err(|e| Failure::Input(format!("{name}: cannot read: {e}")))?;
    let trace = trace::read_with_segments(&name, &data, args.device)?.0;
    let text = trace::write(&trace);
    if args.output.as_os_str() == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(&args.output, text)
            .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", args.output.display())))
    }
}
