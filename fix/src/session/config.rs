//! Session settings, named after QuickFIX's so that an operator who knows a QuickFIX `.cfg`
//! recognises every knob. A plain struct with defaults in code: the appliance maps its TOML
//! into it, tests build it directly.

use crate::codec::time::TimePrecision;

/// Which side opens the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Waits for the counterparty's Logon (the gateway).
    Acceptor,
    /// Sends the Logon (the bench's load generator, test clients).
    Initiator,
}

/// Settings of one FIX session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Acceptor or initiator.
    pub role: Role,
    /// BeginString (8). Default `FIX.4.4`.
    pub begin_string: String,
    /// Our CompID, written in SenderCompID (49) and expected in the peer's TargetCompID (56).
    pub sender_comp_id: String,
    /// The counterparty's CompID, written in TargetCompID (56) and expected in its 49.
    pub target_comp_id: String,
    /// HeartBtInt (108) in seconds that an initiator proposes. An acceptor adopts the value
    /// of the counterparty's Logon. Default 30.
    pub heart_bt_int: u32,
    /// Reset both sequence numbers to 1 on every Logon (QuickFIX `ResetOnLogon`). Default false.
    pub reset_on_logon: bool,
    /// Reset both sequence numbers after a Logout (QuickFIX `ResetOnLogout`). Default false.
    pub reset_on_logout: bool,
    /// Username (553) the counterparty must send (acceptor) or that we send (initiator).
    pub username: Option<String>,
    /// Password (554), as for `username`.
    pub password: Option<String>,
    /// Largest inbound or outbound message in bytes; larger frames drop the connection.
    /// Default 8192.
    pub max_message_size: usize,
    /// Largest accepted difference between a message's SendingTime and `now`, in seconds
    /// (QuickFIX `MaxLatency`, default 120). 0 disables the check.
    pub max_latency_secs: u32,
    /// Seconds to wait for the Logout reply before disconnecting (QuickFIX `LogoutTimeout`,
    /// default 2).
    pub logout_timeout_secs: u32,
    /// Seconds an acceptor waits for the first message (a Logon) before dropping the
    /// connection, and an initiator for the Logon reply (QuickFIX `LogonTimeout`, default 10).
    pub logon_timeout_secs: u32,
    /// Validate inbound messages against the FIX 4.4 dictionary (QuickFIX
    /// `UseDataDictionary`). Default true.
    pub validate: bool,
    /// Precision of SendingTime and OrigSendingTime we write. Default milliseconds.
    pub timestamp_precision: TimePrecision,
    /// Bytes reserved for inbound messages that arrive ahead of a sequence gap and wait for
    /// it to be filled. When full, further early messages are dropped and recovered by the
    /// next ResendRequest. Default 64 KiB.
    pub inbound_queue_bytes: usize,
    /// HeartBtInt (108) values, in seconds, an acceptor takes on a Logon; outside it the
    /// Logon is answered with a Logout and the connection closed. HeartBtInt=0 (no
    /// heartbeats) or a very long interval would switch off every liveness check, so a
    /// half-open connection would hold the session (and its cancel-on-disconnect) for ever.
    /// Default 1..=300.
    pub heart_bt_int_range: std::ops::RangeInclusive<u32>,
    /// Bytes of resent messages written per call when answering a ResendRequest: a request
    /// over a long range is answered by a cursor, [`Session::pump_resend`] continuing it as
    /// the connection's output drains, so the answer never has to fit in an output buffer
    /// at once. Default 64 KiB.
    ///
    /// [`Session::pump_resend`]: crate::Session::pump_resend
    pub resend_batch_bytes: usize,
}

impl SessionConfig {
    /// An acceptor for `sender` (us) and `target` (the counterparty) with QuickFIX defaults.
    pub fn acceptor(sender: &str, target: &str) -> Self {
        SessionConfig {
            role: Role::Acceptor,
            begin_string: "FIX.4.4".to_string(),
            sender_comp_id: sender.to_string(),
            target_comp_id: target.to_string(),
            heart_bt_int: 30,
            reset_on_logon: false,
            reset_on_logout: false,
            username: None,
            password: None,
            max_message_size: 8192,
            max_latency_secs: 120,
            logout_timeout_secs: 2,
            logon_timeout_secs: 10,
            validate: true,
            timestamp_precision: TimePrecision::Millis,
            inbound_queue_bytes: 64 * 1024,
            heart_bt_int_range: 1..=300,
            resend_batch_bytes: 64 * 1024,
        }
    }

    /// An initiator for `sender` (us) and `target` (the counterparty) with QuickFIX defaults.
    pub fn initiator(sender: &str, target: &str) -> Self {
        SessionConfig {
            role: Role::Initiator,
            ..SessionConfig::acceptor(sender, target)
        }
    }
}
