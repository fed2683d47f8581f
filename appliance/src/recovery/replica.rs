//! A replica of the appliance's state built from the journal (cold path): every engine and
//! every gateway, fed records instead of client bytes.
//!
//! The same type serves three readers of the journal: start-up recovery (its engines and
//! gateways then become the live ones), the snapshotter (a replica that follows the journal
//! on a low-priority thread and writes snapshots, so the live engines never pause), and
//! `appliance journal replay` (offline). Its state hash equals the live appliance's when both
//! have seen the same records.

use super::codec::{CodecError, Get, Put};
use super::records::{
    decode_stop, kind, CommandRecord, ControlRecord, OutHeader, SeqRecord, StartRecord,
};
use super::records::{NO_GATEWAY, RECORD_VERSION};
use crate::config::Config;
use crate::engine::{Engine, Event, EventSink};
use crate::gateway::core::{GatewayRings, GatewaySizing};
use crate::gateway::fix::FixSettings;
use crate::gateway::instruments::Instruments;
use crate::gateway::recovery::digest;
use crate::gateway::session::build_sessions;
use crate::gateway::Gateway;
use crate::rings::msg::gateway_of;
use crate::runtime::launch::engine_config;

/// Why a record could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The record's bytes do not decode.
    #[error("record {seq} (kind {kind}): {source}")]
    Decode {
        /// Journal sequence number.
        seq: u64,
        /// Kind.
        kind: u16,
        /// Why.
        source: super::records::RecordError,
    },
    /// The record does not fit the state built so far.
    #[error("record {seq} (kind {kind}): {what}")]
    Inconsistent {
        /// Journal sequence number.
        seq: u64,
        /// Kind.
        kind: u16,
        /// What does not fit.
        what: String,
    },
}

/// A fingerprint of the configuration the journal's records depend on: instruments and their
/// engines, engine capacities, gateways and their sessions. Listen addresses, threading, wait
/// strategies and the exporter do not matter to a replay and are left out.
pub fn fingerprint(cfg: &Config) -> u64 {
    let mut p = Put::default();
    p.u32(cfg.engine.threads as u32);
    p.u64(cfg.engine.max_orders as u64);
    p.u64(cfg.engine.max_levels_per_side as u64);
    p.u32(cfg.gateway.threads as u32);
    p.u64(cfg.gateway.max_orders as u64);
    for r in cfg.resolved_instruments() {
        p.bytes(format!("{r:?}").as_bytes());
    }
    p.u32(cfg.fix.gateway as u32);
    p.bytes(cfg.fix.sender_comp_id.as_bytes());
    for s in &cfg.fix.sessions {
        p.bytes(
            format!(
                "{}|{:?}|{:?}|{}",
                s.target_comp_id, s.owner, s.self_trade_prevention, s.cancel_on_disconnect
            )
            .as_bytes(),
        );
    }
    p.u32(cfg.binary.gateway as u32);
    for u in &cfg.binary.users {
        p.bytes(
            format!(
                "{}|{:?}|{:?}|{}",
                u.username, u.owner, u.self_trade_prevention, u.cancel_on_disconnect
            )
            .as_bytes(),
        );
    }
    digest(&p.buf)
}

/// The appliance's state rebuilt from records.
pub struct Replica {
    /// Engines, by index.
    pub engines: Vec<Engine>,
    /// Gateways, by index (in replay mode until [`Replica::finish`]).
    pub gateways: Vec<Gateway>,
    /// Journal sequence number of the last record applied (or covered by the snapshot).
    pub last_seq: u64,
    /// Records applied.
    pub applied: u64,
    /// The configuration fingerprint.
    pub fingerprint: u64,
    /// The state hash the last `STOP` record carries, if the last record applied was one.
    pub stop_hash: Option<u64>,
    /// The state hash as last computed, until a record changes the state (hashing a million
    /// orders takes tens of milliseconds; recovery and the snapshotter ask more than once).
    hash_cache: std::cell::Cell<Option<u64>>,
}

/// Sizes a replica's gateways with: `full` for the live gateways recovery hands over,
/// otherwise without connection slots (a replica never has clients).
pub fn replica_sizing(cfg: &Config, full: bool) -> GatewaySizing {
    GatewaySizing {
        max_connections: if full { cfg.gateway.max_connections } else { 0 },
        max_orders: cfg.gateway.max_orders,
        ..GatewaySizing::default()
    }
}

struct Route<'a> {
    gateways: &'a mut [Gateway],
    engine: usize,
}

impl EventSink for Route<'_> {
    fn event(&mut self, ev: &Event) {
        let [a, b] = ev.sessions();
        let ga = a.and_then(gateway_of);
        let gb = b.and_then(gateway_of);
        for g in [ga, gb.filter(|g| Some(*g) != ga)].into_iter().flatten() {
            if let Some(gw) = self.gateways.get_mut(g) {
                gw.replay_event(self.engine, ev);
            }
        }
    }
}

impl Replica {
    /// An empty appliance for `cfg` (no snapshot): fresh engines and gateways in replay mode.
    pub fn new(cfg: &Config, sizing: GatewaySizing) -> anyhow::Result<Self> {
        let mut engines = Vec::with_capacity(cfg.engine.threads);
        for e in 0..cfg.engine.threads {
            engines.push(Engine::new(engine_config(cfg, e))?);
        }
        let gateways = Self::gateways(cfg, sizing);
        Ok(Self {
            engines,
            gateways,
            last_seq: 0,
            applied: 0,
            fingerprint: fingerprint(cfg),
            stop_hash: None,
            hash_cache: Default::default(),
        })
    }

    fn gateways(cfg: &Config, sizing: GatewaySizing) -> Vec<Gateway> {
        let resolved = cfg.resolved_instruments();
        let settings = FixSettings::from_config(&cfg.fix);
        (0..cfg.gateway.threads)
            .map(|g| {
                let mut gw = Gateway::new(
                    g,
                    build_sessions(cfg, g, &sizing),
                    Instruments::new(&resolved),
                    GatewayRings {
                        to_engines: Vec::new(),
                        engine_wakers: Vec::new(),
                        from_engines: Vec::new(),
                    },
                    sizing,
                    settings.clone(),
                );
                gw.begin_replay(cfg.engine.threads);
                gw
            })
            .collect()
    }

    /// Applies one journal record.
    pub fn apply(&mut self, seq: u64, k: u16, payload: &[u8]) -> Result<(), ApplyError> {
        let inconsistent = |what: String| ApplyError::Inconsistent { seq, kind: k, what };
        let decode = |source| ApplyError::Decode {
            seq,
            kind: k,
            source,
        };
        self.stop_hash = None;
        self.hash_cache.set(None);
        match k {
            kind::COMMAND => {
                let r = CommandRecord::decode(payload).map_err(decode)?;
                let e = r.engine as usize;
                let engines = self.engines.len();
                let engine = self.engines.get_mut(e).ok_or_else(|| {
                    inconsistent(format!(
                        "engine {e} of {engines} (the configuration changed?)"
                    ))
                })?;
                if r.engine_seq != engine.seq() + 1 {
                    return Err(inconsistent(format!(
                        "engine {e} command {} after {} (a command is missing or repeated)",
                        r.engine_seq,
                        engine.seq()
                    )));
                }
                if r.origin.gateway != NO_GATEWAY {
                    let g = r.origin.gateway as usize;
                    let gw = self
                        .gateways
                        .get_mut(g)
                        .ok_or_else(|| inconsistent(format!("gateway {g} does not exist")))?;
                    gw.replay_command(&r, engines).map_err(inconsistent)?;
                }
                let mut route = Route {
                    gateways: &mut self.gateways,
                    engine: e,
                };
                engine.process(&r.command, &mut route);
            }
            kind::OUT => {
                let (h, msg) = OutHeader::decode(payload).map_err(decode)?;
                let g = h.gateway as usize;
                let gw = self
                    .gateways
                    .get_mut(g)
                    .ok_or_else(|| inconsistent(format!("gateway {g} does not exist")))?;
                gw.replay_out(&h, msg).map_err(inconsistent)?;
            }
            kind::SEQ => {
                let r = SeqRecord::decode(payload).map_err(decode)?;
                let g = r.gateway as usize;
                let gw = self
                    .gateways
                    .get_mut(g)
                    .ok_or_else(|| inconsistent(format!("gateway {g} does not exist")))?;
                gw.replay_seq(&r).map_err(inconsistent)?;
            }
            kind::CONTROL => {
                let r = ControlRecord::decode(payload).map_err(decode)?;
                let g = r.gateway as usize;
                let gw = self
                    .gateways
                    .get_mut(g)
                    .ok_or_else(|| inconsistent(format!("gateway {g} does not exist")))?;
                gw.replay_control(&r).map_err(inconsistent)?;
            }
            kind::START => {
                let r = StartRecord::decode(payload).map_err(decode)?;
                if r.version != RECORD_VERSION {
                    return Err(inconsistent(format!(
                        "record format version {}, this build reads {RECORD_VERSION}",
                        r.version
                    )));
                }
                if r.fingerprint != self.fingerprint {
                    return Err(inconsistent(
                        "the journal was written with a different configuration (instruments, \
                         engines, gateways or sessions changed); replaying it with this one \
                         would not rebuild the same state"
                            .into(),
                    ));
                }
            }
            kind::STOP => {
                self.stop_hash = Some(decode_stop(payload).map_err(decode)?);
            }
            other => {
                return Err(decode(super::records::RecordError::UnknownKind(other)));
            }
        }
        self.last_seq = seq;
        self.applied += 1;
        Ok(())
    }

    /// The journal is replayed: gateways leave replay mode (keeping a backlog of replies
    /// never rendered, which they render once running).
    pub fn finish(&mut self) {
        for g in &mut self.gateways {
            g.end_replay();
        }
    }

    /// Replies never rendered before the restart, over every gateway.
    pub fn backlog(&self) -> usize {
        self.gateways.iter().map(|g| g.backlog()).sum()
    }

    /// Inbound messages applied past their session's journaled next inbound number.
    pub fn applied_ahead(&self) -> usize {
        self.gateways.iter().map(|g| g.applied_ahead()).sum()
    }

    /// The appliance's state hash: every engine's, then every gateway's.
    pub fn state_hash(&self) -> u64 {
        if let Some(h) = self.hash_cache.get() {
            return h;
        }
        // The engines' part on a second thread, the gateways' on this one: each walks every
        // resting order (about 0.1 s per million on the project VM), and recovery waits.
        let engines = &self.engines;
        let (e, g) = std::thread::scope(|sc| {
            let e = sc.spawn(|| engines.iter().map(|e| e.state_hash()).collect::<Vec<_>>());
            let g: Vec<u64> = self.gateways.iter().map(|g| g.state_hash()).collect();
            (e.join().expect("hashing an engine does not panic"), g)
        });
        let h = state_hash(e, g);
        self.hash_cache.set(Some(h));
        h
    }

    /// The snapshot payload of this state (covering journal records up to `last_seq`).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut p = Put::with_capacity(1 << 20);
        p.raw(SNAPSHOT_MAGIC);
        p.u32(SNAPSHOT_VERSION);
        p.u64(self.fingerprint);
        p.u64(self.last_seq);
        p.u64(self.state_hash());
        p.u32(self.engines.len() as u32);
        let mut buf = Vec::new();
        for e in &self.engines {
            buf.clear();
            e.snapshot_into(&mut buf);
            p.bytes(&buf);
        }
        p.u32(self.gateways.len() as u32);
        for g in &self.gateways {
            let mut gp = Put::default();
            g.write_state(&mut gp);
            p.bytes(&gp.buf);
        }
        p.buf
    }

    /// A replica restored from a snapshot payload; its state hash is checked against the
    /// one the snapshot recorded.
    pub fn from_snapshot(
        cfg: &Config,
        sizing: GatewaySizing,
        payload: &[u8],
    ) -> anyhow::Result<Self> {
        let mut g = Get::new(payload, "snapshot");
        let bad = |e: CodecError| anyhow::anyhow!("{e}");
        if g.take(8).map_err(bad)? != SNAPSHOT_MAGIC {
            anyhow::bail!("not an appliance snapshot (bad magic)");
        }
        let v = g.u32().map_err(bad)?;
        if v != SNAPSHOT_VERSION {
            anyhow::bail!("snapshot version {v}, this build reads {SNAPSHOT_VERSION}");
        }
        let fp = g.u64().map_err(bad)?;
        if fp != fingerprint(cfg) {
            anyhow::bail!(
                "the snapshot was taken with a different configuration (instruments, engines, \
                 gateways or sessions changed)"
            );
        }
        let last_seq = g.u64().map_err(bad)?;
        let hash = g.u64().map_err(bad)?;
        let n = g.count(64).map_err(bad)?;
        if n != cfg.engine.threads {
            anyhow::bail!(
                "{n} engines in the snapshot, {} configured",
                cfg.engine.threads
            );
        }
        let mut engines = Vec::with_capacity(n);
        for e in 0..n {
            let bytes = g.bytes().map_err(bad)?;
            engines.push(
                Engine::restore(engine_config(cfg, e), bytes)
                    .map_err(|err| anyhow::anyhow!("engine {e}: {err}"))?,
            );
        }
        let mut gateways = Self::gateways(cfg, sizing);
        let n = g.count(64).map_err(bad)?;
        if n != gateways.len() {
            anyhow::bail!(
                "{n} gateways in the snapshot, {} configured",
                gateways.len()
            );
        }
        for (i, gw) in gateways.iter_mut().enumerate() {
            let bytes = g.bytes().map_err(bad)?;
            let mut gg = Get::new(bytes, "gateway state");
            gw.read_state(&mut gg)
                .and_then(|()| gg.finish())
                .map_err(|e| anyhow::anyhow!("gateway {i}: {e}"))?;
        }
        g.finish().map_err(bad)?;
        let r = Self {
            engines,
            gateways,
            last_seq,
            applied: 0,
            fingerprint: fp,
            stop_hash: None,
            hash_cache: Default::default(),
        };
        let got = r.state_hash();
        if got != hash {
            anyhow::bail!(
                "the snapshot restores to state hash {got:016x}, it recorded {hash:016x}"
            );
        }
        Ok(r)
    }
}

/// Magic of an appliance snapshot payload.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"APPLSNAP";
/// Version of the payload layout (2: the state hash is XXH3-based; gateway state version 2).
pub const SNAPSHOT_VERSION: u32 = 2;

/// Combines per-engine and per-gateway hashes into the appliance's state hash.
pub fn state_hash(
    engines: impl IntoIterator<Item = u64>,
    gateways: impl IntoIterator<Item = u64>,
) -> u64 {
    let mut p = Put::default();
    for h in engines {
        p.u64(h);
    }
    p.u8(0xff);
    for h in gateways {
        p.u64(h);
    }
    digest(&p.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::records::{ControlAction, CONTROL_LEN};

    fn control(action: ControlAction, on: bool, target: u32) -> [u8; CONTROL_LEN] {
        let mut b = [0u8; CONTROL_LEN];
        ControlRecord {
            gateway: 0,
            action,
            on,
            target,
            wall_ns: 1,
            uid: 0,
        }
        .encode(&mut b);
        b
    }

    #[test]
    fn the_operators_state_is_replayed_hashed_and_carried_by_snapshots() {
        let cfg = Config::default_config();
        let sizing = replica_sizing(&cfg, false);
        let mut r = Replica::new(&cfg, sizing).unwrap();
        let plain = r.state_hash();
        r.apply(
            1,
            kind::CONTROL,
            &control(ControlAction::KillSwitch, true, 0),
        )
        .unwrap();
        let killed = r.state_hash();
        assert_ne!(killed, plain, "the kill switch is part of the state hash");
        r.apply(2, kind::CONTROL, &control(ControlAction::Halt, true, 1))
            .unwrap();
        assert_eq!(r.gateways[0].halted_instruments(), vec![1]);
        let both = r.state_hash();
        assert_ne!(both, killed, "halts are part of the state hash");

        // A snapshot carries both (the restore checks the recorded hash).
        let restored = Replica::from_snapshot(&cfg, sizing, &r.snapshot()).unwrap();
        assert_eq!(restored.state_hash(), both);
        assert_eq!(restored.gateways[0].halted_instruments(), vec![1]);

        // Lifted and resumed: back to the plain state.
        r.apply(
            3,
            kind::CONTROL,
            &control(ControlAction::KillSwitch, false, 0),
        )
        .unwrap();
        r.apply(4, kind::CONTROL, &control(ControlAction::Halt, false, 1))
            .unwrap();
        assert_eq!(r.state_hash(), plain);
        // Disconnects and cancels change nothing; unknown targets are inconsistencies.
        r.apply(
            5,
            kind::CONTROL,
            &control(ControlAction::Disconnect, true, 0),
        )
        .unwrap();
        assert_eq!(r.state_hash(), plain);
        assert!(r
            .apply(6, kind::CONTROL, &control(ControlAction::Halt, true, 999))
            .is_err());
        assert!(r
            .apply(
                7,
                kind::CONTROL,
                &control(ControlAction::KillSwitch, true, 999)
            )
            .is_err());
    }
}
