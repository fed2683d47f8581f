//! The QuickFIX comparator venue (`bench/quickfix_venue.py`) stays usable by the bench: the
//! bench's FIX client runs the standard mix (passive orders, IOC and market orders that trade,
//! cancels, replaces, the closing mass cancel) against it closed loop and every request gets
//! its answer. Needs Python with `quickfix` (`pip install quickfix-ssl`; CI installs
//! scripts/requirements.txt): without it the test fails, it is not skipped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bench::load::{self, Mode, RunSpec, Wait};
use bench::orders::{parse_symbols, Mix, MixGen, PriceGrid, Source};
use bench::venue::{Identity, Protocol};

/// Kills the venue on every path out of the test, panics included.
struct Venue(Child);

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const GRID: PriceGrid = PriceGrid {
    decimals: 4,
    tick_units: 100,
};

/// Starts the venue on a free loopback port and returns it once it says it listens.
fn start_venue() -> (Venue, SocketAddr) {
    let probe = Command::new("python3")
        .args(["-c", "import quickfix"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "QuickFIX for Python is not installed: run `pip install quickfix-ssl` \
             (scripts/ci/lib.sh need_pip_requirements does): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("python3 cannot run ({e}); then `pip install quickfix-ssl`"),
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/quickfix_venue.py");
    let mut child = Command::new("python3")
        .args([script, "--port", "0", "--run-for", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3 bench/quickfix_venue.py");
    let stdout = child.stdout.take().expect("piped stdout");
    let venue = Venue(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the venue did not say `listening on ...` within 30 s");
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the venue: {line:?}"));
    (venue, addr)
}

#[test]
fn the_bench_fix_client_gets_every_request_answered_by_the_quickfix_venue() {
    let (mut venue, addr) = start_venue();
    let symbols = parse_symbols("ACME:100.00,BOLT:50.00,CRUX:25.00", GRID).unwrap();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        & ((1 << 50) - 1);
    let spec = RunSpec {
        addr,
        proto: Protocol::Fix,
        identities: vec![Identity {
            user: "CLIENT1".into(),
            target: "APPLIANCE".into(),
            username: None,
            password: None,
            reset_seq: true,
        }],
        mode: Mode::Closed,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(2),
        orders: None,
        wait: Wait::Block,
        progress: false,
        // The standard mix: every kind of request the venue answers, including trades.
        sources: vec![Source::Mix(MixGen::new(
            Mix::Standard,
            7,
            &symbols,
            GRID,
            base,
            200,
        ))],
        symbols,
        grid: GRID,
        core: None,
        drain: Duration::from_secs(3),
        mass_cancel_token: Some(base + (1 << 40)),
    };
    let r = load::run(spec).expect("bench run against the QuickFIX venue");
    assert!(r.errors.is_empty(), "session errors: {:?}", r.errors);
    assert_eq!(r.unanswered, 0, "requests left unanswered");
    assert!(r.recorder.recorded > 0, "no order recorded");
    assert_eq!(
        r.recorder.recorded + r.recorder.warmup_replies,
        r.sent_total,
        "every request answered exactly once"
    );
    assert!(
        r.unsolicited > 0,
        "no fills or other unsolicited reports: the standard mix trades"
    );
    // The venue is still up (it did not crash on anything it was sent).
    assert!(
        venue.0.try_wait().unwrap().is_none(),
        "the venue exited during the run"
    );
}
