//! A pickle decoder for the data snapshots hold (dicts, lists, tuples, strings, numbers),
//! producing `serde_pickle`'s [`Value`].
//!
//! `serde_pickle::value_from_slice` cannot be trusted with snapshots: it counts references to
//! memoised values and drops a value from its memo once the count reaches zero, but the count
//! goes wrong when a memoised value (a dict key such as `"filename"`, a frame shared by many
//! stacks) is referenced again later, and the value is then silently replaced by `None`
//! (birkenfeld/serde-pickle PR #24). On real snapshots every frame after the first few came out
//! as `{None: line}`, losing every call site. This decoder keeps Python's semantics: objects
//! live in an arena, the memo and the stack hold handles, `APPEND`/`SETITEMS` mutate the shared
//! object; the result is expanded into a tree at the end (a shared object is copied at each
//! reference, a cycle becomes `None`).
//!
//! Bounded: the stack depth while decoding, the nesting depth of the result ([`MAX_DEPTH`]) and
//! the number of values the expansion makes ([`MAX_VALUES`]) are checked, so a hostile pickle
//! ends in an error, not a stack overflow or an exhausted memory. Class instances and other
//! globals (`GLOBAL`, `REDUCE`, `BUILD`, ...) decode to `None`, as `serde_pickle`'s
//! `replace_unresolved_globals` does; snapshots hold none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use num_bigint::BigInt;
use serde_pickle::{HashableValue, Value};

/// Deepest nesting the result may have: [`super::guard::MAX_DEPTH`] (the expansion recurses
/// once per level, and so does dropping the result).
pub const MAX_DEPTH: usize = super::guard::MAX_DEPTH as usize;

/// Most values the expanded result may hold (about 2 GiB of them).
pub const MAX_VALUES: u64 = 50_000_000;

/// An object of the pickle's graph.
#[derive(Debug, Clone)]
enum Obj {
    Scalar(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Set(Vec<usize>),
    FrozenSet(Vec<usize>),
}

/// Decodes `data`.
///
/// # Errors
/// A message with the byte offset: a truncated or malformed stream, an opcode this decoder does
/// not support (persistent ids, extension registry, out-of-band buffers), nesting or size over
/// the limits, a dict key that is not hashable.
pub fn decode(data: &[u8]) -> Result<Value, String> {
    decode_with(data, MAX_VALUES)
}

fn decode_with(data: &[u8], max_values: u64) -> Result<Value, String> {
    let mut d = Decoder {
        data,
        pos: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = d.run()?;
    let mut budget = max_values;
    let mut visiting = vec![false; d.arena.len()];
    d.expand(root, 0, &mut budget, &mut visiting)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
}

impl Decoder<'_> {
    fn fail<T>(&self, m: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("byte {}: {m}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.fail(format!("truncated: {n} more bytes expected")),
        }
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    fn len(&mut self, n: usize) -> Result<usize, String> {
        let v = self.le(n)?;
        match usize::try_from(v) {
            Ok(v) if v <= self.data.len() - self.pos => Ok(v),
            _ => self.fail(format!("length {v} runs past the end of the data")),
        }
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("truncated: newline expected");
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, o: Obj) {
        self.arena.push(o);
        self.stack.push(self.arena.len() - 1);
    }

    fn scalar(&mut self, v: Value) {
        self.push(Obj::Scalar(v));
    }

    fn pop(&mut self) -> Result<usize, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("stack underflow");
        }
        Ok(self.stack.pop().unwrap_or_default())
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, String> {
        let Some(mark) = self.marks.pop() else {
            return self.fail("no mark on the stack");
        };
        Ok(self.stack.split_off(mark))
    }

    fn top(&self) -> Result<usize, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&h) if self.stack.len() > floor => Ok(h),
            _ => self.fail("stack underflow"),
        }
    }

    fn string(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => {
                let v = Value::String(s.to_owned());
                self.scalar(v);
                Ok(())
            }
            Err(_) => self.fail("string is not UTF-8"),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<(), String> {
        let v = Value::Bytes(self.take(n)?.to_vec());
        self.scalar(v);
        Ok(())
    }

    fn append(&mut self, items: Vec<usize>) -> Result<(), String> {
        let target = self.top()?;
        match &mut self.arena[target] {
            Obj::List(v) => v.extend(items),
            Obj::Scalar(Value::None) => {} // an unresolved object: its state is dropped
            _ => return self.fail("APPEND to something that is not a list"),
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<usize>) -> Result<(), String> {
        if items.len() % 2 != 0 {
            return self.fail("SETITEMS with an odd number of items");
        }
        let target = self.top()?;
        match &mut self.arena[target] {
            Obj::Dict(v) => v.extend(items.chunks(2).map(|p| (p[0], p[1]))),
            Obj::Scalar(Value::None) => {}
            _ => return self.fail("SETITEM on something that is not a dict"),
        }
        Ok(())
    }

    fn run(&mut self) -> Result<usize, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.fail(format!("pickle protocol {proto} is not supported"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.scalar(Value::None),
                0x88 => self.scalar(Value::Bool(true)),
                0x89 => self.scalar(Value::Bool(false)),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.scalar(Value::I64(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.scalar(Value::I64(i64::from(v)));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.scalar(Value::I64(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        usize::from(self.u8()?)
                    } else {
                        self.len(4)?
                    };
                    let b = self.take(n)?.to_vec();
                    let big = BigInt::from_signed_bytes_le(&b);
                    let v = match i64::try_from(&big) {
                        Ok(v) => Value::I64(v),
                        Err(_) => Value::Int(big),
                    };
                    self.scalar(v);
                }
                b'I' | b'L' => {
                    let l = self.line()?;
                    let t = l.trim_end_matches('L');
                    let v = match t {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => match t.parse::<i64>() {
                            Ok(v) => Value::I64(v),
                            Err(_) => match t.parse::<BigInt>() {
                                Ok(b) => Value::Int(b),
                                Err(_) => return self.fail(format!("bad integer {l:?}")),
                            },
                        },
                    };
                    self.scalar(v);
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.scalar(Value::F64(f64::from_be_bytes(a)));
                }
                b'F' => {
                    let l = self.line()?;
                    match l.parse::<f64>() {
                        Ok(v) => self.scalar(Value::F64(v)),
                        Err(_) => return self.fail(format!("bad float {l:?}")),
                    }
                }
                0x8c => {
                    let n = self.len(1)?;
                    self.string(n)?;
                }
                b'X' => {
                    let n = self.len(4)?;
                    self.string(n)?;
                }
                0x8d => {
                    let n = self.len(8)?;
                    self.string(n)?;
                }
                b'V' => {
                    let l = self.line()?;
                    self.scalar(Value::String(l));
                }
                b'C' | b'U' => {
                    let n = self.len(1)?;
                    self.bytes(n)?;
                }
                b'B' | b'T' => {
                    let n = self.len(4)?;
                    self.bytes(n)?;
                }
                0x8e | 0x96 => {
                    let n = self.len(8)?;
                    self.bytes(n)?;
                }
                b'S' => {
                    let l = self.line()?;
                    let s = l.trim_matches(|c| c == '\'' || c == '"').to_owned();
                    self.scalar(Value::String(s));
                }
                b']' => self.push(Obj::List(Vec::new())),
                b'}' => self.push(Obj::Dict(Vec::new())),
                b')' => self.push(Obj::Tuple(Vec::new())),
                0x8f => self.push(Obj::Set(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Tuple(items));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Obj::FrozenSet(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.fail("DICT with an odd number of items");
                    }
                    let pairs = items.chunks(2).map(|p| (p[0], p[1])).collect();
                    self.push(Obj::Dict(pairs));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Obj::Tuple(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    match &mut self.arena[target] {
                        Obj::Set(v) => v.extend(items),
                        _ => return self.fail("ADDITEMS to something that is not a set"),
                    }
                }
                b'q' | b'r' | 0x94 | b'p' => {
                    let id = match op {
                        b'q' => u64::from(self.u8()?),
                        b'r' => self.le(4)?,
                        b'p' => {
                            let l = self.line()?;
                            match l.parse::<u64>() {
                                Ok(v) => v,
                                Err(_) => return self.fail(format!("bad memo id {l:?}")),
                            }
                        }
                        _ => self.memo.len() as u64,
                    };
                    let t = self.top()?;
                    self.memo.insert(id, t);
                }
                b'h' | b'j' | b'g' => {
                    let id = match op {
                        b'h' => u64::from(self.u8()?),
                        b'j' => self.le(4)?,
                        _ => {
                            let l = self.line()?;
                            match l.parse::<u64>() {
                                Ok(v) => v,
                                Err(_) => return self.fail(format!("bad memo id {l:?}")),
                            }
                        }
                    };
                    match self.memo.get(&id) {
                        Some(&h) => self.stack.push(h),
                        None => return self.fail(format!("memo id {id} was never stored")),
                    }
                }
                // Globals and objects: unresolved, `None` (snapshots hold none).
                b'c' => {
                    self.line()?;
                    self.line()?;
                    self.scalar(Value::None);
                }
                0x93 => {
                    self.pop()?;
                    self.pop()?;
                    self.scalar(Value::None);
                }
                b'R' | 0x81 => {
                    self.pop()?;
                    self.pop()?;
                    self.scalar(Value::None);
                }
                0x92 => {
                    self.pop()?;
                    self.pop()?;
                    self.pop()?;
                    self.scalar(Value::None);
                }
                b'b' => {
                    self.pop()?; // BUILD: the state of an object we do not build
                }
                b'i' => {
                    self.line()?;
                    self.line()?;
                    self.pop_mark()?;
                    self.scalar(Value::None);
                }
                b'o' => {
                    self.pop_mark()?;
                    self.scalar(Value::None);
                }
                other => {
                    return self.fail(format!(
                        "opcode {other:#04x} is not supported in a memory snapshot"
                    ));
                }
            }
            if self.stack.len() > self.data.len() + 1 {
                return self.fail("stack grew past the data size");
            }
        }
    }

    /// The tree of object `h`.
    fn expand(
        &self,
        h: usize,
        depth: usize,
        budget: &mut u64,
        visiting: &mut Vec<bool>,
    ) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        if *budget == 0 {
            return Err("expands to more values than memplan reads".to_owned());
        }
        *budget -= 1;
        if visiting[h] {
            return Ok(Value::None); // a cycle
        }
        let obj = &self.arena[h];
        if let Obj::Scalar(v) = obj {
            return Ok(v.clone());
        }
        visiting[h] = true;
        let all = |items: &[usize], budget: &mut u64, visiting: &mut Vec<bool>| {
            items
                .iter()
                .map(|&i| self.expand(i, depth + 1, budget, visiting))
                .collect::<Result<Vec<Value>, String>>()
        };
        let hashable = |v: Value| {
            v.into_hashable()
                .map_err(|e| format!("a dict key or set item that is not hashable: {e}"))
        };
        let v = match obj {
            Obj::Scalar(_) => unreachable!("returned above"),
            Obj::List(items) => Value::List(all(items, budget, visiting)?),
            Obj::Tuple(items) => Value::Tuple(all(items, budget, visiting)?),
            Obj::Set(items) => Value::Set(
                all(items, budget, visiting)?
                    .into_iter()
                    .map(hashable)
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
            Obj::FrozenSet(items) => Value::FrozenSet(
                all(items, budget, visiting)?
                    .into_iter()
                    .map(hashable)
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
            Obj::Dict(pairs) => {
                let mut map = BTreeMap::new();
                for &(k, v) in pairs {
                    let key: HashableValue =
                        hashable(self.expand(k, depth + 1, budget, visiting)?)?;
                    let value = self.expand(v, depth + 1, budget, visiting)?;
                    map.insert(key, value);
                }
                Value::Dict(map)
            }
        };
        visiting[h] = false;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_like(v: &Value) -> Vec<u8> {
        serde_pickle::value_to_vec(v, serde_pickle::SerOptions::new()).unwrap()
    }

    #[test]
    fn decodes_what_serde_pickle_encodes() {
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("a".into()),
            Value::List(vec![Value::I64(-3), Value::F64(1.5)]),
        );
        d.insert(
            HashableValue::I64(7),
            Value::Tuple(vec![Value::None, Value::Bool(true)]),
        );
        d.insert(HashableValue::String("big".into()), Value::I64(1 << 40));
        let v = Value::Dict(d);
        assert_eq!(decode(&python_like(&v)).unwrap(), v);
    }

    /// Written by CPython 3 (`pickle.dumps(x, protocol=4)`) for
    /// `k = {"filename": "f.py", "line": 3}; x = [{"frames": [k, k]}, {"frames": [k]}]`:
    /// the frame dict and its keys are memoised once and referenced again.
    const SHARED: &[u8] = b"\x80\x04\x95@\x00\x00\x00\x00\x00\x00\x00]\x94(}\x94\x8c\x06frames\x94]\x94(}\x94(\x8c\x08filename\x94\x8c\x04f.py\x94\x8c\x04line\x94K\x03uh\x04es}\x94h\x02]\x94h\x04ase.";

    #[test]
    fn shared_objects_are_copied_at_each_reference() {
        let v = decode(SHARED).unwrap();
        let Value::List(items) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(items.len(), 2);
        let frame = {
            let mut f = BTreeMap::new();
            f.insert(
                HashableValue::String("filename".into()),
                Value::String("f.py".into()),
            );
            f.insert(HashableValue::String("line".into()), Value::I64(3));
            Value::Dict(f)
        };
        let entry = |n: usize| {
            let mut e = BTreeMap::new();
            e.insert(
                HashableValue::String("frames".into()),
                Value::List(vec![frame.clone(); n]),
            );
            Value::Dict(e)
        };
        assert_eq!(items[0], entry(2));
        assert_eq!(items[1], entry(1));
    }

    #[test]
    fn bad_streams_are_errors_never_panics() {
        for cut in 0..SHARED.len() {
            assert!(decode(&SHARED[..cut]).is_err(), "cut at {cut}");
        }
        // A list that contains itself: the cycle becomes None.
        let cyc = b"\x80\x02]q\x00h\x00a.";
        assert_eq!(decode(cyc).unwrap(), Value::List(vec![Value::None]));
        // 100,000 nested lists: an error, not a stack overflow.
        let mut deep = b"\x80\x02".to_vec();
        deep.extend(std::iter::repeat_n(b']', 100_000));
        deep.extend(std::iter::repeat_n(b'a', 99_999));
        deep.push(b'.');
        assert!(decode(&deep).unwrap_err().contains("nested deeper"));
        // `a = []; for _ in range(64): a = [a, a]` as CPython pickles it: 454 bytes, 2^65
        // values once expanded.
        let mut bomb = b"\x80\x02".to_vec();
        for i in 0..64u8 {
            bomb.extend([b']', b'q', i, b'(']);
        }
        bomb.extend([b']', b'q', 64]);
        for i in (0..64u8).rev() {
            bomb.extend([b'h', i + 1, b'e']);
        }
        bomb.push(b'.');
        assert_eq!(bomb.len(), 454 - 2 + 2);
        let e = decode_with(&bomb, 1 << 20).unwrap_err();
        assert!(e.contains("expands to more values"), "{e}");
        for bad in [
            &b"\x80\x02}K\x01s."[..],
            b"\x80\x02q\x00.",
            b"\x80\x09N.",
            b"\x80\x02\xff.",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
