//! check-host on the real machine running the tests. The project's machines are VMs with no
//! CPU isolation and no cpufreq; the check must report that, with fixes, and never crash.

use appliance::host::{check, run, CheckHostArgs, HostRequirements, Status};

fn req() -> HostRequirements {
    let last = std::thread::available_parallelism()
        .map(|n| n.get() - 1)
        .unwrap_or(0);
    HostRequirements {
        pinned_cores: vec![last],
        hugepage_bytes: 64 << 20,
        nic: Some("lo".into()),
    }
}

fn isolated() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/isolated").unwrap_or_default()
}

#[test]
fn reports_this_host_item_by_item() {
    let report = check(&req());
    let text = report.render_text();
    assert!(report.items.len() >= 19, "{text}");

    // io_uring works on the project's kernels (docs/operations.md lists the requirement).
    let uring = report.item("io_uring").unwrap();
    assert_eq!(uring.status, Status::Ok, "{text}");

    // No isolation here: reported as a failure with the kernel command-line fix.
    if isolated().trim().is_empty() {
        let iso = report.item("cpu.isolation").unwrap();
        assert_eq!(iso.status, Status::Fail, "{text}");
        assert!(
            iso.fix
                .as_deref()
                .unwrap()
                .contains("tuning/kernel-cmdline.sh"),
            "{text}"
        );
        assert_eq!(report.exit_code(false), 1);
    }

    // Facilities this VM lacks are information, not a crash or a failure.
    let cpufreq = std::path::Path::new("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    if !cpufreq.exists() {
        assert_eq!(
            report.item("cpu.governor").unwrap().status,
            Status::Info,
            "{text}"
        );
    }
    // Loopback has no PCI device.
    assert_eq!(
        report.item("numa.nic").unwrap().status,
        Status::Info,
        "{text}"
    );

    // Every warning and failure says what to do.
    for i in &report.items {
        if matches!(i.status, Status::Warn | Status::Fail) {
            assert!(i.fix.is_some(), "{} lacks a fix:\n{text}", i.id);
        }
    }
}

#[test]
fn json_output_is_machine_readable() {
    let mut out = Vec::new();
    // --nic overrides the configuration's NIC: a name that does not exist fails.
    let args = CheckHostArgs {
        json: true,
        nic: Some("no-such-nic0".into()),
        ..Default::default()
    };
    let code = run(&req(), &args, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|i| i["id"] == "io_uring" && i["status"] == "ok"));
    assert!(items
        .iter()
        .any(|i| i["id"] == "numa.nic" && i["status"] == "fail"));
    let fails = v["summary"]["fail"].as_u64().unwrap();
    assert_eq!(code, i32::from(fails > 0));
}

#[test]
fn text_output_and_strict_exit_status() {
    let mut out = Vec::new();
    let args = CheckHostArgs {
        strict: true,
        ..Default::default()
    };
    let code = run(&req(), &args, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("[ ok ] io_uring")),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("info"),
        "summary line last: {text}"
    );
    let warn_or_fail = text
        .lines()
        .any(|l| l.starts_with("[WARN]") || l.starts_with("[FAIL]"));
    assert_eq!(code, i32::from(warn_or_fail));
}
