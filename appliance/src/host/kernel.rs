//! Kernel housekeeping that interrupts pinned cores unless told not to: automatic NUMA
//! balancing and the soft-lockup watchdog.

use super::report::{Item, Status};
use super::{online_cpus, HostRequirements};
use crate::platform::sysfs::HostFs;
use crate::platform::CpuSet;

pub(super) fn check(req: &HostRequirements, fs: &HostFs) -> Vec<Item> {
    vec![numa_balancing(fs), watchdog(req, fs)]
}

fn numa_balancing(fs: &HostFs) -> Item {
    const ID: &str = "kernel.numa_balancing";
    const T: &str = "automatic NUMA balancing off";
    let nodes = fs
        .list("/sys/devices/system/node")
        .iter()
        .filter(|n| n.starts_with("node") && n[4..].chars().all(|c| c.is_ascii_digit()))
        .count();
    match fs.read_u64("/proc/sys/kernel/numa_balancing") {
        None => Item::new(ID, T, Status::Info, "kernel without automatic NUMA balancing"),
        Some(0) => Item::new(ID, T, Status::Ok, "disabled"),
        Some(_) if nodes <= 1 => Item::new(
            ID,
            T,
            Status::Info,
            "enabled, but there is a single NUMA node: nothing to migrate",
        ),
        Some(_) => Item::new(
            ID,
            T,
            Status::Warn,
            format!("enabled on {nodes} nodes: the kernel unmaps pages to sample access patterns and migrates them, so hot threads take minor faults"),
        )
        .fix("sysctl -w kernel.numa_balancing=0 (persist in /etc/sysctl.d/), or numa_balancing=disable on the command line"),
    }
}

fn watchdog(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "kernel.watchdog";
    const T: &str = "lockup watchdog off pinned cores";
    let Some(enabled) = fs.read_u64("/proc/sys/kernel/watchdog") else {
        return Item::new(ID, T, Status::Info, "kernel without the lockup detector");
    };
    if enabled == 0 {
        return Item::new(ID, T, Status::Ok, "watchdog disabled");
    }
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(ID, T, Status::Info, "watchdog enabled; no pinned cores");
    }
    let mask = fs
        .read("/proc/sys/kernel/watchdog_cpumask")
        .and_then(|s| CpuSet::parse(&s).ok())
        .or_else(|| online_cpus(fs))
        .unwrap_or_default();
    let hit = mask.intersection(&want);
    if hit.is_empty() {
        Item::new(ID, T, Status::Ok, format!("watchdog runs on [{mask}] only"))
    } else {
        let house = online_cpus(fs).unwrap_or_default().difference(&want);
        Item::new(ID, T, Status::Warn, format!("the watchdog's hrtimer fires every few seconds on pinned cores [{hit}] (watchdog_cpumask [{mask}])"))
            .fix(format!("sysctl -w kernel.watchdog_cpumask={house} (nohz_full= sets this at boot), or nowatchdog on the command line"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn numa_balancing_warns_only_on_multi_node_hosts() {
        let d = tuned();
        d.write("/proc/sys/kernel/numa_balancing", "1\n");
        let i = numa_balancing(&ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.fix.unwrap().contains("kernel.numa_balancing=0"));
        let single = TempDir::new();
        single.write("/proc/sys/kernel/numa_balancing", "1\n");
        single.write("/sys/devices/system/node/node0/cpulist", "0-3\n");
        assert_eq!(numa_balancing(&ctx(&single).fs).status, Status::Info);
    }

    #[test]
    fn watchdog_on_pinned_cores_warns_with_the_housekeeping_mask() {
        let d = tuned();
        d.write("/proc/sys/kernel/watchdog", "1\n");
        d.write("/proc/sys/kernel/watchdog_cpumask", "0-7\n");
        let i = watchdog(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("[2-3]"), "{}", i.observed);
        assert!(i.fix.unwrap().contains("kernel.watchdog_cpumask=0-1,4-7"));
        d.write("/proc/sys/kernel/watchdog_cpumask", "0-1,4-7\n");
        assert_eq!(watchdog(&req(), &ctx(&d).fs).status, Status::Ok);
    }
}
