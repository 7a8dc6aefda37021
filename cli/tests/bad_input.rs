//! Bad input through the binary: truncated real files at many offsets, directories, empty
//! stdin. Every one exits 1 with a message naming where it went wrong; none panics.

mod common;

use common::run;

/// `data` cut at `n` offsets spread over it (and the first bytes), through `replay` and
/// `analyze` on stdin: exit 1, a message, no panic. Returns the messages.
fn truncations(data: &[u8], n: usize) -> Vec<String> {
    let mut cuts: Vec<usize> = (0..n).map(|i| i * data.len() / n).collect();
    cuts.extend(1..8.min(data.len()));
    cuts.sort_unstable();
    cuts.dedup();
    let mut messages = Vec::new();
    for cut in cuts {
        for command in ["replay", "analyze"] {
            let o = run(&[command, "-"], &data[..cut]);
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(1), "{command} cut at {cut}: {err}");
            assert!(!err.contains("panicked"), "{command} cut at {cut}: {err}");
            assert!(!err.trim().is_empty(), "{command} cut at {cut}");
            messages.push(err);
        }
    }
    messages
}

#[test]
fn truncated_real_files_exit_1_with_the_position() {
    let files = [
        "traces/external/pytorch_snapshots/cs336_silmont2000/mem_snapshot.pickle",
        "traces/external/kineto_profiler/tracelens/h100/gaunernst_bert-small-uncased__1016001.json.gz",
    ];
    for file in files {
        let Some(path) = memplan_tests::require::shared_data(file) else {
            return;
        };
        let data = std::fs::read(path).unwrap();
        let messages = truncations(&data, 40);
        // Past the first bytes, the message says where the data ended.
        let positioned = messages
            .iter()
            .filter(|m| m.contains("byte ") || m.contains("line ") || m.contains("gzip"))
            .count();
        assert!(
            positioned * 10 >= messages.len() * 9,
            "{file}: {positioned} of {} messages give a position:\n{}",
            messages.len(),
            messages.join("")
        );
    }
}

#[test]
fn a_truncated_flat_export_exits_1_with_the_line() {
    let csv = "idx,action,addr,size,stream,time_us\n0,alloc,4096,512,0,1\n1,free_completed,40";
    let o = run(&["analyze", "-"], csv.as_bytes());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("<stdin>:3:"), "{err}");
}

#[test]
fn directories_and_empty_stdin_exit_1() {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    for command in ["replay", "analyze", "plan-trace"] {
        let mut args = vec![command, dir];
        if command == "plan-trace" {
            args.extend(["--out", "/dev/null"]);
        }
        let o = run(&args, b"");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command}: {err}");
        assert!(err.contains("is a directory"), "{command}: {err}");
        let o = run(&[command, "-"], b"");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command} -: {err}");
    }
}
