//! FIX 4.4 tag=value, sans-IO.
//!
//! Bytes and time go in; decoded messages and session actions come out; outgoing messages are
//! written into buffers the caller owns. No sockets, threads or clocks live here, so the same
//! code serves the appliance's io_uring gateway, the epoll fallback, the bench's load generator
//! and tests that drive a session byte by byte.
//!
//! Layers, each usable alone:
//! - [`codec::frame`]: the raw framer (BeginString, BodyLength, CheckSum; offsets only);
//! - [`codec::decode`]: fields of a frame into a reusable index, a zero-copy [`Message`] view;
//! - [`dict`]: FIX 4.4 dictionary validation (generated from QuickFIX's FIX44.xml);
//! - [`app`]: typed views of the order messages and encoders of the reports;
//! - [`session`]: the QuickFIX-compatible session state machine, stores, acceptor registry.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod app;
pub mod codec;
pub mod dict;
pub mod session;
pub mod tags;

pub use codec::decode::{FieldIndex, Message};
pub use codec::encode::Encoder;
pub use codec::time::TimePrecision;
pub use session::acceptor::{Acceptor, Identify, IdentifyError, LogonIdentity, SessionId};
pub use session::{
    DisconnectReason, Event, FileStore, MemoryStore, MessageStore, OutboundMessage, Phase,
    Received, Role, Scratch, SendError, Session, SessionConfig,
};
