//! Memory items: THP mode, reserved hugepages against what the configuration maps, swap and the
//! memory-lock limit.

use super::report::{Item, Status};
use super::{mib, HostRequirements};
use crate::platform::sysfs::{bracketed_choice, HostFs};

pub(super) fn check(req: &HostRequirements, fs: &HostFs) -> Vec<Item> {
    vec![
        thp(fs),
        hugepages_2m(req, fs),
        hugepages_1g(fs),
        swap(fs),
        memlock(req, fs),
    ]
}

fn thp(fs: &HostFs) -> Item {
    const ID: &str = "mem.thp";
    const T: &str = "transparent hugepages mode";
    let Some(raw) = fs.read("/sys/kernel/mm/transparent_hugepage/enabled") else {
        return Item::new(ID, T, Status::Info, "kernel without transparent hugepages");
    };
    let fix = "tuning/thp.sh --mode madvise --apply";
    match bracketed_choice(&raw) {
        Some("madvise") => Item::new(ID, T, Status::Ok, "madvise: the appliance's arenas get THP when no hugepages are reserved; other processes are left alone"),
        Some("always") => Item::new(ID, T, Status::Warn, "always: every process's faults may stall on compaction and khugepaged scans run on all cores").fix(fix),
        Some("never") => Item::new(ID, T, Status::Warn, "never: without reserved hugepages the arenas fall back to 4 KiB pages").fix(fix),
        _ => Item::new(ID, T, Status::Info, format!("unrecognised mode: {}", raw.trim())),
    }
}

fn hugepages_2m(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "mem.hugepages.2m";
    const T: &str = "2 MiB hugepages reserved";
    let dir = "/sys/kernel/mm/hugepages/hugepages-2048kB";
    let need = req.hugepages_2m();
    let Some(nr) = fs.read_u64(&format!("{dir}/nr_hugepages")) else {
        return if need == 0 {
            Item::new(
                ID,
                T,
                Status::Info,
                "no 2 MiB hugepage support; the configuration needs none",
            )
        } else {
            Item::new(
                ID,
                T,
                Status::Warn,
                format!(
                    "no 2 MiB hugepage support in this kernel; the configuration maps {}",
                    mib(req.hugepage_bytes)
                ),
            )
            .fix(
                "a kernel with CONFIG_HUGETLBFS; until then the appliance uses THP or normal pages",
            )
        };
    };
    let free = fs.read_u64(&format!("{dir}/free_hugepages")).unwrap_or(0);
    let nodes: Vec<String> = fs
        .list("/sys/devices/system/node")
        .into_iter()
        .filter(|n| n.starts_with("node"))
        .filter_map(|n| {
            let v = fs.read_u64(&format!(
                "/sys/devices/system/node/{n}/hugepages/hugepages-2048kB/nr_hugepages"
            ))?;
            Some(format!("{n}:{v}"))
        })
        .collect();
    let per_node = if nodes.len() > 1 {
        format!(", per node {}", nodes.join(" "))
    } else {
        String::new()
    };
    let seen = format!("{nr} reserved, {free} free{per_node}");
    if need == 0 {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("{seen}; the configuration states no hugepage need"),
        );
    }
    if nr >= need {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!(
                "{seen}; the configuration needs {need} ({})",
                mib(req.hugepage_bytes)
            ),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("{seen}; the configuration needs {need} ({}): the rest falls back to THP or 4 KiB pages", mib(req.hugepage_bytes)))
            .fix(format!("tuning/hugepages.sh --pages {need} --apply (HUGEPAGES={need} in /etc/appliance/tuning.env for boot), or hugepages={need} on the kernel command line"))
    }
}

fn hugepages_1g(fs: &HostFs) -> Item {
    const ID: &str = "mem.hugepages.1g";
    const T: &str = "1 GiB hugepages";
    match fs.read_u64("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages") {
        None => Item::new(ID, T, Status::Info, "not supported by this CPU or kernel; the appliance maps 2 MiB pages"),
        Some(0) => Item::new(ID, T, Status::Info, "none reserved; the appliance maps 2 MiB pages"),
        Some(n) => Item::new(ID, T, Status::Info, format!("{n} reserved ({n} GiB); the appliance maps 2 MiB pages and does not use them"))
            .fix("release them (echo 0 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages) unless another program uses them"),
    }
}

fn swap(fs: &HostFs) -> Item {
    const ID: &str = "mem.swap";
    const T: &str = "swap";
    let Some(swaps) = fs.read("/proc/swaps") else {
        return Item::new(ID, T, Status::Info, "no /proc/swaps");
    };
    let active: Vec<&str> = swaps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if active.is_empty() {
        Item::new(ID, T, Status::Ok, "no swap active")
    } else {
        Item::new(ID, T, Status::Warn, format!("swap active on {}: locked appliance memory stays resident, but the host's other work can stall on swap I/O", active.join(", ")))
            .fix("swapoff -a and remove swap from /etc/fstab, or at least sysctl vm.swappiness=1")
    }
}

/// CAP_IPC_LOCK's bit in the capability masks.
const CAP_IPC_LOCK: u32 = 14;

fn memlock(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "mem.memlock";
    const T: &str = "memory locking allowed (RLIMIT_MEMLOCK / CAP_IPC_LOCK)";
    let soft = fs.read("/proc/self/limits").and_then(|l| {
        l.lines()
            .find(|x| x.starts_with("Max locked memory"))
            .and_then(|x| x.split_whitespace().nth(3).map(str::to_owned))
    });
    let cap = fs
        .read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .map(|v| v.trim().to_owned())
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|mask| mask & (1 << CAP_IPC_LOCK) != 0);
    let note =
        "this checks the shell running check-host; appliance.service sets LimitMEMLOCK=infinity";
    match soft.as_deref() {
        None => Item::new(ID, T, Status::Info, "no /proc/self/limits"),
        Some("unlimited") => Item::new(ID, T, Status::Ok, "RLIMIT_MEMLOCK unlimited"),
        Some(_) if cap => Item::new(
            ID,
            T,
            Status::Ok,
            format!(
                "CAP_IPC_LOCK held (RLIMIT_MEMLOCK {} bytes does not apply)",
                soft.unwrap_or_default()
            ),
        ),
        Some(v) => {
            let bytes: u64 = v.parse().unwrap_or(0);
            Item::new(ID, T, Status::Warn, format!("RLIMIT_MEMLOCK {} and no CAP_IPC_LOCK: mlockall of a process mapping {} would fail ({note})", mib(bytes), mib(req.hugepage_bytes)))
                .fix("run under appliance.service (LimitMEMLOCK=infinity), or raise memlock in /etc/security/limits.d/ for the user")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn item(d: &TempDir, id: &str) -> Item {
        check(&req(), &ctx(d).fs)
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
    }

    #[test]
    fn thp_modes() {
        let d = tuned();
        assert_eq!(item(&d, "mem.thp").status, Status::Ok);
        d.write(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        );
        assert_eq!(item(&d, "mem.thp").status, Status::Warn);
        d.write(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "always madvise [never]\n",
        );
        let i = item(&d, "mem.thp");
        assert_eq!(i.status, Status::Warn);
        assert_eq!(
            i.fix.as_deref(),
            Some("tuning/thp.sh --mode madvise --apply")
        );
    }

    #[test]
    fn too_few_hugepages_warns_with_the_count_needed() {
        let d = tuned();
        d.write(
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "10\n",
        );
        let i = item(&d, "mem.hugepages.2m");
        assert_eq!(i.status, Status::Warn);
        // 100 MiB = 50 pages of 2 MiB.
        assert!(i.observed.contains("needs 50"), "{}", i.observed);
        assert!(i
            .fix
            .unwrap()
            .contains("tuning/hugepages.sh --pages 50 --apply"));
    }

    #[test]
    fn per_node_hugepages_are_shown() {
        let d = tuned();
        d.write(
            "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
            "40\n",
        );
        d.write(
            "/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages",
            "24\n",
        );
        let i = item(&d, "mem.hugepages.2m");
        assert_eq!(i.status, Status::Ok);
        assert!(
            i.observed.contains("per node node0:40 node1:24"),
            "{}",
            i.observed
        );
    }

    #[test]
    fn one_gig_pages_are_reported_as_unused() {
        let d = tuned();
        d.write(
            "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            "2\n",
        );
        let i = item(&d, "mem.hugepages.1g");
        assert_eq!(i.status, Status::Info);
        assert!(i.observed.contains("does not use them"));
    }

    #[test]
    fn active_swap_warns() {
        let d = tuned();
        d.write(
            "/proc/swaps",
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 1000 0 -2\n",
        );
        let i = item(&d, "mem.swap");
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("/dev/sda2"));
    }

    #[test]
    fn memlock_limit_without_capability_warns() {
        let d = tuned();
        d.write(
            "/proc/self/limits",
            "Limit   Soft Limit   Hard Limit   Units\nMax locked memory         8388608              8388608              bytes\n",
        );
        let i = item(&d, "mem.memlock");
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("8 MiB"), "{}", i.observed);
        d.write("/proc/self/status", "CapEff:\t0000000000004000\n");
        assert_eq!(
            item(&d, "mem.memlock").status,
            Status::Ok,
            "CAP_IPC_LOCK lifts the limit"
        );
    }
}
