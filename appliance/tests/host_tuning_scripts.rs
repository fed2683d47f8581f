//! The apply side (`tuning/*.sh`) against the check side (`check-host`), on one fake host tree:
//! dry runs change nothing, `--apply` changes exactly what check-host complains about, a second
//! `--apply` finds nothing to do, and check-host then reports the items ok.
//!
//! Needs bash (present on every supported host). The scripts honour TUNING_ROOT, the same
//! injectable root check-host reads through.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use appliance::host::{check_with, HostContext, HostRequirements, Status};
use appliance::platform::sysfs::HostFs;

struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tuning-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn write(&self, abs: &str, content: &str) {
        let p = self.0.join(abs.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fn read(&self, abs: &str) -> String {
        fs::read_to_string(self.0.join(abs.trim_start_matches('/')))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An untuned 4-CPU host: IRQs everywhere, powersave, THP always, no hugepages.
fn untuned(name: &str) -> Tree {
    let t = Tree::new(name);
    t.write("/sys/devices/system/cpu/online", "0-3\n");
    t.write("/sys/devices/system/cpu/isolated", "\n");
    t.write("/proc/irq/default_smp_affinity", "f\n");
    t.write("/proc/irq/24/smp_affinity_list", "0-3\n");
    t.write("/proc/irq/25/smp_affinity_list", "0\n");
    t.write("/proc/irq/26/smp_affinity_list", "1-2\n");
    t.write("/proc/sys/vm/nr_hugepages", "0\n");
    t.write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "0\n",
    );
    t.write(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never\n",
    );
    for c in 0..4 {
        let d = format!("/sys/devices/system/cpu/cpu{c}/cpufreq");
        t.write(&format!("{d}/scaling_governor"), "powersave\n");
        t.write(
            &format!("{d}/scaling_available_governors"),
            "performance powersave\n",
        );
        t.write(
            &format!("{d}/energy_performance_preference"),
            "balance_power\n",
        );
    }
    t
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tuning")
        .join(name)
}

/// Runs a tuning script with TUNING_ROOT set; returns (success, stdout).
fn run(t: &Tree, name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(script(name))
        .args(args)
        .env("TUNING_ROOT", &t.0)
        .env_remove("HUGEPAGES")
        .env_remove("ISOLATED_CPUS")
        .env_remove("GOVERNOR")
        .env_remove("THP_MODE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash ({e}): install bash"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.is_empty() || !out.status.success(),
        "{name} wrote to stderr: {stderr}"
    );
    (out.status.success(), stdout + &stderr)
}

/// Dry run reports the change and leaves the file alone; --apply makes it; a second --apply
/// has nothing to do.
fn dry_apply_again(t: &Tree, name: &str, args: &[&str], file: &str, before: &str, after: &str) {
    let raw_before = t.read(file);
    let (ok, out) = run(t, name, args);
    assert!(ok, "{name} dry run failed:\n{out}");
    assert!(
        out.contains(&format!("would  {file}: {before} -> {after}")),
        "{name} dry run:\n{out}"
    );
    assert!(out.contains("re-run with --apply"), "{out}");
    assert_eq!(t.read(file), raw_before, "dry run must not write");

    let mut apply = args.to_vec();
    apply.push("--apply");
    let (ok, out) = run(t, name, &apply);
    assert!(ok, "{name} --apply failed:\n{out}");
    assert!(
        out.contains(&format!("set    {file}: {before} -> {after}")),
        "{name} apply:\n{out}"
    );
    assert_eq!(t.read(file), after);

    let (ok, out) = run(t, name, &apply);
    assert!(
        ok && out.contains("nothing to change"),
        "{name} is not idempotent:\n{out}"
    );
}

fn req() -> HostRequirements {
    HostRequirements {
        pinned_cores: vec![2, 3],
        hugepage_bytes: 16 << 20,
        nic: None,
    }
}

fn status(t: &Tree, id: &str) -> Status {
    let ctx = HostContext {
        fs: HostFs::at(&t.0),
        uring: Ok(()),
    };
    check_with(&req(), &ctx).item(id).unwrap().status
}

#[test]
fn hugepages_script_reserves_what_check_host_asks_for() {
    let t = untuned("hugepages");
    assert_eq!(status(&t, "mem.hugepages.2m"), Status::Warn);
    dry_apply_again(
        &t,
        "hugepages.sh",
        &["--bytes", "16M"],
        "/proc/sys/vm/nr_hugepages",
        "0",
        "8",
    );
    // The kernel mirrors vm.nr_hugepages into the sysfs pool; the fake tree has to be told.
    t.write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "8\n",
    );
    assert_eq!(status(&t, "mem.hugepages.2m"), Status::Ok);
    // Only ever raises unless --exact.
    let (ok, out) = run(&t, "hugepages.sh", &["--pages", "4", "--apply"]);
    assert!(ok && out.contains("nothing to change"), "{out}");
    let (ok, out) = run(&t, "hugepages.sh", &["--pages", "4", "--exact"]);
    assert!(
        ok && out.contains("would  /proc/sys/vm/nr_hugepages: 8 -> 4"),
        "{out}"
    );
}

#[test]
fn thp_script_sets_madvise() {
    let t = untuned("thp");
    assert_eq!(status(&t, "mem.thp"), Status::Warn);
    dry_apply_again(
        &t,
        "thp.sh",
        &[],
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always",
        "madvise",
    );
    // The kernel renders the file with the choice bracketed.
    t.write(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always [madvise] never\n",
    );
    assert_eq!(status(&t, "mem.thp"), Status::Ok);
}

#[test]
fn governor_script_sets_performance_and_epp() {
    let t = untuned("governor");
    assert_eq!(status(&t, "cpu.governor"), Status::Warn);
    let f = "/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor";
    dry_apply_again(&t, "governor.sh", &[], f, "powersave", "performance");
    assert_eq!(
        t.read("/sys/devices/system/cpu/cpu0/cpufreq/energy_performance_preference"),
        "performance"
    );
    assert_eq!(status(&t, "cpu.governor"), Status::Ok);
    // A governor the driver does not offer is skipped, not forced.
    let (ok, out) = run(
        &t,
        "governor.sh",
        &["--governor", "schedutil", "--cores", "1"],
    );
    assert!(ok && out.contains("schedutil not offered"), "{out}");
}

#[test]
fn governor_script_without_cpufreq_says_so() {
    let t = Tree::new("no-cpufreq");
    t.write("/sys/devices/system/cpu/online", "0-1\n");
    let (ok, out) = run(&t, "governor.sh", &["--apply"]);
    assert!(
        ok && out.contains("no cpufreq interface for cores 0-1"),
        "{out}"
    );
}

#[test]
fn irq_script_moves_irqs_off_isolated_cores() {
    let t = untuned("irq");
    assert_eq!(status(&t, "irq.affinity"), Status::Warn);
    let f = "/proc/irq/24/smp_affinity_list";
    dry_apply_again(
        &t,
        "irq-affinity.sh",
        &["--isolated", "2-3"],
        f,
        "0-3",
        "0-1",
    );
    // Narrowed to what it was allowed outside the isolated set, not widened.
    assert_eq!(t.read("/proc/irq/25/smp_affinity_list"), "0");
    assert_eq!(t.read("/proc/irq/26/smp_affinity_list"), "1");
    assert_eq!(t.read("/proc/irq/default_smp_affinity"), "3");
    assert_eq!(status(&t, "irq.affinity"), Status::Ok);
}

#[test]
fn irq_script_reads_kernel_isolation_by_default() {
    let t = untuned("irq-default");
    let (ok, out) = run(&t, "irq-affinity.sh", &[]);
    assert!(ok && out.contains("no isolated cores"), "{out}");
    t.write("/sys/devices/system/cpu/isolated", "3\n");
    let (ok, out) = run(&t, "irq-affinity.sh", &[]);
    assert!(
        ok && out.contains("would  /proc/irq/24/smp_affinity_list: 0-3 -> 0-2"),
        "{out}"
    );
}

#[test]
fn kernel_cmdline_generator_and_grub_snippet() {
    let t = untuned("cmdline");
    let (ok, out) = run(
        &t,
        "kernel-cmdline.sh",
        &["--isolated", "2-3", "--hugepages", "8"],
    );
    assert!(ok, "{out}");
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        "isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1 \
         default_hugepagesz=2M hugepagesz=2M hugepages=8"
    );
    assert!(
        out.contains("would  /etc/default/grub.d/appliance.cfg"),
        "{out}"
    );
    let (ok, out) = run(
        &t,
        "kernel-cmdline.sh",
        &["--isolated", "2-3", "--hugepages", "8", "--apply"],
    );
    assert!(
        ok && out.contains("set    /etc/default/grub.d/appliance.cfg"),
        "{out}"
    );
    let cfg = t.read("/etc/default/grub.d/appliance.cfg");
    assert!(
        cfg.contains(&format!(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT {first}\""
        )),
        "{cfg}"
    );
    let (ok, out) = run(
        &t,
        "kernel-cmdline.sh",
        &["--isolated", "2-3", "--hugepages", "8", "--apply"],
    );
    assert!(
        ok && out.contains("already holds these parameters"),
        "{out}"
    );

    // Booting with that line is what check-host's isolation items look for.
    assert_eq!(status(&t, "cpu.isolation"), Status::Fail);
    t.write("/proc/cmdline", first);
    t.write("/sys/devices/system/cpu/isolated", "2-3\n");
    for id in ["cpu.isolation", "cpu.nohz_full", "cpu.rcu_nocbs"] {
        assert_eq!(status(&t, id), Status::Ok, "{id}");
    }

    let (ok, out) = run(&t, "kernel-cmdline.sh", &["--isolated", "0-3"]);
    assert!(!ok && out.contains("leaves no housekeeping core"), "{out}");
}

#[test]
fn apply_runtime_runs_every_step_from_the_env_file() {
    let t = untuned("runtime");
    t.write(
        "/etc/appliance/tuning.env",
        "ISOLATED_CPUS=2-3\nGOVERNOR=performance\nTHP_MODE=madvise\nHUGEPAGES=0\n",
    );
    let env = t.0.join("etc/appliance/tuning.env");
    let (ok, out) = run(&t, "apply-runtime.sh", &["--env", env.to_str().unwrap()]);
    assert!(ok, "{out}");
    for step in ["== thp.sh", "== governor.sh", "== irq-affinity.sh"] {
        assert!(out.contains(step), "{out}");
    }
    assert_eq!(
        t.read("/proc/irq/24/smp_affinity_list"),
        "0-3",
        "dry run by default"
    );
    let (ok, out) = run(
        &t,
        "apply-runtime.sh",
        &["--env", env.to_str().unwrap(), "--apply"],
    );
    assert!(ok, "{out}");
    assert_eq!(t.read("/proc/irq/24/smp_affinity_list"), "0-1");
    assert_eq!(
        t.read("/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        t.read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "madvise"
    );
}

#[test]
fn every_script_has_help_and_rejects_unknown_flags() {
    let t = untuned("help");
    for s in [
        "hugepages.sh",
        "thp.sh",
        "governor.sh",
        "irq-affinity.sh",
        "kernel-cmdline.sh",
        "apply-runtime.sh",
    ] {
        let (ok, out) = run(&t, s, &["--help"]);
        assert!(ok && out.starts_with("Usage: "), "{s} --help:\n{out}");
        assert!(out.contains("--apply"), "{s} documents --apply");
        let (ok, out) = run(&t, s, &["--bogus"]);
        assert!(
            !ok && out.contains("unknown argument --bogus"),
            "{s}:\n{out}"
        );
    }
}
