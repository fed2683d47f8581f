//! The audit trail's writer: a cold thread that takes each gateway's audit records from its
//! SPSC ring and logs them as `tracing` events with target `audit` (JSON lines with
//! `APPLIANCE_LOG_FORMAT=json`), so the hot threads never format or write a log line.
//! Fields: `event` (connected, logon, logon_refused, disconnect, closed_unbound;
//! session_reject, session_reject_received, resend_request, sequence_reset; order_reject,
//! cancel_reject, business_reject), `session` (`fix:CLIENT1`), `gateway`, `conn`, `protocol`,
//! `peer` (`conn` and `peer` are absent for a session that was not connected, e.g. an engine
//! reject rendered while it was away), `reason` / `cause`, `ts_ns` (when it happened, Unix
//! ns). Rejects add `code` (FIX 373 / 380 / 103 / 102 value, or the binary reject code),
//! `reason` (a short label), `cl_ord_id` (empty when the message had none; binary: the order
//! token in decimal), `seq` (MsgSeqNum / binary sequence number of the message refused, 0 when
//! not known) and `ref_tag` (FIX RefTagID, 0 when none). `resend_request` adds `direction`
//! (received / sent), `begin`, `end` (0: to the last); `sequence_reset` adds `direction`,
//! `via` (sequence_reset, gap_fill, logon) and `new_seq`.
//!
//! Order-level records (order_reject, cancel_reject, business_reject) are logged at the level
//! `gateway.audit_order_events` says (`info`, `debug`; with `off` the gateways do not push
//! them); session-level rejects at `warn`, the rest at `info`.

use crate::config::AuditLevel;
use crate::gateway::audit::{AuditEvent, AuditRecord, RejectKind};
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
    /// Starts the thread; order-level records are logged at `order_level`.
    pub fn start(
        sources: Vec<AuditSource>,
        order_level: AuditLevel,
        lifecycle_level: AuditLevel,
    ) -> std::io::Result<Self> {
        let thread = super::cold_thread::ColdThread::spawn("audit", move |stop| {
            run(sources, (order_level, lifecycle_level), stop)
        })?;
        Ok(Self { thread })
    }

    /// Writes what is left and stops (call after the gateways stopped).
    pub fn stop(mut self) {
        self.thread.join();
    }
}

fn run(mut sources: Vec<AuditSource>, levels: (AuditLevel, AuditLevel), stop: &AtomicBool) {
    loop {
        // Read the flag first: after it is set, one more full pass writes what is left.
        let stopping = stop.load(Ordering::Acquire);
        let mut any = false;
        for src in sources.iter_mut() {
            while let Some(rec) = src.rx.pop() {
                any = true;
                write(src.gateway, &src.names, levels, &rec);
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

fn write(
    gateway: usize,
    names: &[String],
    (order_level, lifecycle_level): (AuditLevel, AuditLevel),
    r: &AuditRecord,
) {
    let session = r
        .session
        .and_then(|s| names.get(s as usize))
        .map_or("", String::as_str);
    let (protocol, ts_ns) = (r.protocol.label(), r.wall_ns);
    // Connection events always have a connection; session events may not.
    let (conn, peer) = match r.conn {
        Some(c) => (Some(c), Some(tracing::field::display(peer(r.peer)))),
        None => (None, None),
    };
    match r.event {
        AuditEvent::Order(o) => {
            let id = String::from_utf8_lossy(o.cl_ord_id.as_bytes());
            let cl_ord_id = id.as_ref();
            let event = o.step.label();
            let cancel_reason = match o.step {
                crate::gateway::audit::OrderStep::Cancelled(r) => crate::vocab::cancel_label(r),
                _ => "",
            };
            let (order_id, exec_id, qty, price, leaves) =
                (o.order_id, o.exec_id, o.qty, o.price, o.leaves);
            macro_rules! order {
                ($level:ident) => {
                    tracing::$level!(
                        target: "audit", event, session, cl_ord_id, order_id, exec_id, qty,
                        price, leaves, cancel_reason, gateway, conn, protocol, peer, ts_ns
                    )
                };
            }
            match lifecycle_level {
                AuditLevel::Info => order!(info),
                AuditLevel::Debug => order!(debug),
                AuditLevel::Off => {}
            }
        }
        AuditEvent::Reject(x) => {
            let id = String::from_utf8_lossy(x.cl_ord_id.as_bytes());
            let cl_ord_id = id.as_ref();
            let (event, code, reason, seq, ref_tag) =
                (x.kind.label(), x.code, x.reason, x.seq, x.ref_tag);
            macro_rules! reject {
                ($level:ident) => {
                    tracing::$level!(
                        target: "audit", event, session, cl_ord_id, code, reason, seq, ref_tag,
                        gateway, conn, protocol, peer, ts_ns
                    )
                };
            }
            match (x.kind, order_level) {
                (RejectKind::Session | RejectKind::SessionReceived, _) => reject!(warn),
                (_, AuditLevel::Debug) => reject!(debug),
                (_, AuditLevel::Info) => reject!(info),
                // Not pushed by the gateways; should one come anyway, it is not written.
                (_, AuditLevel::Off) => {}
            }
        }
        AuditEvent::ResendRequest {
            direction,
            begin,
            end,
        } => tracing::info!(
            target: "audit", event = "resend_request", direction = direction.label(), begin,
            end, session, gateway, conn, protocol, peer, ts_ns
        ),
        AuditEvent::SequenceReset {
            direction,
            via,
            new_seq,
        } => tracing::info!(
            target: "audit", event = "sequence_reset", direction = direction.label(),
            via = via.label(), new_seq, session, gateway, conn, protocol, peer, ts_ns
        ),
        AuditEvent::Connected => tracing::info!(
            target: "audit", event = "connected", gateway, conn, protocol, peer, ts_ns
        ),
        AuditEvent::LoggedOn => tracing::info!(
            target: "audit", event = "logon", session, gateway, conn, protocol, peer, ts_ns
        ),
        AuditEvent::LogonRefused(why) => tracing::warn!(
            target: "audit", event = "logon_refused", reason = why.label(), session, gateway,
            conn, protocol, peer, ts_ns
        ),
        AuditEvent::Disconnected(cause) => tracing::info!(
            target: "audit", event = "disconnect", cause = cause.label(), session, gateway,
            conn, protocol, peer, ts_ns
        ),
        AuditEvent::ClosedUnbound(cause) => tracing::info!(
            target: "audit", event = "closed_unbound", cause = cause.label(), gateway, conn,
            protocol, peer, ts_ns
        ),
    }
}
