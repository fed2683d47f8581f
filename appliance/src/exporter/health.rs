//! `/health`, `/health/live` and `/health/ready`: JSON bodies and their status codes (cold
//! path).
//!
//! Live means the process answers (the exporter thread runs): a supervisor restarts the
//! appliance only when this fails. Ready means it can take orders: every engine is in its
//! loop, every gateway is listening, and recovery is complete. There is no journal yet, so
//! there is nothing to recover; the field is reported (always true) so that dashboards and
//! load balancers already look at it when recovery arrives.

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
    pub recovery: &'static str,
}

impl Readiness {
    /// Readiness from the counts of running engines and listening gateways.
    pub fn new(engines_running: usize, engines: usize, listening: usize, gateways: usize) -> Self {
        let recovery_complete = true;
        Self {
            ready: engines_running == engines && listening == gateways && recovery_complete,
            engines_running,
            engines,
            gateways_listening: listening,
            gateways,
            recovery_complete,
            recovery: "no journal configured: nothing to recover",
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
/// balancers, container runtimes): always answered 200, like `/health/live`, because an
/// answer means the process is alive; `ready` is informative (route order flow on
/// `/health/ready`, which says 503 when not ready).
pub fn health_body(ready: bool) -> String {
    format!(r#"{{"status":"live","ready":{ready}}}"#)
}

/// JSON body of `/health/live`.
pub fn live_body(uptime_seconds: f64, version: &str) -> String {
    serde_json::json!({
        "status": "live",
        "uptime_seconds": uptime_seconds,
        "version": version,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_engine_runs_and_every_gateway_listens() {
        let r = Readiness::new(2, 2, 1, 1);
        let (code, body) = r.ready_body();
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ready"], true);
        assert_eq!(v["recovery_complete"], true);
        assert_eq!(Readiness::new(1, 2, 1, 1).ready_body().0, 503);
        assert_eq!(Readiness::new(2, 2, 0, 1).ready_body().0, 503);
        let live: serde_json::Value = serde_json::from_str(&live_body(1.5, "0.1.0")).unwrap();
        assert_eq!(live["status"], "live");
        assert_eq!(health_body(false), r#"{"status":"live","ready":false}"#);
    }
}
