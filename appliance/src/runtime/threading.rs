//! Which threading mode to run in, and where each hot thread goes (cold path).
//!
//! The model is Aeron's media driver threading modes. `dedicated` gives each gateway and
//! engine its own thread: the right layout when each has a core to itself (isolated, where
//! it may busy-spin). `shared` runs them all as one duty cycle on one thread: on a host with
//! fewer usable CPUs than hot threads plus one (the client, the exporter and the kernel need
//! somewhere to run too), more hot threads than cores only hands the tail to the scheduler
//! (`docs/benchmarks.md` measures it). `auto` decides from the process's affinity mask and
//! the host's isolated CPUs, and [`Plan::reason`] says why, for the start-up log and
//! `/metrics`.

use crate::config::{Config, Threading, WaitStrategy};
use crate::platform::cpuset::CpuSet;

/// The layout chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One thread per gateway and per engine.
    Dedicated,
    /// Everything on one thread.
    Shared,
}

impl Mode {
    /// Name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Dedicated => "dedicated",
            Mode::Shared => "shared",
        }
    }
}

/// Where each hot thread runs and how it waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The mode.
    pub mode: Mode,
    /// Why (one line for the log and the metric's label).
    pub reason: String,
    /// Core of each engine thread (dedicated).
    pub engine_cores: Vec<Option<usize>>,
    /// Core of each gateway thread (dedicated).
    pub gateway_cores: Vec<Option<usize>>,
    /// Core of the shared thread.
    pub shared_core: Option<usize>,
    /// Wait strategy of engine threads.
    pub engine_wait: WaitStrategy,
    /// Wait strategy of gateway threads and of the shared thread.
    pub gateway_wait: WaitStrategy,
}

/// What the host offers: the CPUs the process may run on and the isolated ones.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// The process's affinity mask (systemd's `CPUAffinity=`, `taskset`, a container's cpuset).
    pub usable: CpuSet,
    /// `/sys/devices/system/cpu/isolated`.
    pub isolated: CpuSet,
}

impl Host {
    /// This host, read now.
    pub fn current() -> Self {
        Self {
            usable: crate::platform::sched::current_affinity(),
            isolated: crate::platform::isolated_cores(),
        }
    }
}

/// Chooses the layout for `cfg` on `host`.
pub fn plan(cfg: &Config, host: &Host) -> Plan {
    let (engines, gateways) = (cfg.engine.threads, cfg.gateway.threads);
    let hot = engines + gateways;
    let configured = |cores: &[usize], n: usize| -> Vec<Option<usize>> {
        (0..n).map(|i| cores.get(i).copied()).collect()
    };
    let dedicated = |reason: String| Plan {
        mode: Mode::Dedicated,
        reason,
        engine_cores: configured(&cfg.engine.cores, engines),
        gateway_cores: configured(&cfg.gateway.cores, gateways),
        shared_core: None,
        engine_wait: cfg.engine.wait,
        gateway_wait: cfg.gateway.wait,
    };
    let shared = |reason: String| Plan {
        mode: Mode::Shared,
        reason,
        engine_cores: vec![None; engines],
        gateway_cores: vec![None; gateways],
        shared_core: cfg
            .gateway
            .cores
            .first()
            .or(cfg.engine.cores.first())
            .copied(),
        engine_wait: cfg.gateway.wait,
        gateway_wait: cfg.gateway.wait,
    };
    match cfg.runtime.threading {
        Threading::Dedicated => dedicated("runtime.threading = \"dedicated\"".into()),
        Threading::Shared => shared("runtime.threading = \"shared\"".into()),
        Threading::Auto => {
            let explicit = !cfg.engine.cores.is_empty() || !cfg.gateway.cores.is_empty();
            // Isolated CPUs count whatever the affinity mask says: with `isolcpus=` the kernel
            // leaves them out of every process's default mask (housekeeping threads stay off
            // them by themselves), and hot threads are pinned onto them explicitly.
            let iso = host.isolated.clone();
            if explicit {
                dedicated("auto: cores are configured (engine.cores / gateway.cores)".into())
            } else if iso.len() >= hot {
                let mut cpus = iso.iter();
                let engine_cores = (0..engines).map(|_| cpus.next()).collect();
                let gateway_cores = (0..gateways).map(|_| cpus.next()).collect();
                Plan {
                    mode: Mode::Dedicated,
                    reason: format!(
                        "auto: {} isolated CPUs ({iso}) for {hot} hot threads: pinned, busy-spin",
                        iso.len()
                    ),
                    engine_cores,
                    gateway_cores,
                    shared_core: None,
                    engine_wait: WaitStrategy::BusySpin,
                    gateway_wait: WaitStrategy::BusySpin,
                }
            } else if host.usable.len() < hot + 1 {
                shared(format!(
                    "auto: {} usable CPUs ({}) for {hot} hot threads plus the rest of the host",
                    host.usable.len(),
                    host.usable
                ))
            } else {
                dedicated(format!(
                    "auto: {} usable CPUs ({}) for {hot} hot threads plus the rest of the host",
                    host.usable.len(),
                    host.usable
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(usable: &str, isolated: &str) -> Host {
        Host {
            usable: CpuSet::parse(usable).unwrap(),
            isolated: CpuSet::parse(isolated).unwrap(),
        }
    }

    fn cfg(threading: &str) -> Config {
        let text = crate::config::DEFAULT_TOML.replace(
            "threading = \"auto\"",
            &format!("threading = \"{threading}\""),
        );
        Config::from_toml(&text).unwrap()
    }

    #[test]
    fn auto_shares_one_thread_when_cpus_are_scarce() {
        // Default: 1 gateway + 1 engine = 2 hot threads; 2 CPUs < 3.
        let p = plan(&cfg("auto"), &host("0-1", ""));
        assert_eq!(p.mode, Mode::Shared);
        assert!(p.reason.contains("2 usable CPUs"), "{}", p.reason);
        let p = plan(&cfg("auto"), &host("0", ""));
        assert_eq!(p.mode, Mode::Shared);
    }

    #[test]
    fn auto_dedicates_threads_when_there_is_room() {
        let p = plan(&cfg("auto"), &host("0-3", ""));
        assert_eq!(p.mode, Mode::Dedicated);
        assert_eq!(p.engine_cores, vec![None]);
        assert_eq!(p.engine_wait, WaitStrategy::SpinThenPark);
    }

    #[test]
    fn auto_pins_and_spins_on_isolated_cpus() {
        let p = plan(&cfg("auto"), &host("0-3", "2-3"));
        assert_eq!(p.mode, Mode::Dedicated);
        assert_eq!(p.engine_cores, vec![Some(2)]);
        assert_eq!(p.gateway_cores, vec![Some(3)]);
        assert_eq!(p.engine_wait, WaitStrategy::BusySpin);
        assert_eq!(p.gateway_wait, WaitStrategy::BusySpin);
        assert!(p.reason.contains("isolated"), "{}", p.reason);
        // With isolcpus= the process's default mask holds only the housekeeping CPUs; the
        // isolated ones still take the hot threads (they are pinned there explicitly).
        let p = plan(&cfg("auto"), &host("0-1", "2-3"));
        assert_eq!(p.mode, Mode::Dedicated);
        assert_eq!(p.engine_cores, vec![Some(2)]);
        // One isolated CPU for two hot threads is not enough to pin both.
        let p = plan(&cfg("auto"), &host("0-3", "3"));
        assert_eq!(p.mode, Mode::Dedicated);
        assert_eq!(p.engine_cores, vec![None]);
    }

    #[test]
    fn explicit_modes_are_obeyed() {
        assert_eq!(
            plan(&cfg("dedicated"), &host("0", "")).mode,
            Mode::Dedicated
        );
        assert_eq!(
            plan(&cfg("shared"), &host("0-63", "1-63")).mode,
            Mode::Shared
        );
    }
}
