//! The real `appliance` binary as a child process: started on a configuration file, its
//! listening addresses read from its start-up log, stopped with SIGTERM or killed with
//! SIGKILL. Every wait is bounded; the child is killed if the test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running appliance process.
pub struct App {
    child: Option<Child>,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
    /// FIX listener.
    pub fix: SocketAddr,
    /// Binary listener.
    pub binary: SocketAddr,
    /// Prometheus exporter.
    pub exporter: SocketAddr,
}

fn addr_after(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest.find(',').unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

impl App {
    /// Starts `appliance run --config cfg` and waits (up to 60 s) until it is ready.
    pub fn start(cfg: &Path) -> App {
        Self::start_with_env(cfg, &[])
    }

    /// As [`App::start`], with environment variables `env` set for the appliance.
    pub fn start_with_env(cfg: &Path, env: &[(&str, &str)]) -> App {
        let mut child = Command::new(env!("CARGO_BIN_EXE_appliance"))
            .args(["run", "--config"])
            .arg(cfg)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the appliance binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push_str(&line);
                log2.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let mut app = App {
            child: Some(child),
            log,
            fix: "0.0.0.0:0".parse().unwrap(),
            binary: "0.0.0.0:0".parse().unwrap(),
            exporter: "0.0.0.0:0".parse().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the appliance did not become ready:\n{}",
                app.log()
            );
            if let Some(c) = app.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("the appliance exited ({status}):\n{}", app.log());
                }
            }
            let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if line.contains("ready: FIX on") {
                app.fix = addr_after(&line, "FIX on ").expect("FIX address");
                app.binary = addr_after(&line, "binary on ").expect("binary address");
                app.exporter = addr_after(&line, "exporter on ").expect("exporter address");
                return app;
            }
        }
    }

    /// `GET path` on the exporter: the body (panics unless 200).
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.exporter).expect("exporter connects");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
        text.split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string())
    }

    /// The sum of every series of metric `name` on `/metrics` (0 when it has none).
    pub fn metric_sum(&self, name: &str) -> f64 {
        self.http_get("/metrics")
            .lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|r| r.rsplit_once(' '))
            .map(|(_, v)| v.trim().parse::<f64>().unwrap())
            .sum()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The appliance's process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits up to `within` for the appliance to exit by itself; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                std::thread::sleep(Duration::from_millis(100));
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, as a crash: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (up to 30 s) for the exit status; returns the code and the log.
    pub fn stop(&mut self) -> (Option<i32>, String) {
        let Some(mut c) = self.child.take() else {
            return (None, self.log());
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Ok(Some(s)) = c.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("no exit within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.log())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A configuration file in `dir`: the default on ephemeral ports, journaling into
/// `dir/journal` with acknowledgement policy `ack`, with `extra` (from, to) replacements made
/// in the default's text first.
pub fn config_file(dir: &Path, ack: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = appliance::config::DEFAULT_TOML.to_string();
    // The caller's replacements first, so they can name the default's values (a fixed port
    // instead of an ephemeral one).
    for (from, to) in extra {
        text = text.replace(from, to);
    }
    let text = text
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("127.0.0.1:9201", "127.0.0.1:0")
        .replace("max_orders = 1_000_000", "max_orders = 65_536")
        .replace("segment_mib = 64", "segment_mib = 4")
        .replace("ack = \"written\"", &format!("ack = \"{ack}\""))
        .replace(
            "dir = \"appliance-data\"",
            &format!("dir = {:?}", dir.join("journal").display().to_string()),
        )
        .replace(
            "socket = \"appliance-admin.sock\"",
            &format!(
                "socket = {:?}",
                dir.join("admin.sock").display().to_string()
            ),
        );
    let p = dir.join("appliance.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A TCP port free on 127.0.0.1 right now (for a listener that must keep its port across a
/// restart).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
