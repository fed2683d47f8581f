//! Durability: what the journal's records mean, and rebuilding the appliance from a snapshot
//! and the journal's tail.

pub mod codec;
pub mod records;
pub mod recover;
pub mod replica;
pub mod snapshotter;
pub mod tail;
