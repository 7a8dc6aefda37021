//! The allocator registry: every name round-trips, unknown names are errors that list the
//! valid ones, and `build` makes the same allocator as its type's own constructor (same
//! addresses and stats over the same requests), boxed.

use memplan_core::allocator::registry::{self, AllocatorKind, Settings};
use memplan_core::allocator::{
    AllocError, Allocator, DEFAULT_BASE, GuidedAllocator, GuidedConfig, OnlineAllocator,
    OnlineConfig, SetupError, TorchAllocator, TorchConfig, TorchExpandableAllocator,
};
use memplan_core::plan::{Plan, PlanFileError, Slot};

const MIB: u64 = 1 << 20;

fn slot(size: u64, offset: u64, start: u32, end: u32) -> Slot {
    Slot {
        size,
        stream: 0,
        offset,
        start,
        end,
    }
}

fn plan() -> Plan {
    Plan {
        arena_size: 4096,
        prologue: vec![slot(1024, 0, 0, u32::MAX)],
        iteration: vec![slot(1024, 1024, 0, 2), slot(2048, 2048, 1, 3)],
    }
}

/// A deterministic mix of requests and frees: returns every address and the stats after
/// each step.
fn run(a: &mut dyn Allocator) -> Vec<(u64, u64, u64)> {
    let sizes = [1000, 1024, 2000, 3 * MIB, 512, 25 * MIB, 7, 1024, 2000];
    let mut live = Vec::new();
    let mut out = Vec::new();
    for (i, &size) in sizes.iter().cycle().take(40).enumerate() {
        match a.alloc(size, (i % 3 == 2) as u32) {
            Ok(addr) => live.push(addr),
            Err(AllocError::OutOfMemory { .. }) => {}
            Err(e) => panic!("{}: {e}", a.name()),
        }
        if i % 3 == 1 && !live.is_empty() {
            a.free(live.remove(live.len() / 2)).unwrap();
        }
        let s = a.stats();
        out.push((live.last().copied().unwrap_or(0), s.allocated, s.reserved));
    }
    out
}

#[test]
fn names_round_trip_and_are_exactly_the_four() {
    let names: Vec<&str> = AllocatorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, ["torch", "torch-expandable", "online", "guided"]);
    for k in AllocatorKind::ALL {
        assert_eq!(k.name().parse::<AllocatorKind>(), Ok(k));
        assert_eq!(k.to_string(), k.name());
        assert!(!k.about().is_empty());
    }
}

#[test]
fn unknown_names_are_errors_that_list_the_valid_ones() {
    for bad in ["memplan", "memplan-plan", "plan", "Online", "", "all"] {
        let e = bad.parse::<AllocatorKind>().unwrap_err();
        assert_eq!(e.name, bad);
        let m = e.to_string();
        assert!(m.contains("torch, torch-expandable, online, guided"), "{m}");
    }
}

#[test]
fn build_makes_the_same_allocator_as_its_constructor() {
    for capacity in [None, Some(64 * MIB)] {
        let settings = Settings {
            capacity,
            plan: Some(plan()),
            ..Settings::default()
        };
        let torch = TorchConfig {
            capacity,
            ..TorchConfig::default()
        };
        let online = OnlineConfig {
            capacity,
            ..OnlineConfig::default()
        };
        let guided = GuidedConfig {
            capacity,
            ..GuidedConfig::default()
        };
        let mut direct: Vec<Box<dyn Allocator>> = vec![
            Box::new(TorchAllocator::new(torch.clone())),
            Box::new(TorchExpandableAllocator::new(torch)),
            Box::new(OnlineAllocator::new(online).unwrap()),
            Box::new(GuidedAllocator::new(plan(), guided).unwrap()),
        ];
        for (k, d) in AllocatorKind::ALL.into_iter().zip(&mut direct) {
            let mut built = registry::build(k, &settings).unwrap();
            assert_eq!(built.name(), k.name());
            assert_eq!(
                run(&mut built),
                run(d.as_mut()),
                "{k}, capacity {capacity:?}"
            );
            assert_eq!(built.stats(), d.stats(), "{k}");
        }
    }
}

#[test]
fn torch_gets_the_segment_addresses_given() {
    let settings = Settings {
        segment_addresses: vec![0x1000_0000, 0x2000_0000],
        ..Settings::default()
    };
    let mut a = registry::build(AllocatorKind::Torch, &settings).unwrap();
    assert_eq!(a.alloc(100, 0), Ok(0x1000_0000));
    assert_eq!(a.alloc(50 * MIB, 0), Ok(0x2000_0000));
}

#[test]
fn bad_settings_are_errors() {
    let bad_page = Settings {
        page_size: 3000,
        plan: Some(plan()),
        ..Settings::default()
    };
    for k in [AllocatorKind::Online, AllocatorKind::Guided] {
        assert_eq!(
            registry::build(k, &bad_page).err(),
            Some(SetupError::BadPageSize {
                base: DEFAULT_BASE,
                page_size: 3000
            }),
            "{k}"
        );
    }
    // The torch models have no page size setting.
    assert!(registry::build(AllocatorKind::Torch, &bad_page).is_ok());
    assert_eq!(
        registry::build(AllocatorKind::Guided, &Settings::default()).err(),
        Some(SetupError::MissingPlan)
    );
    let mut overlapping = plan();
    overlapping.iteration[1].offset = 1024;
    let s = Settings {
        plan: Some(overlapping),
        ..Settings::default()
    };
    assert!(matches!(
        registry::build(AllocatorKind::Guided, &s),
        Err(SetupError::Plan(PlanFileError::Overlap { .. }))
    ));
    let huge = Settings {
        plan: Some(Plan {
            arena_size: u64::MAX - 4096,
            ..plan()
        }),
        ..Settings::default()
    };
    assert!(matches!(
        registry::build(AllocatorKind::Guided, &huge),
        Err(SetupError::AddressOverflow { .. })
    ));
}

#[test]
fn boxed_allocators_forward_trim_and_guided_counters() {
    let settings = Settings {
        plan: Some(plan()),
        ..Settings::default()
    };
    let mut online = registry::build(AllocatorKind::Online, &settings).unwrap();
    let x = online.alloc(1000, 0).unwrap();
    online.free(x).unwrap();
    assert_eq!(online.trim(), 2 * MIB);
    assert_eq!(online.guided_counters(), None);
    let mut guided = registry::build(AllocatorKind::Guided, &settings).unwrap();
    guided.alloc(1000, 0).unwrap();
    let c = guided
        .guided_counters()
        .expect("the guided allocator counts");
    assert_eq!((c.hits, c.misses), (1, 0));
    assert_eq!(guided.trim(), 0, "the arena never shrinks");
}

#[test]
fn address_windows() {
    let s = Settings {
        capacity: Some(5 * MIB),
        ..Settings::default()
    };
    let w = |k: AllocatorKind| k.address_window(&s);
    assert_eq!(w(AllocatorKind::Online), Some((DEFAULT_BASE, 6 * MIB)));
    assert_eq!(w(AllocatorKind::Guided), Some((DEFAULT_BASE, 6 * MIB)));
    let torch = Some((memplan_core::allocator::torch::SIMULATED_BASE, 24 * MIB));
    assert_eq!(w(AllocatorKind::Torch), torch);
    assert_eq!(w(AllocatorKind::TorchExpandable), torch);
    let tiny = Settings {
        capacity: Some(0),
        ..Settings::default()
    };
    assert_eq!(
        AllocatorKind::Guided.address_window(&tiny),
        Some((DEFAULT_BASE, 2 * MIB))
    );
    assert_eq!(
        AllocatorKind::Online.address_window(&Settings::default()),
        None
    );
    let huge = Settings {
        capacity: Some(u64::MAX),
        ..Settings::default()
    };
    assert_eq!(AllocatorKind::Torch.address_window(&huge), None);
}
