//! `memplan analyze`'s fragmentation at the end of a snapshot against PyTorch's own
//! `torch.cuda._memory_viz.segsum` (the vendored, unmodified `_memory_viz.py` in
//! `../shared/tools/pytorch-memory-viz/`, run with python3, no torch needed), on real
//! snapshots: the same reserved bytes, the same allocated (requested) bytes, the same free
//! bytes, and the same internal share of it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_memplan");

/// segsum's totals with sizes printed as plain integers: (reserved, allocated, free, internal
/// percentage of free).
fn segsum(viz: &std::path::Path, snapshot: &std::path::Path) -> Option<(u64, u64, u64, f64)> {
    let script = r#"
import pickle, re, sys
sys.path.insert(0, sys.argv[1])
import _memory_viz as mv
mv._format_size = str  # sizes as plain integers
out = mv.segsum(pickle.load(open(sys.argv[2], "rb")))
get = lambda key: re.search(key + r": (\d+)", out).group(1)
pct = re.search(r"total_free: \d+ \(([\d.]+)% internal\)", out)
print(get("total_reserved"), get("total_allocated"), get("total_free"), pct.group(1) if pct else "0")
"#;
    let out = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(viz)
        .arg(snapshot)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            memplan_tests::require::skip_or_fail(&format!("python3: {e}"));
            return None;
        }
    };
    assert!(
        out.status.success(),
        "segsum: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    Some((
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    ))
}

#[test]
fn analyze_splits_fragmentation_as_pytorchs_segsum() {
    let Some(viz) = memplan_tests::require::shared_data("tools/pytorch-memory-viz") else {
        return;
    };
    for file in [
        "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
        "traces/external/pytorch_snapshots/kivi_llama_inference/my_snapshot.pickle",
        "traces/external/pytorch_snapshots/zijiandu_attention/v1_7e5ba32/memory.pickle",
        "traces/external/pytorch_snapshots/cs336_bcrafton/memory_snapshot.pickle",
    ] {
        let Some(path) = memplan_tests::require::shared_data(file) else {
            return;
        };
        let Some((reserved, allocated, free, internal_pct)) = segsum(&viz, &path) else {
            return;
        };
        let o = Command::new(BIN)
            .args(["analyze", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{file}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let end = &v["reports"][0]["fragmentation_at_end"];
        let n = |k: &str| end[k].as_u64().unwrap();
        assert_eq!(n("reserved"), reserved, "{file}");
        assert_eq!(
            n("requested"),
            allocated,
            "{file}: segsum's allocated is requested bytes"
        );
        assert_eq!(n("rounding") + n("free_gaps"), free, "{file}");
        let ours = 100.0 * n("rounding") as f64 / free as f64;
        assert!(
            (ours - internal_pct).abs() <= 0.05,
            "{file}: {ours} vs {internal_pct}"
        );
    }
}
