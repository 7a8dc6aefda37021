//! Driver detection and a GPU smoke test that skips, with a message, when there is no driver.

use std::sync::Arc;

use cudarc::driver::CudaContext;

/// Whether a file named like the CUDA driver (`libcuda.so*`) is on the dynamic loader's search
/// path, found without `dlopen`: the directories in `LD_LIBRARY_PATH` and the `ldconfig -p`
/// cache. `None` when `ldconfig` cannot be run (then the answer is unknown).
fn libcuda_on_search_path() -> Option<bool> {
    let is_libcuda = |name: &str| name.starts_with("libcuda.so");
    let in_env = std::env::var_os("LD_LIBRARY_PATH").is_some_and(|dirs| {
        std::env::split_paths(&dirs).any(|dir| {
            std::fs::read_dir(&dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| is_libcuda(&e.file_name().to_string_lossy()))
            })
        })
    });
    let ldconfig = ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .find_map(|cmd| std::process::Command::new(cmd).arg("-p").output().ok())
        .filter(|out| out.status.success())?;
    let in_cache = String::from_utf8_lossy(&ldconfig.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .any(is_libcuda);
    Some(in_env || in_cache)
}

#[test]
fn detection_matches_the_loader_search_path() {
    // Must not panic, whether or not the driver is installed, and must agree with itself.
    let present = memplan_cuda::driver_library_present();
    assert_eq!(present, memplan_cuda::driver_library_present());
    match libcuda_on_search_path() {
        Some(expected) => assert_eq!(
            present, expected,
            "driver_library_present() disagrees with LD_LIBRARY_PATH + `ldconfig -p`"
        ),
        None => memplan_tests::require::skip_or_fail(&format!(
            "ldconfig, to cross-check driver_library_present() = {present}"
        )),
    }
}

/// A context on device 0, or `None` when there is no driver or no usable device.
fn try_context() -> Option<Arc<CudaContext>> {
    if !memplan_cuda::driver_library_present() {
        return None;
    }
    // A symbol missing from an old driver panics in cudarc; treat that as "no device" too.
    std::panic::catch_unwind(|| CudaContext::new(0).ok())
        .ok()
        .flatten()
}

#[test]
fn gpu_reports_device_memory() {
    let Some(ctx) = try_context() else {
        eprintln!("SKIP: no CUDA driver or device; GPU test not run");
        return;
    };
    let (free, total) = ctx.mem_get_info().expect("cuMemGetInfo");
    assert!(total > 0, "device reports no memory");
    assert!(free <= total, "free {free} > total {total}");
}
