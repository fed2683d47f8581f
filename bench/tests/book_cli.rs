//! `bench book --json` on a freshly generated `smoke` workload prints one parseable JSON line
//! with the keys other tools read.

use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn smoke_workload() -> PathBuf {
    let out = Command::new("python3")
        .arg(repo_root().join("workloads/gen_workload.py"))
        .arg("smoke")
        .output()
        .expect(
            "python3 is needed to generate workloads: install it with `apt-get install python3`",
        );
    assert!(
        out.status.success(),
        "gen_workload.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::env::temp_dir().join(format!("bench-smoke-{}.txt", std::process::id()));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn book_json_has_the_required_keys() {
    let path = smoke_workload();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["book", "--workload"])
        .arg(&path)
        .arg("--json")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "bench book failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line, got {stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("valid JSON");
    assert_eq!(v["workload"], "smoke");
    assert_eq!(v["commands"], 10_000);
    for key in [
        "commands_per_sec",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "p9999_ns",
        "max_ns",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"));
        assert!(x > 0.0, "{key} = {x}");
    }
    assert!(v["p50_ns"].as_u64() <= v["p999_ns"].as_u64());
    // The smoke flow trades and cancels; nothing in it is invalid.
    assert!(v["outcome"]["trades"].as_u64().unwrap() > 0);
    assert_eq!(v["outcome"]["rejects"], 0);
}

#[test]
fn book_text_report_and_bad_file() {
    let path = smoke_workload();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["book", "--workload"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("throughput:") && s.contains("p99.99"), "{s}");

    let bad = std::env::temp_dir().join(format!("bench-bad-{}.txt", std::process::id()));
    std::fs::write(&bad, "N 1 0 B L G 10 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["book", "--workload"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}
