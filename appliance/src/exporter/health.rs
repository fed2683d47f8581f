//! `/health`, `/health/live` and `/health/ready`: JSON bodies and their status codes (cold
//! path).
//!
//! Live means the process answers (the exporter thread runs) and no hot thread has died: a
//! supervisor restarts the appliance only when this fails (the process also exits with
//! status 70 on its own once a hot thread died). Ready means it can take orders: every engine is in its
//! loop, every gateway is listening, and recovery from the journal is complete (the exporter
//! starts before recovery, so `/health/ready` answers 503 while it runs).

use serde::Serialize;

/// Readiness, item by item.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the appliance takes orders.
    pub ready: bool,
    /// Engine threads in their loop.
    pub engines_running: usize,
    /// Engine threads configured.
    pub engines: usize,
    /// Gateway threads with their listeners open.
    pub gateways_listening: usize,
    /// Gateway threads configured.
    pub gateways: usize,
    /// Whether recovery (journal replay) is complete.
    pub recovery_complete: bool,
    /// What recovery did.
    pub recovery: String,
}

impl Readiness {
    /// Readiness from the counts of running engines and listening gateways, and recovery.
    pub fn new(
        engines_running: usize,
        engines: usize,
        listening: usize,
        gateways: usize,
        recovery_complete: bool,
        recovery: String,
    ) -> Self {
        Self {
            ready: engines_running == engines && listening == gateways && recovery_complete,
            engines_running,
            engines,
            gateways_listening: listening,
            gateways,
            recovery_complete,
            recovery,
        }
    }

    /// Status code and JSON body of `/health/ready`: 200 when ready, 503 otherwise.
    pub fn ready_body(&self) -> (u16, String) {
        let code = if self.ready { 200 } else { 503 };
        (
            code,
            serde_json::to_string(self).expect("plain struct serialises"),
        )
    }
}

/// JSON body of `/health`, the plain check for tools that expect one fixed path (load
/// balancers, container runtimes): answered like `/health/live` (200, or 503 with status
/// `failed` once a hot thread died); `ready` is informative (route order flow on
/// `/health/ready`, which says 503 when not ready).
pub fn health_body(ready: bool, failed: bool) -> String {
    let status = if failed { "failed" } else { "live" };
    format!(r#"{{"status":"{status}","ready":{ready}}}"#)
}

/// Status code and JSON body of `/health/live`: 200 while every hot thread is alive; 503
/// with the dead ones named once one has died (the process is about to exit for its
/// supervisor to restart it: a gateway that died would leave its sessions unanswered, an
/// engine its instruments frozen).
pub fn live_body(uptime_seconds: f64, version: &str, dead_threads: &[String]) -> (u16, String) {
    if dead_threads.is_empty() {
        let body = serde_json::json!({
            "status": "live",
            "uptime_seconds": uptime_seconds,
            "version": version,
        });
        (200, body.to_string())
    } else {
        let body = serde_json::json!({
            "status": "failed",
            "dead_threads": dead_threads,
            "uptime_seconds": uptime_seconds,
            "version": version,
        });
        (503, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_engine_runs_every_gateway_listens_and_recovery_is_done() {
        let r = Readiness::new(2, 2, 1, 1, true, "done".into());
        let (code, body) = r.ready_body();
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ready"], true);
        assert_eq!(v["recovery_complete"], true);
        assert_eq!(v["recovery"], "done");
        assert_eq!(
            Readiness::new(1, 2, 1, 1, true, String::new())
                .ready_body()
                .0,
            503
        );
        assert_eq!(
            Readiness::new(2, 2, 0, 1, true, String::new())
                .ready_body()
                .0,
            503
        );
        let recovering = Readiness::new(2, 2, 1, 1, false, "recovering".into());
        assert_eq!(recovering.ready_body().0, 503, "not ready while recovering");
        let (code, live) = live_body(1.5, "0.1.0", &[]);
        assert_eq!(code, 200);
        let live: serde_json::Value = serde_json::from_str(&live).unwrap();
        assert_eq!(live["status"], "live");
        let (code, dead) = live_body(1.5, "0.1.0", &["gateway-0".to_string()]);
        assert_eq!(code, 503, "a dead hot thread fails liveness");
        let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
        assert_eq!(dead["status"], "failed");
        assert_eq!(dead["dead_threads"][0], "gateway-0");
        assert_eq!(
            health_body(false, false),
            r#"{"status":"live","ready":false}"#
        );
        assert_eq!(
            health_body(false, true),
            r#"{"status":"failed","ready":false}"#
        );
    }
}
