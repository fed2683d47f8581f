//! The matching engine: sans-IO, commands in, events out. Hot path.
//!
//! One [`Engine`] owns the books of a shard of instruments. The runtime hands it one
//! [`Command`] at a time ([`Engine::process`]); the engine gives the command the next sequence
//! number, validates it, matches it in price-time priority and reports [`Event`]s to an
//! [`EventSink`]. No threads, sockets, clocks or allocation inside: the output is a pure
//! function of the command sequence, and every byte of memory is reserved by [`Engine::new`].
//! The rules, reason codes and event order are in `docs/engine.md`.
//!
//! Module map. Hot path: `process` (sequencing and the per-command handlers), `validate`
//! (risk checks), `matching` (the sweep, FOK check, resting), `levels` (one book side),
//! `orders` (the order arena), `index` (order id -> slot), `book` (per-instrument rules).
//! Cold path: `config`, `storage` (start-up allocation), `mass` (mass cancel and day expiry:
//! rare, scans the arena), `query` (read-only views), `snapshot` (the whole state as bytes and
//! back, for journal recovery).

mod book;
mod command;
mod config;
mod event;
mod index;
mod levels;
mod mass;
mod matching;
mod orders;
mod process;
mod query;
mod reason;
mod snapshot;
pub(crate) mod storage;
pub(crate) use types::FromU8;
mod types;
mod validate;

pub use book::{qty_ceiling, EXEC_COUNTER_BITS};
pub use command::{
    Cancel, Command, DecodeError, ExpireDayOrders, MassCancel, NewOrder, Replace, COMMAND_BYTES,
};
pub use config::{
    Capacity, ConfigError, EngineConfig, InstrumentConfig, PriceBand, MAX_INSTRUMENT_ID, MAX_ORDERS,
};
pub use event::{
    Accepted, BookChange, CancelRejected, Cancelled, Event, EventKind, EventSink, Fill,
    MassCancelDone, Rejected, Replaced, Trade, EVENT_BYTES,
};
pub use process::Engine;
pub use query::{BookDump, LevelDump, LevelInfo, OrderInfo, Usage};
pub use reason::{BookAction, CancelKind, CancelReason, MassCancelScope, RejectReason};
pub use snapshot::{snapshot_checksum, SnapshotError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use types::{
    order_id, ExecId, InstrumentId, OrdType, OrderId, OwnerId, Price, Qty, Seq, SessionId, Side,
    StpMode, TimeInForce, COUNTER_MASK, GATEWAY_SHIFT,
};

/// Size in bytes of the internal order slot (one cache line); exposed for the layout tests.
pub const ORDER_SLOT_BYTES: usize = core::mem::size_of::<orders::OrderSlot>();
/// Alignment of the internal order slot.
pub const ORDER_SLOT_ALIGN: usize = core::mem::align_of::<orders::OrderSlot>();
