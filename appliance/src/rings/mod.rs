//! The primitives hot threads share, and nothing else: SPSC rings with their accounting
//! ([`ring`]), what crosses them ([`msg`]), how a ring's consumer waits and its producer wakes
//! it ([`wait`]), and the TSC stamps and per-stage histograms that travel with the messages
//! ([`stamp`]). Leaf modules: they know no gateway, engine loop or thread; `runtime` composes
//! them into agents and threads.

pub mod msg;
pub mod records;
pub mod ring;
pub mod stamp;
pub mod wait;
