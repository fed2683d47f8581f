//! A test hook that makes one named thread panic in its loop, so the supervision of hot
//! threads can be tested against the real binary (a hot thread that dies must show on
//! `/health/live` and `/health/ready` and make the process exit non-zero for systemd to
//! restart it). `APPLIANCE_INJECT_PANIC=<thread>` (`gateway-0`, `engine-1`, `shared`,
//! `journal`) panics that thread about a second after it starts; the binary reads the
//! variable once at start-up. Unset, no thread carries a deadline and the check is a
//! predictable branch on `None`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static TARGET: OnceLock<String> = OnceLock::new();

/// Reads `APPLIANCE_INJECT_PANIC` (cold path, once, before any thread starts).
pub fn arm_from_env() -> Option<&'static str> {
    let t = std::env::var("APPLIANCE_INJECT_PANIC").ok()?;
    if t.is_empty() {
        return None;
    }
    Some(TARGET.get_or_init(|| t).as_str())
}

/// When thread `name` must panic, if it is the armed one.
pub fn panic_time(name: &str) -> Option<Instant> {
    (TARGET.get().map(String::as_str) == Some(name))
        .then(|| Instant::now() + Duration::from_secs(1))
}

/// Panics once `at` has passed (called from the armed thread's loop).
#[cold]
pub fn check(at: Instant, role: &str) {
    if Instant::now() >= at {
        panic!("{role}: injected panic (APPLIANCE_INJECT_PANIC)");
    }
}
