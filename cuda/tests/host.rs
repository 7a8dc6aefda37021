//! Every executor path on the Host backend (no GPU needed).

mod common;

use memplan_core::allocator::OnlineAllocator;
use memplan_core::allocator::online::{DEFAULT_BASE, OnlineConfig};
use memplan_cuda::{
    Backend, CopyEngine, DeviceArena, DiskTier, ExpandableSegment, HostBackend, HostConfig,
    PinnedPool, StreamHandle, Tier, TierStore,
};
use proptest::prelude::*;

fn host(budget: u64, granularity: u64) -> HostBackend {
    HostBackend::new(HostConfig {
        budget,
        granularity,
        ..HostConfig::default()
    })
}

#[test]
fn arena_round_trip() {
    common::arena_round_trip(host(64 << 20, 64 << 10), 64 << 20);
}

#[test]
fn stitching() {
    common::stitch_reuses_pages(host(1 << 20, 4096));
}

#[test]
fn tiers() {
    let dir = std::env::temp_dir().join(format!("memplan-host-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    common::chunk_through_tiers(host(1 << 20, 4096), &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn execute_plan() {
    let dir = std::env::temp_dir().join(format!("memplan-host-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    common::execute_plan(host(1 << 20, 4096), &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn budget() {
    common::budget_is_enforced(host(10 * 4096, 4096), 10 * 4096);
}

#[test]
fn vmm_rules_follow_the_driver() {
    let mut b = host(1 << 20, 4096);
    let va = b.va_reserve(4 * 4096).unwrap();
    let h = b.phys_create(4096).unwrap();
    assert!(b.map(va + 1, 4096, h).is_err(), "misaligned");
    assert!(
        b.map(va + 4 * 4096, 4096, h).is_err(),
        "outside the reservation"
    );
    assert!(b.map(va, 8192, h).is_err(), "size differs from the handle");
    b.map(va, 4096, h).unwrap();
    assert!(b.map(va, 4096, h).is_err(), "over a mapping");
    b.map(va + 4096, 4096, h).unwrap(); // same physical page twice: aliases
    common::write(&mut b, va, b"alias");
    assert_eq!(common::read(&mut b, va + 4096, 5), b"alias");
    assert!(b.va_free(va, 4 * 4096).is_err(), "still mapped");
    assert!(b.unmap(va, 4096 + 1).is_err(), "partial");
    b.phys_release(h).unwrap();
    assert_eq!(b.used(), 4096, "released but mapped: still counted");
    b.unmap(va, 8192).unwrap();
    assert_eq!(b.used(), 0);
    b.va_free(va, 4 * 4096).unwrap();
    let mut out = [0u8; 4];
    // SAFETY: `out` outlives the (immediate) copy.
    let r = unsafe { b.copy_d2h(out.as_mut_ptr(), va, 4, StreamHandle::DEFAULT) };
    assert!(r.is_err(), "unmapped read");
}

/// Copies overlap compute on the simulated clock: an offload waits only for the kernel that
/// produced its data, and a prefetch fence holds back only the kernel that reads it.
#[test]
fn copies_overlap_compute() {
    let mut b = HostBackend::new(HostConfig {
        budget: 64 << 20,
        granularity: 4096,
        h2d_bytes_per_s: 1 << 30,
        d2h_bytes_per_s: 1 << 30,
        copy_latency_ns: 0,
        ..HostConfig::default()
    });
    let compute = b.stream_create().unwrap();
    let mut engine = CopyEngine::new(&mut b).unwrap();
    let mut pool = PinnedPool::new(1 << 20, 4).unwrap();
    let dev = b.mem_alloc(2 << 20).unwrap();
    let ms = 1_000_000;
    b.simulate_kernel(compute, 2 * ms); // kernel 1 writes A
    let buf = pool.acquire(&mut b).unwrap();
    let off = engine
        .download(&mut b, dev, buf, 1 << 20, Some(compute))
        .unwrap();
    b.simulate_kernel(compute, 2 * ms); // kernel 2 runs while A is offloaded
    let buf = pool.acquire(&mut b).unwrap();
    let pre = engine
        .upload(&mut b, buf, dev + (1 << 20), 1 << 20, None)
        .unwrap();
    engine.fence(&mut b, pre, compute).unwrap();
    b.simulate_kernel(compute, 2 * ms); // kernel 3 reads B
    let copy_ns = 1_000_000_000u64 / 1024; // 1 MiB at 1 GiB/s
    let d2h = engine.stream(memplan_cuda::Direction::DeviceToHost);
    assert_eq!(
        b.stream_ready_ns(d2h),
        2 * ms + copy_ns,
        "offload starts after kernel 1"
    );
    assert_eq!(
        b.stream_ready_ns(compute),
        6 * ms,
        "copies hidden behind compute"
    );
    assert!(!engine.is_done(&mut b, off).unwrap());
    b.stream_synchronize(compute).unwrap();
    let done = engine.poll(&mut b).unwrap();
    assert_eq!(done.len(), 2);
    for c in done {
        assert!((c.device_ms - copy_ns as f32 / 1e6).abs() < 1e-3);
        pool.release(c.buf).unwrap();
    }
    assert_eq!(pool.trim(&mut b).unwrap(), 2);
}

/// The constructors return errors for bad input instead of panicking or aborting: a zero
/// size, a size past `u64`, a window too large for its page table in host memory (an abort
/// in the allocator before), a disk tier whose slots do not hold a chunk.
#[test]
fn constructors_reject_bad_input() {
    let mut b = host(1 << 20, 512);
    assert!(ExpandableSegment::new(&mut b, 0).is_err());
    // 2^54 pages of 512 bytes: a page table of 2^58 bytes, more than any address space.
    let e = ExpandableSegment::new(&mut b, 1 << 63).unwrap_err();
    assert!(e.to_string().contains("too many"), "{e}");
    assert!(b.mappings().is_empty());
    let alloc = || OnlineAllocator::with_capacity(1 << 20);
    assert!(DeviceArena::new(host(1 << 20, 512), alloc(), DEFAULT_BASE, 0).is_err());
    assert!(DeviceArena::new(host(1 << 20, 512), alloc(), DEFAULT_BASE, 1 << 63).is_err());
    assert!(DeviceArena::new(host(1 << 20, 512), alloc(), DEFAULT_BASE, 1 << 20).is_ok());
    assert!(PinnedPool::new(0, 4).is_err());
    assert!(
        PinnedPool::new(u64::MAX, 4).is_err(),
        "rounding up overflows"
    );
    let dir = std::env::temp_dir().join(format!("memplan-host-ctors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(DiskTier::create(dir.join("zero.bin"), 0).is_err());
    assert!(DiskTier::create(dir.join("huge.bin"), u64::MAX).is_err());
    assert!(TierStore::new(&mut b, 0, 4, None).is_err());
    let disk = DiskTier::create(dir.join("small.bin"), 4096).unwrap();
    assert!(TierStore::new(&mut b, 8192, 4, Some(disk)).is_err());
    let disk = DiskTier::create(dir.join("fits.bin"), 8192).unwrap();
    assert!(TierStore::new(&mut b, 8192, 4, Some(disk)).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(CopyEngine::new(&mut b).is_ok());
}

/// The executor's tiers are core's placement tiers: one enum, `Nvme` included.
#[test]
fn tiers_are_cores() {
    let t: memplan_core::chunk::Tier = Tier::Nvme;
    assert_eq!(t.name(), "nvme");
    assert_eq!(Tier::ALL, memplan_core::chunk::Tier::ALL);
}

/// A block freed on one stream is not handed out again until that stream's queued work is
/// done.
#[test]
fn cross_stream_free_waits_for_the_stream() {
    let b = host(64 << 20, 4096);
    let mut arena = DeviceArena::new(
        b,
        OnlineAllocator::new(OnlineConfig {
            base: DEFAULT_BASE,
            page_size: 4096,
            capacity: Some(1 << 20),
        })
        .expect("a valid page layout"),
        DEFAULT_BASE,
        1 << 20,
    )
    .unwrap();
    let s1 = StreamHandle(0x100);
    let s2 = StreamHandle(0x200);
    let p = arena.alloc(1 << 20, s1).unwrap();
    arena.backend_mut().simulate_kernel(s1, 5_000);
    arena.free_on_stream(p, s1).unwrap();
    assert_eq!(arena.reclaim().unwrap(), 0, "kernel still running");
    arena.backend_mut().advance(1_000);
    assert_eq!(arena.reclaim().unwrap(), 0);
    // The whole capacity is pending: this allocation waits for it (OOM retry) and gets it.
    let q = arena.alloc(1 << 20, s2).unwrap();
    assert_eq!(q, p);
    assert_eq!(arena.stats().oom_retries, 1);
    assert!(arena.backend_mut().now_ns() >= 5_000, "waited for stream 1");
    assert!(arena.free_on_stream(p, s2).is_ok());
    assert!(arena.free_on_stream(p, s2).is_err(), "double free");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 0, ..ProptestConfig::default() })]
    /// Random alloc/free sequences: every live allocation keeps its own bytes (no overlap),
    /// pages mapped always cover the live allocations.
    #[test]
    fn arena_shadow(ops in proptest::collection::vec((0u8..3, 0u64..20_000), 1..60)) {
        let b = host(64 << 20, 4096);
        let mut arena = DeviceArena::new(b, OnlineAllocator::with_capacity(4 << 20), DEFAULT_BASE, 4 << 20).unwrap();
        let mut live: Vec<(u64, Vec<u8>)> = Vec::new();
        for (i, (op, n)) in ops.into_iter().enumerate() {
            if op < 2 || live.is_empty() {
                let Ok(p) = arena.alloc(n, StreamHandle::DEFAULT) else { continue };
                let data = common::pattern(i as u8, n as usize);
                common::write(arena.backend_mut(), p, &data);
                live.push((p, data));
            } else {
                let (p, data) = live.swap_remove(n as usize % live.len());
                prop_assert_eq!(common::read(arena.backend_mut(), p, data.len()), data);
                arena.free(p).unwrap();
                if i % 3 == 0 {
                    arena.trim().unwrap();
                }
            }
        }
        for (p, data) in &live {
            prop_assert_eq!(&common::read(arena.backend_mut(), *p, data.len()), data);
        }
    }
}
