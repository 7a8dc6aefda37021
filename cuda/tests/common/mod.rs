//! Scenarios run on every backend: the Host backend (tests/host.rs) and the real Cuda
//! backend over the fake driver (tests/fake_driver.rs). Every round trip is checked byte for
//! byte.

#![allow(dead_code)]

use memplan_core::allocator::online::{DEFAULT_BASE, OnlineConfig};
use memplan_core::allocator::{Allocator, OnlineAllocator};
use memplan_cuda::{
    Backend, DevPtr, DeviceArena, DiskTier, Error, Stitcher, StreamHandle, Tier, TierStore,
};

const S: StreamHandle = StreamHandle::DEFAULT;

pub fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn write<B: Backend + ?Sized>(b: &mut B, p: DevPtr, data: &[u8]) {
    // SAFETY: `data` outlives the copy; the stream is synchronized before returning.
    unsafe { b.copy_h2d(p, data.as_ptr(), data.len() as u64, S).unwrap() };
    b.stream_synchronize(S).unwrap();
}

pub fn read<B: Backend + ?Sized>(b: &mut B, p: DevPtr, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    // SAFETY: `out` outlives the copy; the stream is synchronized before returning.
    unsafe { b.copy_d2h(out.as_mut_ptr(), p, n as u64, S).unwrap() };
    b.stream_synchronize(S).unwrap();
    out
}

/// Arena over `backend`: allocations are real pointers holding their bytes; trim gives pages
/// back; a request over the device budget is an error value.
pub fn arena_round_trip<B: Backend>(backend: B, budget: u64) {
    let page = {
        let mut b = backend;
        let g = b.granularity().unwrap();
        (b, g)
    };
    let (backend, g) = page;
    let cap = 16 * g;
    let alloc = OnlineAllocator::new(OnlineConfig {
        base: DEFAULT_BASE,
        page_size: g,
        capacity: Some(cap),
    })
    .expect("a valid page layout");
    let mut arena = DeviceArena::new(backend, alloc, DEFAULT_BASE, cap).unwrap();
    let sizes = [1u64, 700, g / 2, g, 3 * g + 5, 0, 4096];
    let mut live = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let p = arena.alloc(n, S).unwrap();
        let data = pattern(i as u8, n as usize);
        write(arena.backend_mut(), p, &data);
        live.push((p, data));
    }
    for (p, data) in &live {
        assert_eq!(&read(arena.backend_mut(), *p, data.len()), data);
    }
    let mapped = arena.stats().mapped;
    assert!(mapped >= sizes.iter().sum::<u64>());
    for (p, _) in live.drain(..) {
        arena.free(p).unwrap();
    }
    assert_eq!(arena.trim().unwrap(), mapped);
    assert_eq!(arena.stats().mapped, 0);
    assert!(arena.free(123).is_err());
    // The allocator's capacity is smaller than the budget: its OOM comes back as an error.
    assert!(matches!(
        arena.alloc(cap + 1, S),
        Err(Error::OutOfMemory { .. })
    ));
    let _ = budget;
}

/// Stitching: pages freed from different ranges are mapped into one contiguous range with no
/// new physical memory, keeping their bytes.
pub fn stitch_reuses_pages<B: Backend>(mut b: B) {
    let mut st = Stitcher::new(&mut b).unwrap();
    let g = st.page_size();
    let a = st.stitch(&mut b, g).unwrap();
    let m = st.stitch(&mut b, g).unwrap();
    let c = st.stitch(&mut b, g).unwrap();
    write(&mut b, a, &pattern(1, g as usize));
    write(&mut b, m, &pattern(2, g as usize));
    write(&mut b, c, &pattern(3, g as usize));
    st.unstitch(&mut b, a).unwrap();
    st.unstitch(&mut b, c).unwrap();
    assert_eq!(st.free_pages(), 2);
    let created = st.created_pages();
    let big = st.stitch(&mut b, 2 * g).unwrap();
    assert_eq!(st.created_pages(), created, "no new physical page");
    // Most recently freed first: c's page, then a's, contiguous in the new range.
    let both = read(&mut b, big, 2 * g as usize);
    assert_eq!(&both[..g as usize], &pattern(3, g as usize)[..]);
    assert_eq!(&both[g as usize..], &pattern(1, g as usize)[..]);
    // One copy across the page boundary of the stitched range.
    let span = pattern(9, g as usize);
    write(&mut b, big + g / 2, &span);
    assert_eq!(read(&mut b, big + g / 2, g as usize), span);
    assert_eq!(
        read(&mut b, m, g as usize),
        pattern(2, g as usize),
        "untouched"
    );
    assert!(st.unstitch(&mut b, big + 1).is_err());
    st.release(&mut b).unwrap();
}

/// A chunk goes device -> host -> disk -> host -> device and device -> disk -> device, with
/// its bytes intact.
pub fn chunk_through_tiers<B: Backend>(mut b: B, dir: &std::path::Path) {
    let n = 3 * 4096 + 100;
    let dev = b.mem_alloc(n).unwrap();
    let dev2 = b.mem_alloc(n).unwrap();
    let data = pattern(5, n as usize);
    write(&mut b, dev, &data);
    let disk = DiskTier::create(dir.join("tier.bin"), n).unwrap();
    eprintln!("disk tier O_DIRECT: {}", disk.is_direct());
    let mut ts = TierStore::new(&mut b, n, 2, Some(disk)).unwrap();
    ts.insert_device(7, dev).unwrap();
    let id = ts.move_chunk(&mut b, 7, Tier::Host, None, Some(S)).unwrap();
    assert!(id.is_some());
    let moved = ts.sync(&mut b).unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].released_device, Some(dev));
    assert_eq!(ts.host_bytes(7).unwrap(), &data[..]);
    ts.move_chunk(&mut b, 7, Tier::Nvme, None, None).unwrap();
    assert_eq!(ts.tier_of(7), Some((Tier::Nvme, false)));
    ts.move_chunk(&mut b, 7, Tier::Host, None, None).unwrap();
    assert_eq!(ts.host_bytes(7).unwrap(), &data[..]);
    assert!(
        ts.move_chunk(&mut b, 7, Tier::Device, None, None).is_err(),
        "no destination"
    );
    ts.move_chunk(&mut b, 7, Tier::Device, Some(dev2), None)
        .unwrap();
    ts.sync(&mut b).unwrap();
    assert_eq!(ts.device_ptr(7), Some(dev2));
    assert_eq!(read(&mut b, dev2, n as usize), data);
    // Straight to disk and back to the first buffer.
    write(&mut b, dev, &pattern(0, n as usize));
    ts.move_chunk(&mut b, 7, Tier::Nvme, None, None).unwrap();
    ts.move_chunk(&mut b, 7, Tier::Device, Some(dev), None)
        .unwrap();
    ts.sync(&mut b).unwrap();
    assert_eq!(read(&mut b, dev, n as usize), data);
    assert!(ts.move_chunk(&mut b, 99, Tier::Host, None, None).is_err());
    ts.shutdown(&mut b).unwrap();
    b.mem_free(dev).unwrap();
    b.mem_free(dev2).unwrap();
}

/// Out of memory is an error value, and memory comes back after frees.
pub fn budget_is_enforced<B: Backend>(mut b: B, budget: u64) {
    let g = b.granularity().unwrap();
    let mut handles = Vec::new();
    loop {
        match b.phys_create(g) {
            Ok(h) => handles.push(h),
            Err(Error::OutOfMemory { .. }) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(handles.len() as u64 * g <= budget, "budget exceeded");
    }
    assert_eq!(handles.len() as u64, budget / g);
    b.phys_release(handles.pop().unwrap()).unwrap();
    let h = b.phys_create(g).unwrap();
    b.phys_release(h).unwrap();
    for h in handles {
        b.phys_release(h).unwrap();
    }
    assert!(b.phys_release(memplan_cuda::PhysHandle(u64::MAX)).is_err());
}

pub fn allocator_name<A: Allocator>(a: &A) -> &'static str {
    a.name()
}

/// A chunk placement (toy 8-layer fp16 model, LRU, part of it on NVMe, made by core's
/// training recipe) executed on `backend` with every chunk checked on every arrival; the bytes
/// moved equal the placement's.
pub fn execute_plan<B: Backend>(mut backend: B, dir: &std::path::Path) {
    use memplan_core::chunk::{
        Layout, PlacementOptions, Policy, Tensor, TrainingOptions, place_training,
    };
    let tensors: Vec<Tensor> = (0..8u64)
        .map(|i| Tensor {
            name: format!("t{i}"),
            numel: 3000 + 500 * i,
            dtype_bytes: 2,
            first_use: i,
            last_use: 15 - i,
        })
        .collect();
    let layout = Layout::new(&tensors, 8192).unwrap();
    let total = layout.total_bytes().unwrap();
    let per_position = total / u64::from(layout.positions());
    let trained = place_training(
        &tensors,
        &TrainingOptions {
            chunk_numel: Some(8192),
            non_model: 0,
            iterations: 2,
            placement: PlacementOptions {
                device: 2 * per_position,
                host: total / 3,
                nvme: total,
                policy: Policy::Lru,
                prefetch: true,
            },
        },
    )
    .unwrap();
    assert_eq!(trained.layout(), &layout);
    let (sizes, schedule, plan) = (
        trained.chunk_sizes(),
        trained.schedule(),
        trained.placement(),
    );
    assert!(
        plan.bytes[1][2] + plan.bytes[0][2] > 0,
        "the placement uses NVMe"
    );
    let path = dir.join("execute.nvme");
    let r = memplan_cuda::execute(
        &mut backend,
        &sizes,
        schedule,
        plan,
        &memplan_cuda::ExecOptions {
            disk_path: Some(&path),
            verify: memplan_cuda::Verify::Full,
        },
        |_: &mut B, _, _| Ok(()),
    )
    .unwrap();
    assert_eq!(r.bytes, plan.bytes);
    assert!(r.checks as usize >= sizes.len() + plan.moves.len() / 2);
}
