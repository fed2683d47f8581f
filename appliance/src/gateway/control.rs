//! Operator commands reaching a gateway from the admin thread (`crate::admin`), and the
//! gateway's answers, over a pair of SPSC rings. Cold: a gateway looks at its command ring
//! once per pass (an empty check on the ring's index) and handles a command, rarely, between
//! two messages, without allocating.
//!
//! Every command that changes something is journaled (`CONTROL`, with the operator's uid)
//! before its effects: the kill switch and halts are gateway state no engine command
//! carries, so replay restores them from these records and a restart keeps them.

use super::recovery::session_seqs;
use super::Gateway;
use crate::engine::{CancelReason, InstrumentId, OwnerId};
use crate::recovery::records::{kind, ControlAction, ControlRecord, CONTROL_LEN};
use crate::rings::ring::{channel, Receiver, Sender};
use crate::rings::wait::Waker;
use crate::telemetry::counters::gw;
use std::sync::Arc;

/// Commands a gateway's ring holds (the admin thread sends one and waits for its answer).
pub const COMMAND_SLOTS: usize = 16;
/// Answers a gateway's ring holds: one row per session and the closing `Done`.
pub const REPLY_SLOTS: usize = 4096;

/// Which sessions a command is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One session, by its local index in the gateway.
    Session(u16),
    /// Every session of a firm.
    Owner(OwnerId),
}

impl Target {
    /// Whether it names the session with local index `local` of firm `owner`.
    fn names(self, local: u16, owner: OwnerId) -> bool {
        match self {
            Target::Session(l) => local == l,
            Target::Owner(o) => owner == o,
        }
    }
}

/// An operator command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRequest {
    /// List the sessions: a [`ControlReply::Session`] each, then [`ControlReply::Done`].
    Sessions,
    /// Engage (`engage`) or lift the kill switch. Engaging refuses the sessions' new orders
    /// and replaces from now on and cancels their working orders (an ExecutionReport each,
    /// reason `kill switch`); cancels stay allowed. Answered with `Done` and the number of
    /// sessions it applied to.
    Kill {
        /// The sessions.
        target: Target,
        /// Engage or lift.
        engage: bool,
    },
    /// Halt (`halted`) or resume an instrument on this gateway: new orders and replaces on
    /// it are refused while halted, cancels go on. `Done` says 1, or 0 for an unknown id.
    Halt {
        /// The instrument.
        instrument: crate::engine::InstrumentId,
        /// Halt or resume.
        halted: bool,
    },
    /// Log a session out (FIX Logout, binary Logout) and close its connection. `Done` says
    /// 1 if it was connected.
    Disconnect {
        /// Local index of the session.
        session: u16,
    },
    /// The instrument's session ended: send its engine `ExpireDayOrders`. `Done` says 1
    /// once sent, 0 when the rings were full (ask again).
    ExpireDay {
        /// The instrument.
        instrument: crate::engine::InstrumentId,
    },
    /// Cancel the working orders of the sessions `target` names (on `instrument` only, if
    /// given), an ExecutionReport each with reason `operator`; the sessions keep trading.
    /// `Done` says how many sessions, or [`BUSY`] when the engine rings had no room (ask
    /// again).
    Cancel {
        /// The sessions.
        target: Target,
        /// Only this instrument's orders.
        instrument: Option<InstrumentId>,
    },
    /// A configuration reload for one session: its throttles and quotas take `limits` (the
    /// throttles start full), and its credentials those in [`Control::credentials`] if
    /// any (sent back in a [`ControlReply::Credentials`]). A connected session stays
    /// connected; the next logon is checked against the new credentials. `Done` says 1.
    Reload {
        /// Local index of the session.
        session: u16,
        /// Its new limits.
        limits: SessionLimits,
    },
}

/// What a reload may change of a session besides its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Order operations per second (0: no limit).
    pub max_messages_per_sec: u32,
    /// New orders and replaces per second (0: no limit).
    pub max_orders_per_sec: u32,
    /// Past a throttle.
    pub throttle_policy: super::throttle::ThrottlePolicy,
    /// Working orders allowed (0: no limit).
    pub max_open_orders: u32,
    /// Gross open notional per instrument, whole currency units (0: no limit).
    pub max_open_notional: u64,
}

/// A session's credentials, moved through the rings: the gateway swaps them in and sends
/// the old ones back, so its thread neither allocates nor frees them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The gateway's copy (checked when a connection binds): username, password.
    pub bind: (Option<String>, Option<String>),
    /// The FIX session's copy (checked by its Logon handling): username, password.
    pub fix: (Option<String>, Option<String>),
}

/// `Done`'s count when a command could not be carried out for lack of ring room (ask again).
pub const BUSY: u32 = u32::MAX;

/// A command and the operator who gave it (the console client's uid, journaled).
#[derive(Debug, PartialEq, Eq)]
pub struct Control {
    /// What to do.
    pub request: ControlRequest,
    /// The operator's uid.
    pub uid: u32,
    /// New credentials for a [`ControlRequest::Reload`].
    pub credentials: Option<Box<Credentials>>,
}

/// One session's state, as the gateway sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// Local index in the gateway.
    pub local: u16,
    /// A connection is logged on.
    pub connected: bool,
    /// The kill switch is engaged.
    pub killed: bool,
    /// Sequence number of the session's next inbound message.
    pub next_in: u64,
    /// Sequence number of the session's next outbound message.
    pub next_out: u64,
    /// Orders working (live or pending).
    pub open_orders: u32,
    /// New orders and replaces refused by its throttles so far.
    pub throttled: u64,
    /// Its throttles as they stand (order operations / new orders per second; 0: none).
    pub max_messages_per_sec: u32,
    /// New orders and replaces per second (0: none).
    pub max_orders_per_sec: u32,
    /// Working orders allowed (0: no limit).
    pub max_open_orders: u32,
    /// Gross open notional allowed per instrument, whole currency units (0: no limit).
    pub max_open_notional: u64,
}

/// A gateway's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum ControlReply {
    /// A session's row ([`ControlRequest::Sessions`]).
    Session(SessionRow),
    /// The credentials a reload replaced, for the console to drop.
    Credentials(Box<Credentials>),
    /// The command is done; `affected` sessions.
    Done {
        /// Sessions listed or changed.
        affected: u32,
    },
}

/// The gateway's end.
pub struct ControlLink {
    requests: Receiver<Control>,
    replies: Sender<ControlReply>,
}

/// The admin thread's end of one gateway's rings.
pub struct AdminLink {
    /// Gateway index.
    pub gateway: usize,
    /// Commands to the gateway.
    pub requests: Sender<Control>,
    /// Its answers.
    pub replies: Receiver<ControlReply>,
    /// Wakes the gateway's thread after a command is pushed.
    pub waker: Arc<Waker>,
    /// The uid of the operator whose command is being carried out (journaled with it).
    pub operator: u32,
}

/// The rings between the admin thread and gateway `gateway` (woken by `waker`).
pub fn control_channel(gateway: usize, waker: Arc<Waker>) -> (AdminLink, ControlLink) {
    let (req_tx, req_rx, _) = channel(COMMAND_SLOTS);
    let (rep_tx, rep_rx, _) = channel(REPLY_SLOTS);
    (
        AdminLink {
            gateway,
            requests: req_tx,
            replies: rep_rx,
            waker,
            operator: 0,
        },
        ControlLink {
            requests: req_rx,
            replies: rep_tx,
        },
    )
}

impl ControlLink {
    /// Whether a command waits.
    #[inline]
    pub fn pending(&self) -> bool {
        !self.requests.is_empty()
    }
}

impl Gateway {
    /// Handles every waiting operator command (cold path). Returns whether it did anything.
    #[cold]
    pub(super) fn on_control(&mut self) -> bool {
        let mut did = false;
        for i in 0..self.controls.len() {
            did |= self.on_control_link(i);
        }
        did
    }

    fn on_control_link(&mut self, i: usize) -> bool {
        let mut did = false;
        // A command journals at most one record per session: leave it in the ring until the
        // journal's ring has room for them all.
        let room = (self.sessions.len() + 1) * (CONTROL_LEN + 64);
        while self.controls[i].pending() {
            if let Some(j) = self.core.journal.as_mut() {
                if !j.has_room(room) {
                    break;
                }
            }
            let Some(Control {
                request,
                uid,
                credentials,
            }) = self.controls[i].requests.pop()
            else {
                break;
            };
            did = true;
            let affected = match request {
                ControlRequest::Sessions => {
                    for slot in &self.sessions {
                        let (next_out, next_in) = session_seqs(&slot.kind);
                        let local = slot.info.local;
                        let t = self.core.throttles.get(local as usize).copied();
                        let row = SessionRow {
                            local,
                            connected: slot.info.conn.is_some(),
                            killed: slot.info.killed,
                            next_in,
                            next_out,
                            open_orders: self.core.orders.live_of(local),
                            throttled: self
                                .core
                                .session_counts
                                .get(local as usize)
                                .map_or(0, |c| c[2]),
                            max_messages_per_sec: t.map_or(0, |t| t.messages.rate()),
                            max_orders_per_sec: t.map_or(0, |t| t.orders.rate()),
                            max_open_orders: self
                                .core
                                .open_quota
                                .get(local as usize)
                                .copied()
                                .unwrap_or(0),
                            max_open_notional: slot.info.max_open_notional,
                        };
                        let _ = self.controls[i].replies.push(ControlReply::Session(row));
                    }
                    self.sessions.len() as u32
                }
                ControlRequest::Kill { target, engage } => {
                    let n = self.kill(target, engage, uid);
                    let killed = self.sessions.iter().filter(|s| s.info.killed).count();
                    self.core.counters.set(gw::KILLED_SESSIONS, killed as u64);
                    n
                }
                ControlRequest::Halt { instrument, halted } => {
                    let known = self.set_halted(instrument, halted);
                    if known {
                        self.journal_control(ControlAction::Halt, halted, instrument, uid);
                    }
                    known as u32
                }
                ControlRequest::Disconnect { session } => {
                    let n = self.disconnect_session(session);
                    if n > 0 {
                        self.journal_control(ControlAction::Disconnect, true, session as u32, uid);
                    }
                    n
                }
                ControlRequest::ExpireDay { instrument } => {
                    if self.core.rings_ready() {
                        self.core.expire_day(instrument) as u32
                    } else {
                        0
                    }
                }
                ControlRequest::Cancel { target, instrument } => {
                    if self.core.rings_ready() {
                        self.operator_cancel(target, instrument, uid)
                    } else {
                        BUSY
                    }
                }
                ControlRequest::Reload { session, limits } => {
                    match self.reload(session, limits, credentials) {
                        Some(old) => {
                            if let Some(old) = old {
                                let _ = self.controls[i]
                                    .replies
                                    .push(ControlReply::Credentials(old));
                            }
                            self.journal_control(ControlAction::Reload, true, session as u32, uid);
                            1
                        }
                        None => 0,
                    }
                }
            };
            let _ = self.controls[i]
                .replies
                .push(ControlReply::Done { affected });
        }
        self.core.publish();
        did
    }

    /// The instruments halted (cold path: start-up, after recovery).
    pub fn halted_instruments(&self) -> Vec<InstrumentId> {
        let t = &self.core.instruments;
        t.all()
            .iter()
            .map(|i| i.id)
            .filter(|&i| t.is_halted(i))
            .collect()
    }

    /// Halts or resumes an instrument (live or in replay); returns whether it exists.
    pub(super) fn set_halted(&mut self, instrument: InstrumentId, halted: bool) -> bool {
        let known = self.core.instruments.set_halted(instrument, halted);
        let n = self.core.instruments.halted_count() as u64;
        self.core.counters.set(gw::HALTED_INSTRUMENTS, n);
        known
    }

    /// Journals what the operator did (the ring's room was checked before the command).
    fn journal_control(&mut self, action: ControlAction, on: bool, target: u32, uid: u32) {
        let Some(j) = self.core.journal.as_mut() else {
            return;
        };
        let r = ControlRecord {
            gateway: self.core.id as u8,
            action,
            on,
            target,
            wall_ns: super::core::wall_clock_ns(),
            uid,
        };
        let pushed = j.push_with(kind::CONTROL, CONTROL_LEN, |b| r.encode(b));
        debug_assert!(pushed, "room was checked before the command");
    }

    /// Applies a reload to session `s`: `None` when it does not exist, otherwise the
    /// credentials it replaced (if new ones came).
    fn reload(
        &mut self,
        s: u16,
        limits: SessionLimits,
        credentials: Option<Box<Credentials>>,
    ) -> Option<Option<Box<Credentials>>> {
        let slot = self.sessions.get_mut(s as usize)?;
        let info = &mut slot.info;
        info.throttle = super::throttle::Throttle::new(
            limits.max_messages_per_sec,
            limits.max_orders_per_sec,
            limits.throttle_policy,
        );
        info.max_open_orders = limits.max_open_orders;
        info.max_open_notional = limits.max_open_notional;
        if let Some(t) = self.core.throttles.get_mut(s as usize) {
            *t = info.throttle;
        }
        if let Some(q) = self.core.open_quota.get_mut(s as usize) {
            *q = limits.max_open_orders;
        }
        let instruments = self.core.instruments.all();
        let row = s as usize * instruments.len();
        for (k, ins) in instruments.iter().enumerate() {
            if let Some(q) = self.core.notional_quota.get_mut(row + k) {
                *q = super::session::notional_units(limits.max_open_notional, ins);
            }
        }
        Some(credentials.map(|mut c| {
            std::mem::swap(&mut info.username, &mut c.bind.0);
            std::mem::swap(&mut info.password, &mut c.bind.1);
            if let super::session::SessionKind::Fix(f) = &mut slot.kind {
                f.session.swap_credentials(&mut c.fix.0, &mut c.fix.1);
            }
            c
        }))
    }

    /// Cancels the working orders of the sessions `target` names (rings checked by the
    /// caller); returns how many sessions.
    fn operator_cancel(
        &mut self,
        target: Target,
        instrument: Option<InstrumentId>,
        uid: u32,
    ) -> u32 {
        let mut n = 0;
        for s in 0..self.sessions.len() as u16 {
            let info = &self.sessions[s as usize].info;
            if !target.names(info.local, info.owner) {
                continue;
            }
            n += 1;
            let who = info.who();
            self.journal_control(ControlAction::Cancel, true, s as u32, uid);
            self.core
                .operator_cancel(&who, instrument, CancelReason::Operator);
        }
        n
    }

    /// Logs session `s` out and closes its connection; returns 1 if it was connected.
    fn disconnect_session(&mut self, s: u16) -> u32 {
        let Some(slot) = self.sessions.get_mut(s as usize) else {
            return 0;
        };
        let Some(c) = slot.info.conn else {
            return 0;
        };
        match &mut slot.kind {
            super::session::SessionKind::Fix(fs) => self.fix.log_out(
                &mut self.core,
                Some(fs),
                c,
                b"disconnected by the venue's operator",
                crate::vocab::DisconnectCause::Operator,
            ),
            super::session::SessionKind::Binary(_) => self.binary.log_out(
                &mut self.core,
                c,
                crate::binary::wire::LogoutReason::Operator,
                crate::vocab::DisconnectCause::Operator,
            ),
        }
        self.settle();
        1
    }

    /// Engages or lifts the kill switch of the sessions `target` names; returns how many.
    fn kill(&mut self, target: Target, engage: bool, uid: u32) -> u32 {
        let mut n = 0;
        for s in 0..self.sessions.len() as u16 {
            let info = &self.sessions[s as usize].info;
            if !target.names(info.local, info.owner) {
                continue;
            }
            self.journal_control(ControlAction::KillSwitch, engage, s as u32, uid);
            let info = &mut self.sessions[s as usize].info;
            n += 1;
            if engage && !info.killed {
                self.core
                    .counters
                    .bump(crate::telemetry::counters::gw::KILLS);
            }
            info.killed = engage;
            if engage {
                // Every working order goes, as soon as the rings have room.
                info.kill_cancel_pending = true;
                self.push_pending_cancel(s);
            }
        }
        n
    }
}
