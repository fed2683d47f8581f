//! The running appliance: threads, rings and the loops that drive the sans-IO cores.

pub mod engine_thread;
pub mod launch;
pub mod msg;
pub mod ring;
pub mod signals;
pub mod stamp;
pub mod wait;
