//! Which CPUs the kernel keeps free of ordinary work: `isolcpus`, cpuset isolated partitions,
//! `nohz_full` and `rcu_nocbs`.
//!
//! Shared by `check-host` (to report) and by [`super::set_realtime`] (to refuse SCHED_FIFO on
//! a core the scheduler still balances other tasks onto: a busy-polling FIFO thread there
//! starves kernel threads and, with RT throttling off, can hang the host).

use super::cpuset::CpuSet;
use super::sysfs::HostFs;

/// The kernel command line, split into `key[=value]` words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    words: Vec<(String, Option<String>)>,
}

impl Cmdline {
    /// Parses `/proc/cmdline` text. Words after a bare `--` belong to init and are ignored.
    /// Quoted values (`key="a b"`) are not split.
    pub fn parse(text: &str) -> Self {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        let mut raw = Vec::new();
        for c in text.trim().chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !current.is_empty() {
                        raw.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            raw.push(current);
        }
        for w in raw {
            if w == "--" {
                break;
            }
            match w.split_once('=') {
                Some((k, v)) => words.push((k.to_owned(), Some(v.to_owned()))),
                None => words.push((w, None)),
            }
        }
        Self { words }
    }

    /// Reads `/proc/cmdline` under `fs` (empty when unreadable).
    pub fn read(fs: &HostFs) -> Self {
        Self::parse(&fs.read("/proc/cmdline").unwrap_or_default())
    }

    /// The value of the last occurrence of `key` (the kernel lets later words win).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.words
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether `key` appears, with or without a value.
    pub fn has(&self, key: &str) -> bool {
        self.words.iter().any(|(k, _)| k == key)
    }
}

/// The isolation facilities in force, each as the set of CPUs it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Isolation {
    /// CPUs removed from scheduler load balancing by `isolcpus=` (the kernel reports them in
    /// `/sys/devices/system/cpu/isolated`; the command line is used when that file is absent).
    pub isolcpus: CpuSet,
    /// CPUs in cgroup v2 isolated cpuset partitions (`/sys/fs/cgroup/cpuset.cpus.isolated`,
    /// Linux 6.7+): the run-time alternative to `isolcpus=`.
    pub cpuset_isolated: CpuSet,
    /// CPUs whose scheduling-clock tick stops while one task runs (`nohz_full=`).
    pub nohz_full: CpuSet,
    /// CPUs whose RCU callbacks are offloaded to kthreads (`rcu_nocbs=`; `nohz_full=` implies it).
    pub rcu_nocbs: CpuSet,
    /// Flags given to `isolcpus=` (`domain`, `nohz`, `managed_irq`).
    pub isolcpus_flags: Vec<String>,
}

impl Isolation {
    /// Reads the isolation state under `fs`. Unparsable lists count as empty: a report about
    /// isolation must never fail because one file is odd.
    pub fn read(fs: &HostFs) -> Self {
        let cmdline = Cmdline::read(fs);
        let from_cmdline = |key: &str| -> (CpuSet, Vec<String>) {
            cmdline
                .value(key)
                .and_then(|v| CpuSet::parse_with_flags(v).ok())
                .unwrap_or_default()
        };
        let sysfs_list =
            |path: &str| -> Option<CpuSet> { fs.read(path).and_then(|s| CpuSet::parse(&s).ok()) };

        let (cmd_isol, isolcpus_flags) = from_cmdline("isolcpus");
        let isolcpus = sysfs_list("/sys/devices/system/cpu/isolated").unwrap_or(cmd_isol);
        let cpuset_isolated = sysfs_list("/sys/fs/cgroup/cpuset.cpus.isolated").unwrap_or_default();
        let nohz_full = sysfs_list("/sys/devices/system/cpu/nohz_full")
            .unwrap_or_else(|| from_cmdline("nohz_full").0);
        let rcu_nocbs = from_cmdline("rcu_nocbs").0.union(&nohz_full);
        Self {
            isolcpus,
            cpuset_isolated,
            nohz_full,
            rcu_nocbs,
            isolcpus_flags,
        }
    }

    /// CPUs the scheduler will not place ordinary tasks on (isolcpus or isolated cpuset).
    pub fn scheduler_isolated(&self) -> CpuSet {
        self.isolcpus.union(&self.cpuset_isolated)
    }
}

/// The CPUs of this host that the scheduler keeps free of ordinary tasks.
pub fn isolated_cores() -> CpuSet {
    Isolation::read(&HostFs::real()).scheduler_isolated()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::sysfs::fake::tree;

    #[test]
    fn cmdline_values_quotes_and_init_args() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/vmlinuz root=UUID=x quiet isolcpus=1 isolcpus=domain,2-3 \
             dyndbg=\"file a.c +p\" -- nohz_full=9\n",
        );
        assert_eq!(c.value("isolcpus"), Some("domain,2-3"));
        assert_eq!(c.value("root"), Some("UUID=x"));
        assert_eq!(c.value("dyndbg"), Some("file a.c +p"));
        assert!(c.has("quiet"));
        assert_eq!(c.value("nohz_full"), None, "words after -- belong to init");
    }

    #[test]
    fn sysfs_wins_over_cmdline_and_nohz_implies_rcu_nocbs() {
        let (_d, hf) = tree(&[
            (
                "/proc/cmdline",
                "isolcpus=managed_irq,domain,2-3 rcu_nocbs=1",
            ),
            ("/sys/devices/system/cpu/isolated", "2-3\n"),
            ("/sys/devices/system/cpu/nohz_full", "2-3\n"),
            ("/sys/fs/cgroup/cpuset.cpus.isolated", "5\n"),
        ]);
        let iso = Isolation::read(&hf);
        assert_eq!(iso.isolcpus.to_string(), "2-3");
        assert_eq!(iso.nohz_full.to_string(), "2-3");
        assert_eq!(iso.rcu_nocbs.to_string(), "1-3");
        assert_eq!(iso.cpuset_isolated.to_string(), "5");
        assert_eq!(iso.scheduler_isolated().to_string(), "2-3,5");
        assert_eq!(iso.isolcpus_flags, vec!["managed_irq", "domain"]);
    }

    #[test]
    fn cmdline_is_used_when_sysfs_files_are_absent() {
        let (_d, hf) = tree(&[("/proc/cmdline", "isolcpus=4-5 nohz_full=4-5")]);
        let iso = Isolation::read(&hf);
        assert_eq!(iso.isolcpus.to_string(), "4-5");
        assert_eq!(iso.nohz_full.to_string(), "4-5");
        assert_eq!(iso.rcu_nocbs.to_string(), "4-5");
    }

    #[test]
    fn an_empty_tree_means_no_isolation() {
        let (_d, hf) = tree(&[]);
        let iso = Isolation::read(&hf);
        assert!(iso.scheduler_isolated().is_empty());
        assert!(iso.nohz_full.is_empty());
    }
}
