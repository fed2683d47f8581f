//! `appliance check-host`: a read-only report on how well the host is tuned for the appliance.
//!
//! One source of truth for "is this host ready": every item says ok / warn / fail / info, what
//! was observed and the fix (usually a `tuning/` script or a kernel command-line word). The
//! checks only read `/proc` and `/sys` (through [`HostFs`], so tests feed fake trees) plus one
//! live io_uring probe; a facility the host lacks (no cpufreq on a VM, no `/proc/irq` in a
//! container) is reported, never a crash.
//!
//! Exit status: see [`Report::exit_code`]. Items and what they mean: `docs/tuning.md`.

mod clock;
mod cpu;
mod io;
mod irq;
mod kernel;
mod memory;
mod numa;
pub mod report;

use std::io::Write;
use std::path::PathBuf;

use crate::platform::sysfs::HostFs;
use crate::platform::uring::{self, UringUnavailable};
use crate::platform::CpuSet;
pub use report::{Item, Report, Status, Summary};

/// What the configuration asks of the host; the CLI fills it from the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRequirements {
    /// Every core a hot thread (engine or gateway) is pinned to.
    pub pinned_cores: Vec<usize>,
    /// Bytes the appliance maps for its arenas, rings and buffers: checked against the 2 MiB
    /// hugepages reserved.
    pub hugepage_bytes: u64,
    /// The network interface clients arrive on (e.g. `eth0`), for the NUMA check.
    pub nic: Option<String>,
}

impl HostRequirements {
    /// The pinned cores as a set.
    pub fn pinned(&self) -> CpuSet {
        self.pinned_cores.iter().copied().collect()
    }

    /// 2 MiB hugepages needed for `hugepage_bytes`.
    pub fn hugepages_2m(&self) -> u64 {
        self.hugepage_bytes.div_ceil(2 << 20)
    }
}

/// Where the checks look: the `/proc` + `/sys` tree and the outcome of the io_uring probe.
#[derive(Clone, Debug)]
pub struct HostContext {
    /// The host's (or a fake) `/proc` and `/sys`.
    pub fs: HostFs,
    /// Whether io_uring works for this process.
    pub uring: Result<(), UringUnavailable>,
}

impl HostContext {
    /// The running host, with a live io_uring probe.
    pub fn real() -> Self {
        Self {
            fs: HostFs::real(),
            uring: uring::probe(),
        }
    }
}

/// Checks the running host against `req`.
pub fn check(req: &HostRequirements) -> Report {
    check_with(req, &HostContext::real())
}

/// Checks the host described by `ctx` against `req` (tests pass a fake tree).
pub fn check_with(req: &HostRequirements, ctx: &HostContext) -> Report {
    let fs = &ctx.fs;
    let mut items = Vec::new();
    items.extend(cpu::check(req, fs));
    items.extend(irq::check(req, fs));
    items.extend(clock::check(fs));
    items.extend(memory::check(req, fs));
    items.extend(numa::check(req, fs));
    items.extend(kernel::check(req, fs));
    items.push(io::check(&ctx.uring, fs));
    Report::new(fs.read_trim("/proc/sys/kernel/osrelease"), items)
}

/// `appliance check-host` arguments (the CLI flattens or nests this).
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct CheckHostArgs {
    /// Configuration whose pinned cores, memory and NIC are checked (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit non-zero on warnings too, not only on failures.
    #[arg(long)]
    pub strict: bool,
    /// The interface clients connect through, for the NUMA check (e.g. `eth0`).
    #[arg(long, value_name = "IFACE")]
    pub nic: Option<String>,
}

/// Runs the checks for `req` (with `args.nic`, when given, replacing `req.nic`), writes the
/// report (text, or JSON when `args.json`) to `out` and returns the process exit status
/// ([`Report::exit_code`]).
pub fn run(
    req: &HostRequirements,
    args: &CheckHostArgs,
    out: &mut dyn Write,
) -> std::io::Result<i32> {
    let mut req = req.clone();
    if let Some(nic) = &args.nic {
        req.nic = Some(nic.clone());
    }
    let report = check(&req);
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.render_text())?;
    }
    Ok(report.exit_code(args.strict))
}

/// Formats a byte count as MiB for observations.
fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

/// Online CPUs under `fs`, or `None` when unreadable.
fn online_cpus(fs: &HostFs) -> Option<CpuSet> {
    fs.read("/sys/devices/system/cpu/online")
        .and_then(|s| CpuSet::parse(&s).ok())
}

/// The cores checks look at when the configuration pins none: every online CPU.
fn cores_of_interest(req: &HostRequirements, fs: &HostFs) -> CpuSet {
    if req.pinned_cores.is_empty() {
        online_cpus(fs).unwrap_or_default()
    } else {
        req.pinned()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake host that looks like a well-tuned bare-metal box, for the per-item tests to break
    //! one fact at a time.
    pub(crate) use crate::platform::sysfs::fake::{tree, TempDir};

    /// A tuned 8-CPU, 2-node host: cores 2-3 isolated, tickless, IRQs on 0-1, performance
    /// governor, shallow C-states only, invariant TSC, THP madvise, 64 hugepages, no swap.
    pub(crate) fn tuned() -> TempDir {
        let (d, _) = tree(&[
            ("/proc/sys/kernel/osrelease", "6.1.0-test\n"),
            (
                "/proc/cmdline",
                "isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1",
            ),
            ("/sys/devices/system/cpu/online", "0-7\n"),
            ("/sys/devices/system/cpu/isolated", "2-3\n"),
            ("/sys/devices/system/cpu/nohz_full", "2-3\n"),
            ("/proc/irq/default_smp_affinity", "03\n"),
            ("/proc/irq/24/smp_affinity_list", "0-1\n"),
            ("/proc/irq/25/smp_affinity_list", "0\n"),
            (
                "/proc/cpuinfo",
                "processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n",
            ),
            (
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                "tsc\n",
            ),
            (
                "/sys/devices/system/clocksource/clocksource0/available_clocksource",
                "tsc hpet\n",
            ),
            (
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "always [madvise] never\n",
            ),
            (
                "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                "64\n",
            ),
            (
                "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
                "64\n",
            ),
            (
                "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
                "0\n",
            ),
            (
                "/proc/swaps",
                "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
            ),
            (
                "/proc/self/limits",
                "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max locked memory         unlimited            unlimited            bytes     \n",
            ),
            (
                "/proc/self/status",
                "Name:\tappliance\nCapEff:\t0000000000000000\n",
            ),
            ("/sys/devices/system/node/node0/cpulist", "0-3\n"),
            ("/sys/devices/system/node/node1/cpulist", "4-7\n"),
            ("/sys/class/net/eth0/device/numa_node", "0\n"),
            ("/proc/sys/kernel/io_uring_disabled", "0\n"),
            ("/proc/sys/kernel/numa_balancing", "0\n"),
            ("/proc/sys/kernel/watchdog", "1\n"),
            ("/proc/sys/kernel/watchdog_cpumask", "0-1,4-7\n"),
        ]);
        for cpu in 0..8 {
            let base = format!("/sys/devices/system/cpu/cpu{cpu}");
            d.write(&format!("{base}/cpufreq/scaling_governor"), "performance\n");
            d.write(&format!("{base}/cpufreq/scaling_driver"), "intel_pstate\n");
            d.write(
                &format!("{base}/topology/thread_siblings_list"),
                &format!("{cpu}\n"),
            );
            d.write(&format!("{base}/cpuidle/state0/name"), "POLL\n");
            d.write(&format!("{base}/cpuidle/state0/latency"), "0\n");
            d.write(&format!("{base}/cpuidle/state0/disable"), "0\n");
            d.write(&format!("{base}/cpuidle/state1/name"), "C1\n");
            d.write(&format!("{base}/cpuidle/state1/latency"), "2\n");
            d.write(&format!("{base}/cpuidle/state1/disable"), "0\n");
            d.write(&format!("{base}/cpuidle/state2/name"), "C6\n");
            d.write(&format!("{base}/cpuidle/state2/latency"), "133\n");
            d.write(&format!("{base}/cpuidle/state2/disable"), "1\n");
        }
        d
    }

    /// The requirements the tuned host satisfies.
    pub(crate) fn req() -> super::HostRequirements {
        super::HostRequirements {
            pinned_cores: vec![2, 3],
            hugepage_bytes: 100 << 20,
            nic: Some("eth0".into()),
        }
    }

    pub(crate) fn ctx(d: &TempDir) -> super::HostContext {
        super::HostContext {
            fs: crate::platform::sysfs::HostFs::at(&d.0),
            uring: Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_tuned_host_passes_every_item() {
        let d = tuned();
        let report = check_with(&req(), &ctx(&d));
        let bad: Vec<_> = report
            .items
            .iter()
            .filter(|i| i.status > Status::Ok)
            .collect();
        assert!(bad.is_empty(), "{}", report.render_text());
        assert_eq!(report.kernel.as_deref(), Some("6.1.0-test"));
        assert_eq!(report.exit_code(true), 0);
    }

    #[test]
    fn an_empty_tree_reports_without_panicking() {
        let d = TempDir::new();
        let report = check_with(&req(), &ctx(&d));
        assert!(report.items.len() >= 18, "{}", report.render_text());
        assert!(report.items.iter().all(|i| !i.observed.is_empty()));
        // Nothing is known, so the pinned cores cannot be shown to be isolated.
        assert_eq!(report.item("cpu.isolation").unwrap().status, Status::Fail);
        assert_eq!(report.item("cpu.governor").unwrap().status, Status::Info);
    }

    const FILES: [&str; 16] = [
        "/proc/cmdline",
        "/sys/devices/system/cpu/online",
        "/sys/devices/system/cpu/isolated",
        "/proc/irq/24/smp_affinity_list",
        "/proc/irq/default_smp_affinity",
        "/proc/cpuinfo",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "/proc/swaps",
        "/proc/self/limits",
        "/proc/self/status",
        "/sys/devices/system/node/node1/cpulist",
        "/sys/class/net/eth0/device/numa_node",
        "/sys/devices/system/cpu/cpu2/cpuidle/state2/latency",
        "/sys/devices/system/cpu/cpu2/topology/thread_siblings_list",
        "/proc/sys/kernel/watchdog_cpumask",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Garbage in any file the checks read yields a report, never a panic.
        #[test]
        fn garbage_in_host_files_never_panics(
            which in proptest::collection::vec(0..FILES.len(), 1..4),
            junk in "\\PC{0,40}",
        ) {
            let d = tuned();
            for i in which {
                d.write(FILES[i], &junk);
            }
            let report = check_with(&req(), &ctx(&d));
            proptest::prop_assert_eq!(report.items.len(), 21);
        }
    }

    #[test]
    fn every_item_that_is_not_ok_says_how_to_fix_it() {
        let d = TempDir::new();
        let report = check_with(&req(), &ctx(&d));
        for i in &report.items {
            if matches!(i.status, Status::Warn | Status::Fail) {
                assert!(i.fix.is_some(), "{} has no fix", i.id);
            }
        }
    }

    #[test]
    fn item_ids_are_unique_and_stable() {
        let d = tuned();
        let report = check_with(&req(), &ctx(&d));
        let ids: Vec<&str> = report.items.iter().map(|i| i.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert_eq!(
            ids,
            [
                "cpu.pinned",
                "cpu.isolation",
                "cpu.nohz_full",
                "cpu.rcu_nocbs",
                "cpu.smt",
                "cpu.governor",
                "cpu.cstates",
                "irq.affinity",
                "irq.irqbalance",
                "clock.tsc",
                "clock.source",
                "mem.thp",
                "mem.hugepages.2m",
                "mem.hugepages.1g",
                "mem.swap",
                "mem.memlock",
                "numa.cores",
                "numa.nic",
                "kernel.numa_balancing",
                "kernel.watchdog",
                "io_uring",
            ]
        );
    }
}
