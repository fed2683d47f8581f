//! Market data: the order-by-order feed (TotalView-ITCH class messages in MoldUDP64 packets
//! over UDP), built from the engines' sequenced output on a thread of its own, off the
//! matching cores. `docs/market-data.md` specifies the messages and the transport.
//!
//! - [`wire`]: message and packet layouts, encoders and decoders (sans-IO).
//! - [`translate`]: engine events to feed messages (resting orders only).
//! - [`publisher`]: the publisher thread: drains one ring per engine, packs messages into
//!   packets, sends them, heartbeats when idle, ends the session at shutdown.
//! - [`recovery`]: the retransmission and snapshot services (TCP) a consumer that lost
//!   packets or joined late uses.
//! - [`consumer`]: a consumer of the feed (the other end): the books rebuilt order by order,
//!   the sequence (gaps, duplicates, heartbeats, end of session), the recovery client, late
//!   join by snapshot and gap repair by retransmission.
//! - [`watch`]: `appliance watch`, a terminal view of the books, the last trades and the
//!   feed's state, built on [`consumer`] (rendering apart from the terminal, for tests).
//!
//! The engine side follows the hot-path rules: an engine pushes each event the feed needs
//! (`Copy`, by value) and an end-of-command marker into its SPSC ring to the publisher, and
//! wakes it once per batch; no allocation, no lock. A full ring is waited on (counted), never
//! dropped into: a feed with a hole would be worse than a slower engine.

pub mod consumer;
pub mod publisher;
pub mod recovery;
pub mod translate;
pub mod watch;
pub mod wire;

use crate::engine::Event;

/// What an engine hands the publisher.
#[derive(Clone, Copy, Debug)]
pub enum MdItem {
    /// An event of the command being processed, and the TSC when the engine produced it.
    Event {
        /// The event.
        event: Event,
        /// TSC at the end of the command's processing (the publisher's lag starts here).
        t: u64,
    },
    /// The command that produced the events before it is done.
    End,
}

/// Ring slots between an engine and the publisher.
pub const MD_RING_SLOTS: usize = 1 << 16;
