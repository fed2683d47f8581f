//! CPU items: the pinned cores exist, are isolated and tickless, have no busy SMT sibling, run
//! the performance governor and avoid deep C-states.

use super::report::{Item, Status};
use super::{cores_of_interest, online_cpus, HostRequirements};
use crate::platform::isolation::{Cmdline, Isolation};
use crate::platform::sysfs::HostFs;
use crate::platform::CpuSet;

/// Wake-up latency (µs) above which an enabled idle state is a latency hazard on a pinned core.
const CSTATE_LATENCY_LIMIT_US: u64 = 10;

pub(super) fn check(req: &HostRequirements, fs: &HostFs) -> Vec<Item> {
    let iso = Isolation::read(fs);
    vec![
        pinned(req, fs),
        isolation(req, &iso),
        tickless(req, &iso),
        rcu(req, &iso),
        smt(req, fs, &iso),
        governor(req, fs),
        cstates(req, fs),
    ]
}

fn cmdline_fix(cores: &CpuSet) -> String {
    format!(
        "isolcpus=managed_irq,domain,{cores} nohz_full={cores} rcu_nocbs={cores} on the kernel \
         command line: tuning/kernel-cmdline.sh --isolated {cores}"
    )
}

fn pinned(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "cpu.pinned";
    const T: &str = "pinned cores online";
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(ID, T, Status::Info, "the configuration pins no threads (engine.cores and gateway.cores empty)")
            .fix("pin engine and gateway threads to isolated cores for production (engine.cores, gateway.cores)");
    }
    match online_cpus(fs) {
        None => Item::new(
            ID,
            T,
            Status::Info,
            format!("pinned [{want}]; online CPUs unknown (no /sys/devices/system/cpu/online)"),
        ),
        Some(online) => {
            let missing = want.difference(&online);
            if missing.is_empty() {
                Item::new(
                    ID,
                    T,
                    Status::Ok,
                    format!("pinned [{want}], all online (online: [{online}])"),
                )
            } else {
                Item::new(
                    ID,
                    T,
                    Status::Fail,
                    format!("pinned cores [{missing}] are not online (online: [{online}])"),
                )
                .fix(format!(
                    "pin only online cores in engine.cores / gateway.cores (online: {online})"
                ))
            }
        }
    }
}

fn isolation(req: &HostRequirements, iso: &Isolation) -> Item {
    const ID: &str = "cpu.isolation";
    const T: &str = "pinned cores isolated from the scheduler";
    let want = req.pinned();
    let isolated = iso.scheduler_isolated();
    let seen = format!(
        "isolcpus [{}], cpuset partitions [{}]",
        iso.isolcpus, iso.cpuset_isolated
    );
    if want.is_empty() {
        return Item::new(ID, T, Status::Info, format!("no pinned cores; {seen}"));
    }
    let missing = want.difference(&isolated);
    if missing.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("pinned [{want}] isolated ({seen})"),
        )
    } else {
        Item::new(ID, T, Status::Fail, format!("pinned cores [{missing}] not isolated ({seen}): other tasks and kernel threads share them"))
            .fix(format!("{}; or a cgroup v2 isolated cpuset partition", cmdline_fix(&want)))
    }
}

fn tickless(req: &HostRequirements, iso: &Isolation) -> Item {
    const ID: &str = "cpu.nohz_full";
    const T: &str = "scheduler tick stopped on pinned cores";
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("no pinned cores; nohz_full [{}]", iso.nohz_full),
        );
    }
    let missing = want.difference(&iso.nohz_full);
    if missing.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("nohz_full [{}] covers [{want}]", iso.nohz_full),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("cores [{missing}] keep the periodic tick (nohz_full [{}]): a 1-4 µs interruption every 1-4 ms", iso.nohz_full))
            .fix(format!("nohz_full={want} on the kernel command line (tuning/kernel-cmdline.sh --isolated {want})"))
    }
}

fn rcu(req: &HostRequirements, iso: &Isolation) -> Item {
    const ID: &str = "cpu.rcu_nocbs";
    const T: &str = "RCU callbacks offloaded from pinned cores";
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("no pinned cores; rcu_nocbs [{}]", iso.rcu_nocbs),
        );
    }
    let missing = want.difference(&iso.rcu_nocbs);
    if missing.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("rcu_nocbs [{}] covers [{want}]", iso.rcu_nocbs),
        )
    } else {
        Item::new(
            ID,
            T,
            Status::Warn,
            format!(
                "cores [{missing}] run RCU callbacks (rcu_nocbs [{}])",
                iso.rcu_nocbs
            ),
        )
        .fix(format!(
            "rcu_nocbs={want} (implied by nohz_full={want}) on the kernel command line"
        ))
    }
}

fn smt(req: &HostRequirements, fs: &HostFs, iso: &Isolation) -> Item {
    const ID: &str = "cpu.smt";
    const T: &str = "SMT siblings of pinned cores idle";
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(ID, T, Status::Info, "no pinned cores");
    }
    let quiet = want.union(&iso.scheduler_isolated());
    let mut busy = CpuSet::new();
    let mut known = false;
    for core in want.iter() {
        let path = format!("/sys/devices/system/cpu/cpu{core}/topology/thread_siblings_list");
        if let Some(sib) = fs.read(&path).and_then(|s| CpuSet::parse(&s).ok()) {
            known = true;
            for s in sib.difference(&quiet).iter() {
                busy.insert(s);
            }
        }
    }
    if !known {
        return Item::new(ID, T, Status::Info, "no CPU topology exposed");
    }
    if busy.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("no sibling of [{want}] runs other work"),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("hyperthread siblings [{busy}] of pinned cores are neither pinned nor isolated: they share L1/L2 and execution ports"))
            .fix(format!("isolate the siblings too (add {busy} to isolcpus) or disable SMT (nosmt on the command line)"))
    }
}

fn governor(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "cpu.governor";
    const T: &str = "CPU frequency governor";
    let cores = cores_of_interest(req, fs);
    let mut slow = Vec::new();
    let mut seen = 0;
    let mut driver = None;
    for c in cores.iter() {
        let base = format!("/sys/devices/system/cpu/cpu{c}/cpufreq");
        if let Some(g) = fs.read_trim(&format!("{base}/scaling_governor")) {
            seen += 1;
            driver = driver.or_else(|| fs.read_trim(&format!("{base}/scaling_driver")));
            if g != "performance" {
                slow.push(format!("{c}:{g}"));
            }
        }
    }
    if seen == 0 {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!(
                "no cpufreq interface for cores [{cores}] (VM, or frequency managed by firmware)"
            ),
        );
    }
    let driver = driver.unwrap_or_else(|| "unknown driver".into());
    if slow.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("performance on [{cores}] ({driver})"),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("not `performance` on {} ({driver}): frequency ramps add microseconds after idle", slow.join(" ")))
            .fix(format!("tuning/governor.sh --cores {cores} --apply (runs at boot via appliance-tuning.service)"))
    }
}

fn cstates(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "cpu.cstates";
    const T: &str = "deep C-states disabled";
    let cmdline = Cmdline::read(fs);
    if cmdline.value("idle") == Some("poll") {
        return Item::new(ID, T, Status::Ok, "idle=poll: CPUs never enter C-states");
    }
    let cores = cores_of_interest(req, fs);
    let mut deep = Vec::new();
    let mut states_seen = false;
    for c in cores.iter() {
        let dir = format!("/sys/devices/system/cpu/cpu{c}/cpuidle");
        for st in fs.list(&dir) {
            let base = format!("{dir}/{st}");
            let Some(latency) = fs.read_u64(&format!("{base}/latency")) else {
                continue;
            };
            states_seen = true;
            let disabled = fs.read_u64(&format!("{base}/disable")) == Some(1);
            if latency > CSTATE_LATENCY_LIMIT_US && !disabled {
                let name = fs.read_trim(&format!("{base}/name")).unwrap_or(st.clone());
                deep.push(format!("{c}:{name}({latency}µs)"));
            }
        }
    }
    if !states_seen {
        let driver = fs
            .read_trim("/sys/devices/system/cpu/cpuidle/current_driver")
            .unwrap_or_else(|| "none".into());
        return Item::new(ID, T, Status::Info, format!("no cpuidle states exposed (driver: {driver}); idle is up to the hypervisor or firmware"));
    }
    if deep.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("no enabled state deeper than {CSTATE_LATENCY_LIMIT_US} µs on [{cores}]"),
        )
    } else {
        deep.truncate(8);
        Item::new(ID, T, Status::Warn, format!("enabled deep states: {} ...", deep.join(" ")))
            .fix("intel_idle.max_cstate=1 processor.max_cstate=1 on the command line (tuning/kernel-cmdline.sh), or at run time `cpupower idle-set -D 10`; busy-polling engines never idle, but gateways and housekeeping do")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn item(d: &TempDir, req: &HostRequirements, id: &str) -> Item {
        check(req, &ctx(d).fs)
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
    }

    #[test]
    fn offline_pinned_core_fails() {
        let d = tuned();
        d.write("/sys/devices/system/cpu/online", "0-2\n");
        let i = item(&d, &req(), "cpu.pinned");
        assert_eq!(i.status, Status::Fail);
        assert!(i.observed.contains("[3]"), "{}", i.observed);
    }

    #[test]
    fn unisolated_pinned_core_fails_with_the_cmdline_fix() {
        let d = tuned();
        d.write("/sys/devices/system/cpu/isolated", "2\n");
        let i = item(&d, &req(), "cpu.isolation");
        assert_eq!(i.status, Status::Fail);
        assert!(i.observed.contains("[3]"));
        assert!(i.fix.unwrap().contains("isolcpus=managed_irq,domain,2-3"));
    }

    #[test]
    fn cpuset_partition_counts_as_isolation() {
        let d = tuned();
        d.write("/sys/devices/system/cpu/isolated", "\n");
        d.write("/sys/fs/cgroup/cpuset.cpus.isolated", "2-3\n");
        assert_eq!(item(&d, &req(), "cpu.isolation").status, Status::Ok);
    }

    #[test]
    fn missing_nohz_full_and_rcu_nocbs_warn() {
        let d = tuned();
        d.write("/sys/devices/system/cpu/nohz_full", "\n");
        d.write("/proc/cmdline", "isolcpus=2-3");
        assert_eq!(item(&d, &req(), "cpu.nohz_full").status, Status::Warn);
        let r = item(&d, &req(), "cpu.rcu_nocbs");
        assert_eq!(r.status, Status::Warn);
        assert!(r.fix.unwrap().contains("rcu_nocbs=2-3"));
    }

    #[test]
    fn busy_smt_sibling_warns() {
        let d = tuned();
        d.write(
            "/sys/devices/system/cpu/cpu2/topology/thread_siblings_list",
            "2,6\n",
        );
        let i = item(&d, &req(), "cpu.smt");
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("[6]"));
    }

    #[test]
    fn powersave_governor_warns_and_absent_cpufreq_is_info() {
        let d = tuned();
        d.write(
            "/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor",
            "powersave\n",
        );
        let i = item(&d, &req(), "cpu.governor");
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("3:powersave") && i.observed.contains("intel_pstate"));
        let empty = TempDir::new();
        assert_eq!(item(&empty, &req(), "cpu.governor").status, Status::Info);
    }

    #[test]
    fn enabled_deep_cstate_warns_unless_idle_poll() {
        let d = tuned();
        d.write("/sys/devices/system/cpu/cpu2/cpuidle/state2/disable", "0\n");
        let i = item(&d, &req(), "cpu.cstates");
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("2:C6(133µs)"), "{}", i.observed);
        d.write("/proc/cmdline", "idle=poll");
        assert_eq!(item(&d, &req(), "cpu.cstates").status, Status::Ok);
    }

    #[test]
    fn no_pinned_cores_is_info_not_failure() {
        let d = tuned();
        let req = HostRequirements::default();
        for id in [
            "cpu.pinned",
            "cpu.isolation",
            "cpu.nohz_full",
            "cpu.rcu_nocbs",
            "cpu.smt",
        ] {
            assert_eq!(item(&d, &req, id).status, Status::Info, "{id}");
        }
    }
}
