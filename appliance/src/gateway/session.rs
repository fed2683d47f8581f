//! Configured sessions: the state that outlives connections (cold to build, hot to use).
//!
//! Every session has the same identity part ([`SessionInfo`]: who it is, its credentials, its
//! firm, its connection) and a protocol part ([`SessionKind`]): a FIX session's state machine
//! and message store, or a binary user's sequence numbers and replay log.

use super::binary::BinaryUser;
use super::conn::ConnId;
use super::core::{GatewaySizing, Who};
use super::fix::{FixSession, FixSettings};
use crate::config::{Config, StpMode as CfgStp};
use crate::engine::{OwnerId, SessionId, StpMode};
use crate::rings::msg::session_id;
use crate::vocab::Protocol;
use std::collections::BTreeMap;

/// What every session has, whatever its protocol.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Protocol.
    pub protocol: Protocol,
    /// Local index within the gateway.
    pub local: u16,
    /// Engine-wide session id.
    pub global: SessionId,
    /// FIX: the client's CompID; binary: the username.
    pub name: String,
    /// FIX: Username (553) required at logon.
    pub username: Option<String>,
    /// Password required at logon.
    pub password: Option<String>,
    /// Firm.
    pub owner: OwnerId,
    /// The firm's name (as configured: `owner`, or the session's own name).
    pub owner_name: String,
    /// Default self-trade prevention.
    pub stp: StpMode,
    /// Cancel resting orders when the connection drops.
    pub cancel_on_disconnect: bool,
    /// The logged-in connection.
    pub conn: Option<ConnId>,
    /// A cancel-on-disconnect still to be pushed (the rings were full when the link dropped);
    /// it goes before anything the next connection sends.
    pub disconnect_cancel_pending: bool,
    /// The operator's kill switch is engaged (on the session or its firm): new orders and
    /// replaces are refused, cancels are not.
    pub killed: bool,
    /// The kill switch's cancel of the session's working orders is still to be pushed.
    pub kill_cancel_pending: bool,
    /// The session's throttles as configured (the live buckets are the core's).
    pub throttle: super::throttle::Throttle,
    /// Working orders the session may have at once (0: no limit).
    pub max_open_orders: u32,
    /// Gross open notional allowed per instrument, in whole currency units (price x
    /// quantity; 0: no limit).
    pub max_open_notional: u64,
    /// A read-only drop-copy session for this firm (`fix.sessions[].drop_copy_for`).
    pub drop_copy_of: Option<OwnerId>,
    /// The firm's limits over all its sessions (`[[firms]]`): open orders, open notional
    /// per instrument in whole currency units.
    pub firm_limits: Option<(u32, u64)>,
}

impl SessionInfo {
    /// The session as order operations name it.
    #[inline]
    pub fn who(&self) -> Who {
        Who {
            local: self.local,
            global: self.global,
            owner: self.owner,
            stp: self.stp,
            protocol: self.protocol,
            killed: self.killed,
            read_only: self.drop_copy_of.is_some(),
        }
    }
}

/// The protocol part of a session.
pub enum SessionKind {
    /// A FIX session: state machine and message store.
    Fix(Box<FixSession>),
    /// A binary user: sequence numbers and replay log.
    Binary(Box<BinaryUser>),
}

/// One configured session.
pub struct SessionSlot {
    /// Identity, credentials, connection.
    pub info: SessionInfo,
    /// Protocol state.
    pub kind: SessionKind,
}

fn engine_stp(s: CfgStp) -> StpMode {
    match s {
        CfgStp::None => StpMode::None,
        CfgStp::CancelResting => StpMode::CancelResting,
        CfgStp::CancelAggressing => StpMode::CancelAggressing,
        CfgStp::CancelBoth => StpMode::CancelBoth,
    }
}

/// Owner (firm) names to ids: sorted, numbered from 1, so the same configuration always
/// gives the same ids (the engine's input must not depend on hash order).
pub fn owner_ids(cfg: &Config) -> BTreeMap<String, OwnerId> {
    let mut names: Vec<String> = cfg
        .fix
        .sessions
        .iter()
        .map(|s| s.owner.clone().unwrap_or_else(|| s.target_comp_id.clone()))
        .chain(
            cfg.binary
                .users
                .iter()
                .map(|u| u.owner.clone().unwrap_or_else(|| u.username.clone())),
        )
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i as u32 + 1))
        .collect()
}

/// The sessions gateway `g` serves (cold path: reserves every store and log): the FIX
/// sessions if it owns the FIX listener, then the binary users if it owns the binary one.
/// Local indexes (and so engine-wide session ids) follow that order.
pub fn build_sessions(cfg: &Config, g: usize, sizing: &GatewaySizing) -> Vec<SessionSlot> {
    let owners = owner_ids(cfg);
    let fix_settings = FixSettings::from_config(&cfg.fix);
    let mut sessions = Vec::new();
    if cfg.fix.gateway == g {
        for s in &cfg.fix.sessions {
            let local = sessions.len() as u16;
            let owner = owners[&s.owner.clone().unwrap_or_else(|| s.target_comp_id.clone())];
            sessions.push(SessionSlot {
                info: SessionInfo {
                    protocol: Protocol::Fix,
                    local,
                    global: session_id(g, local),
                    name: s.target_comp_id.clone(),
                    username: s.username.clone(),
                    password: s.password.clone(),
                    owner,
                    owner_name: s.owner.clone().unwrap_or_else(|| s.target_comp_id.clone()),
                    stp: engine_stp(s.self_trade_prevention),
                    cancel_on_disconnect: s.cancel_on_disconnect,
                    conn: None,
                    disconnect_cancel_pending: false,
                    killed: false,
                    kill_cancel_pending: false,
                    throttle: super::throttle::Throttle::new(
                        s.max_messages_per_sec,
                        s.max_orders_per_sec,
                        s.throttle_policy,
                    ),
                    max_open_orders: s.max_open_orders,
                    max_open_notional: s.max_open_notional,
                    drop_copy_of: s
                        .drop_copy_for
                        .as_ref()
                        .and_then(|f| owners.get(f).copied()),
                    firm_limits: firm_limits(cfg, s.owner.as_ref().unwrap_or(&s.target_comp_id)),
                },
                kind: SessionKind::Fix(Box::new(FixSession::new(&fix_settings, s, sizing))),
            });
        }
    }
    if cfg.binary.gateway == g {
        for u in &cfg.binary.users {
            let local = sessions.len() as u16;
            let owner = owners[&u.owner.clone().unwrap_or_else(|| u.username.clone())];
            sessions.push(SessionSlot {
                info: SessionInfo {
                    protocol: Protocol::Binary,
                    local,
                    global: session_id(g, local),
                    name: u.username.clone(),
                    username: None,
                    password: u.password.clone(),
                    owner,
                    owner_name: u.owner.clone().unwrap_or_else(|| u.username.clone()),
                    stp: engine_stp(u.self_trade_prevention),
                    cancel_on_disconnect: u.cancel_on_disconnect,
                    conn: None,
                    disconnect_cancel_pending: false,
                    killed: false,
                    kill_cancel_pending: false,
                    throttle: super::throttle::Throttle::new(
                        u.max_messages_per_sec,
                        u.max_orders_per_sec,
                        u.throttle_policy,
                    ),
                    max_open_orders: u.max_open_orders,
                    max_open_notional: u.max_open_notional,
                    drop_copy_of: None,
                    firm_limits: firm_limits(cfg, u.owner.as_ref().unwrap_or(&u.username)),
                },
                kind: SessionKind::Binary(Box::new(BinaryUser::new(sizing))),
            });
        }
    }
    sessions
}

/// A notional in whole currency units as the order table counts it on `ins`: price units x
/// quantity (a price of 100.00 at 4 decimals is 1,000,000 price units).
pub fn notional_units(currency: u64, ins: &super::instruments::InstrumentRef) -> i128 {
    currency as i128 * 10i128.pow(ins.price_decimals as u32)
}

/// The sessions' notional quotas in the order table's units, `session * instruments +
/// instrument`: whole currency units scaled by each instrument's price decimals (a price of
/// 100.00 at 4 decimals is 1,000,000 price units). Cold path.
pub fn notional_quotas(sessions: &[SessionSlot], instruments: &super::Instruments) -> Vec<i128> {
    let all = instruments.all();
    let mut q = vec![0i128; sessions.len() * all.len()];
    for (s, slot) in sessions.iter().enumerate() {
        for (i, ins) in all.iter().enumerate() {
            q[s * all.len() + i] = notional_units(slot.info.max_open_notional, ins);
        }
    }
    q
}

/// For each local session, the drop-copy session of its firm on this gateway, if any.
pub fn drop_copies(sessions: &[SessionSlot]) -> Vec<Option<u16>> {
    sessions
        .iter()
        .map(|s| {
            sessions
                .iter()
                .find(|d| d.info.drop_copy_of == Some(s.info.owner) && d.info.local != s.info.local)
                .map(|d| d.info.local)
        })
        .collect()
}

/// The `[[firms]]` limits of firm `name`, if it has any.
fn firm_limits(cfg: &Config, name: &str) -> Option<(u32, u64)> {
    cfg.firms
        .iter()
        .find(|f| f.name == name)
        .map(|f| (f.max_open_orders, f.max_open_notional))
}

/// The firms with limits among `sessions` and, per local session, its firm's index
/// (cold path). Notional limits are scaled to each instrument's price units.
pub fn firm_table(
    sessions: &[SessionSlot],
    instruments: &super::Instruments,
) -> (Vec<super::core::FirmLimits>, Vec<Option<u16>>) {
    let mut firms: Vec<(OwnerId, super::core::FirmLimits)> = Vec::new();
    let mut of = vec![None; sessions.len()];
    for (i, s) in sessions.iter().enumerate() {
        let Some((open, notional)) = s.info.firm_limits else {
            continue;
        };
        let k = match firms.iter().position(|(o, _)| *o == s.info.owner) {
            Some(k) => k,
            None => {
                let scaled = instruments
                    .all()
                    .iter()
                    .map(|ins| notional_units(notional, ins))
                    .collect();
                firms.push((
                    s.info.owner,
                    super::core::FirmLimits {
                        sessions: Vec::new(),
                        max_open_orders: open,
                        notional: scaled,
                    },
                ));
                firms.len() - 1
            }
        };
        firms[k].1.sessions.push(s.info.local);
        of[i] = Some(k as u16);
    }
    (firms.into_iter().map(|(_, f)| f).collect(), of)
}
