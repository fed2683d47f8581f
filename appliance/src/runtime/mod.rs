//! The running appliance: agents, the threads that run them, and start-up and shutdown.
//!
//! - [`agent`]: the `Agent` duty-cycle trait and the `Runner` that drives one on a thread
//!   (idle strategy, sleep and wake-up, stop phases).
//! - [`engine_agent`], [`gateway_agent`]: the two hot agents; [`shared`]: both kinds composed
//!   into one duty cycle.
//! - [`drain`]: the one batch path from a command ring into an engine (prefetch hints).
//! - [`threading`]: `dedicated` or `shared`, and where each hot thread goes.
//! - [`launch`]: builds everything from the configuration, starts and stops it.
//! - [`signals`]: SIGINT/SIGTERM without handlers.
//! - [`fault`]: a test hook that makes one thread panic (supervision tests).
//! - [`schedule`]: instruments' session ends, when Day orders expire.
//! - [`audit_log`]: writes the gateways' audit records (connections, logons, disconnects).
//!
//! The primitives the agents share (rings, wakers, stamps) are `crate::rings`.

pub mod agent;
pub mod audit_log;
pub mod cold_thread;
pub mod drain;
pub mod engine_agent;
pub mod fault;
pub mod gateway_agent;
pub mod journal_agent;
pub mod launch;
pub mod schedule;
pub mod shared;
pub mod signals;
pub mod threading;
