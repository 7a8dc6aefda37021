//! Out-parameters of the fuzzed calls: where they point ([`OutKind`], [`Ptrs`]), storage
//! filled with a sentinel so that writes can be seen ([`Slot`]), and the values read back
//! ([`Value`]).

use super::*;

/// Where an out-parameter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutKind {
    /// Into a properly aligned slot.
    Valid,
    /// NULL.
    Null,
    /// One byte into a slot: misaligned for any type with alignment above 1.
    Misaligned,
}

/// The pointers of one call: whether the packer handle is NULL, and where the out-parameter
/// points. Decoded from one byte, mostly all valid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ptrs {
    pub(super) packer_null: bool,
    pub(super) out: OutKind,
}

impl Ptrs {
    pub(super) fn decode(b: u8) -> Ptrs {
        let (packer_null, out) = match b % 16 {
            0 => (true, OutKind::Valid),
            1 => (false, OutKind::Null),
            2 => (false, OutKind::Misaligned),
            _ => (false, OutKind::Valid),
        };
        Ptrs { packer_null, out }
    }
}

/// Storage for one out-parameter of type `T` (at most 8 bytes, alignment at most 8), placed as
/// an [`OutKind`] says and filled with [`SENTINEL`] so that writes can be seen.
pub(super) struct Slot<T> {
    pub(super) storage: [u64; 3],
    pub(super) kind: OutKind,
    pub(super) _t: PhantomData<T>,
}

impl<T> Slot<T> {
    pub(super) fn new(kind: OutKind) -> Self {
        assert!(size_of::<T>() <= 8 && align_of::<T>() <= 8);
        Slot {
            storage: [u64::from_ne_bytes([SENTINEL; 8]); 3],
            kind,
            _t: PhantomData,
        }
    }

    /// Byte offset of the slot inside `storage`.
    pub(super) fn offset(&self) -> usize {
        usize::from(self.kind == OutKind::Misaligned)
    }

    /// True when the pointer handed out is misaligned for `T` (never for bytes and `bool`).
    pub(super) fn misaligned(&self) -> bool {
        self.kind == OutKind::Misaligned && align_of::<T>() > 1
    }

    /// The pointer to pass. Not NULL and in bounds for one `T` unless the kind says NULL.
    pub(super) fn ptr(&mut self) -> *mut T {
        match self.kind {
            OutKind::Null => null_mut(),
            _ => self
                .storage
                .as_mut_ptr()
                .cast::<u8>()
                .wrapping_add(self.offset())
                .cast::<T>(),
        }
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        self.storage.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// The `size_of::<T>()` bytes at the slot.
    pub(super) fn value_bytes(&self) -> Vec<u8> {
        let start = self.offset();
        self.bytes()[start..start + size_of::<T>()].to_vec()
    }

    pub(super) fn untouched(&self) -> bool {
        self.bytes().iter().all(|&b| b == SENTINEL)
    }

    /// The code that the pointer kinds alone force, checked before anything else: NULL
    /// packer or out-pointer, then a misaligned out-pointer.
    pub(super) fn pointer_failure(&self, packer_null: bool) -> Option<mp_result> {
        if packer_null || self.kind == OutKind::Null {
            Some(mp_result::NullParameter)
        } else if self.misaligned() {
            Some(mp_result::InvalidArgument)
        } else {
            None
        }
    }
}

impl Slot<u64> {
    pub(super) fn value(&self) -> u64 {
        let b: [u8; 8] = self.value_bytes().try_into().expect("8 bytes");
        u64::from_ne_bytes(b)
    }
}

impl Slot<usize> {
    pub(super) fn value(&self) -> usize {
        let b = self
            .value_bytes()
            .try_into()
            .expect("size_of::<usize>() bytes");
        usize::from_ne_bytes(b)
    }
}

impl Slot<bool> {
    pub(super) fn value(&self) -> bool {
        match self.value_bytes()[0] {
            0 => false,
            1 => true,
            b => panic!("bool out-parameter holds {b:#x}: not written, or not a bool"),
        }
    }
}

/// A value read through one of the `mp_packer_*` reader functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    U64(u64),
    Usize(usize),
    Bool(bool),
}

impl Value {
    pub(super) fn expect_u64(self) -> u64 {
        match self {
            Value::U64(v) => v,
            _ => panic!("{self:?} is not a u64"),
        }
    }

    pub(super) fn expect_bool(self) -> bool {
        match self {
            Value::Bool(v) => v,
            _ => panic!("{self:?} is not a bool"),
        }
    }
}
