#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod check;
pub mod error;
pub mod interval;
mod internal;

pub use error::{Error, Result};
pub use interval::{Budget, Buffer, Placement, Problem, Solution, SolveOptions, greedy_by_size, pack};
