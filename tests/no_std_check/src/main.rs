//! A `#![no_std]`, `#![no_main]` program that plans a few buffers with `memplan-core` and
//! checks the plan, exiting with 0 on success (`scripts/test.sh` runs it).
//!
//! What it proves: `memplan-core` and its dependencies build and run with only `core` and
//! `alloc`. If any crate in the graph linked `std`, the build would fail with "found
//! duplicate lang item `panic_impl`", because std brings its own panic handler and this
//! program defines one too.
//!
//! How it links (x86_64 Linux, the only target installed here; no bare-metal target):
//! - the C runtime still starts the process: the linker adds `crt1.o`, whose `_start` calls
//!   `__libc_start_main`, which calls our `#[unsafe(no_mangle)] extern "C" fn main`. So no
//!   `-nostartfiles` and no `_start` of our own;
//! - without std nothing asks for libc, yet `crt1.o` needs `__libc_start_main` and `core`
//!   needs `memcpy`/`memset`/`memcmp`/`bcmp`: the `#[link(name = "c")]` block below pulls in
//!   libc (it also supplies `write` and `abort`);
//! - `panic = "abort"` in both profiles (Cargo.toml). Our code then has no landing pads, but
//!   the precompiled `alloc` from the sysroot was built with `panic = "unwind"`, and functions
//!   we pull from it (`alloc::fmt::format` for one) still refer to `_Unwind_Resume` and
//!   `rust_eh_personality`. Linking fails on those two symbols ("undefined symbol:
//!   _Unwind_Resume"). Both are reached only while unwinding, which never starts here (the
//!   panic handler aborts), so stubs that abort satisfy the linker (see the end of this file).
//!   Rebuilding `alloc` with `-Zbuild-std=core,alloc -Zbuild-std-features=panic_immediate_abort`
//!   would avoid them but needs nightly;
//! - memory comes from a bump allocator over a static array (never frees; plenty for this).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicUsize, Ordering};

use memplan_core::{Budget, Buffer, Error, PackOptions, Problem, check, pack};

#[link(name = "c")]
unsafe extern "C" {
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn abort() -> !;
}

/// Bytes the bump allocator can hand out in total (the program uses about 1.6 MB). The array
/// is zero-initialised, so it lives in `.bss` and costs no file size.
const HEAP_SIZE: usize = 16 << 20;

/// A bump allocator: `next` is the offset of the first free byte of `heap`; bytes below it
/// are allocated for good (dealloc does nothing).
struct Bump {
    heap: UnsafeCell<[u8; HEAP_SIZE]>,
    next: AtomicUsize,
}

// SAFETY: `alloc` hands out disjoint ranges of `heap`, reserved atomically through `next`, so
// threads never share a byte; the array itself is never accessed through a reference.
unsafe impl Sync for Bump {}

// SAFETY: every pointer returned lies inside `heap`, is aligned to `layout.align()`, has
// `layout.size()` bytes that no other allocation overlaps, and stays valid forever; null is
// returned when the heap is exhausted.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.heap.get().cast::<u8>();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let addr = base as usize + next;
            let start = addr.next_multiple_of(layout.align()) - base as usize;
            let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= HEAP_SIZE) else {
                return core::ptr::null_mut();
            };
            match self
                .next
                .compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // SAFETY: `start <= end <= HEAP_SIZE`, so the offset stays inside `heap`.
                Ok(_) => return unsafe { base.add(start) },
                Err(current) => next = current,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    heap: UnsafeCell::new([0; HEAP_SIZE]),
    next: AtomicUsize::new(0),
};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Stdout, "no_std check: {info}");
    // SAFETY: `abort` has no preconditions; it ends the process.
    unsafe { abort() }
}

/// Never called: referenced only by the unwind tables of the precompiled `alloc` (see the
/// crate docs), and nothing unwinds in this program.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {
    say(b"no_std check: unexpected unwinding\n");
    // SAFETY: `abort` has no preconditions; it ends the process.
    unsafe { abort() }
}

/// Never called, as [`rust_eh_personality`].
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    say(b"no_std check: unexpected unwinding\n");
    // SAFETY: `abort` has no preconditions; it ends the process.
    unsafe { abort() }
}

/// Writes `msg` to stdout, ignoring errors (nothing to report them to).
fn say(msg: &[u8]) {
    // SAFETY: `msg` is a valid slice of `msg.len()` readable bytes for the whole call.
    unsafe { write(1, msg.as_ptr().cast(), msg.len()) };
}

/// Standard output for `write!`, without std.
struct Stdout;

impl core::fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        say(s.as_bytes());
        Ok(())
    }
}

/// What went wrong, as the process exit code.
fn run() -> Result<(), c_int> {
    let buffers = [
        Buffer::new("a", 0, 2, 4),
        Buffer::new("b", 1, 3, 4),
        Buffer::new("c", 2, 4, 4),
        Buffer::new("d", 0, 4, 3).with_alignment(8),
    ];
    let p = Problem::from_buffers(buffers).map_err(|_| 2)?;
    if p.max_load() != 11 {
        return Err(3);
    }
    let s = pack(&p, PackOptions::default()).map_err(|_| 4)?;
    check::verify(p.buffers(), &s.placements(&p), Some(s.peak)).map_err(|_| 5)?;
    // `d` (alive throughout) at 0, two 4-byte buffers above it at every moment.
    if s.peak != 11 || !s.optimal || s.offsets.len() != 4 {
        return Err(6);
    }
    // A capacity below the max load is refused, as a value.
    let mut never = || false;
    let tight = PackOptions {
        capacity: Some(10),
        budget: Budget {
            max_nodes: Some(100),
            stop: Some(&mut never),
        },
    };
    match pack(&p, tight) {
        Err(Error::CapacityExceeded { proven: true, .. }) => {}
        _ => return Err(7),
    }
    // Allocation-heavy path: many buffers.
    let many: Vec<Buffer> = (0..200u64)
        .map(|i| {
            Buffer::new(
                alloc::format!("t{i}"),
                i % 17,
                i % 17 + 1 + i % 5,
                1 + i % 7,
            )
        })
        .collect();
    let p = Problem::from_buffers(many).map_err(|_| 8)?;
    let opts = PackOptions {
        capacity: None,
        budget: Budget {
            max_nodes: Some(1_000),
            stop: None,
        },
    };
    let s = pack(&p, opts).map_err(|_| 9)?;
    check::verify(p.buffers(), &s.placements(&p), None).map_err(|_| 10)?;
    Ok(())
}

/// The C runtime's entry point (see the crate docs).
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    match run() {
        Ok(()) => {
            let used = ALLOCATOR.next.load(Ordering::Relaxed);
            let _ = writeln!(Stdout, "no_std check: ok ({used} heap bytes used)");
            0
        }
        Err(code) => {
            say(b"no_std check: FAILED\n");
            code
        }
    }
}
