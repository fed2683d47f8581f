//! The running appliance: threads, rings and the loops that drive the sans-IO cores.

pub mod ring;
pub mod stamp;
pub mod wait;
