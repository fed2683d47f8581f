//! The audit trail's writer: a cold thread that takes each gateway's audit records from its
//! SPSC ring and logs them as `tracing` events with target `audit` (JSON lines with
//! `APPLIANCE_LOG_FORMAT=json`), so the hot threads never format or write a log line.
//! Fields: `event` (connected, logon, logon_refused, disconnect, closed_unbound), `session`
//! (`fix:CLIENT1`), `gateway`, `conn`, `protocol`, `peer`, `reason` / `cause`, `ts_ns` (when it
//! happened, Unix ns).

use crate::gateway::audit::{AuditEvent, AuditRecord};
use crate::rings::ring::Receiver;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One gateway's ring and its sessions' names (`fix:CLIENT1`), by local index.
pub struct AuditSource {
    /// Gateway index.
    pub gateway: usize,
    /// Its records.
    pub rx: Receiver<AuditRecord>,
    /// Session names by local index.
    pub names: Vec<String>,
}

/// The running writer.
pub struct AuditLogger {
    thread: super::cold_thread::ColdThread,
}

impl AuditLogger {
    /// Starts the thread.
    pub fn start(sources: Vec<AuditSource>) -> std::io::Result<Self> {
        let thread =
            super::cold_thread::ColdThread::spawn("audit", move |stop| run(sources, stop))?;
        Ok(Self { thread })
    }

    /// Writes what is left and stops (call after the gateways stopped).
    pub fn stop(mut self) {
        self.thread.join();
    }
}

fn run(mut sources: Vec<AuditSource>, stop: &AtomicBool) {
    loop {
        // Read the flag first: after it is set, one more full pass writes what is left.
        let stopping = stop.load(Ordering::Acquire);
        let mut any = false;
        for src in sources.iter_mut() {
            while let Some(rec) = src.rx.pop() {
                any = true;
                write(src.gateway, &src.names, &rec);
            }
        }
        if stopping {
            return;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The peer as an address (IPv4 when it is a mapped one).
fn peer(p: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(p);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn write(gateway: usize, names: &[String], r: &AuditRecord) {
    let session = r
        .session
        .and_then(|s| names.get(s as usize))
        .map_or("", String::as_str);
    let (protocol, conn, ts_ns, peer) = (r.protocol.label(), r.conn, r.wall_ns, peer(r.peer));
    match r.event {
        AuditEvent::Connected => tracing::info!(
            target: "audit", event = "connected", gateway, conn, protocol, %peer, ts_ns
        ),
        AuditEvent::LoggedOn => tracing::info!(
            target: "audit", event = "logon", session, gateway, conn, protocol, %peer, ts_ns
        ),
        AuditEvent::LogonRefused(why) => tracing::warn!(
            target: "audit", event = "logon_refused", reason = why.label(), session, gateway,
            conn, protocol, %peer, ts_ns
        ),
        AuditEvent::Disconnected(cause) => tracing::info!(
            target: "audit", event = "disconnect", cause = cause.label(), session, gateway,
            conn, protocol, %peer, ts_ns
        ),
        AuditEvent::ClosedUnbound(cause) => tracing::info!(
            target: "audit", event = "closed_unbound", cause = cause.label(), gateway, conn,
            protocol, %peer, ts_ns
        ),
    }
}
