#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod allocator;
pub mod check;
pub mod chunk;
pub mod error;
pub mod estimate;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod lifetime;
pub mod pack;
pub mod plan;
pub mod remat;
pub mod shard;
pub mod trace;
pub mod units;

pub use error::{Error, Result};
pub use pack::{
    Budget, Buffer, PackOptions, PlacedBuffer, Problem, Solution, Unproven, greedy_by_size, pack,
};
