#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod allocator;
pub mod check;
pub mod chunk;
pub mod error;
pub mod estimate;
pub mod evict;
mod internal;
pub mod interval;
pub mod lifetime;
pub mod plan;
pub mod shard;
pub mod trace;

pub use error::{Error, Result};
pub use interval::{
    Budget, Buffer, Placement, Problem, Solution, SolveOptions, greedy_by_size, pack,
};
