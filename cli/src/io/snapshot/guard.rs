//! A pre-scan of a pickle's opcode stream that bounds what decoding it will cost, before
//! `serde_pickle` decodes it.
//!
//! `serde_pickle` builds its value tree recursively (`Deserializer::convert_value` in its
//! `de.rs` recurses once per nesting level, and dropping the tree recurses again), so a 20 KB
//! pickle nested 10,000 deep overflows the stack and aborts the process. It also copies a
//! memoised value at every reference to it (`BINGET`), so a small pickle that references a
//! shared list of shared lists expands exponentially. This module runs the same opcodes over
//! an abstract stack whose items are only `(estimated bytes, nesting depth)`, and refuses a
//! pickle that nests deeper than [`MAX_DEPTH`] or would expand past [`byte_limit`].
//!
//! Invariant that keeps the estimate sound: a memo entry is frozen once something refers to
//! it (`GET`, or `DUP` of a reference): a later change to it, or a `PUT` over its id, is
//! refused. Python's pickler never does either for acyclic data (it memoises a container, fills
//! it, and refers to it only afterwards), and snapshots are acyclic; without the rule, a
//! reference taken early could grow after its cost was counted.

use std::collections::HashMap;

/// Deepest nesting accepted. Real snapshots nest about 6 deep (dict → list → dict → list →
/// dict → frame); 200 leaves a wide margin and keeps the decoder's recursion far from the
/// stack's end (also on 2 MiB test threads).
pub const MAX_DEPTH: u32 = 200;

/// Estimated bytes one decoded value takes besides its string or byte contents.
const VALUE_BYTES: u64 = 48;

/// The most bytes the decoded value of a pickle of `len` bytes may be estimated to take:
/// 64 MiB plus 128 times the file. Real snapshots expand about 10 to 30 times (shared
/// strings are copied at every reference).
pub fn byte_limit(len: usize) -> u64 {
    (64 << 20) + 128 * len as u64
}

/// One abstract stack item.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// Estimated bytes once decoded, memo references expanded.
    bytes: u64,
    /// Nesting depth (0 for a scalar).
    depth: u32,
    /// The memo id this item stands for, when it is a reference.
    memo: Option<u32>,
}

impl Item {
    const fn scalar(extra: u64) -> Self {
        Self {
            bytes: VALUE_BYTES + extra,
            depth: 0,
            memo: None,
        }
    }
}

/// A memo entry: the value's cost, and whether anything refers to it yet.
#[derive(Debug, Clone, Copy)]
struct Entry {
    item: Item,
    referenced: bool,
}

/// Checks that decoding `data` stays within [`MAX_DEPTH`] and [`byte_limit`]; stops at the
/// first `STOP`. Malformed streams (truncation, stack underflow, unknown opcodes) are left to
/// the decoder, which reports them with their position, except where the scan cannot go on.
///
/// # Errors
/// A one-line reason with the byte offset: nested too deep, expands too much, or a shared
/// value changed after it was referenced.
pub fn check(data: &[u8]) -> Result<(), String> {
    Scan {
        data,
        pos: 0,
        stack: Vec::new(),
        stacks: Vec::new(),
        memo: HashMap::new(),
        limit: byte_limit(data.len()),
    }
    .run()
}

struct Scan<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    stacks: Vec<Vec<Item>>,
    memo: HashMap<u32, Entry>,
    limit: u64,
}

impl Scan<'_> {
    fn run(mut self) -> Result<(), String> {
        match self.scan() {
            Ok(()) | Err(None) => Ok(()),
            Err(Some(message)) => Err(message),
        }
    }

    /// `Err(None)`: malformed, left to the decoder; `Err(Some(_))`: refused.
    fn scan(&mut self) -> Result<(), Option<String>> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return Ok(()),
                b'(' => {
                    let stack = std::mem::take(&mut self.stack);
                    self.stacks.push(stack);
                }
                b'0' => {
                    if self.stack.is_empty() {
                        self.pop_mark()?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = *self.stack.last().ok_or(None)?;
                    if let Some(id) = top.memo {
                        self.reference(id);
                    }
                    self.push(top, at)?;
                }
                // PUT, BINPUT, LONG_BINPUT, MEMOIZE
                b'p' => {
                    let id = self.line_number()?;
                    self.memoize(id, at)?;
                }
                b'q' => {
                    let id = u32::from(self.byte()?);
                    self.memoize(id, at)?;
                }
                b'r' => {
                    let id = self.u32()?;
                    self.memoize(id, at)?;
                }
                0x94 => {
                    let id = u32::try_from(self.memo.len()).map_err(|_| None)?;
                    self.memoize(id, at)?;
                }
                // GET, BINGET, LONG_BINGET
                b'g' => {
                    let id = self.line_number()?;
                    self.get(id, at)?;
                }
                b'h' => {
                    let id = u32::from(self.byte()?);
                    self.get(id, at)?;
                }
                b'j' => {
                    let id = self.u32()?;
                    self.get(id, at)?;
                }
                b'N' | 0x88 | 0x89 | b')' | b']' | b'}' | 0x8f => {
                    self.push(Item::scalar(0), at)?;
                }
                b'I' | b'L' | b'F' | b'S' | b'V' => {
                    let n = self.line()?;
                    self.push(Item::scalar(n), at)?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Item::scalar(0), at)?;
                }
                b'J' => {
                    self.take(4)?;
                    self.push(Item::scalar(0), at)?;
                }
                b'K' => {
                    self.take(1)?;
                    self.push(Item::scalar(0), at)?;
                }
                b'M' => {
                    self.take(2)?;
                    self.push(Item::scalar(0), at)?;
                }
                // Length-prefixed: LONG1, SHORT_BINBYTES, SHORT_BINSTRING, SHORT_BINUNICODE
                0x8a | b'C' | b'U' | 0x8c => {
                    let n = u64::from(self.byte()?);
                    self.take(n)?;
                    self.push(Item::scalar(n), at)?;
                }
                // LONG4, BINSTRING (signed), BINBYTES, BINUNICODE
                0x8b | b'T' | b'B' | b'X' => {
                    let n = u64::from(self.u32()?);
                    self.take(n)?;
                    self.push(Item::scalar(n), at)?;
                }
                // BINUNICODE8, BINBYTES8, BYTEARRAY8
                0x8d | 0x8e | 0x96 => {
                    let n = u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| None)?);
                    self.take(n)?;
                    self.push(Item::scalar(n), at)?;
                }
                0x85 => self.wrap(1, at)?,
                0x86 => self.wrap(2, at)?,
                0x87 => self.wrap(3, at)?,
                // TUPLE, LIST, DICT, FROZENSET: a new container of the marked items.
                b't' | b'l' | b'd' | 0x91 => {
                    let items = self.pop_mark()?;
                    let item = container(&items, None);
                    self.push(item, at)?;
                }
                // APPEND / SETITEM: one or two items into the container below them.
                b'a' => {
                    let v = self.pop()?;
                    self.extend(&[v], at)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend(&[k, v], at)?;
                }
                // APPENDS, SETITEMS, ADDITEMS: the marked items into the container below.
                b'e' | b'u' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend(&items, at)?;
                }
                b'c' => {
                    let a = self.line()?;
                    let b = self.line()?;
                    self.push(Item::scalar(a + b), at)?;
                }
                0x93 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.push(container(&[a, b], None), at)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let global = self.pop()?;
                    self.push(container(&[global, args], None), at)?;
                }
                b'i' => {
                    self.line()?;
                    self.line()?;
                    let items = self.pop_mark()?;
                    self.push(container(&items, None), at)?;
                }
                b'o' => {
                    let items = self.pop_mark()?;
                    self.pop()?;
                    self.push(container(&items, None), at)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    self.pop()?;
                    self.push(container(&[args], None), at)?;
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    self.pop()?;
                    self.push(container(&[args, kwargs], None), at)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    self.pop()?;
                    self.push(state, at)?;
                }
                // Anything else the decoder refuses itself.
                _ => return Err(None),
            }
        }
    }

    fn byte(&mut self) -> Result<u8, Option<String>> {
        let b = *self.data.get(self.pos).ok_or(None)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], Option<String>> {
        let n = usize::try_from(n).map_err(|_| None)?;
        let end = self.pos.checked_add(n).ok_or(None)?;
        let bytes = self.data.get(self.pos..end).ok_or(None)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, Option<String>> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| None)?))
    }

    /// Skips a newline-terminated argument; its length.
    fn line(&mut self) -> Result<u64, Option<String>> {
        let rest = self.data.get(self.pos..).ok_or(None)?;
        let n = rest.iter().position(|&b| b == b'\n').ok_or(None)?;
        self.pos += n + 1;
        Ok(n as u64)
    }

    fn line_number(&mut self) -> Result<u32, Option<String>> {
        let start = self.pos;
        self.line()?;
        let text = std::str::from_utf8(&self.data[start..self.pos - 1]).map_err(|_| None)?;
        text.trim().parse().map_err(|_| None)
    }

    fn pop(&mut self) -> Result<Item, Option<String>> {
        self.stack.pop().ok_or(None)
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, Option<String>> {
        let below = self.stacks.pop().ok_or(None)?;
        Ok(std::mem::replace(&mut self.stack, below))
    }

    fn push(&mut self, item: Item, at: usize) -> Result<(), Option<String>> {
        self.bound(item, at)?;
        self.stack.push(item);
        Ok(())
    }

    fn bound(&self, item: Item, at: usize) -> Result<(), Option<String>> {
        if item.depth > MAX_DEPTH {
            return Err(Some(format!(
                "pickle nested more than {MAX_DEPTH} deep (at byte {at}): not a memory snapshot"
            )));
        }
        if item.bytes > self.limit {
            return Err(Some(format!(
                "pickle expands past {} MiB when decoded (at byte {at}; shared values copied \
                 at every reference): not a memory snapshot",
                self.limit >> 20
            )));
        }
        Ok(())
    }

    fn reference(&mut self, id: u32) {
        if let Some(e) = self.memo.get_mut(&id) {
            e.referenced = true;
        }
    }

    fn memoize(&mut self, id: u32, at: usize) -> Result<(), Option<String>> {
        if self.memo.get(&id).is_some_and(|e| e.referenced) {
            return Err(Some(format!(
                "pickle redefines memo entry {id} after referring to it (at byte {at}): not \
                 supported"
            )));
        }
        let mut item = self.pop()?;
        item.memo = Some(id);
        self.memo.insert(
            id,
            Entry {
                item,
                referenced: false,
            },
        );
        self.stack.push(item);
        Ok(())
    }

    fn get(&mut self, id: u32, at: usize) -> Result<(), Option<String>> {
        let e = self.memo.get_mut(&id).ok_or(None)?;
        e.referenced = true;
        let item = Item {
            memo: Some(id),
            ..e.item
        };
        self.push(item, at)
    }

    /// A tuple of the top `n` items replaces them.
    fn wrap(&mut self, n: usize, at: usize) -> Result<(), Option<String>> {
        let from = self.stack.len().checked_sub(n).ok_or(None)?;
        let items: Vec<Item> = self.stack.drain(from..).collect();
        self.push(container(&items, None), at)
    }

    /// Adds `items` to the container on top of the stack (and to its memo entry).
    fn extend(&mut self, items: &[Item], at: usize) -> Result<(), Option<String>> {
        let top = *self.stack.last().ok_or(None)?;
        let grown = grow(top, items);
        self.bound(grown, at)?;
        if let Some(id) = top.memo {
            let e = self.memo.get_mut(&id).ok_or(None)?;
            if e.referenced {
                return Err(Some(format!(
                    "pickle changes memo entry {id} after referring to it (at byte {at}): \
                     recursive structures are not supported"
                )));
            }
            e.item = grown;
        }
        if let Some(last) = self.stack.last_mut() {
            *last = grown;
        }
        Ok(())
    }
}

/// A new container holding `items`.
fn container(items: &[Item], memo: Option<u32>) -> Item {
    grow(
        Item {
            bytes: VALUE_BYTES,
            depth: 0,
            memo,
        },
        items,
    )
}

/// `base` with `items` added.
fn grow(base: Item, items: &[Item]) -> Item {
    let bytes = items
        .iter()
        .fold(base.bytes, |sum, i| sum.saturating_add(i.bytes));
    let depth = items
        .iter()
        .map(|i| i.depth.saturating_add(1))
        .fold(base.depth, u32::max);
    Item {
        bytes,
        depth,
        memo: base.memo,
    }
}
