//! The packer ops of the `capi` check: add, pack, offset, the readers and renew, each
//! checked against the [`Model`].

use super::*;

/// The live packer handle and its model.
pub(super) struct Session {
    pub(super) packer: *mut mp_packer,
    pub(super) model: Model,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: `packer` is NULL or a live packer from `mp_packer_new`, freed only here and
        // in `renew` (which replaces it right away).
        unsafe { mp_packer_free(self.packer) };
    }
}

impl Session {
    pub(super) fn new() -> Session {
        let mut packer = null_mut();
        // SAFETY: `&mut packer` is a valid, aligned out-pointer.
        let rc = code(unsafe { mp_packer_new(&mut packer) });
        assert_eq!(rc, mp_result::Ok, "mp_packer_new");
        assert!(!packer.is_null(), "mp_packer_new returned NULL");
        Session {
            packer,
            model: Model::new(),
        }
    }

    pub(super) fn packer(&self, null: bool) -> *mut mp_packer {
        if null { null_mut() } else { self.packer }
    }

    /// Ops 0-6: `mp_packer_add_buffer`.
    pub(super) fn add(&mut self, r: &mut Reader<'_>, bad: bool) {
        let id = self.decode_id(r);
        let (lower, upper) = match r.byte() % 16 {
            0..=12 => {
                let lower = u64::from(r.byte() % 32);
                (lower, lower + 1 + u64::from(r.byte() % 12))
            }
            13 => {
                let upper = u64::from(r.byte() % 32);
                (upper + u64::from(r.byte() % 2), upper) // empty or reversed
            }
            14 => (u64::MAX - 1, u64::MAX),
            _ => (0, u64::MAX),
        };
        let size = match r.byte() % 16 {
            0..=8 => 1 + u64::from(r.byte()),
            9..=11 => 1 + u64::from(r.u16()),
            12 => 0,
            13 => 1u64 << (40 + r.byte() % 24),
            14 => u64::MAX - u64::from(r.byte()),
            _ => 1,
        };
        let alignment = match r.byte() % 16 {
            0 => 0,
            1..=8 => 1,
            9..=12 => 1u64 << (r.byte() % 8),
            13 => 1u64 << (r.byte() % 64),
            14 => [3, 6, 12, 1 << 63 | 1, u64::MAX][usize::from(r.byte() % 5)],
            _ => 1,
        };
        // 0 NULL packer, 1 NULL id, 2 NULL out_index, 3 misaligned out_index, 4 huge id_len.
        let problem = if bad { Some(r.byte() % 5) } else { None };

        let mut out = Slot::<usize>::new(match problem {
            Some(2) => OutKind::Null,
            Some(3) => OutKind::Misaligned,
            _ => OutKind::Valid,
        });
        let id_ptr: *const c_char = if problem == Some(1) {
            null()
        } else {
            id.as_ptr().cast()
        };
        let id_len = if problem == Some(4) {
            [isize::MAX as usize + 1, usize::MAX][usize::from(r.byte() % 2)]
        } else {
            id.len()
        };
        let packer = self.packer(problem == Some(0));

        let m = &self.model;
        let alignment1 = alignment.max(1);
        let text = core::str::from_utf8(&id).ok();
        let expected = if packer.is_null() || id_ptr.is_null() || out.kind == OutKind::Null {
            mp_result::NullParameter
        } else if out.misaligned() || id_len > isize::MAX as usize {
            mp_result::InvalidArgument
        } else if text.is_none() {
            mp_result::InvalidUtf8
        } else if size == 0 {
            mp_result::ZeroSize
        } else if upper <= lower {
            mp_result::EmptyLifetime
        } else if !alignment1.is_power_of_two() {
            mp_result::BadAlignment
        } else if m.buffers.iter().any(|b| b.id == id) {
            mp_result::DuplicateId
        } else if m.total + u128::from(size) + u128::from(alignment1 - 1) > u128::from(u64::MAX)
            || m.buffers.len() >= u32::MAX as usize
        {
            mp_result::Overflow
        } else {
            mp_result::Ok
        };

        // SAFETY: `packer` is NULL or the live packer. `id_ptr` is NULL or points to `id`,
        // valid for reads of `id.len()` bytes; `id_len` is `id.len()` except in the one case
        // where it exceeds PTRDIFF_MAX, which the function documents that it refuses
        // (`MP_RESULT_INVALID_ARGUMENT`) before reading `id`. `out.ptr()` is NULL or points into
        // `out.storage` with room for one `usize`; a misaligned one is refused before any write.
        let rc = code(unsafe {
            mp_packer_add_buffer(
                packer,
                id_ptr,
                id_len,
                lower,
                upper,
                size,
                alignment,
                out.ptr(),
            )
        });
        assert_eq!(
            rc,
            expected,
            "mp_packer_add_buffer(id {id:?}, id_len {id_len}, [{lower}, {upper}), size {size}, \
             alignment {alignment}, problem {problem:?}) with {} buffers",
            m.buffers.len()
        );

        if rc != mp_result::Ok {
            assert!(out.untouched(), "out_index written on failure {rc:?}");
            if !packer.is_null() {
                // The packer is unchanged (an earlier plan stays readable); the detail names
                // the id for core's errors, when the id is plain enough to find in it.
                let core_error = matches!(
                    rc,
                    mp_result::ZeroSize
                        | mp_result::EmptyLifetime
                        | mp_result::BadAlignment
                        | mp_result::DuplicateId
                        | mp_result::Overflow
                );
                let names = text
                    .filter(|t| core_error && !t.is_empty() && t.chars().all(char::is_alphanumeric))
                    .map(str::to_owned);
                self.model.failed(names);
            }
            return;
        }
        assert_eq!(
            out.value(),
            self.model.buffers.len(),
            "index of the new buffer"
        );
        let m = &mut self.model;
        m.total += u128::from(size) + u128::from(alignment1 - 1);
        m.buffers.push(ModelBuffer {
            id,
            lower,
            upper,
            size,
            alignment: alignment1,
        });
        m.outcome = Outcome::Unpacked;
        m.last_error = LastError::Empty;
        m.last_plan = None;
    }

    /// The id bytes of an add: fresh ASCII, a duplicate, raw input bytes (possibly invalid
    /// UTF-8 or with NULs), empty, fresh with multi-byte characters, or known-invalid UTF-8.
    pub(super) fn decode_id(&mut self, r: &mut Reader<'_>) -> Vec<u8> {
        let m = &mut self.model;
        let fresh = |m: &mut Model, prefix: &str| {
            m.next_id += 1;
            format!("{prefix}{}", m.next_id).into_bytes()
        };
        match r.byte() % 16 {
            0..=8 => fresh(m, "b"),
            9 | 10 => {
                let k = usize::from(r.byte());
                match m.buffers.get(k % m.buffers.len().max(1)) {
                    Some(b) => b.id.clone(),
                    None => fresh(m, "b"),
                }
            }
            11 => {
                let len = r.byte() % 6;
                (0..len).map(|_| r.byte()).collect()
            }
            12 => Vec::new(),
            13 | 14 => {
                let c = ["é", "日本", "𝄞", "ßü"][usize::from(r.byte() % 4)];
                fresh(m, &c.repeat(1 + usize::from(r.byte() % 8)))
            }
            _ => {
                let bad: [&[u8]; 5] = [
                    b"\xff",
                    b"x\xc3",
                    b"a\xe6\x97",
                    b"\xed\xa0\x80",
                    b"\xc0\x80",
                ];
                bad[usize::from(r.byte() % 5)].to_vec()
            }
        }
    }

    /// Ops 7-9: `mp_packer_pack` with arbitrary (bounded) options.
    pub(super) fn pack(&mut self, r: &mut Reader<'_>) {
        let f = r.byte();
        let mut flags = u32::from(f & 7);
        let unknown = if f & 0x80 != 0 {
            1u32 << (3 + r.byte() % 29)
        } else {
            0
        };
        let max_nodes = [0, 1, 16, 200, MAX_NODES][usize::from(r.byte() % 5)];
        let time_limit_ms = [0, 1, MAX_TIME_MS, u64::MAX][usize::from(r.byte() % 4)];
        let max_load = self.model.max_load();
        let total = u64::try_from(self.model.total).expect("total fits u64");
        let capacity = match r.byte() % 8 {
            0 => 0,
            1 => max_load,
            2 => max_load.saturating_add(u64::from(r.byte())),
            3 => max_load.saturating_sub(1),
            4 => total,
            5 => u64::MAX,
            6 => u64::from(r.u16()),
            _ => max_load.saturating_add(max_load / 8),
        };
        let time_bound = flags & MP_PACK_TIME_LIMIT != 0 && time_limit_ms <= MAX_TIME_MS;
        if !time_bound {
            flags |= MP_PACK_MAX_NODES;
        }
        let options = mp_pack_options {
            flags: flags | unknown,
            capacity,
            max_nodes,
            time_limit_ms,
        };
        // SAFETY: the packer is live; `&options` is aligned and valid for one read.
        let rc = code(unsafe { mp_packer_pack(self.packer, &options) });
        self.after_pack(rc, Some(options));
    }

    /// Op 10: `mp_packer_pack` with a NULL packer, misaligned options or NULL options.
    pub(super) fn pack_bad(&mut self, r: &mut Reader<'_>) {
        match r.byte() % 3 {
            0 => {
                let options = mp_pack_options {
                    flags: MP_PACK_MAX_NODES,
                    max_nodes: 0,
                    ..mp_pack_options::default()
                };
                // SAFETY: NULL is allowed for the packer; `&options` is valid for one read.
                let rc = code(unsafe { mp_packer_pack(null_mut(), &options) });
                assert_eq!(rc, mp_result::NullParameter, "pack on a NULL packer");
            }
            1 => {
                // Valid for reads of a whole `mp_pack_options` from byte 4 on, which is not
                // 8-aligned: the function must refuse it before reading.
                let storage = [0u64; 6];
                let options = storage
                    .as_ptr()
                    .cast::<u8>()
                    .wrapping_add(4)
                    .cast::<mp_pack_options>();
                // SAFETY: the packer is live; `options` is non-NULL and points to
                // `size_of::<mp_pack_options>()` readable bytes inside `storage` (only its
                // alignment is wrong, which the function documents that it refuses).
                let rc = code(unsafe { mp_packer_pack(self.packer, options) });
                assert_eq!(
                    rc,
                    mp_result::InvalidArgument,
                    "pack with misaligned options"
                );
                self.after_pack(rc, None);
            }
            _ => {
                // NULL options mean no limits: only bounded on an empty packer.
                if !self.model.buffers.is_empty() {
                    return;
                }
                // SAFETY: the packer is live; NULL options are allowed (defaults).
                let rc = code(unsafe { mp_packer_pack(self.packer, null()) });
                assert_eq!(
                    rc,
                    mp_result::Ok,
                    "pack of an empty packer with NULL options"
                );
                self.after_pack(rc, Some(mp_pack_options::default()));
            }
        }
    }

    /// Checks a pack's code against the options and updates the model; after
    /// `MP_RESULT_OK`, reads the plan back and verifies it. `options` is `None` when the
    /// function could not read them.
    pub(super) fn after_pack(&mut self, rc: mp_result, options: Option<mp_pack_options>) {
        let max_load = self.model.max_load();
        let total = u64::try_from(self.model.total).expect("total fits u64");
        let known = MP_PACK_CAPACITY | MP_PACK_MAX_NODES | MP_PACK_TIME_LIMIT;
        let opts = match options {
            Some(o) if o.flags & !known == 0 => o,
            _ => {
                assert_eq!(rc, mp_result::InvalidArgument, "pack with {options:?}");
                self.model.outcome = Outcome::Unpacked;
                self.model.failed(None);
                return;
            }
        };
        let capacity = (opts.flags & MP_PACK_CAPACITY != 0).then_some(opts.capacity);
        match capacity {
            Some(c) if max_load > c => assert_eq!(
                rc,
                mp_result::CapacityExceeded,
                "pack with capacity {c} below the max load {max_load}"
            ),
            // Stacking every buffer (with its alignment slack) fits in `total`; the
            // heuristics never do worse.
            Some(c) if c >= total => assert_eq!(
                rc,
                mp_result::Ok,
                "pack with capacity {c} >= the stacked size {total}"
            ),
            Some(_) => assert!(
                matches!(rc, mp_result::Ok | mp_result::CapacityExceeded),
                "pack returned {rc:?}"
            ),
            None => assert_eq!(rc, mp_result::Ok, "pack without a capacity"),
        }

        if rc == mp_result::CapacityExceeded {
            let c = capacity.expect("CAPACITY_EXCEEDED without a capacity");
            let best_peak = self.read_ok(5).expect_u64();
            let proven = self.read_ok(6).expect_bool();
            assert!(best_peak > c, "best peak {best_peak} fits the capacity {c}");
            assert!(
                best_peak >= max_load,
                "best peak {best_peak} < max load {max_load}"
            );
            assert!(
                max_load <= c || proven,
                "max load {max_load} > capacity {c}, not proven"
            );
            self.model.outcome = Outcome::OverCapacity { best_peak, proven };
            self.model.failed(None);
            return;
        }

        // MP_RESULT_OK: read the plan back and verify it here.
        let plan = self.verify_plan(&opts, capacity);
        let deterministic = opts.flags & MP_PACK_TIME_LIMIT == 0;
        if deterministic {
            if let Some((prev_opts, prev)) = &self.model.last_plan {
                if *prev_opts == opts {
                    assert_eq!(*prev, plan, "the same pack gave another plan");
                }
            }
            self.model.last_plan = Some((opts, plan.clone()));
        }
        self.model.outcome = Outcome::Packed(plan);
        self.model.last_error = LastError::Empty;
    }

    /// Reads every offset and the other values of a fresh plan and checks them independently.
    pub(super) fn verify_plan(&mut self, opts: &mp_pack_options, capacity: Option<u64>) -> Plan {
        let n = self.model.buffers.len();
        let max_load = self.model.max_load();
        assert_eq!(self.read_ok(0), Value::Usize(n), "mp_packer_len");
        assert_eq!(self.read_ok(1), Value::U64(max_load), "mp_packer_max_load");

        let offsets: Vec<u64> = (0..n).map(|i| self.offset_ok(i)).collect();
        let bufs = &self.model.buffers;
        let mut peak = 0u64;
        for (i, (b, &o)) in bufs.iter().zip(&offsets).enumerate() {
            assert_eq!(
                o % b.alignment,
                0,
                "buffer {i} at {o}, alignment {}",
                b.alignment
            );
            let end = o.checked_add(b.size);
            let end = end.unwrap_or_else(|| panic!("buffer {i}: offset {o} + size overflows"));
            peak = peak.max(end);
        }
        for i in 0..n {
            for j in i + 1..n {
                let (a, b) = (&bufs[i], &bufs[j]);
                let (oa, ob) = (offsets[i], offsets[j]);
                if a.overlaps_in_time(b) {
                    assert!(
                        oa + a.size <= ob || ob + b.size <= oa,
                        "buffers {i} {a:?} at {oa} and {j} {b:?} at {ob} overlap"
                    );
                }
            }
        }

        let reported_peak = self.read_ok(2).expect_u64();
        assert_eq!(reported_peak, peak, "mp_packer_peak vs max(offset + size)");
        assert!(
            peak >= max_load,
            "peak {peak} below the max load {max_load}"
        );
        if let Some(c) = capacity {
            assert!(peak <= c, "peak {peak} above the capacity {c}");
        }
        let optimal = self.read_ok(3).expect_bool();
        assert!(
            optimal || peak != max_load,
            "peak == max load but not optimal"
        );
        let nodes = self.read_ok(4).expect_u64();
        if opts.flags & MP_PACK_MAX_NODES != 0 {
            assert!(
                nodes <= opts.max_nodes,
                "{nodes} nodes, max_nodes {}",
                opts.max_nodes
            );
        }
        if opts.flags & MP_PACK_TIME_LIMIT != 0 && opts.time_limit_ms == 0 {
            assert_eq!(nodes, 0, "time limit 0 means heuristics only");
        }
        assert_eq!(self.read_ok(5), Value::U64(peak), "mp_packer_best_peak");
        assert_eq!(self.read_ok(6), Value::Bool(false), "is_proven_infeasible");

        // Past the end: out of range, not a read past the plan.
        for index in [n, n + 1, usize::MAX] {
            let mut out = Slot::<u64>::new(OutKind::Valid);
            // SAFETY: the packer is live; `out.ptr()` is aligned and valid for one `u64`.
            let rc = code(unsafe { mp_packer_offset(self.packer, index, out.ptr()) });
            assert_eq!(rc, mp_result::IndexOutOfRange, "offset {index} of {n}");
            assert!(out.untouched());
        }
        Plan {
            offsets,
            peak,
            optimal,
            nodes,
        }
    }

    /// `mp_packer_offset(index)` with valid pointers, which must succeed.
    pub(super) fn offset_ok(&self, index: usize) -> u64 {
        let mut out = Slot::<u64>::new(OutKind::Valid);
        // SAFETY: the packer is live; `out.ptr()` is aligned and valid for one `u64` write.
        let rc = code(unsafe { mp_packer_offset(self.packer, index, out.ptr()) });
        assert_eq!(
            rc,
            mp_result::Ok,
            "mp_packer_offset({index}) after a successful pack"
        );
        out.value()
    }

    /// Op 11: `mp_packer_offset` with any index and pointer kinds.
    pub(super) fn offset(&mut self, r: &mut Reader<'_>) {
        let ptrs = Ptrs::decode(r.byte());
        let n = self.model.buffers.len();
        let index = match r.byte() % 6 {
            0..=2 => usize::from(r.byte()) % n.max(1),
            3 => n,
            4 => n + 1 + usize::from(r.byte()),
            _ => usize::MAX,
        };
        let mut out = Slot::<u64>::new(ptrs.out);
        let packer = self.packer(ptrs.packer_null);
        // SAFETY: `packer` is NULL or live; `out.ptr()` is NULL or points into `out.storage`
        // with room for one `u64` (a misaligned one is refused before any write).
        let rc = code(unsafe { mp_packer_offset(packer, index, out.ptr()) });
        let expected = match (out.pointer_failure(ptrs.packer_null), &self.model.outcome) {
            (Some(c), _) => Err(c),
            (None, Outcome::Packed(plan)) => match plan.offsets.get(index) {
                Some(&o) => Ok(o),
                None => Err(mp_result::IndexOutOfRange),
            },
            (None, _) if index >= n => {
                // Not documented which of the two comes first.
                assert!(
                    matches!(rc, mp_result::NotPacked | mp_result::IndexOutOfRange),
                    "mp_packer_offset({index}) of {n} unpacked: {rc:?}"
                );
                Err(rc)
            }
            (None, _) => Err(mp_result::NotPacked),
        };
        match expected {
            Ok(o) => {
                assert_eq!(rc, mp_result::Ok, "mp_packer_offset({index}) of {n}");
                assert_eq!(out.value(), o, "offset {index} changed since the pack");
            }
            Err(c) => {
                assert_eq!(rc, c, "mp_packer_offset({index}) of {n}, {ptrs:?}");
                assert!(out.untouched(), "out_offset written on failure");
            }
        }
    }

    /// The value reader `which` must give now, per the model: 0 len, 1 max_load, 2 peak,
    /// 3 is_optimal, 4 nodes, 5 best_peak, 6 is_proven_infeasible.
    pub(super) fn expected_read(&self, which: u8) -> Result<Value, mp_result> {
        let m = &self.model;
        let not_packed = Err(mp_result::NotPacked);
        match (which, &m.outcome) {
            (0, _) => Ok(Value::Usize(m.buffers.len())),
            (1, _) => Ok(Value::U64(m.max_load())),
            (2, Outcome::Packed(p)) | (5, Outcome::Packed(p)) => Ok(Value::U64(p.peak)),
            (3, Outcome::Packed(p)) => Ok(Value::Bool(p.optimal)),
            (4, Outcome::Packed(p)) => Ok(Value::U64(p.nodes)),
            (5, Outcome::OverCapacity { best_peak, .. }) => Ok(Value::U64(*best_peak)),
            (6, Outcome::Packed(_)) => Ok(Value::Bool(false)),
            (6, Outcome::OverCapacity { proven, .. }) => Ok(Value::Bool(*proven)),
            _ => not_packed,
        }
    }

    /// Calls value reader `which` (see [`Session::expected_read`]) with the given pointers.
    pub(super) fn call_read(&self, which: u8, ptrs: Ptrs) -> Result<Value, mp_result> {
        let packer = self.packer(ptrs.packer_null);
        macro_rules! call {
            ($f:ident, $t:ty, $v:ident) => {{
                let mut out = Slot::<$t>::new(ptrs.out);
                // SAFETY: `packer` is NULL or live; `out.ptr()` is NULL or points into
                // `out.storage` with room for one value (a misaligned one is refused before
                // any write).
                let rc = code(unsafe { $f(packer, out.ptr()) });
                if let Some(c) = out.pointer_failure(ptrs.packer_null) {
                    assert_eq!(rc, c, "{}({ptrs:?})", stringify!($f));
                }
                if rc == mp_result::Ok {
                    Ok(Value::$v(out.value()))
                } else {
                    assert!(out.untouched(), "{} wrote on failure", stringify!($f));
                    Err(rc)
                }
            }};
        }
        match which {
            0 => call!(mp_packer_len, usize, Usize),
            1 => call!(mp_packer_max_load, u64, U64),
            2 => call!(mp_packer_peak, u64, U64),
            3 => call!(mp_packer_is_optimal, bool, Bool),
            4 => call!(mp_packer_nodes, u64, U64),
            5 => call!(mp_packer_best_peak, u64, U64),
            _ => call!(mp_packer_is_proven_infeasible, bool, Bool),
        }
    }

    /// Reader `which` with valid pointers, which must succeed.
    pub(super) fn read_ok(&self, which: u8) -> Value {
        let ptrs = Ptrs {
            packer_null: false,
            out: OutKind::Valid,
        };
        self.call_read(which, ptrs)
            .unwrap_or_else(|rc| panic!("reader {which} failed with {rc:?}"))
    }

    /// Op 12: one of the value readers, with any pointer kinds.
    pub(super) fn read(&mut self, r: &mut Reader<'_>) {
        let ptrs = Ptrs::decode(r.byte());
        let which = r.byte() % 7;
        let got = self.call_read(which, ptrs);
        let pointer_failure = if ptrs.packer_null || ptrs.out == OutKind::Null {
            Some(mp_result::NullParameter)
        } else if ptrs.out == OutKind::Misaligned && !matches!(which, 3 | 6) {
            Some(mp_result::InvalidArgument) // bools (3, 6) have alignment 1
        } else {
            None
        };
        let expected = match pointer_failure {
            Some(c) => Err(c),
            None => self.expected_read(which),
        };
        assert_eq!(
            got, expected,
            "reader {which} with {ptrs:?}, {:?}",
            self.model.outcome
        );
    }

    /// Op 15: `mp_packer_new` with bad out-pointers, `mp_version`, then a fresh packer.
    pub(super) fn renew(&mut self, r: &mut Reader<'_>) {
        match r.byte() % 3 {
            0 => {
                // SAFETY: NULL is allowed (refused with MP_RESULT_NULL_PARAMETER).
                let rc = code(unsafe { mp_packer_new(null_mut()) });
                assert_eq!(rc, mp_result::NullParameter, "mp_packer_new(NULL)");
            }
            1 => {
                let mut out = Slot::<*mut mp_packer>::new(OutKind::Misaligned);
                // SAFETY: `out.ptr()` points into `out.storage` with room for one pointer; it
                // is misaligned, which the function refuses before writing.
                let rc = code(unsafe { mp_packer_new(out.ptr()) });
                assert_eq!(rc, mp_result::InvalidArgument, "mp_packer_new(misaligned)");
                assert!(out.untouched(), "misaligned out_packer written");
            }
            _ => {}
        }
        // SAFETY: NULL is a documented no-op.
        unsafe { mp_packer_free(null_mut()) };
        // SAFETY: takes no arguments.
        let version = unsafe { mp_version() };
        assert!(!version.is_null(), "mp_version returned NULL");
        // SAFETY: `mp_version` returns a static NUL-terminated string (checked non-NULL).
        let version = unsafe { CStr::from_ptr(version) }.to_str();
        let parts: Vec<&str> = version.expect("UTF-8 version").split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "mp_version {parts:?} is not MAJOR.MINOR.PATCH"
        );
        let fresh = Session::new();
        // The old packer is dropped (freed) here.
        *self = fresh;
    }
}
