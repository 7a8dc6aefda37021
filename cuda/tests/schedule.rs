//! Executing chunk placements (`memplan_core::chunk`) on the Host backend: every placement
//! runs with real bytes through device memory, pinned buffers and an NVMe file, every chunk is
//! checked after each round trip, the bytes moved equal the placement's, and prefetches
//! overlap the simulated compute.

use core::ptr::NonNull;
use std::path::PathBuf;

use memplan_core::chunk::{Layout, Placement, PlacementOptions, Policy, Schedule, Tensor, place};
use memplan_cuda::{
    Backend, DevPtr, EventHandle, ExecOptions, ExecReport, HostBackend, HostConfig, PhysHandle,
    StreamHandle, Tier, Verify, execute, fill_pattern,
};

/// Compute time of every moment, simulated ns.
const COMPUTE_NS: u64 = 20_000;

/// A 12-layer toy model, fp16 parameters, used forward (moments 0..12) then backward.
fn model() -> (Vec<Tensor>, Layout) {
    let n = 12u64;
    let tensors: Vec<Tensor> = (0..n)
        .map(|i| Tensor {
            name: format!("layer{i}.weight"),
            numel: 1000 + 700 * (i % 5),
            dtype_bytes: 2,
            first_use: i,
            last_use: 2 * n - 1 - i,
        })
        .collect();
    let layout = Layout::new(&tensors, 4096).unwrap();
    (tensors, layout)
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schedule-tests");
    std::fs::create_dir_all(&d).unwrap();
    d.join(format!("{name}-{}.nvme", std::process::id()))
}

struct Case {
    sizes: Vec<u64>,
    schedule: Schedule,
    plan: Placement,
    device: u64,
}

fn case(device: u64, host: u64, nvme: u64, policy: Policy, prefetch: bool, non_model: u64) -> Case {
    let (tensors, layout) = model();
    let schedule = Schedule::training(
        &layout,
        &tensors,
        |l| {
            if l.is_some() { non_model } else { 0 }
        },
    )
    .unwrap()
    .repeat(2)
    .unwrap();
    let sizes = layout.chunk_sizes();
    let plan = place(
        &sizes,
        &schedule,
        PlacementOptions {
            device,
            host,
            nvme,
            policy,
            prefetch,
        },
    )
    .unwrap();
    Case {
        sizes,
        schedule,
        plan,
        device,
    }
}

fn run(c: &Case, verify: Verify, name: &str) -> (ExecReport, HostBackend) {
    let mut b = HostBackend::new(HostConfig {
        budget: c.device,
        ..HostConfig::default()
    });
    let path = scratch(name);
    let report = execute(
        &mut b,
        &c.sizes,
        &c.schedule,
        &c.plan,
        &ExecOptions {
            disk_path: Some(&path),
            verify,
        },
        |b: &mut HostBackend, _m, s| {
            b.simulate_kernel(s, COMPUTE_NS);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!path.exists(), "the NVMe file is removed afterwards");
    (report, b)
}

fn to_device(bytes: &[[u64; 3]; 3]) -> u64 {
    bytes[Tier::Host as usize][Tier::Device as usize]
        + bytes[Tier::Nvme as usize][Tier::Device as usize]
}

#[test]
fn every_plan_runs_with_its_bytes_checked() {
    let (_, layout) = model();
    let total = layout.total_bytes().unwrap();
    let biggest = *layout.chunk_sizes().iter().max().unwrap();
    let per_position = total / u64::from(layout.positions());
    assert!(layout.positions() >= 4, "a model that needs several chunks");
    let mut nvme_used = false;
    for device in [
        per_position + 8192,
        2 * per_position,
        3 * per_position,
        total,
    ] {
        for (host, nvme) in [(total, 0), (total / 3, total + biggest)] {
            for policy in [Policy::Belady, Policy::Lru] {
                for non_model in [0u64, 4096] {
                    let dev = device + non_model;
                    let c = case(dev, host, nvme, policy, true, non_model);
                    let name = format!("d{device}-h{host}-{policy:?}-nm{non_model}");
                    for verify in [Verify::Full, Verify::Arrivals] {
                        let (r, b) = run(&c, verify, &name);
                        assert_eq!(r.bytes, c.plan.bytes, "{name}: bytes per tier pair");
                        assert_eq!(r.moves, c.plan.moves.len() as u64, "{name}");
                        let pre = c.plan.moves.iter().filter(|m| m.prefetch).count();
                        assert_eq!(r.prefetches, pre as u64, "{name}");
                        assert!(r.peak_device_bytes <= dev, "{name}: within the budget");
                        assert_eq!(b.used(), 0, "{name}: all device memory given back");
                        // Every chunk is checked at least once at the end; every return to
                        // the host, and with Full every arrival on the device, adds one.
                        let back_to_host =
                            c.plan.moves.iter().filter(|m| m.to == Tier::Host).count() as u64;
                        let mut min_checks = c.sizes.len() as u64 + back_to_host;
                        if verify == Verify::Full {
                            min_checks +=
                                c.plan.moves.iter().filter(|m| m.to == Tier::Device).count() as u64;
                        } else {
                            // Nothing but the plan's fetches is uploaded.
                            assert_eq!(b.stats().h2d_bytes, to_device(&r.bytes), "{name}");
                            let moments = c.schedule.moments.len() as f64;
                            assert!(r.elapsed_ms * 1e6 >= moments * COMPUTE_NS as f64 - 1.0);
                        }
                        assert!(r.checks >= min_checks, "{name}: {} checks", r.checks);
                        nvme_used |= c.plan.bytes[0][2] + c.plan.bytes[1][2] > 0;
                    }
                }
            }
        }
    }
    assert!(nvme_used, "some case goes through NVMe");
}

#[test]
fn prefetch_overlaps_copies_with_compute() {
    let (_, layout) = model();
    let total = layout.total_bytes().unwrap();
    let per_position = total / u64::from(layout.positions());
    for policy in [Policy::Belady, Policy::Lru] {
        let with = case(3 * per_position, total, 0, policy, true, 0);
        let without = case(3 * per_position, total, 0, policy, false, 0);
        let (a, _) = run(&with, Verify::Arrivals, "overlap-on");
        let (b, _) = run(&without, Verify::Arrivals, "overlap-off");
        assert!(with.plan.prefetched > 0);
        assert!(
            a.elapsed_ms < b.elapsed_ms,
            "{policy:?}: prefetch {} ms, none {} ms",
            a.elapsed_ms,
            b.elapsed_ms
        );
        let compute_ms = with.schedule.moments.len() as f64 * COMPUTE_NS as f64 / 1e6;
        assert!(a.elapsed_ms >= compute_ms - 1e-6);
        let (full, _) = run(&with, Verify::Full, "overlap-full");
        eprintln!(
            "{policy:?}: {} chunks, {} moments, {} moves, {} B host->device, {} B \
             device->host; compute {compute_ms:.3} ms; elapsed with prefetch {:.3} ms, \
             without {:.3} ms; Full check: {} chunk checks, {} B compared",
            with.sizes.len(),
            with.schedule.moments.len(),
            a.moves,
            a.bytes[1][0],
            a.bytes[0][1],
            a.elapsed_ms,
            b.elapsed_ms,
            full.checks,
            full.checked_bytes
        );
    }
}

#[test]
fn bad_plans_are_errors() {
    let (_, layout) = model();
    let total = layout.total_bytes().unwrap();
    let biggest = *layout.chunk_sizes().iter().max().unwrap();
    let c = case(total, total / 3, total + biggest, Policy::Belady, true, 0);
    let mut b = HostBackend::new(HostConfig {
        budget: total,
        ..HostConfig::default()
    });
    let nothing = |_: &mut HostBackend, _: u32, _| Ok(());
    let opts = ExecOptions {
        disk_path: None,
        verify: Verify::Arrivals,
    };
    let e = execute(&mut b, &c.sizes, &c.schedule, &c.plan, &opts, nothing).unwrap_err();
    assert!(e.to_string().contains("NVMe"), "{e}");
    let path = scratch("bad");
    let opts = ExecOptions {
        disk_path: Some(&path),
        verify: Verify::Arrivals,
    };
    let e = execute(&mut b, &c.sizes[1..], &c.schedule, &c.plan, &opts, nothing).unwrap_err();
    assert!(e.to_string().contains("chunk sizes"), "{e}");
    // A move whose `from` is wrong is caught when it is reached.
    let mut plan = c.plan.clone();
    let i = plan
        .moves
        .iter()
        .position(|m| m.from == Tier::Host)
        .unwrap();
    plan.moves[i].from = Tier::Nvme;
    let e = execute(&mut b, &c.sizes, &c.schedule, &plan, &opts, nothing).unwrap_err();
    assert!(e.to_string().contains("from the nvme"), "{e}");
    // A moment accessing a chunk the plan never fetched.
    let mut plan = c.plan.clone();
    let first = plan.moves[0];
    plan.moves.remove(0);
    let mut b = HostBackend::new(HostConfig {
        budget: total,
        ..HostConfig::default()
    });
    let e = execute(&mut b, &c.sizes, &c.schedule, &plan, &opts, nothing).unwrap_err();
    assert!(
        e.to_string().contains(&format!("chunk {}", first.chunk.0)),
        "{e}"
    );
}

#[test]
fn the_pattern_differs_between_chunks_and_versions() {
    let mut a = vec![0u8; 1000];
    let mut b = vec![0u8; 1000];
    fill_pattern(3, 0, &mut a);
    fill_pattern(3, 0, &mut b);
    assert_eq!(a, b);
    fill_pattern(4, 0, &mut b);
    assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() > 900);
    fill_pattern(3, 1, &mut b);
    assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() > 900);
}

/// A device that is too small for the plan's budget makes the run fail with an error value.
#[test]
fn a_smaller_device_than_planned_is_an_error() {
    let (_, layout) = model();
    let total = layout.total_bytes().unwrap();
    let per_position = total / u64::from(layout.positions());
    let c = case(2 * per_position, total, 0, Policy::Lru, true, 0);
    let mut b = HostBackend::new(HostConfig {
        budget: per_position / 2,
        ..HostConfig::default()
    });
    let r = execute(
        &mut b,
        &c.sizes,
        &c.schedule,
        &c.plan,
        &ExecOptions {
            disk_path: None,
            verify: Verify::Arrivals,
        },
        |_: &mut HostBackend, _, _| Ok(()),
    );
    assert!(
        matches!(r, Err(memplan_cuda::Error::OutOfMemory { .. })),
        "{r:?}"
    );
    let _ = b.mem_info();
}

/// The Host backend, except that the `nth` device-to-host copy flips one byte of what it
/// delivers: the executor must notice.
struct Flaky {
    inner: HostBackend,
    nth: u64,
    seen: u64,
}

impl Backend for Flaky {
    fn kind(&self) -> memplan_cuda::BackendKind {
        self.inner.kind()
    }
    fn granularity(&mut self) -> memplan_cuda::Result<u64> {
        self.inner.granularity()
    }
    fn mem_info(&mut self) -> memplan_cuda::Result<memplan_cuda::MemInfo> {
        self.inner.mem_info()
    }
    fn mem_alloc(&mut self, bytes: u64) -> memplan_cuda::Result<DevPtr> {
        self.inner.mem_alloc(bytes)
    }
    fn mem_free(&mut self, ptr: DevPtr) -> memplan_cuda::Result<()> {
        self.inner.mem_free(ptr)
    }
    fn va_reserve(&mut self, bytes: u64) -> memplan_cuda::Result<DevPtr> {
        self.inner.va_reserve(bytes)
    }
    fn va_free(&mut self, base: DevPtr, bytes: u64) -> memplan_cuda::Result<()> {
        self.inner.va_free(base, bytes)
    }
    fn phys_create(&mut self, bytes: u64) -> memplan_cuda::Result<PhysHandle> {
        self.inner.phys_create(bytes)
    }
    fn phys_release(&mut self, handle: PhysHandle) -> memplan_cuda::Result<()> {
        self.inner.phys_release(handle)
    }
    fn map(&mut self, va: DevPtr, bytes: u64, handle: PhysHandle) -> memplan_cuda::Result<()> {
        self.inner.map(va, bytes, handle)
    }
    fn unmap(&mut self, va: DevPtr, bytes: u64) -> memplan_cuda::Result<()> {
        self.inner.unmap(va, bytes)
    }
    fn host_alloc(&mut self, bytes: u64) -> memplan_cuda::Result<NonNull<u8>> {
        self.inner.host_alloc(bytes)
    }
    unsafe fn host_free(&mut self, ptr: NonNull<u8>, bytes: u64) -> memplan_cuda::Result<()> {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { self.inner.host_free(ptr, bytes) }
    }
    fn stream_create(&mut self) -> memplan_cuda::Result<StreamHandle> {
        self.inner.stream_create()
    }
    fn stream_destroy(&mut self, stream: StreamHandle) -> memplan_cuda::Result<()> {
        self.inner.stream_destroy(stream)
    }
    fn stream_synchronize(&mut self, stream: StreamHandle) -> memplan_cuda::Result<()> {
        self.inner.stream_synchronize(stream)
    }
    fn event_create(&mut self) -> memplan_cuda::Result<EventHandle> {
        self.inner.event_create()
    }
    fn event_destroy(&mut self, event: EventHandle) -> memplan_cuda::Result<()> {
        self.inner.event_destroy(event)
    }
    fn event_record(&mut self, e: EventHandle, s: StreamHandle) -> memplan_cuda::Result<()> {
        self.inner.event_record(e, s)
    }
    fn event_query(&mut self, event: EventHandle) -> memplan_cuda::Result<bool> {
        self.inner.event_query(event)
    }
    fn event_synchronize(&mut self, event: EventHandle) -> memplan_cuda::Result<()> {
        self.inner.event_synchronize(event)
    }
    fn event_elapsed_ms(&mut self, a: EventHandle, b: EventHandle) -> memplan_cuda::Result<f32> {
        self.inner.event_elapsed_ms(a, b)
    }
    fn stream_wait_event(&mut self, s: StreamHandle, e: EventHandle) -> memplan_cuda::Result<()> {
        self.inner.stream_wait_event(s, e)
    }
    unsafe fn copy_h2d(
        &mut self,
        dst: DevPtr,
        src: *const u8,
        bytes: u64,
        stream: StreamHandle,
    ) -> memplan_cuda::Result<()> {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { self.inner.copy_h2d(dst, src, bytes, stream) }
    }
    unsafe fn copy_d2h(
        &mut self,
        dst: *mut u8,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> memplan_cuda::Result<()> {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { self.inner.copy_d2h(dst, src, bytes, stream)? };
        self.seen += 1;
        if self.seen == self.nth && bytes > 100 {
            // SAFETY: `dst` is valid for writes of `bytes` (> 100) bytes by the caller's
            // guarantee, and the Host backend copied at once, so nothing else writes it now.
            unsafe { *dst.add(100) ^= 0x40 };
        }
        Ok(())
    }
    fn copy_d2d(
        &mut self,
        dst: DevPtr,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> memplan_cuda::Result<()> {
        self.inner.copy_d2d(dst, src, bytes, stream)
    }
}

#[test]
fn a_corrupted_copy_is_caught() {
    let (_, layout) = model();
    let total = layout.total_bytes().unwrap();
    let biggest = *layout.chunk_sizes().iter().max().unwrap();
    let per_position = total / u64::from(layout.positions());
    let c = case(
        2 * per_position,
        total / 3,
        total + biggest,
        Policy::Belady,
        true,
        0,
    );
    for verify in [Verify::Arrivals, Verify::Full] {
        for nth in [1u64, 5, 17] {
            let mut b = Flaky {
                inner: HostBackend::new(HostConfig {
                    budget: c.device,
                    ..HostConfig::default()
                }),
                nth,
                seen: 0,
            };
            let path = scratch(&format!("flaky{nth}"));
            let r = execute(
                &mut b,
                &c.sizes,
                &c.schedule,
                &c.plan,
                &ExecOptions {
                    disk_path: Some(&path),
                    verify,
                },
                |_: &mut Flaky, _, _| Ok(()),
            );
            let e = r.expect_err("a flipped byte must be caught").to_string();
            assert!(e.contains("corrupted") && e.contains("byte 100"), "{e}");
        }
    }
}
