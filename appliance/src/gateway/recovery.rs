//! Rebuilding a gateway from the journal, and its part of a snapshot (cold path).
//!
//! In replay mode a gateway takes the journal's records instead of client bytes and ring
//! messages, and runs the same code as live for everything that is state:
//! - `COMMAND` records it originated do the order table's bookkeeping of the order operation
//!   (the order enters the slot and generation its order id names; a cancel or replace becomes
//!   pending; a mass cancel waits for its engines);
//! - the engine events the replay produces go through the live event handling, which updates
//!   the order table; their replies are not rendered but kept, each with its [`Cause`] and a
//!   copy of the order as it was, in a queue per engine;
//! - an `OUT` record puts the message back in its session's store (FIX) or replay log (binary)
//!   and, if it answers an event, takes that event's reply off its queue: it was rendered
//!   before the restart;
//! - a `SEQ` record sets the session's sequence numbers (and clears its store on a reset).
//!
//! What is left on the queues when the journal ends was never rendered: the gateway renders
//! it once it runs (the backlog, [`Gateway::render_backlog`]), with the order as it was at the
//! event, before anything else a client could see, and journals it like any reply.

use super::core::{MassPending, Reply};
use super::orders::{ClientId, OrderBook, OrderInfo, OrderState, Pending};
use super::session::SessionKind;
use super::Gateway;
use crate::engine::{
    CancelKind, CancelReason, Command, Event, InstrumentId, OrdType, Side, TimeInForce,
};
use crate::recovery::codec::{CodecError, Get, Put};
use crate::recovery::records::{
    Cause, CommandRecord, ControlAction, ControlRecord, OutHeader, SeqRecord,
};
use crate::rings::msg::FromEngine;
use crate::telemetry::counters::gw;
use crate::vocab::Protocol;
use ::fix::session::MessageStore;
use std::collections::VecDeque;

/// A reply produced by a replayed event, not (yet) matched by a journaled `OUT`.
#[derive(Clone, Copy, Debug)]
pub struct Deferred {
    /// The event it answers.
    pub cause: Option<Cause>,
    /// Local session.
    pub session: u16,
    /// The reply.
    pub reply: Reply,
    /// The order's slot and state when the reply was made.
    pub order: Option<(u32, OrderInfo)>,
}

/// Replay-mode state: the unmatched replies, one queue per engine.
#[derive(Debug, Default)]
pub struct Replay {
    pending: Vec<VecDeque<Deferred>>,
    /// Whether the journal is still being replayed (`false`: the backlog is being rendered).
    active: bool,
}

impl Replay {
    fn new(engines: usize) -> Self {
        Self {
            pending: (0..engines.max(1)).map(|_| VecDeque::new()).collect(),
            active: true,
        }
    }

    /// Keeps a reply a replayed event produced.
    pub(super) fn defer(
        &mut self,
        cause: Option<Cause>,
        session: u16,
        reply: Reply,
        order: Option<(u32, OrderInfo)>,
    ) {
        let e = cause.map_or(0, |c| c.engine as usize);
        if let Some(q) = self.pending.get_mut(e) {
            q.push_back(Deferred {
                cause,
                session,
                reply,
                order,
            });
        }
    }

    fn len(&self) -> usize {
        self.pending.iter().map(|q| q.len()).sum()
    }
}

impl Gateway {
    /// Enters replay mode, for a journal written by an appliance with `engines` engines.
    pub fn begin_replay(&mut self, engines: usize) {
        self.replay = Some(Box::new(Replay::new(engines)));
        self.core
            .applied
            .resize_with(self.sessions.len(), Default::default);
    }

    /// Whether the gateway is replaying the journal or still has a backlog to render.
    pub fn in_recovery(&self) -> bool {
        self.replay.is_some()
    }

    /// Replies waiting to be rendered (never rendered before the restart).
    pub fn backlog(&self) -> usize {
        self.replay.as_ref().map_or(0, |r| r.len())
    }

    /// Every session's name, protocol and sequence numbers (next outbound, next inbound), for
    /// the journal tools (cold path).
    pub fn session_summaries(&self) -> Vec<(String, Protocol, u64, u64)> {
        self.sessions
            .iter()
            .map(|slot| {
                let (next_out, next_in) = session_seqs(&slot.kind);
                (
                    slot.info.name.clone(),
                    slot.info.protocol,
                    next_out,
                    next_in,
                )
            })
            .collect()
    }

    /// Inbound messages the journal shows applied past their session's next inbound number
    /// (their resends will be skipped).
    pub fn applied_ahead(&self) -> usize {
        self.core.applied.iter().map(|a| a.len()).sum()
    }

    fn session_ok(&self, s: u16) -> Result<(), String> {
        if (s as usize) < self.sessions.len() {
            Ok(())
        } else {
            Err(format!(
                "session {s} does not exist in gateway {} (the configuration changed?)",
                self.core.id
            ))
        }
    }

    /// A `COMMAND` record this gateway originated: the order table's side of the order
    /// operation, as the live gateway did it when it pushed the command.
    pub fn replay_command(&mut self, rec: &CommandRecord, engines: usize) -> Result<(), String> {
        let s = rec.origin.session;
        self.session_ok(s)?;
        // A command from a message past the session's journaled next inbound number: the
        // client will resend that message, which must not be applied twice (see
        // `inflight`).
        if rec.origin.in_seq > 0 {
            let next_in = match &self.sessions[s as usize].kind {
                SessionKind::Fix(f) => f.session.store().next_target_seq(),
                SessionKind::Binary(u) => u.state.next_in_seq as u64,
            };
            if rec.origin.in_seq >= next_in {
                self.core.applied[s as usize].insert(rec.origin.in_seq, rec.engine as usize);
            }
        }
        let id = ClientId::from_bytes(rec.origin.id()).unwrap_or_default();
        let orders = &mut self.core.orders;
        match rec.command {
            Command::New(o) => {
                let slot = orders.restore_insert(o.order_id, s, id)?;
                let info = orders.get_mut(slot);
                info.instrument = o.instrument;
                info.side = o.side;
                info.ord_type = o.ord_type;
                info.tif = o.tif;
                info.post_only = o.post_only;
                info.price = o.price;
                info.qty = o.qty;
            }
            Command::Cancel(c) => {
                if let Some(slot) = orders.slot_of(c.order_id) {
                    orders.get_mut(slot).pending = Pending::Cancel(id);
                }
            }
            Command::Replace(r) => {
                if let Some(slot) = orders.slot_of(r.order_id) {
                    if orders.find(s, &id) != Some(slot) {
                        orders
                            .add_alias(s, id, slot)
                            .map_err(|e| format!("replace to {id:?}: {e:?}"))?;
                    }
                    orders.get_mut(slot).pending = Pending::Replace(id);
                }
            }
            Command::MassCancel(m) => {
                // A client's mass cancel (by session now; by owner in journals written before
                // the scope followed the rules of engagement), not a cancel-on-disconnect.
                if m.reason == CancelReason::MassCancel {
                    let awaiting = match m.instrument.and_then(|i| self.core.instruments.get(i)) {
                        Some(ins) => 1u64 << ins.engine,
                        None => u64::MAX >> (64 - engines.clamp(1, 64)),
                    };
                    self.core.restore_mass(MassPending {
                        session: s,
                        request: id,
                        instrument: m.instrument,
                        awaiting,
                        count: 0,
                    });
                }
            }
            Command::ExpireDayOrders(_) => {}
        }
        Ok(())
    }

    /// An event the replay of engine `engine` produced for this gateway.
    pub fn replay_event(&mut self, engine: usize, event: &Event) {
        let msg = FromEngine {
            event: *event,
            t_recv: 0,
            t_done: 0,
        };
        self.on_event(engine, &msg);
    }

    /// An `OUT` record: the message goes back into its session's store or log, and the reply
    /// it rendered, if it answered an event, leaves the queue.
    pub fn replay_out(&mut self, h: &OutHeader, msg: &[u8]) -> Result<(), String> {
        self.session_ok(h.session)?;
        match &mut self.sessions[h.session as usize].kind {
            SessionKind::Fix(f) => {
                let st = f.session.store_mut();
                let _ = st.store(h.seq, msg);
                if st.next_sender_seq() <= h.seq {
                    let _ = st.set_next_sender_seq(h.seq + 1);
                }
            }
            SessionKind::Binary(u) => {
                if h.seq != u.state.next_out_seq as u64 {
                    return Err(format!(
                        "binary session {}: frame {} after {} (frames come in order)",
                        h.session,
                        h.seq,
                        u.state.next_out_seq.saturating_sub(1)
                    ));
                }
                u.state.restore_frame(h.seq as u32, msg);
            }
        }
        self.fix
            .set_exec_counter(self.fix.exec_counter().max(h.exec_counter));
        let Some(c) = h.cause else {
            return Ok(());
        };
        let q = self
            .replay
            .as_mut()
            .and_then(|r| r.pending.get_mut(c.engine as usize))
            .ok_or_else(|| format!("an OUT answers engine {} which does not exist", c.engine))?;
        match q.front() {
            Some(d) if d.cause == Some(c) => {
                q.pop_front();
                Ok(())
            }
            other => Err(format!(
                "gateway {} session {}: message {} answers {c:?}, but the replay's next reply \
                 for that engine is {:?}",
                self.core.id,
                h.session,
                h.seq,
                other.map(|d| d.cause)
            )),
        }
    }

    /// A `SEQ` record.
    pub fn replay_seq(&mut self, r: &SeqRecord) -> Result<(), String> {
        self.session_ok(r.session)?;
        let applied = &mut self.core.applied[r.session as usize];
        if r.reset {
            applied.clear();
        }
        applied.prune_below(r.next_in);
        match &mut self.sessions[r.session as usize].kind {
            SessionKind::Fix(f) => {
                let st = f.session.store_mut();
                if r.reset {
                    let _ = st.reset();
                }
                let _ = st.set_next_sender_seq(r.next_out);
                let _ = st.set_next_target_seq(r.next_in);
            }
            SessionKind::Binary(u) => {
                u.state.next_in_seq = r.next_in as u32;
                if r.next_out as u32 > u.state.next_out_seq {
                    u.state.next_out_seq = r.next_out as u32;
                }
            }
        }
        Ok(())
    }

    /// Applies an operator's command from the journal: the kill switch and halts are state;
    /// a disconnect or an operator's cancel changes nothing here (the cancel is the
    /// `COMMAND` that follows it).
    pub fn replay_control(&mut self, r: &ControlRecord) -> Result<(), String> {
        match r.action {
            ControlAction::KillSwitch => {
                let s = u16::try_from(r.target).map_err(|_| format!("session {}", r.target))?;
                self.session_ok(s)?;
                // The cancels it caused are journaled as commands: replay does not repeat
                // them (see `end_replay` for a crash in between).
                self.sessions[s as usize].info.killed = r.on;
            }
            ControlAction::Halt => {
                let id: InstrumentId = r.target;
                if !self.set_halted(id, r.on) {
                    return Err(format!("instrument {id} does not exist"));
                }
            }
            ControlAction::Disconnect | ControlAction::Cancel | ControlAction::Reload => {
                let s = u16::try_from(r.target).map_err(|_| format!("session {}", r.target))?;
                self.session_ok(s)?;
            }
        }
        Ok(())
    }

    /// The journal is replayed: the order table's free list is rebuilt and the counters the
    /// replay moved are cleared. What is still queued becomes the backlog the running
    /// gateway renders first. A killed session that still has working orders (a crash
    /// between the kill switch's record and its cancel) has them cancelled once running.
    pub fn end_replay(&mut self) {
        self.core.orders.rebuild_free_list();
        self.core.counters = Default::default();
        let mut killed = 0;
        for slot in &mut self.sessions {
            if slot.info.killed {
                killed += 1;
                if self.core.orders.live_of(slot.info.local) > 0 {
                    slot.info.kill_cancel_pending = true;
                }
            }
        }
        self.core.counters.set(gw::KILLED_SESSIONS, killed);
        let halted = self.core.instruments.halted_count() as u64;
        self.core.counters.set(gw::HALTED_INSTRUMENTS, halted);
        for slot in &mut self.sessions {
            if let SessionKind::Fix(f) = &mut slot.kind {
                f.session.store_mut().take_resets();
            }
        }
        match self.replay.as_mut() {
            Some(r) if r.len() > 0 => r.active = false,
            _ => self.replay = None,
        }
    }

    /// Renders backlog replies while the record ring has room; returns whether any was.
    pub(super) fn render_backlog(&mut self) -> bool {
        let mut did = false;
        loop {
            let Some(r) = self.replay.as_mut() else {
                return did;
            };
            if r.active {
                return did;
            }
            let Some(d) = r.pending.iter_mut().find_map(|q| q.pop_front()) else {
                self.replay = None;
                return did;
            };
            // The replay is over: take the box out so rendering runs the live path.
            let held = self.replay.take();
            self.render_deferred(&d);
            self.replay = held;
            did = true;
            if !self.core.journal_ready() {
                return did;
            }
        }
    }

    /// Renders one deferred reply with the order as it was when the reply was made.
    fn render_deferred(&mut self, d: &Deferred) {
        let saved = d.order.map(|(slot, info)| {
            let now = *self.core.orders.get(slot);
            *self.core.orders.get_mut(slot) = info;
            (slot, now)
        });
        let slot = &mut self.sessions[d.session as usize];
        match &mut slot.kind {
            SessionKind::Binary(u) => self.binary.render(&mut self.core, &slot.info, u, &d.reply),
            SessionKind::Fix(f) => self.fix.render(&mut self.core, &slot.info, f, &d.reply),
        }
        if let Some((slot, now)) = saved {
            *self.core.orders.get_mut(slot) = now;
        }
        self.journal_session(d.session, d.cause);
    }

    // ---------------------------------------------------------------------------------------
    // State hash and snapshot
    // ---------------------------------------------------------------------------------------

    /// A hash of the gateway's recoverable state: every order in the table (slot by slot),
    /// the mass cancels awaiting engines, the sessions' sequence numbers and the exec-id
    /// counter. Equal for a live gateway and the same gateway rebuilt from the journal.
    pub fn state_hash(&self) -> u64 {
        // Streamed through the hasher in 64 KiB pieces (a million orders encode to ~100 MB).
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        let mut p = Put::with_capacity(72 << 10);
        p.u32(self.core.orders.occupied().count() as u32);
        for (slot, o) in self.core.orders.occupied() {
            p.u32(slot);
            put_order(&mut p, o);
            if p.buf.len() >= 64 << 10 {
                h.update(&p.buf);
                p.buf.clear();
            }
        }
        self.core.encode_mass(&mut p);
        for slot in &self.sessions {
            let (next_out, next_in) = session_seqs(&slot.kind);
            p.u64(next_out);
            p.u64(next_in);
            p.u8(slot.info.killed as u8);
        }
        p.u64(self.fix.exec_counter());
        self.encode_halts(&mut p);
        h.update(&p.buf);
        h.digest()
    }

    fn encode_orders(&self, p: &mut Put) {
        let orders: Vec<(u32, &OrderInfo)> = self.core.orders.occupied().collect();
        p.u32(orders.len() as u32);
        for (slot, o) in orders {
            p.u32(slot);
            put_order(p, o);
        }
    }

    /// The halted instruments' ids.
    fn encode_halts(&self, p: &mut Put) {
        let ids = self.halted_instruments();
        p.u32(ids.len() as u32);
        for id in ids {
            p.u32(id);
        }
    }

    /// Appends the gateway's part of a snapshot: order table, mass cancels awaiting engines,
    /// sessions (kill switch, sequence numbers and every message held for resend or
    /// replay), exec-id counter, the halted instruments, the reply-cause position, and any
    /// replies still queued.
    pub fn write_state(&self, p: &mut Put) {
        p.raw(b"GWST");
        p.u32(GATEWAY_STATE_VERSION);
        self.encode_orders(p);
        self.core.encode_mass(p);
        p.u32(self.sessions.len() as u32);
        for slot in &self.sessions {
            let (next_out, next_in) = session_seqs(&slot.kind);
            p.u8(slot.info.protocol.index() as u8);
            p.u64(next_out);
            p.u64(next_in);
            match &slot.kind {
                SessionKind::Fix(f) => {
                    let mem = f.session.store().memory();
                    let msgs: Vec<(u64, &[u8])> = mem.iter().collect();
                    p.u32(msgs.len() as u32);
                    for (seq, m) in msgs {
                        p.u64(seq);
                        p.bytes(m);
                    }
                }
                SessionKind::Binary(u) => {
                    let frames: Vec<(u32, &[u8])> = u.state.frames().collect();
                    p.u32(frames.len() as u32);
                    for (seq, m) in frames {
                        p.u64(seq as u64);
                        p.bytes(m);
                    }
                }
            }
            p.u8(slot.info.killed as u8);
            let applied = self.core.applied.get(slot.info.local as usize);
            let entries: Vec<(u64, u64)> = applied.into_iter().flat_map(|a| a.entries()).collect();
            p.u32(entries.len() as u32);
            for (seq, engines) in entries {
                p.u64(seq);
                p.u64(engines);
            }
        }
        p.u64(self.fix.exec_counter());
        self.encode_halts(p);
        put_cause(p, self.causes.last());
        let pending: Vec<&Deferred> = self
            .replay
            .iter()
            .flat_map(|r| r.pending.iter().flatten())
            .collect();
        p.u32(pending.len() as u32);
        for d in pending {
            put_cause(p, d.cause);
            p.u16(d.session);
            put_reply(p, &d.reply);
            match &d.order {
                Some((slot, o)) => {
                    p.u8(1);
                    p.u32(*slot);
                    put_order(p, o);
                }
                None => p.u8(0),
            }
        }
    }

    /// Restores the gateway's part of a snapshot into a fresh gateway (in replay mode).
    pub fn read_state(&mut self, g: &mut Get<'_>) -> Result<(), CodecError> {
        if g.take(4)? != b"GWST" {
            return Err(g.err("not a gateway state"));
        }
        // Version 2 (before the operator's state) reads as "nothing killed or halted".
        let v = g.u32()?;
        if v != GATEWAY_STATE_VERSION && v != 2 {
            return Err(g.err(format!(
                "gateway state version {v}, this build reads 2 and {GATEWAY_STATE_VERSION}"
            )));
        }
        let n = g.count(self.core.orders.capacity())?;
        for _ in 0..n {
            let slot = g.u32()?;
            let o = get_order(g)?;
            self.core
                .orders
                .restore_slot(slot, o)
                .map_err(|e| g.err(e))?;
        }
        self.core.orders.rebuild_free_list();
        self.core.decode_mass(g)?;
        let sessions = g.count(self.sessions.len())?;
        if sessions != self.sessions.len() {
            return Err(g.err(format!(
                "{sessions} sessions in the snapshot, {} configured",
                self.sessions.len()
            )));
        }
        for slot in self.sessions.iter_mut() {
            let protocol = g.u8()?;
            if protocol as usize != slot.info.protocol.index() {
                return Err(g.err(format!(
                    "session {} is {:?} in the configuration, not in the snapshot",
                    slot.info.name, slot.info.protocol
                )));
            }
            let (next_out, next_in) = (g.u64()?, g.u64()?);
            let msgs = g.count(usize::MAX >> 1)?;
            match &mut slot.kind {
                SessionKind::Fix(f) => {
                    let st = f.session.store_mut();
                    for _ in 0..msgs {
                        let seq = g.u64()?;
                        let m = g.bytes()?;
                        let _ = st.store(seq, m);
                    }
                    let _ = st.set_next_sender_seq(next_out);
                    let _ = st.set_next_target_seq(next_in);
                }
                SessionKind::Binary(u) => {
                    for _ in 0..msgs {
                        let seq = g.u64()?;
                        let m = g.bytes()?;
                        u.state.restore_frame(seq as u32, m);
                    }
                    u.state.next_out_seq = next_out as u32;
                    u.state.next_in_seq = next_in as u32;
                }
            }
            if v >= 3 {
                slot.info.killed = g.u8()? == 1;
            }
            let n = g.count(usize::MAX >> 1)?;
            let local = slot.info.local as usize;
            if self.core.applied.len() <= local {
                self.core.applied.resize_with(local + 1, Default::default);
            }
            for _ in 0..n {
                let (seq, engines) = (g.u64()?, g.u64()?);
                self.core.applied[local].push(seq, engines);
            }
        }
        self.fix.set_exec_counter(g.u64()?);
        if v >= 3 {
            let n = g.count(self.core.instruments.all().len())?;
            for _ in 0..n {
                let id: InstrumentId = g.u32()?;
                if !self.set_halted(id, true) {
                    return Err(g.err(format!("halted instrument {id} does not exist")));
                }
            }
        }
        self.causes.restore(get_cause(g)?);
        let n = g.count(usize::MAX >> 1)?;
        let replay = self
            .replay
            .as_mut()
            .ok_or_else(|| g.err("restoring a gateway that is not in replay mode"))?;
        for _ in 0..n {
            let cause = get_cause(g)?;
            let session = g.u16()?;
            let reply = get_reply(g)?;
            let order = match g.u8()? {
                0 => None,
                _ => Some((g.u32()?, get_order(g)?)),
            };
            replay.defer(cause, session, reply, order);
        }
        Ok(())
    }
}

/// Version of the gateway's part of a snapshot (2: per-session messages applied past the
/// journaled next inbound number; 3: the kill switches and halted instruments).
const GATEWAY_STATE_VERSION: u32 = 3;

pub(super) fn session_seqs(kind: &SessionKind) -> (u64, u64) {
    match kind {
        SessionKind::Fix(f) => {
            let st = f.session.store();
            (st.next_sender_seq(), st.next_target_seq())
        }
        SessionKind::Binary(u) => (u.state.next_out_seq as u64, u.state.next_in_seq as u64),
    }
}

/// XXH3, 64-bit: deterministic across runs and machines, at memory speed.
pub fn digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

fn put_id(p: &mut Put, id: &ClientId) {
    p.bytes(id.as_bytes());
}

fn get_id(g: &mut Get<'_>) -> Result<ClientId, CodecError> {
    let b = g.bytes()?;
    ClientId::from_bytes(b).ok_or_else(|| g.err(format!("client id of {} bytes", b.len())))
}

fn put_order(p: &mut Put, o: &OrderInfo) {
    p.u32(o.generation);
    p.u8(o.state as u8);
    p.u16(o.session);
    put_id(p, &o.client_id);
    put_id(p, &o.orig_client_id);
    match o.pending {
        Pending::None => p.u8(0),
        Pending::Cancel(id) => {
            p.u8(1);
            put_id(p, &id);
        }
        Pending::Replace(id) => {
            p.u8(2);
            put_id(p, &id);
        }
    }
    p.u32(o.instrument);
    p.u8(o.side as u8);
    p.u8(o.ord_type as u8);
    p.u8(o.tif as u8);
    p.u8(o.post_only as u8);
    p.i64(o.price);
    p.u64(o.qty);
    p.u64(o.cum_qty);
    p.i128(o.cum_notional);
}

fn get_order(g: &mut Get<'_>) -> Result<OrderInfo, CodecError> {
    use crate::engine::FromU8;
    let generation = g.u32()?;
    let state = match g.u8()? {
        0 => OrderState::Free,
        1 => OrderState::PendingNew,
        2 => OrderState::Live,
        3 => OrderState::Done,
        x => return Err(g.err(format!("order state {x}"))),
    };
    let session = g.u16()?;
    let client_id = get_id(g)?;
    let orig_client_id = get_id(g)?;
    let pending = match g.u8()? {
        0 => Pending::None,
        1 => Pending::Cancel(get_id(g)?),
        2 => Pending::Replace(get_id(g)?),
        x => return Err(g.err(format!("pending kind {x}"))),
    };
    let instrument = g.u32()?;
    let side = Side::from_u8(g.u8()?).ok_or_else(|| g.err("side"))?;
    let ord_type = OrdType::from_u8(g.u8()?).ok_or_else(|| g.err("order type"))?;
    let tif = TimeInForce::from_u8(g.u8()?).ok_or_else(|| g.err("time in force"))?;
    let post_only = g.u8()? != 0;
    Ok(OrderInfo {
        generation,
        state,
        session,
        client_id,
        orig_client_id,
        pending,
        instrument,
        side,
        ord_type,
        tif,
        post_only,
        price: g.i64()?,
        qty: g.u64()?,
        cum_qty: g.u64()?,
        cum_notional: g.i128()?,
    })
}

fn put_cause(p: &mut Put, c: Option<Cause>) {
    match c {
        Some(c) => {
            p.u8(1);
            p.u8(c.engine);
            p.u64(c.engine_seq);
            p.u16(c.ordinal);
        }
        None => p.u8(0),
    }
}

fn get_cause(g: &mut Get<'_>) -> Result<Option<Cause>, CodecError> {
    Ok(match g.u8()? {
        0 => None,
        _ => Some(Cause {
            engine: g.u8()?,
            engine_seq: g.u64()?,
            ordinal: g.u16()?,
        }),
    })
}

fn put_reply(p: &mut Put, r: &Reply) {
    match *r {
        Reply::Accepted { slot } => {
            p.u8(1);
            p.u32(slot);
        }
        Reply::Rejected { slot, reason } => {
            p.u8(2);
            p.u32(slot);
            p.u16(reason);
        }
        Reply::Fill {
            slot,
            exec_id,
            price,
            qty,
            leaves,
            maker,
        } => {
            p.u8(3);
            p.u32(slot);
            p.u64(exec_id);
            p.i64(price);
            p.u64(qty);
            p.u64(leaves);
            p.u8(maker as u8);
        }
        Reply::Cancelled {
            slot,
            qty,
            reason,
            request,
        } => {
            p.u8(4);
            p.u32(slot);
            p.u64(qty);
            p.u8(reason as u8);
            match request {
                Some(id) => {
                    p.u8(1);
                    put_id(p, &id);
                }
                None => p.u8(0),
            }
        }
        Reply::Replaced {
            slot,
            priority_kept,
            leaves,
        } => {
            p.u8(5);
            p.u32(slot);
            p.u8(priority_kept as u8);
            p.u64(leaves);
        }
        Reply::CancelRejected {
            slot,
            request,
            orig,
            kind,
            reason,
        } => {
            p.u8(6);
            match slot {
                Some(s) => {
                    p.u8(1);
                    p.u32(s);
                }
                None => p.u8(0),
            }
            put_id(p, &request);
            put_id(p, &orig);
            p.u8(kind as u8);
            p.u16(reason);
        }
        Reply::MassCancelDone {
            request,
            count,
            instrument,
        } => {
            p.u8(7);
            put_id(p, &request);
            p.u64(count);
            match instrument {
                Some(i) => {
                    p.u8(1);
                    p.u32(i);
                }
                None => p.u8(0),
            }
        }
    }
}

fn get_reply(g: &mut Get<'_>) -> Result<Reply, CodecError> {
    use crate::engine::FromU8;
    Ok(match g.u8()? {
        1 => Reply::Accepted { slot: g.u32()? },
        2 => Reply::Rejected {
            slot: g.u32()?,
            reason: g.u16()?,
        },
        3 => Reply::Fill {
            slot: g.u32()?,
            exec_id: g.u64()?,
            price: g.i64()?,
            qty: g.u64()?,
            leaves: g.u64()?,
            maker: g.u8()? != 0,
        },
        4 => Reply::Cancelled {
            slot: g.u32()?,
            qty: g.u64()?,
            reason: CancelReason::from_u8(g.u8()?).ok_or_else(|| g.err("cancel reason"))?,
            request: match g.u8()? {
                0 => None,
                _ => Some(get_id(g)?),
            },
        },
        5 => Reply::Replaced {
            slot: g.u32()?,
            priority_kept: g.u8()? != 0,
            leaves: g.u64()?,
        },
        6 => Reply::CancelRejected {
            slot: match g.u8()? {
                0 => None,
                _ => Some(g.u32()?),
            },
            request: get_id(g)?,
            orig: get_id(g)?,
            kind: CancelKind::from_u8(g.u8()?).ok_or_else(|| g.err("cancel kind"))?,
            reason: g.u16()?,
        },
        7 => Reply::MassCancelDone {
            request: get_id(g)?,
            count: g.u64()?,
            instrument: match g.u8()? {
                0 => None,
                _ => Some(g.u32()?),
            },
        },
        x => return Err(g.err(format!("reply kind {x}"))),
    })
}

impl OrderBook {
    /// Whether the table holds no order at all (for tests).
    pub fn is_empty(&self) -> bool {
        self.occupied().next().is_none()
    }
}

#[allow(dead_code)]
fn _protocol_is_used(p: Protocol) -> usize {
    p.index()
}
