//! The appliance's configuration: one TOML file, or the embedded default.
//!
//! Loading is cold path and strict: unknown keys are refused (`deny_unknown_fields`), and every
//! semantic check names the key it refuses (`instruments[1].tick_size: ...`), so an operator
//! fixes the file from the first error message instead of discovering a typo in production.
//! Every key is documented in `docs/configuration.md`.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

/// The embedded default configuration (`appliance --print-default-config` prints it).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A configuration the appliance refuses, with the offending key in the message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type (toml names the key and line).
    #[error("{0}")]
    Parse(String),
    /// A value of the right type that is not acceptable.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How the hot agents are laid out on threads.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Matching engine threads.
    pub engine: EngineSection,
    /// Gateway (network) threads.
    pub gateway: GatewaySection,
    /// The FIX 4.4 listener and its sessions.
    pub fix: FixSection,
    /// The binary order-entry listener and its users.
    pub binary: BinarySection,
    /// The Prometheus exporter.
    #[serde(default)]
    pub exporter: ExporterSection,
    /// The journal: durability of everything the appliance acknowledged.
    #[serde(default)]
    pub journal: JournalSection,
    /// The operator's console.
    #[serde(default)]
    pub admin: AdminSection,
    /// The order-by-order market-data feed.
    #[serde(default)]
    pub market_data: MarketDataSection,
    /// Tradable instruments; their position in this list is their instrument id.
    pub instruments: Vec<InstrumentConfig>,
    /// Firm-wide limits (`[[firms]]`), over all of a firm's sessions.
    #[serde(default)]
    pub firms: Vec<FirmConfig>,
}

/// `[[firms]]`: limits over every session of a firm (beside each session's own).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirmConfig {
    /// The firm: a sessions' `owner` (or a session's CompID / username when it has none).
    pub name: String,
    /// Working orders the firm's sessions may have together; 0 = no limit (reject 120).
    #[serde(default)]
    pub max_open_orders: u32,
    /// Gross open notional per instrument over the firm's sessions, whole currency units;
    /// 0 = no limit (reject 121).
    #[serde(default)]
    pub max_open_notional: u64,
}

/// How a hot thread waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitStrategy {
    /// Poll without ever yielding the core: lowest latency, burns the core. For isolated cores.
    BusySpin,
    /// Poll for up to 200 µs (less after long gaps), then sleep until work arrives: costs a few microseconds on the first
    /// message after a quiet spell, leaves the core to others while idle.
    SpinThenPark,
}

/// How gateways and engines are laid out on threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Threading {
    /// Pick from the host: `dedicated` pinned and busy-spinning when there is an isolated CPU
    /// for each hot thread; `shared` when the process may use fewer CPUs than hot threads
    /// plus one; `dedicated` otherwise.
    Auto,
    /// One thread per gateway and per engine (for hosts with a core for each).
    Dedicated,
    /// Every gateway and engine in one duty cycle on one thread.
    Shared,
}

/// `[runtime]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Threading mode.
    pub threading: Threading,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            threading: Threading::Auto,
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Number of engine threads (instruments are sharded across them).
    pub threads: usize,
    /// Core to pin each engine thread to; empty for no pinning.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// Wait strategy.
    pub wait: WaitStrategy,
    /// Resting orders per engine.
    pub max_orders: usize,
    /// Price levels per book side per engine.
    pub max_levels_per_side: usize,
    /// SCHED_FIFO priority for engine threads (1-99); 0 keeps the normal scheduler. Refused
    /// unless every engine core is isolated: a FIFO spinner on a shared core starves the host.
    #[serde(default)]
    pub realtime_priority: u8,
}

/// Which I/O backend the gateways use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoBackend {
    /// io_uring when the host allows it, otherwise epoll (with a log line saying why).
    Auto,
    /// io_uring or refuse to start.
    IoUring,
    /// epoll, whatever the host offers.
    Epoll,
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Number of gateway threads.
    pub threads: usize,
    /// Core to pin each gateway thread to; empty for no pinning.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// I/O backend.
    pub io: IoBackend,
    /// io_uring SQPOLL.
    #[serde(default)]
    pub sqpoll: bool,
    /// Wait strategy when no I/O or engine events are pending.
    pub wait: WaitStrategy,
    /// Slots per SPSC ring (power of two).
    pub ring_capacity: usize,
    /// Connections per gateway.
    pub max_connections: usize,
    /// Orders tracked per gateway.
    pub max_orders: usize,
    /// Connections per gateway that have not logged on yet. When full, the oldest of them is
    /// closed to make room for the newcomer (so idle connections cannot lock a configured
    /// session out); must leave room below `max_connections` for the logged-on ones.
    #[serde(default = "default_max_unauthenticated")]
    pub max_unauthenticated: usize,
    /// Of those, from one source address; when full, that address's oldest is closed.
    #[serde(default = "default_max_unauthenticated_per_address")]
    pub max_unauthenticated_per_address: usize,
    /// How long a closing connection (after a Logout or an error) may take to flush its last
    /// messages before it is closed hard, milliseconds.
    #[serde(default = "default_closing_timeout_ms")]
    pub closing_timeout_ms: u64,
    /// TCP_USER_TIMEOUT of accepted sockets, milliseconds: sent data unacknowledged this long
    /// means the peer is gone (the kernel closes the connection). 0 = the kernel's default.
    #[serde(default = "default_tcp_user_timeout_ms")]
    pub tcp_user_timeout_ms: u32,
    /// TCP keepalive idle time of accepted sockets, seconds (probes every third of it, 3
    /// unanswered probes close the connection). 0 = no keepalive.
    #[serde(default = "default_tcp_keepalive_secs")]
    pub tcp_keepalive_secs: u32,
    /// Audit records of order-level refusals (ExecutionReport 150=8, OrderCancelReject,
    /// BusinessMessageReject, the binary OrderRejected / CancelRejected): logged at `info`,
    /// at `debug`, or `off` (not even handed to the audit thread). Session-level events
    /// (connections, logons, session Rejects, resends, sequence resets) are always logged.
    #[serde(default)]
    pub audit_order_events: AuditLevel,
    /// Audit records of every step of an order's life (accepted, fill, cancelled, replaced,
    /// rejected by the engine) with ClOrdID, OrderID, ExecID, quantities and price: logged
    /// at `info`, at `debug`, or `off` (the default: not even handed to the audit thread,
    /// so the order path pays nothing).
    #[serde(default = "audit_off")]
    pub audit_order_lifecycle: AuditLevel,
    /// Audit records a gateway hands to the logging thread per second at most (a one-second
    /// burst); past it they are dropped and counted
    /// (`appliance_audit_records_rate_limited_total`), so a flood of connections or of bad
    /// orders cannot flood the log. 0 = no limit.
    #[serde(default = "default_audit_records_per_sec")]
    pub audit_records_per_sec: u32,
}

fn audit_off() -> AuditLevel {
    AuditLevel::Off
}

fn default_audit_records_per_sec() -> u32 {
    2000
}

/// The level of a family of audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AuditLevel {
    /// Logged at `info`.
    #[default]
    Info,
    /// Logged at `debug` (written only when the log filter lets `debug` through for target
    /// `audit`, e.g. `RUST_LOG=info,audit=debug`).
    Debug,
    /// Not recorded at all.
    Off,
}

fn default_logon_timeout_secs() -> u64 {
    10
}
fn default_max_unauthenticated() -> usize {
    32
}
fn default_max_unauthenticated_per_address() -> usize {
    16
}
fn default_closing_timeout_ms() -> u64 {
    2_000
}
fn default_tcp_user_timeout_ms() -> u32 {
    30_000
}
fn default_tcp_keepalive_secs() -> u32 {
    30
}

/// Self-trade prevention mode of a session's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StpMode {
    /// Orders of the same owner may trade with each other.
    #[default]
    None,
    /// The resting order is cancelled, the aggressor continues.
    CancelResting,
    /// The aggressor's remainder is cancelled.
    CancelAggressing,
    /// Both are cancelled.
    CancelBoth,
}

/// `[fix]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixSection {
    /// Listen address.
    pub listen: SocketAddr,
    /// Gateway thread that owns the listener and its sessions.
    #[serde(default)]
    pub gateway: usize,
    /// The appliance's CompID (SenderCompID of what it sends).
    pub sender_comp_id: String,
    /// Reset sequence numbers on every Logon.
    #[serde(default)]
    pub reset_on_logon: bool,
    /// Largest inbound message in bytes.
    pub max_message_size: usize,
    /// Accepted SendingTime skew, seconds.
    pub sending_time_window_secs: u64,
    /// How long a connection may stay without a Logon before it is dropped, seconds
    /// (QuickFIX `LogonTimeout`).
    #[serde(default = "default_logon_timeout_secs")]
    pub logon_timeout_secs: u64,
    /// Sessions, one per counterparty CompID.
    pub sessions: Vec<FixSessionConfig>,
}

/// `[admin]`: the operator's console, a Unix socket (`appliance admin ...` talks to it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Path of the socket (mode 0600; only root and the appliance's own user are served).
    /// Empty: no console.
    #[serde(default = "default_admin_socket")]
    pub socket: String,
}

fn default_admin_socket() -> String {
    "appliance-admin.sock".to_string()
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            socket: default_admin_socket(),
        }
    }
}

/// `[market_data]`: the order-by-order feed (docs/market-data.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarketDataSection {
    /// Publish the feed.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the packets go: unicast addresses and/or multicast groups (each gets every
    /// packet).
    #[serde(default = "default_md_destinations")]
    pub destinations: Vec<SocketAddr>,
    /// Idle time before a heartbeat packet, milliseconds.
    #[serde(default = "default_md_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Largest UDP payload, bytes (header included); 1,400 keeps a packet in one Ethernet
    /// frame with room for tunnels.
    #[serde(default = "default_md_max_packet")]
    pub max_packet_bytes: usize,
    /// Messages kept for retransmission (about 42 bytes each, reserved at start).
    #[serde(default = "default_md_retransmit")]
    pub retransmit_messages: usize,
    /// TCP address of the retransmission and snapshot service; empty = none.
    #[serde(default = "default_md_recovery")]
    pub recovery_listen: String,
    /// Answer FIX MarketDataRequests (35=V) with snapshots and refreshes of the top levels
    /// (independent of `enabled`, which is the UDP feed). Off: 35=V gets 380=3.
    #[serde(default = "yes")]
    pub fix: bool,
    /// Deepest MarketDepth (264) a FIX subscription may ask for.
    #[serde(default = "default_md_fix_depth")]
    pub fix_max_depth: usize,
    /// Subscriptions one FIX session may hold at once (one per symbol of a request).
    #[serde(default = "default_md_fix_subscriptions")]
    pub fix_max_subscriptions: usize,
}

/// Room a FIX market-data snapshot of `depth` levels a side needs: header and trailer, then
/// `depth` levels per side and the last trade, each entry at most 100 bytes (every field at
/// its widest). Incremental refreshes are split to fit whatever the size.
pub fn fix_md_message_bytes(depth: usize) -> usize {
    crate::gateway::fix_md::MESSAGE_OVERHEAD + (2 * depth + 1) * crate::gateway::fix_md::ENTRY_BYTES
}

fn default_md_fix_depth() -> usize {
    10
}

fn default_md_fix_subscriptions() -> usize {
    16
}

fn default_md_retransmit() -> usize {
    262_144
}

fn default_md_recovery() -> String {
    "127.0.0.1:9201".into()
}

fn default_md_destinations() -> Vec<SocketAddr> {
    vec!["127.0.0.1:9200".parse().expect("literal address")]
}

fn default_md_heartbeat_ms() -> u64 {
    1000
}

fn default_md_max_packet() -> usize {
    1400
}

impl Default for MarketDataSection {
    fn default() -> Self {
        Self {
            enabled: true,
            destinations: default_md_destinations(),
            heartbeat_ms: default_md_heartbeat_ms(),
            max_packet_bytes: default_md_max_packet(),
            retransmit_messages: default_md_retransmit(),
            recovery_listen: default_md_recovery(),
            fix: true,
            fix_max_depth: default_md_fix_depth(),
            fix_max_subscriptions: default_md_fix_subscriptions(),
        }
    }
}

/// `[[fix.sessions]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixSessionConfig {
    /// The client's CompID (TargetCompID of what the appliance sends).
    pub target_comp_id: String,
    /// Username (553) the Logon must carry; none when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (554) the Logon must carry; none when absent.
    #[serde(default)]
    pub password: Option<String>,
    /// Firm for self-trade prevention and owner-wide mass cancels; defaults to the CompID.
    #[serde(default)]
    pub owner: Option<String>,
    /// Cancel this session's resting orders when its connection drops.
    #[serde(default = "yes")]
    pub cancel_on_disconnect: bool,
    /// Self-trade prevention for this session's orders.
    #[serde(default)]
    pub self_trade_prevention: StpMode,
    /// Order operations (new, replace, cancel, mass cancel) per second; 0 = no limit. Past
    /// it, new orders and replaces are refused (reject 117); cancels count but are never
    /// refused.
    #[serde(default)]
    pub max_messages_per_sec: u32,
    /// New orders and replaces per second; 0 = no limit.
    #[serde(default)]
    pub max_orders_per_sec: u32,
    /// Past a throttle: `reject` (default) or `disconnect` (refuse, then log the session out).
    #[serde(default)]
    pub throttle_policy: crate::gateway::throttle::ThrottlePolicy,
    /// Orders the session may have working (live or pending) at once; 0 = no limit. A new
    /// order past it is refused (reject 118).
    #[serde(default)]
    pub max_open_orders: u32,
    /// Gross open notional allowed per instrument, in whole currency units: the sum of
    /// price x leaves quantity over the session's working orders on one instrument; 0 = no
    /// limit. A new order or a replace that would pass it is refused (reject 119).
    #[serde(default)]
    pub max_open_notional: u64,
    /// Makes this a read-only drop-copy session for the firm named (an `owner`, or a
    /// session's CompID / username when it has none): it receives a copy of every
    /// ExecutionReport of the firm's sessions (CopyMsgIndicator 797=Y, Account 1 naming the
    /// originating session) with its own sequence numbers and resend; application messages
    /// from it are refused. The firm's sessions must be on this session's gateway.
    #[serde(default)]
    pub drop_copy_for: Option<String>,
}

/// `[binary]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BinarySection {
    /// Listen address.
    pub listen: SocketAddr,
    /// Gateway thread that owns the listener and its users.
    #[serde(default)]
    pub gateway: usize,
    /// Users allowed to log in.
    pub users: Vec<BinaryUserConfig>,
}

/// `[[binary.users]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryUserConfig {
    /// Username (at most 16 bytes).
    pub username: String,
    /// Password (at most 16 bytes); none when absent.
    #[serde(default)]
    pub password: Option<String>,
    /// Firm for self-trade prevention and owner-wide mass cancels; defaults to the username.
    #[serde(default)]
    pub owner: Option<String>,
    /// Cancel this user's resting orders when its connection drops.
    #[serde(default = "yes")]
    pub cancel_on_disconnect: bool,
    /// Self-trade prevention default for this user's orders (an order may override it).
    #[serde(default)]
    pub self_trade_prevention: StpMode,
    /// Order operations (new, replace, cancel, mass cancel) per second; 0 = no limit. Past
    /// it, new orders and replaces are refused (reject 117); cancels count but are never
    /// refused.
    #[serde(default)]
    pub max_messages_per_sec: u32,
    /// New orders and replaces per second; 0 = no limit.
    #[serde(default)]
    pub max_orders_per_sec: u32,
    /// Past a throttle: `reject` (default) or `disconnect` (refuse, then log the session out).
    #[serde(default)]
    pub throttle_policy: crate::gateway::throttle::ThrottlePolicy,
    /// Orders the session may have working (live or pending) at once; 0 = no limit. A new
    /// order past it is refused (reject 118).
    #[serde(default)]
    pub max_open_orders: u32,
    /// Gross open notional allowed per instrument, in whole currency units: the sum of
    /// price x leaves quantity over the session's working orders on one instrument; 0 = no
    /// limit. A new order or a replace that would pass it is refused (reject 119).
    #[serde(default)]
    pub max_open_notional: u64,
}

/// `[exporter]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterSection {
    /// Serve metrics and health.
    pub enabled: bool,
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
    /// How often hot threads hand their latency histograms to the exporter and publish
    /// their counters, in milliseconds (the freshness of `/metrics`).
    #[serde(default = "default_exporter_interval_ms")]
    pub interval_ms: u64,
}

fn default_exporter_interval_ms() -> u64 {
    1000
}

impl Default for ExporterSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9100".parse().expect("literal address"),
            interval_ms: default_exporter_interval_ms(),
        }
    }
}

/// When an acknowledgement may leave the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckPolicy {
    /// After the input it depends on was handed to the kernel (`pwrite` returned): survives
    /// any crash of the process, not a power loss.
    Written,
    /// After `fdatasync` (group commit): survives a power loss.
    Fsync,
    /// No journal: nothing survives a restart.
    Off,
}

/// Where the journal agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalPlacement {
    /// Its own thread in the dedicated threading mode (and always with `fsync`), in the
    /// shared duty cycle otherwise.
    Auto,
    /// Always its own thread.
    Thread,
    /// In the shared duty cycle (shared threading mode, `written` only).
    DutyCycle,
}

/// `[journal]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Acknowledgement policy.
    pub ack: AckPolicy,
    /// Directory of segments and snapshots (relative paths: to the working directory).
    pub dir: std::path::PathBuf,
    /// Segment file size, MiB (preallocated).
    #[serde(default = "default_segment_mib")]
    pub segment_mib: u64,
    /// Seconds between periodic snapshots (0: only at shutdown).
    #[serde(default = "default_snapshot_secs")]
    pub snapshot_interval_secs: u64,
    /// Snapshots kept (at least 2); the journal is kept from the oldest one on.
    #[serde(default = "default_keep_snapshots")]
    pub keep_snapshots: usize,
    /// Where the journal agent runs.
    #[serde(default = "default_placement")]
    pub placement: JournalPlacement,
}

fn default_segment_mib() -> u64 {
    64
}
fn default_snapshot_secs() -> u64 {
    60
}
fn default_keep_snapshots() -> usize {
    2
}
fn default_placement() -> JournalPlacement {
    JournalPlacement::Auto
}

impl Default for JournalSection {
    fn default() -> Self {
        Self {
            ack: AckPolicy::Written,
            dir: "appliance-data".into(),
            segment_mib: default_segment_mib(),
            snapshot_interval_secs: default_snapshot_secs(),
            keep_snapshots: default_keep_snapshots(),
            placement: default_placement(),
        }
    }
}

/// `[[instruments]]`: prices and notional are decimal strings, converted exactly to integer
/// price units (`price_decimals` implied decimals) at load time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// Symbol (at most 8 bytes: it travels in the binary protocol's 8-byte field).
    pub symbol: String,
    /// Implied decimals of a price unit (4: one unit is 0.0001).
    pub price_decimals: u8,
    /// Tick size as a decimal ("0.01"); must be a whole number of price units.
    pub tick_size: String,
    /// Lot size in quantity units.
    pub lot_size: u64,
    /// Reference price for the percentage band, until the first trade sets a last price.
    #[serde(default)]
    pub reference_price: Option<String>,
    /// Percentage band around the reference (last trade) price.
    #[serde(default)]
    pub band_percent: Option<u32>,
    /// Static band: lowest acceptable price.
    #[serde(default)]
    pub price_min: Option<String>,
    /// Static band: highest acceptable price.
    #[serde(default)]
    pub price_max: Option<String>,
    /// Largest order quantity.
    pub max_order_qty: u64,
    /// Largest order notional (price x quantity) as a decimal in currency units.
    pub max_notional: String,
    /// Engine thread owning the instrument; default: instrument index modulo engine threads.
    #[serde(default)]
    pub engine: Option<usize>,
    /// End of the trading session, `HH:MM` (or `HH:MM:SS`) in `time_zone`: every Day order
    /// still working on the instrument then expires (ExecType C). None: Day orders never
    /// expire.
    #[serde(default)]
    pub session_end: Option<String>,
    /// IANA time zone of `session_end` ("Europe/London", "America/New_York"); default UTC.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

fn yes() -> bool {
    true
}

/// Parses a decimal string into integer units with `decimals` implied decimals, exactly
/// (the FIX codec's conversion: configuration and wire prices follow one rule).
pub fn parse_decimal(s: &str, decimals: u8) -> Result<i64, &'static str> {
    use fix::codec::num::DecimalError;
    fix::codec::num::parse_decimal(s.as_bytes(), decimals).map_err(|e| match e {
        DecimalError::Format => "is not a decimal number",
        DecimalError::TooPrecise => "has more decimals than price_decimals allows",
        DecimalError::Overflow => "is too large",
    })
}

/// An instrument with its decimals resolved to integer price units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedInstrument {
    /// Symbol.
    pub symbol: String,
    /// Implied decimals of a price unit.
    pub price_decimals: u8,
    /// Tick size in price units.
    pub tick_units: i64,
    /// Lot size.
    pub lot_size: u64,
    /// Reference price in units.
    pub reference_units: Option<i64>,
    /// Percentage band.
    pub band_percent: Option<u32>,
    /// Static band in units.
    pub price_min_units: Option<i64>,
    /// Static band in units.
    pub price_max_units: Option<i64>,
    /// Largest quantity.
    pub max_order_qty: u64,
    /// Largest notional in price units x quantity.
    pub max_notional_units: u128,
    /// Owning engine thread.
    pub engine: usize,
}

impl Config {
    /// The embedded default.
    pub fn default_config() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the embedded default configuration is valid")
    }

    /// What is valid but probably a mistake: sessions anyone who can reach a listener that is
    /// not on loopback can log on to, without any credential. `check-config` prints these and
    /// `run` logs them; neither refuses (a private network may be the only protection wanted).
    pub fn security_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.fix.listen.ip().is_loopback() {
            for (i, s) in self.fix.sessions.iter().enumerate() {
                if s.username.is_none() && s.password.is_none() {
                    w.push(format!(
                        "fix.sessions[{i}] ({}) has no username or password and fix.listen \
                         {} is not on loopback: anyone who reaches it can log on as {}",
                        s.target_comp_id, self.fix.listen, s.target_comp_id
                    ));
                }
            }
        }
        if !self.binary.listen.ip().is_loopback() {
            for (i, u) in self.binary.users.iter().enumerate() {
                if u.password.is_none() {
                    w.push(format!(
                        "binary.users[{i}] ({}) has no password and binary.listen {} is not \
                         on loopback: anyone who reaches it can log in as {}",
                        u.username, self.binary.listen, u.username
                    ));
                }
            }
        }
        w
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse(m) => ConfigError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Renders the configuration back to TOML (what `check-config` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serialises")
    }

    /// Bytes the appliance reserves at start-up with this configuration (order arenas, id
    /// indexes, price levels, rings, connection buffers, receive buffers): what `check-host`
    /// compares with the reserved hugepages. An estimate from the sizes of the structures,
    /// rounded up; `check-host` only needs the order of magnitude.
    pub fn memory_estimate(&self) -> u64 {
        let e = &self.engine;
        let g = &self.gateway;
        let per_engine = e.max_orders as u64 * (64 + 2 * 16)
            + self.instruments.len() as u64 * 2 * e.max_levels_per_side as u64 * 64;
        let per_gateway = g.max_connections as u64 * ((64 << 10) + (2 << 20))
            + g.max_orders as u64 * (160 + 2 * 48)
            + (4 << 20)
            // FIX market data: the gateway's copy of every book's levels.
            + if self.market_data.fix {
                self.instruments.len() as u64 * 2 * e.max_levels_per_side as u64 * 24
            } else {
                0
            };
        let rings = (e.threads * g.threads * 2) as u64 * g.ring_capacity as u64 * 192;
        per_engine * e.threads as u64 + per_gateway * g.threads as u64 + rings
    }

    /// Instruments with decimal strings turned into price units (validated by `validate`).
    pub fn resolved_instruments(&self) -> Vec<ResolvedInstrument> {
        self.instruments
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                resolve_instrument(i, ins, self.engine.threads).expect("validated at load")
            })
            .collect()
    }

    /// Whether firm `name` has FIX sessions, and binary users (a session's `owner`, or its
    /// CompID / username when it has none).
    fn firm_has_sessions(&self, name: &str) -> (bool, bool) {
        let fix = self
            .fix
            .sessions
            .iter()
            .any(|x| x.owner.as_ref().unwrap_or(&x.target_comp_id) == name);
        let bin = self
            .binary
            .users
            .iter()
            .any(|u| u.owner.as_ref().unwrap_or(&u.username) == name);
        (fix, bin)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.threads == 0 || e.threads > 64 {
            return Err(invalid("engine.threads", "must be between 1 and 64"));
        }
        check_cores("engine.cores", &e.cores, e.threads)?;
        if e.realtime_priority > 99 {
            return Err(invalid(
                "engine.realtime_priority",
                "must be 0 (off) or 1 to 99",
            ));
        }
        if e.realtime_priority > 0 && e.cores.is_empty() {
            return Err(invalid(
                "engine.realtime_priority",
                "needs engine.cores: SCHED_FIFO is only allowed on pinned, isolated cores",
            ));
        }
        if e.max_orders == 0 {
            return Err(invalid("engine.max_orders", "must be at least 1"));
        }
        if e.max_levels_per_side < 1 || e.max_orders > u32::MAX as usize {
            return Err(invalid(
                "engine.max_levels_per_side",
                "must be at least 1 (and engine.max_orders at most 2^32-1)",
            ));
        }
        let md = &self.market_data;
        if md.enabled && md.destinations.is_empty() {
            return Err(invalid(
                "market_data.destinations",
                "needs at least one address (or market_data.enabled = false)",
            ));
        }
        if !(64..=65_507).contains(&md.max_packet_bytes) {
            return Err(invalid(
                "market_data.max_packet_bytes",
                "must be between 64 and 65,507 (a UDP payload)",
            ));
        }
        if md.heartbeat_ms == 0 {
            return Err(invalid("market_data.heartbeat_ms", "must be at least 1"));
        }
        if md.retransmit_messages == 0 {
            return Err(invalid(
                "market_data.retransmit_messages",
                "must be at least 1",
            ));
        }
        if !(1..=100).contains(&md.fix_max_depth) {
            return Err(invalid(
                "market_data.fix_max_depth",
                "must be between 1 and 100",
            ));
        }
        if !(1..=1024).contains(&md.fix_max_subscriptions) {
            return Err(invalid(
                "market_data.fix_max_subscriptions",
                "must be between 1 and 1,024",
            ));
        }
        if !md.recovery_listen.is_empty() && md.recovery_listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "market_data.recovery_listen",
                "must be ip:port, or empty for no recovery service",
            ));
        }
        for (i, f) in self.firms.iter().enumerate() {
            let key = format!("firms[{i}].name");
            let (fix_firm, bin_firm) = self.firm_has_sessions(&f.name);
            if !fix_firm && !bin_firm {
                return Err(invalid(
                    key,
                    format!("no session belongs to a firm {:?}", f.name),
                ));
            }
            if fix_firm && bin_firm && self.binary.gateway != self.fix.gateway {
                return Err(invalid(
                    key,
                    "the firm has FIX and binary sessions on different gateways: firm limits \
                     need all of a firm's sessions on one gateway",
                ));
            }
            if self.firms[..i].iter().any(|g| g.name == f.name) {
                return Err(invalid(key, "listed twice"));
            }
        }
        for (i, s) in self.fix.sessions.iter().enumerate() {
            let Some(firm) = &s.drop_copy_for else {
                continue;
            };
            let key = format!("fix.sessions[{i}].drop_copy_for");
            let (fix_firm, bin_firm) = self.firm_has_sessions(firm);
            if !fix_firm && !bin_firm {
                return Err(invalid(
                    key,
                    format!("no session belongs to a firm {firm:?}"),
                ));
            }
            if s.owner.as_ref().unwrap_or(&s.target_comp_id) == firm {
                return Err(invalid(
                    key,
                    "a drop-copy session cannot belong to the firm it copies",
                ));
            }
            if bin_firm && self.binary.gateway != self.fix.gateway {
                return Err(invalid(
                    key,
                    "the firm's binary users are on another gateway (binary.gateway): a drop \
                     copy needs the firm's sessions on its own gateway",
                ));
            }
        }
        let g = &self.gateway;
        if g.threads == 0 || g.threads > 64 {
            return Err(invalid("gateway.threads", "must be between 1 and 64"));
        }
        check_cores("gateway.cores", &g.cores, g.threads)?;
        for (i, c) in g.cores.iter().enumerate() {
            if e.cores.contains(c) {
                return Err(invalid(
                    format!("gateway.cores[{i}]"),
                    format!(
                        "core {c} is also an engine core; a hot thread needs a core of its own"
                    ),
                ));
            }
        }
        if !g.ring_capacity.is_power_of_two() || g.ring_capacity < 16 {
            return Err(invalid(
                "gateway.ring_capacity",
                "must be a power of two, at least 16",
            ));
        }
        // io_uring completions carry the connection slot in 24 bits of their user data.
        if g.max_connections == 0 || g.max_connections > 1 << 24 {
            return Err(invalid(
                "gateway.max_connections",
                "must be between 1 and 16777216",
            ));
        }
        if g.max_orders == 0 {
            return Err(invalid("gateway.max_orders", "must be at least 1"));
        }
        // Logged-on connections are at most one per configured session: with the
        // unauthenticated budget below what is left, a configured session always finds a slot.
        let sessions = self.fix.sessions.len() + self.binary.users.len();
        if g.max_unauthenticated == 0 || g.max_unauthenticated + sessions > g.max_connections {
            return Err(invalid(
                "gateway.max_unauthenticated",
                format!(
                    "must be at least 1 and leave a slot for each of the {sessions} configured \
                     sessions (gateway.max_connections = {})",
                    g.max_connections
                ),
            ));
        }
        if g.max_unauthenticated_per_address == 0
            || g.max_unauthenticated_per_address > g.max_unauthenticated
        {
            return Err(invalid(
                "gateway.max_unauthenticated_per_address",
                "must be between 1 and gateway.max_unauthenticated",
            ));
        }
        if self.fix.logon_timeout_secs == 0 || self.fix.logon_timeout_secs > 300 {
            return Err(invalid(
                "fix.logon_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if g.closing_timeout_ms == 0 || g.closing_timeout_ms > 60_000 {
            return Err(invalid(
                "gateway.closing_timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        if self.fix.gateway >= g.threads {
            return Err(invalid(
                "fix.gateway",
                format!(
                    "no gateway thread {} (gateway.threads = {})",
                    self.fix.gateway, g.threads
                ),
            ));
        }
        if self.binary.gateway >= g.threads {
            return Err(invalid(
                "binary.gateway",
                format!(
                    "no gateway thread {} (gateway.threads = {})",
                    self.binary.gateway, g.threads
                ),
            ));
        }
        check_comp_id("fix.sender_comp_id", &self.fix.sender_comp_id)?;
        // A message must fit the connection's 64 KiB input buffer whole.
        if self.fix.max_message_size < 256 || self.fix.max_message_size > 64 << 10 {
            return Err(invalid(
                "fix.max_message_size",
                "must be between 256 and 65536 bytes (a connection's input buffer)",
            ));
        }
        let md = &self.market_data;
        if md.fix && self.fix.max_message_size < fix_md_message_bytes(md.fix_max_depth) {
            return Err(invalid(
                "fix.max_message_size",
                format!(
                    "must be at least {} for market data refreshes of market_data.fix_max_depth \
                     = {} levels (or lower the depth)",
                    fix_md_message_bytes(md.fix_max_depth),
                    md.fix_max_depth
                ),
            ));
        }
        if self.fix.sending_time_window_secs > 86_400 {
            return Err(invalid(
                "fix.sending_time_window_secs",
                "must be at most 86400 (0 switches the check off)",
            ));
        }
        let mut seen = HashSet::new();
        for (i, s) in self.fix.sessions.iter().enumerate() {
            let key = format!("fix.sessions[{i}].target_comp_id");
            check_comp_id(&key, &s.target_comp_id)?;
            if !seen.insert(&s.target_comp_id) {
                return Err(invalid(
                    key,
                    format!("duplicate session {}", s.target_comp_id),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, u) in self.binary.users.iter().enumerate() {
            let key = format!("binary.users[{i}].username");
            if u.username.is_empty() || u.username.len() > 16 || !u.username.is_ascii() {
                return Err(invalid(key, "must be 1 to 16 ASCII bytes"));
            }
            if u.username.contains(' ') {
                return Err(invalid(
                    key,
                    "must not contain spaces (the wire pads with spaces)",
                ));
            }
            if !seen.insert(&u.username) {
                return Err(invalid(key, format!("duplicate user {}", u.username)));
            }
            if let Some(p) = &u.password {
                if p.len() > 16 || !p.is_ascii() || p.contains(' ') {
                    return Err(invalid(
                        format!("binary.users[{i}].password"),
                        "must be at most 16 ASCII bytes without spaces",
                    ));
                }
            }
        }
        // Port 0 asks the kernel for a free port, so equal addresses with port 0 are fine.
        let clash = |a: &SocketAddr, b: &SocketAddr| a == b && a.port() != 0;
        if clash(&self.fix.listen, &self.binary.listen) {
            return Err(invalid(
                "binary.listen",
                "is the same address as fix.listen",
            ));
        }
        if self.exporter.enabled
            && (clash(&self.exporter.listen, &self.fix.listen)
                || clash(&self.exporter.listen, &self.binary.listen))
        {
            return Err(invalid(
                "exporter.listen",
                "is the same address as a gateway listener",
            ));
        }
        if !(10..=60_000).contains(&self.exporter.interval_ms) {
            return Err(invalid(
                "exporter.interval_ms",
                "must be between 10 and 60000 milliseconds",
            ));
        }
        let j = &self.journal;
        if !(1..=4096).contains(&j.segment_mib) {
            return Err(invalid("journal.segment_mib", "must be between 1 and 4096"));
        }
        if j.keep_snapshots < 2 {
            return Err(invalid(
                "journal.keep_snapshots",
                "must be at least 2 (a damaged newest snapshot needs a fallback)",
            ));
        }
        if j.ack == AckPolicy::Fsync && j.placement == JournalPlacement::DutyCycle {
            return Err(invalid(
                "journal.placement",
                "\"duty-cycle\" cannot be used with ack = \"fsync\": an fdatasync would stop \
                 matching for its whole duration (use \"auto\" or \"thread\")",
            ));
        }
        if j.ack != AckPolicy::Off && j.dir.as_os_str().is_empty() {
            return Err(invalid("journal.dir", "must not be empty"));
        }
        if self.instruments.is_empty() {
            return Err(invalid(
                "instruments",
                "at least one instrument is required",
            ));
        }
        let mut seen = HashSet::new();
        for (i, ins) in self.instruments.iter().enumerate() {
            resolve_instrument(i, ins, e.threads)?;
            // A price level's quantity is the sum of its orders' (u64): every order of the
            // engine at one level, each at the maximum, must not wrap it.
            if ins.max_order_qty.checked_mul(e.max_orders as u64).is_none() {
                return Err(invalid(
                    format!("instruments[{i}].max_order_qty"),
                    format!(
                        "times engine.max_orders ({}) must fit 64 bits (a level's total quantity)",
                        e.max_orders
                    ),
                ));
            }
            if !seen.insert(&ins.symbol) {
                return Err(invalid(
                    format!("instruments[{i}].symbol"),
                    format!("duplicate symbol {}", ins.symbol),
                ));
            }
            if jiff::tz::TimeZone::get(&ins.time_zone).is_err() {
                return Err(invalid(
                    format!("instruments[{i}].time_zone"),
                    format!(
                        "unknown time zone {:?} (an IANA name such as Europe/London)",
                        ins.time_zone
                    ),
                ));
            }
            if let Some(end) = &ins.session_end {
                if crate::runtime::schedule::parse_hh_mm(end).is_none() {
                    return Err(invalid(
                        format!("instruments[{i}].session_end"),
                        format!("{end:?} is not a time of day HH:MM or HH:MM:SS"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_cores(key: &str, cores: &[usize], threads: usize) -> Result<(), ConfigError> {
    if !cores.is_empty() && cores.len() != threads {
        return Err(invalid(
            key,
            format!(
                "lists {} cores for {threads} threads: give one per thread, or none",
                cores.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, c) in cores.iter().enumerate() {
        if !seen.insert(c) {
            return Err(invalid(
                format!("{key}[{i}]"),
                format!("core {c} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_comp_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'=' && b != b'|');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            "must be 1 to 32 printable ASCII characters without '='",
        ))
    }
}

fn resolve_instrument(
    i: usize,
    ins: &InstrumentConfig,
    engine_threads: usize,
) -> Result<ResolvedInstrument, ConfigError> {
    let key = |field: &str| format!("instruments[{i}].{field}");
    if ins.symbol.is_empty()
        || ins.symbol.len() > 8
        || !ins
            .symbol
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'=')
    {
        return Err(invalid(
            key("symbol"),
            "must be 1 to 8 printable ASCII characters",
        ));
    }
    if ins.price_decimals > 9 {
        return Err(invalid(key("price_decimals"), "must be at most 9"));
    }
    let d = ins.price_decimals;
    let price = |field: &str, s: &str| {
        parse_decimal(s, d).map_err(|m| invalid(key(field), format!("{s:?}: {m}")))
    };
    let tick_units = price("tick_size", &ins.tick_size)?;
    if tick_units <= 0 {
        return Err(invalid(key("tick_size"), "must be positive"));
    }
    if ins.lot_size == 0 {
        return Err(invalid(key("lot_size"), "must be at least 1"));
    }
    if ins.max_order_qty == 0 || ins.max_order_qty % ins.lot_size != 0 {
        return Err(invalid(
            key("max_order_qty"),
            "must be a positive multiple of lot_size",
        ));
    }
    let reference_units = ins
        .reference_price
        .as_deref()
        .map(|s| price("reference_price", s))
        .transpose()?;
    let price_min_units = ins
        .price_min
        .as_deref()
        .map(|s| price("price_min", s))
        .transpose()?;
    let price_max_units = ins
        .price_max
        .as_deref()
        .map(|s| price("price_max", s))
        .transpose()?;
    match (ins.band_percent, price_min_units, price_max_units) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid(
                key("band_percent"),
                "choose a percentage band or a static price_min/price_max band, not both",
            ))
        }
        (Some(p), None, None) => {
            if p == 0 || p > 1000 {
                return Err(invalid(key("band_percent"), "must be between 1 and 1000"));
            }
            if reference_units.is_none() {
                return Err(invalid(
                    key("reference_price"),
                    "is required with band_percent (the band is around it until the first trade)",
                ));
            }
        }
        (None, Some(lo), Some(hi)) if lo > hi => {
            return Err(invalid(key("price_min"), "is above price_max"));
        }
        _ => {}
    }
    if let Some(r) = reference_units {
        if r <= 0 || r % tick_units != 0 {
            return Err(invalid(
                key("reference_price"),
                "must be positive and a multiple of tick_size",
            ));
        }
    }
    let notional = price("max_notional", &ins.max_notional)?;
    if notional <= 0 {
        return Err(invalid(key("max_notional"), "must be positive"));
    }
    let engine = ins.engine.unwrap_or(i % engine_threads);
    if engine >= engine_threads {
        return Err(invalid(
            key("engine"),
            format!("no engine thread {engine} (engine.threads = {engine_threads})"),
        ));
    }
    Ok(ResolvedInstrument {
        symbol: ins.symbol.clone(),
        price_decimals: d,
        tick_units,
        lot_size: ins.lot_size,
        reference_units,
        band_percent: ins.band_percent,
        price_min_units,
        price_max_units,
        max_order_qty: ins.max_order_qty,
        max_notional_units: notional as u128,
        engine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_matches_the_documented_defaults() {
        let c = Config::default_config();
        assert_eq!(c.fix.listen, "127.0.0.1:9878".parse().unwrap());
        assert_eq!(c.binary.listen, "127.0.0.1:9879".parse().unwrap());
        assert_eq!(c.exporter.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(c.fix.sender_comp_id, "APPLIANCE");
        let sessions: Vec<_> = c
            .fix
            .sessions
            .iter()
            .map(|s| s.target_comp_id.as_str())
            .collect();
        assert_eq!(sessions, ["CLIENT1", "CLIENT2"]);
        assert!(c.fix.sessions.iter().all(|s| s.password.is_none()));
        let users: Vec<_> = c.binary.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(users, ["CLIENT1", "CLIENT2"]);
        let ins = c.resolved_instruments();
        let syms: Vec<_> = ins.iter().map(|i| i.symbol.as_str()).collect();
        assert_eq!(syms, ["ACME", "BOLT", "CRUX"]);
        assert!(ins
            .iter()
            .all(|i| i.tick_units == 100 && i.price_decimals == 4 && i.lot_size == 1));
        assert!(c.engine.cores.is_empty() && c.gateway.cores.is_empty());
        assert_eq!(c.engine.wait, WaitStrategy::SpinThenPark);
        assert_eq!(c.gateway.wait, WaitStrategy::SpinThenPark);
    }

    #[test]
    fn rendered_config_parses_back_to_the_same() {
        let c = Config::default_config();
        let again = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(again.to_toml(), c.to_toml());
    }

    fn with(replace: &str, by: &str) -> Result<Config, ConfigError> {
        assert!(
            DEFAULT_TOML.contains(replace),
            "{replace:?} not in the default"
        );
        Config::from_toml(&DEFAULT_TOML.replacen(replace, by, 1))
    }

    fn err_of(replace: &str, by: &str) -> String {
        with(replace, by).expect_err("must be refused").to_string()
    }

    #[test]
    fn limits_the_code_depends_on_are_enforced_at_load() {
        // io_uring user data holds 24 bits of connection slot.
        // Unauthenticated connections leave a slot for each of the 4 configured sessions.
        assert!(with("max_unauthenticated = 32", "max_unauthenticated = 60").is_ok());
        let e = err_of("max_unauthenticated = 32", "max_unauthenticated = 61");
        assert!(e.contains("gateway.max_unauthenticated"), "{e}");
        let e = err_of(
            "max_unauthenticated_per_address = 16",
            "max_unauthenticated_per_address = 33",
        );
        assert!(e.contains("gateway.max_unauthenticated_per_address"), "{e}");
        let e = err_of("closing_timeout_ms = 2_000", "closing_timeout_ms = 0");
        assert!(e.contains("gateway.closing_timeout_ms"), "{e}");
        let e = err_of("logon_timeout_secs = 10", "logon_timeout_secs = 0");
        assert!(e.contains("fix.logon_timeout_secs"), "{e}");
        assert!(with("max_connections = 64", "max_connections = 16_777_216").is_ok());
        let e = err_of("max_connections = 64", "max_connections = 16_777_217");
        assert!(e.contains("gateway.max_connections"), "{e}");
        // A message must fit the 64 KiB input buffer.
        assert!(with("max_message_size = 4096", "max_message_size = 65536").is_ok());
        let e = err_of("max_message_size = 4096", "max_message_size = 65537");
        assert!(e.contains("fix.max_message_size"), "{e}");
        // No silent truncation to 32 bits.
        let e = err_of(
            "sending_time_window_secs = 120",
            "sending_time_window_secs = 4_294_967_416",
        );
        assert!(e.contains("fix.sending_time_window_secs"), "{e}");
        assert!(with(
            "sending_time_window_secs = 120",
            "sending_time_window_secs = 0"
        )
        .is_ok());
        // A level's total quantity must not wrap.
        let e = err_of(
            "max_order_qty = 1_000_000",
            "max_order_qty = 18_446_744_073_710",
        );
        assert!(e.contains("instruments[0].max_order_qty"), "{e}");
        assert!(e.contains("engine.max_orders"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = err_of("threads = 1\n", "threads = 1\nthreadz = 2\n");
        assert!(e.contains("threadz"), "{e}");
    }

    #[test]
    fn wrong_types_are_refused_by_name() {
        let e = err_of("max_orders = 1_000_000", "max_orders = \"many\"");
        assert!(e.contains("max_orders"), "{e}");
        let e = err_of("wait = \"spin-then-park\"", "wait = \"nap\"");
        assert!(e.contains("wait") || e.contains("nap"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            ("tick_size = \"0.01\"", "tick_size = \"0.00001\"", "instruments[0].tick_size"),
            ("symbol = \"BOLT\"", "symbol = \"ACME\"", "instruments[1].symbol"),
            ("symbol = \"CRUX\"", "symbol = \"TOOLONGSYM\"", "instruments[2].symbol"),
            ("lot_size = 1", "lot_size = 0", "instruments[0].lot_size"),
            ("band_percent = 10", "band_percent = 10\nprice_min = \"1\"", "instruments[0].band_percent"),
            ("ring_capacity = 65_536", "ring_capacity = 1000", "gateway.ring_capacity"),
            ("target_comp_id = \"CLIENT2\"", "target_comp_id = \"CLIENT1\"", "fix.sessions[1].target_comp_id"),
            ("username = \"CLIENT2\"", "username = \"SEVENTEEN_BYTES_X\"", "binary.users[1].username"),
            ("listen = \"127.0.0.1:9879\"", "listen = \"127.0.0.1:9878\"", "binary.listen"),
            ("threads = 1\n# Cores to pin engine threads to, one per thread (empty: no pinning, the shared-host default).\ncores = []", "threads = 1\ncores = [0, 1]", "engine.cores"),
            ("reference_price = \"100.00\"", "reference_price = \"100.005\"", "instruments[0].reference_price"),
            ("gateway = 0\nsender", "gateway = 3\nsender", "fix.gateway"),
            ("realtime_priority = 0", "realtime_priority = 50", "engine.realtime_priority"),
            ("realtime_priority = 0", "realtime_priority = 100", "engine.realtime_priority"),
        ];
        for (from, to, key) in cases {
            let e = err_of(from, to);
            assert!(e.starts_with(key), "replacing {from:?} by {to:?}: {e}");
        }
    }
}
