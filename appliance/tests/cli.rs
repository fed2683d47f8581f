//! The `appliance` binary itself: help, configuration handling, check-host, and a real run
//! stopped by SIGTERM (graceful shutdown, exit 0, latency summary).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_appliance"))
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("appliance-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("appliance.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The default configuration on ephemeral ports, journaling into `journal`.
fn ephemeral_config(journal: &std::path::Path) -> String {
    appliance::config::DEFAULT_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("max_orders = 1_000_000", "max_orders = 65_536")
        .replace("segment_mib = 64", "segment_mib = 4")
        .replace(
            "dir = \"appliance-data\"",
            &format!("dir = {:?}", journal.display().to_string()),
        )
        .replace(
            "socket = \"appliance-admin.sock\"",
            &format!(
                "socket = {:?}",
                journal.join("admin.sock").display().to_string()
            ),
        )
}

#[test]
fn help_documents_the_commands_and_flags() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "run",
        "check-config",
        "check-host",
        "--print-default-config",
        "--config",
        "--io",
        "--run-for",
        "--version",
    ] {
        assert!(
            text.contains(word),
            "--help does not mention {word}:\n{text}"
        );
    }
    let v = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8(v.stdout)
        .unwrap()
        .starts_with("appliance "));
}

#[test]
fn print_default_config_is_the_embedded_default_and_parses() {
    let out = bin().arg("--print-default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, appliance::config::DEFAULT_TOML);
    appliance::config::Config::from_toml(&text).unwrap();
}

#[test]
fn invalid_configuration_is_refused_naming_the_key() {
    let p = temp_config(
        "bad",
        &appliance::config::DEFAULT_TOML
            .replace("tick_size = \"0.01\"", "tick_size = \"0.0001234\""),
    );
    for args in [
        vec!["check-config", "--config"],
        vec!["run", "--config"],
        vec!["--config"],
    ] {
        let mut cmd = bin();
        cmd.args(&args).arg(&p);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("instruments[0].tick_size"), "{args:?}: {err}");
    }
    let p = temp_config(
        "typo",
        &appliance::config::DEFAULT_TOML.replace("[exporter]", "[exporter]\nenabeld = true"),
    );
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("enabeld"));
}

#[test]
fn check_config_warns_of_sessions_without_credentials_on_a_listener_not_on_loopback() {
    let check = |name: &str, text: &str| {
        let p = temp_config(name, text);
        let out = bin()
            .args(["check-config", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "a warning does not refuse");
        String::from_utf8(out.stderr).unwrap()
    };
    let default = appliance::config::DEFAULT_TOML;
    assert!(
        !check("loopback", default).contains("warning"),
        "the default listens on loopback only"
    );
    let open = default
        .replace("127.0.0.1:9878", "0.0.0.0:9878")
        .replace("127.0.0.1:9879", "0.0.0.0:9879");
    let err = check("open", &open);
    for who in [
        "fix.sessions[0] (CLIENT1)",
        "fix.sessions[1] (CLIENT2)",
        "binary.users[0] (CLIENT1)",
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning: ") && l.contains(who)),
            "{who}: {err}"
        );
    }
    // A password alone is a credential: no warning for that session.
    let guarded = open.replacen(
        "target_comp_id = \"CLIENT1\"",
        "target_comp_id = \"CLIENT1\"\npassword = \"s3cret\"",
        1,
    );
    let err = check("guarded", &guarded);
    assert!(!err.contains("fix.sessions[0]"), "{err}");
    assert!(err.contains("fix.sessions[1]"), "{err}");
}

#[test]
fn check_host_reports_json_items() {
    let out = bin().args(["check-host", "--json"]).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{:?}",
        out.status
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let items = v["items"].as_array().expect("items");
    assert!(items.len() >= 15);
    let io = items
        .iter()
        .find(|i| i["id"].as_str().is_some_and(|s| s.contains("uring")))
        .expect("io_uring item");
    assert_eq!(io["status"], "ok", "io_uring works on this machine");
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_zero() {
    let journal = tempfile::tempdir().unwrap();
    let p = temp_config("run", &ephemeral_config(journal.path()));
    let mut child = bin()
        .args(["run", "--config"])
        .arg(&p)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.contains("ready:") {
        assert!(Instant::now() < deadline, "not ready within 60 s:\n{log}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&l);
            log.push('\n');
        }
    }
    assert!(
        log.contains("memory:"),
        "one line says which pages back memory:\n{log}"
    );
    assert!(log.contains("I/O backend io_uring"), "{log}");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push_str(&l);
        log.push('\n');
    }
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    // Stderr is a pipe here (as under journald): plain text, no colour escape codes.
    assert!(
        !log.contains('\x1b'),
        "ANSI escape codes in a log that is not a terminal:\n{log:?}"
    );
    assert!(
        log.contains("wire_to_wire"),
        "latency summary printed at shutdown:\n{log}"
    );
    assert!(
        log.contains("the journal's replica agrees (final snapshot written)"),
        "the shutdown snapshot and its hash check:\n{log}"
    );
    let snaps = std::fs::read_dir(journal.path().join("snapshots"))
        .unwrap()
        .count();
    assert!(snaps >= 1, "a snapshot at shutdown");
}
