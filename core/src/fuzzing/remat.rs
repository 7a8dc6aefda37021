//! The `remat` check: bytes decoded bytecode-style into a [`RuntimeOptions`] and a script of
//! runtime calls ([`Call`]: register, compute, get/release, pin, lock/unlock, access,
//! materialize, make_room, next uses, arena and swap modes), run against the naive model of
//! [`crate::remat::model`] (which also runs [`Runtime::check_invariants`] after every call),
//! twice: the two runs must decide the same.
//!
//! [`Runtime::check_invariants`]: crate::remat::Runtime::check_invariants

use alloc::vec::Vec;

use super::reader::Reader;
use crate::remat::model::{self, Call};
use crate::remat::{Heuristic, Output, RematError, RuntimeOptions};

/// Most calls decoded from one input (keeps each case fast).
const MAX_CALLS: usize = 300;

/// The remat decoder's operand kinds, over the shared byte [`Reader`].
trait Operands {
    fn size(&mut self) -> u64;
    fn cost(&mut self) -> u64;
    fn bandwidth(&mut self) -> u64;
    fn tensor(&mut self) -> u32;
}

impl Operands for Reader<'_> {
    /// A size: mostly small (up to a few 512-byte granules), rarely anything.
    fn size(&mut self) -> u64 {
        match self.byte() % 32 {
            31 => self.u64(),
            _ => u64::from(self.byte()) * 8,
        }
    }

    /// A cost: mostly small, rarely anything.
    fn cost(&mut self) -> u64 {
        match self.byte() % 32 {
            31 => self.u64(),
            _ => u64::from(self.byte()),
        }
    }

    /// A swap bandwidth, 0 (refused) included.
    fn bandwidth(&mut self) -> u64 {
        [0, 1, 1_000_000_000, 1_000_000_000_000, u64::MAX][usize::from(self.byte() % 5)]
    }

    /// A tensor operand (resolved by the model against the tensors registered so far).
    fn tensor(&mut self) -> u32 {
        u32::from(self.byte())
    }
}

/// Decodes `data` into options and a script. Every byte string decodes.
pub fn decode(data: &[u8]) -> (RuntimeOptions, Vec<Call>) {
    let mut r = Reader(data);
    let budget = match r.byte() % 8 {
        0 => u64::from(r.byte()) * 16,
        1 => r.u64(),
        _ => u64::from(r.u16()) % 16384,
    };
    let heuristic = Heuristic::ALL[usize::from(r.byte() % 7)];
    let flags = r.byte();
    let swap_bytes_per_second = (flags & 2 != 0).then(|| r.bandwidth());
    let remat_limit = (flags & 4 != 0).then(|| u64::from(r.u16()) % 1024);
    let options = RuntimeOptions {
        budget,
        heuristic,
        remat_limit,
        arena: flags & 1 != 0,
        swap_bytes_per_second,
    };
    let mut calls = Vec::new();
    while !r.is_empty() && calls.len() < MAX_CALLS {
        let call = match r.byte() % 17 {
            0 => Call::Constant(r.size()),
            1 | 2 => Call::Compute {
                cost: r.cost(),
                args: alloc::vec![r.tensor(), r.tensor()],
                outputs: alloc::vec![Output::Fresh(r.size())],
            },
            3 => {
                let cost = r.cost();
                let args = (0..r.byte() % 4).map(|_| r.tensor()).collect();
                let outputs = (0..r.byte() % 4)
                    .map(|_| match r.byte() % 3 {
                        0 => Output::Alias(usize::from(r.byte() % 4)),
                        _ => Output::Fresh(r.size()),
                    })
                    .collect();
                Call::Compute {
                    cost,
                    args,
                    outputs,
                }
            }
            4 => {
                let (size, cost) = (r.size(), r.cost());
                let n = r.byte();
                Call::Register {
                    size,
                    cost,
                    parents: (0..n % 3).map(|_| r.tensor()).collect(),
                    constant: n & 0x80 != 0,
                }
            }
            5 => Call::Get(r.tensor()),
            6 => Call::Release(r.tensor()),
            7 => Call::Pin(r.tensor()),
            8 => Call::Lock(r.tensor()),
            9 => Call::Unlock(r.tensor()),
            10 => Call::Access(r.tensor()),
            11 => Call::Materialize(r.tensor()),
            12 => Call::MakeRoom(r.size()),
            13 => {
                let t = r.tensor();
                let at = match r.byte() % 4 {
                    0 => None,
                    1 => Some(u64::MAX),
                    _ => Some(u64::from(r.u16())),
                };
                Call::SetNextUse(t, at)
            }
            14 => Call::SetNow(u64::from(r.u16())),
            15 => Call::UseArena,
            _ => Call::SetSwapBandwidth(r.bandwidth()),
        };
        calls.push(call);
    }
    (options, calls)
}

/// Decodes `data`, runs the script against the naive model twice, and compares.
///
/// # Panics
/// When the runtime disagrees with the model, breaks an invariant, or decides differently
/// on the same input.
pub fn check(data: &[u8]) {
    let (options, calls) = decode(data);
    match model::run(options, &calls) {
        Ok(first) => {
            let second = model::run(options, &calls).expect("the options were accepted once");
            assert!(first == second, "same input, different decisions");
        }
        Err(e) => {
            assert!(
                options.swap_bytes_per_second == Some(0) && matches!(e, RematError::BadOp(_)),
                "options refused: {e}"
            );
        }
    }
}
