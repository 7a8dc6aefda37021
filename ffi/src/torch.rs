//! PyTorch's pluggable-allocator entry points (`torch.cuda.memory.CUDAPluggableAllocator`):
//! `mp_torch_malloc` / `mp_torch_free`, serving device memory from a memplan allocator through
//! a `memplan_cuda::DeviceArena`.
//!
//! One process-wide arena, made on the first call from environment variables:
//!
//! | variable | values | default |
//! |---|---|---|
//! | `MEMPLAN_BACKEND` | `cuda` (the driver), `host` (simulated device, for tests) | `cuda` |
//! | `MEMPLAN_ALLOCATOR` | an allocator of `memplan_core::allocator::registry`: `online` (memplan's online best fit), `torch` (PyTorch's caching allocator model), `torch-expandable`, `guided` (plan-guided) | `online` |
//! | `MEMPLAN_PLAN` | path of a plan file (`memplan plan-trace …`), for `guided` | — |
//! | `MEMPLAN_CAPACITY` | bytes the allocator may use, a byte size: `17179869184`, `16GiB` (2^30 each), `512MB` (10^6 each), `1.5e9` (the `parse-size` crate, as `memplan --capacity`); more than 0 and below 2^64 | 90 % of free device memory (`cuda`), 1 GiB (`host`) |
//!
//! A configuration error (bad value, no driver, unreadable plan) makes every `mp_torch_malloc`
//! return NULL (PyTorch then raises its out-of-memory error); `mp_torch_last_error` says why.
//! Only one device is served: the first `device` seen; calls for another return NULL.
//!
//! Streams: a free records an event on the allocation's stream and the block returns to the
//! allocator only once that event has completed, so memory freed on one stream is never
//! handed to another stream while queued work may still use it.

use core::ffi::{c_char, c_void};
use std::sync::Mutex;

use memplan_core::allocator::Addr;
use memplan_core::allocator::registry::{self, AllocatorKind, BoxedAllocator, Settings};
use memplan_core::plan::Plan;
use memplan_cuda::{Backend, CudaBackend, DeviceArena, HostBackend, HostConfig, StreamHandle};

use crate::error::{mp_result, write_c_string};
use crate::panic::PanicOrDefault;

impl PanicOrDefault for *mut c_void {
    fn value() -> Self {
        core::ptr::null_mut()
    }
}

/// The arena on either backend, over any allocator of the registry.
#[derive(Debug)]
enum Arena {
    Host(Box<DeviceArena<BoxedAllocator, HostBackend>>),
    Cuda(Box<DeviceArena<BoxedAllocator, CudaBackend>>),
}

macro_rules! on_arena {
    ($arena:expr, $a:ident => $body:expr) => {
        match $arena {
            Arena::Host($a) => $body,
            Arena::Cuda($a) => $body,
        }
    };
}

/// The process-wide state.
struct State {
    /// The arena, or why there is none.
    arena: Result<Arena, String>,
    /// The device served.
    device: i32,
    /// The last error, for `mp_torch_last_error`.
    last_error: String,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Settings read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    backend: String,
    allocator: AllocatorKind,
    plan: Option<String>,
    capacity: Option<u64>,
}

impl Config {
    fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let capacity = match get("MEMPLAN_CAPACITY") {
            None => None,
            Some(v) => Some(parse_capacity(&v)?),
        };
        let allocator = match get("MEMPLAN_ALLOCATOR") {
            None => AllocatorKind::Online,
            Some(v) => v
                .parse::<AllocatorKind>()
                .map_err(|e| format!("MEMPLAN_ALLOCATOR: {e}"))?,
        };
        Ok(Config {
            backend: get("MEMPLAN_BACKEND").unwrap_or_else(|| "cuda".into()),
            allocator,
            plan: get("MEMPLAN_PLAN"),
            capacity,
        })
    }
}

/// Parses `MEMPLAN_CAPACITY`: a byte size as `memplan --capacity` takes it (same crate, same
/// units: `KB`/`MB`/... are powers of 1000, `KiB`/`MiB`/... powers of 1024), more than 0. Sizes
/// of 2^64 bytes or more are an error, never a wrapped value.
fn parse_capacity(v: &str) -> Result<u64, String> {
    match parse_size::parse_size(v) {
        Ok(0) => Err(format!(
            "MEMPLAN_CAPACITY={v:?}: the capacity must be more than 0 bytes"
        )),
        Ok(c) => Ok(c),
        Err(parse_size::Error::PosOverflow) => Err(format!(
            "MEMPLAN_CAPACITY={v:?} is too large: byte sizes must be below 2^64"
        )),
        Err(_) => Err(format!(
            "MEMPLAN_CAPACITY={v:?} is not a byte size (e.g. 16GiB, 512MB, 1.5e9, 17179869184)"
        )),
    }
}

/// The allocator, its address base and the window it needs, for `capacity` bytes.
fn make_allocator(cfg: &Config, capacity: u64) -> Result<(BoxedAllocator, Addr, u64), String> {
    let kind = cfg.allocator;
    let plan = match (kind, cfg.plan.as_deref()) {
        (AllocatorKind::Guided, None) => {
            return Err(format!("MEMPLAN_ALLOCATOR={kind} needs MEMPLAN_PLAN"));
        }
        (AllocatorKind::Guided, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| format!("MEMPLAN_PLAN={path}: {e}"))?;
            let plan = Plan::from_bytes(&bytes).map_err(|e| format!("MEMPLAN_PLAN={path}: {e}"))?;
            Some(plan)
        }
        _ => None,
    };
    let settings = Settings {
        capacity: Some(capacity),
        plan,
        ..Settings::default()
    };
    let (base, window) = kind
        .address_window(&settings)
        .ok_or("MEMPLAN_CAPACITY too large")?;
    let a =
        registry::build(kind, &settings).map_err(|e| format!("MEMPLAN_ALLOCATOR={kind}: {e}"))?;
    Ok((a, base, window))
}

fn make_arena(cfg: &Config, device: i32) -> Result<Arena, String> {
    match cfg.backend.as_str() {
        "host" => {
            let capacity = cfg.capacity.unwrap_or(1 << 30);
            let (a, base, window) = make_allocator(cfg, capacity)?;
            let backend = HostBackend::new(HostConfig {
                budget: window,
                ..HostConfig::default()
            });
            DeviceArena::new(backend, a, base, window)
                .map(|a| Arena::Host(Box::new(a)))
                .map_err(|e| e.to_string())
        }
        "cuda" => {
            let mut backend = CudaBackend::new(device).map_err(|e| e.to_string())?;
            let capacity = match cfg.capacity {
                Some(c) => c,
                None => backend.mem_info().map_err(|e| e.to_string())?.free / 10 * 9,
            };
            let (a, base, window) = make_allocator(cfg, capacity)?;
            DeviceArena::new(backend, a, base, window)
                .map(|a| Arena::Cuda(Box::new(a)))
                .map_err(|e| e.to_string())
        }
        other => Err(format!("MEMPLAN_BACKEND={other:?}: expected cuda or host")),
    }
}

/// Runs `f` on the state, creating it from the environment first if needed. A poisoned lock
/// (a panic inside an earlier call) is reported as an error, not used.
fn with_state<T>(device: i32, f: impl FnOnce(&mut State) -> T) -> Result<T, ()> {
    let mut guard = STATE.lock().map_err(|_| ())?;
    let state = guard.get_or_insert_with(|| {
        let arena =
            Config::from_env(|k| std::env::var(k).ok()).and_then(|cfg| make_arena(&cfg, device));
        let last_error = arena.as_ref().err().cloned().unwrap_or_default();
        State {
            arena,
            device,
            last_error,
        }
    });
    Ok(f(state))
}

/// Allocates `size` bytes of device memory on `device` for use on `stream`; the
/// `CUDAPluggableAllocator` malloc function.
///
/// Returns a device pointer, or NULL when the request cannot be served (out of memory, a
/// negative size, another device than the first one served, a configuration error; see
/// `mp_torch_last_error`). `size == 0` is accepted and returns a distinct non-NULL pointer.
/// The first call reads the configuration from the environment (see the README).
///
/// # Safety
/// - `stream`: a CUDA stream of `device`'s primary context, or NULL for the default stream
///   (with `MEMPLAN_BACKEND=host` any value is accepted and only names a stream).
///
/// # Ownership
/// The memory belongs to the caller until passed to `mp_torch_free`.
///
/// # Thread safety
/// Safe to call from any thread; calls are serialized by a lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_torch_malloc(
    size: isize,
    device: i32,
    stream: *mut c_void,
) -> *mut c_void {
    ffi_panic_boundary! {
        let r = with_state(device, |st| {
            let size = match u64::try_from(size) {
                Ok(s) => s,
                Err(_) => {
                    st.last_error = format!("mp_torch_malloc: negative size {size}");
                    return core::ptr::null_mut();
                }
            };
            if device != st.device {
                st.last_error = format!("mp_torch_malloc: device {device}, but this process serves device {}", st.device);
                return core::ptr::null_mut();
            }
            let s = StreamHandle(stream as u64);
            let r = match &mut st.arena {
                Ok(arena) => on_arena!(arena, a => a.alloc(size, s).map_err(|e| e.to_string())),
                Err(e) => Err(format!("memplan is not configured: {e}")),
            };
            match r {
                Ok(p) => p as *mut c_void,
                Err(e) => {
                    st.last_error = format!("mp_torch_malloc({size}): {e}");
                    core::ptr::null_mut()
                }
            }
        });
        r.unwrap_or(core::ptr::null_mut())
    }
}

/// Frees memory from `mp_torch_malloc`; the `CUDAPluggableAllocator` free function.
///
/// The block is reused only after the work queued on `stream` (the allocation's stream, which
/// PyTorch passes) at the time of this call has completed. NULL is a no-op. An unknown
/// pointer is ignored and recorded for `mp_torch_last_error` (never undefined behaviour).
///
/// # Safety
/// - `ptr`: NULL, or a pointer from `mp_torch_malloc` not freed since.
/// - `stream`: as for `mp_torch_malloc`.
///
/// # Thread safety
/// Safe to call from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_torch_free(
    ptr: *mut c_void,
    size: isize,
    device: i32,
    stream: *mut c_void,
) {
    ffi_panic_boundary! {
        if ptr.is_null() {
            return;
        }
        let _ = with_state(device, |st| {
            let s = StreamHandle(stream as u64);
            let r = match &mut st.arena {
                Ok(arena) => on_arena!(arena, a => a.free_on_stream(ptr as u64, s).map_err(|e| e.to_string())),
                Err(e) => Err(format!("memplan is not configured: {e}")),
            };
            if let Err(e) = r {
                st.last_error = format!("mp_torch_free({ptr:p}, {size}): {e}");
            }
        });
    }
}

/// Copies the last error of `mp_torch_malloc`/`mp_torch_free` (empty if none) into `buf`,
/// `snprintf`-style as `mp_result_message`; `*out_n` receives its full length.
///
/// # Safety
/// - `buf`: NULL only when `len` is 0; otherwise valid for writes of `len` bytes.
/// - `out_n`: non-NULL, aligned, valid for one `size_t` write.
///
/// # Thread safety
/// Safe from any thread; another thread's call may replace the message meanwhile.
///
/// # NULL
/// `MP_RESULT_NULL_PARAMETER` when `out_n` is NULL, or `buf` is NULL with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_torch_last_error(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let out_n = check_out!(out_n);
        if buf.is_null() && len > 0 {
            return mp_result::NullParameter;
        }
        let msg = match STATE.lock() {
            Ok(g) => g.as_ref().map(|s| s.last_error.clone()).unwrap_or_default(),
            Err(_) => "a panic was caught inside mp_torch_malloc/mp_torch_free; memplan is disabled".to_string(),
        };
        // SAFETY: `buf` is valid for `len` bytes when `len > 0` (caller) and non-NULL then.
        let n = unsafe { write_c_string(&msg, buf, len) };
        // SAFETY: `out_n` is non-NULL and aligned (checked) and valid for one write (caller).
        unsafe { out_n.write(n) };
        mp_result::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_env(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.backend.as_str(), c.allocator, c.capacity),
            ("cuda", AllocatorKind::Online, None)
        );
        assert!(cfg(&[("MEMPLAN_CAPACITY", "lots")]).is_err());
        assert!(cfg(&[("MEMPLAN_CAPACITY", "0")]).is_err());
        for (v, want) in [
            ("16GiB", 16 << 30),
            ("512MB", 512_000_000),
            ("1.5e9", 1_500_000_000),
            (" 67108864 ", 67_108_864),
            ("18446744073709551615", u64::MAX),
        ] {
            let c = cfg(&[("MEMPLAN_CAPACITY", v)]).unwrap();
            assert_eq!(c.capacity, Some(want), "{v}");
        }
        for (v, why) in [
            ("18446744073709551616", "too large"),
            ("16EiB", "too large"),
            ("1e30", "too large"),
            ("-1", "not a byte size"),
            ("", "not a byte size"),
            ("16 GiBs", "not a byte size"),
        ] {
            let e = cfg(&[("MEMPLAN_CAPACITY", v)]).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
        for old in ["nope", "memplan", "plan"] {
            let e = cfg(&[("MEMPLAN_BACKEND", "host"), ("MEMPLAN_ALLOCATOR", old)]).unwrap_err();
            assert!(e.contains("torch, torch-expandable, online, guided"), "{e}");
        }
        let no_plan = cfg(&[("MEMPLAN_BACKEND", "host"), ("MEMPLAN_ALLOCATOR", "guided")]).unwrap();
        assert!(
            make_arena(&no_plan, 0)
                .unwrap_err()
                .contains("MEMPLAN_PLAN")
        );
        let missing = cfg(&[
            ("MEMPLAN_BACKEND", "host"),
            ("MEMPLAN_ALLOCATOR", "guided"),
            ("MEMPLAN_PLAN", "/nonexistent/x.plan"),
        ])
        .unwrap();
        assert!(make_arena(&missing, 0).is_err());
        let bk = cfg(&[("MEMPLAN_BACKEND", "tpu")]).unwrap();
        assert!(make_arena(&bk, 0).is_err());
    }

    #[test]
    fn every_allocator_serves_host_arenas() {
        for name in ["online", "torch", "torch-expandable"] {
            let c = cfg(&[
                ("MEMPLAN_BACKEND", "host"),
                ("MEMPLAN_ALLOCATOR", name),
                ("MEMPLAN_CAPACITY", "67108864"),
            ])
            .unwrap();
            let Arena::Host(mut a) = make_arena(&c, 0).unwrap() else {
                panic!("host arena")
            };
            let mut ptrs = Vec::new();
            for (i, size) in [0u64, 1, 1000, 3 << 20, 512].into_iter().enumerate() {
                let p = a.alloc(size, StreamHandle(i as u64 % 2)).unwrap();
                let data = vec![i as u8 + 1; size as usize];
                // SAFETY: `data` outlives the copy (the Host backend copies at once).
                unsafe {
                    a.backend_mut()
                        .copy_h2d(p, data.as_ptr(), size, StreamHandle::DEFAULT)
                        .unwrap()
                };
                ptrs.push((p, data));
            }
            for (p, data) in &ptrs {
                let mut back = vec![0u8; data.len()];
                // SAFETY: `back` outlives the copy.
                unsafe {
                    a.backend_mut()
                        .copy_d2h(
                            back.as_mut_ptr(),
                            *p,
                            data.len() as u64,
                            StreamHandle::DEFAULT,
                        )
                        .unwrap()
                };
                assert_eq!(&back, data, "{name}");
            }
            let mut sorted: Vec<u64> = ptrs.iter().map(|(p, _)| *p).collect();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), ptrs.len(), "{name}: distinct pointers");
            for (p, _) in ptrs {
                a.free_on_stream(p, StreamHandle(1)).unwrap();
            }
            assert_eq!(a.reclaim().unwrap(), 5, "{name}");
        }
    }

    #[test]
    fn guided_allocator_from_a_plan_file() {
        use memplan_core::plan::Slot;
        let slot = |size, offset, start, end| Slot {
            size,
            stream: 0,
            offset,
            start,
            end,
        };
        let plan = Plan {
            arena_size: 8192,
            prologue: vec![],
            iteration: vec![slot(4096, 0, 0, 2), slot(4096, 4096, 1, 2)],
        };
        let path = std::env::temp_dir().join(format!("memplan-torch-{}.plan", std::process::id()));
        std::fs::write(&path, plan.to_bytes()).unwrap();
        let c = cfg(&[
            ("MEMPLAN_BACKEND", "host"),
            ("MEMPLAN_ALLOCATOR", "guided"),
            ("MEMPLAN_PLAN", path.to_str().unwrap()),
            ("MEMPLAN_CAPACITY", "16777216"),
        ])
        .unwrap();
        let arena = make_arena(&c, 0);
        std::fs::remove_file(&path).unwrap();
        let Ok(Arena::Host(mut a)) = arena else {
            panic!("host arena")
        };
        let (base, _) = a.window();
        let x = a.alloc(4096, StreamHandle::DEFAULT).unwrap();
        let y = a.alloc(4096, StreamHandle::DEFAULT).unwrap();
        // Served from the plan: the planned offsets, at the window's base.
        assert_eq!((x - base, y - base), (0, 4096));
        assert_eq!(a.allocator().name(), "guided");
    }
}
