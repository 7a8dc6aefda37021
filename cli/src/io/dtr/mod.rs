//! Reading DTR operator logs (`uwsampl/dtr-prototype`, `simrd`): as allocation traces
//! ([`read`]) and as remat programs ([`read_program`]).
//!
//! Files: `records.rs` (private) is the one parser of the log grammar; [`trace`] and [`program`] are its
//! two interpreters; `tests.rs` tests both.
//!
//! A log is one JSON object per line, each with an `"INSTRUCTION"` key; the format and its
//! semantics are described in `shared/docs/dtr-log-format.md`. [`read`] follows the
//! `simrd` parser and its unbudgeted baseline replay, at the level of *storages* (physical
//! buffers), each given a `u64` id in creation order:
//!
//! * Lines before the first `ANNOTATE START` are discarded (but must still be JSON).
//!   `START` becomes an iteration start followed by the phase `forward`, `BACKWARD` the phase
//!   `backward`, any other annotation an annotation marker.
//! * `CONSTANT n` + `MEMORY n m`: a new storage of `m` bytes with one reference.
//! * `CALL` + `MEMORY`/`ALIAS` per result: a result with `ALIAS -1` gets a new storage of its
//!   `MEMORY` bytes; a result with `ALIAS k` is a view: it shares the storage of `ARGS[k]`
//!   (transitively the root storage) and adds one reference to it.
//! * `MUTATE`: each mutated argument gets a *new* storage of the full size of the argument's
//!   storage (simrd's copy-on-write model), allocated first; then the old storage loses the one
//!   reference held through that name, which is re-pointed to the new storage.
//! * `COPY src dst`: `dst` names the same tensor, one more reference to its storage.
//! * `COPY_FROM src dst`: `dst` is re-pointed to `src`'s tensor (one more reference there), then
//!   the storage `dst` named before loses one reference.
//! * `RELEASE n`: the storage `n` names loses one reference; at zero it is freed. Names stay
//!   bound after a release. Constants are freed like anything else (as in the baseline replay).
//! * Storages still referenced at the end stay live (never freed).
//!
//! All allocations are on stream 0; zero-byte storages are allowed (the logs have them). With
//! these rules the peak of requested bytes equals simrd's `baseline_memory` on the anchor logs.
//!
//! Stricter than simrd: a `RELEASE` of a name that was never bound is an error (simrd ignores
//! it; the anchor logs have none), and so is any use of a tensor whose storage was already
//! freed, or a release of one with no references left. Every error names the file and the
//! 1-based line.

pub mod program;
mod records;
#[cfg(test)]
mod tests;
pub mod trace;

use serde_json::{Map, Value};

pub use program::read_program;
pub use trace::read;

/// True when `data` looks like a DTR log: its first non-blank line is a JSON object with a
/// string `"INSTRUCTION"` field. Only that line is parsed.
pub fn is_dtr(data: &[u8]) -> bool {
    let Some(first) = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
    else {
        return false;
    };
    first.starts_with(b"{")
        && serde_json::from_slice::<Map<String, Value>>(first)
            .is_ok_and(|o| o.get("INSTRUCTION").is_some_and(Value::is_string))
}
