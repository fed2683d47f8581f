//! Clock items: an invariant TSC (the appliance stamps every hop with RDTSC through `quanta`)
//! and the kernel clocksource.

use super::report::{Item, Status};
use crate::platform::sysfs::HostFs;

pub(super) fn check(fs: &HostFs) -> Vec<Item> {
    vec![tsc(fs), clocksource(fs)]
}

fn tsc(fs: &HostFs) -> Item {
    const ID: &str = "clock.tsc";
    const T: &str = "invariant TSC";
    let Some(cpuinfo) = fs.read("/proc/cpuinfo") else {
        return Item::new(ID, T, Status::Info, "no /proc/cpuinfo");
    };
    let Some(flags) = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect::<Vec<_>>())
    else {
        return Item::new(
            ID,
            T,
            Status::Info,
            "no x86 CPU flags in /proc/cpuinfo (not x86: quanta uses the OS clock)",
        );
    };
    let has = |f: &str| flags.contains(&f);
    let missing: Vec<&str> = ["constant_tsc", "nonstop_tsc"]
        .into_iter()
        .filter(|f| !has(f))
        .collect();
    if missing.is_empty() {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!(
                "constant_tsc nonstop_tsc{}",
                if has("rdtscp") { " rdtscp" } else { "" }
            ),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("missing {}: TSC timestamps drift with frequency or stop in idle", missing.join(" ")))
            .fix("run on hardware with an invariant TSC; in a VM expose it to the guest (KVM: -cpu host,+invtsc)")
    }
}

fn clocksource(fs: &HostFs) -> Item {
    const ID: &str = "clock.source";
    const T: &str = "kernel clocksource";
    let base = "/sys/devices/system/clocksource/clocksource0";
    let Some(current) = fs.read_trim(&format!("{base}/current_clocksource")) else {
        return Item::new(ID, T, Status::Info, "no clocksource in sysfs");
    };
    let available = fs
        .read_trim(&format!("{base}/available_clocksource"))
        .unwrap_or_default();
    if current == "tsc" {
        Item::new(ID, T, Status::Ok, format!("tsc (available: {available})"))
    } else {
        Item::new(ID, T, Status::Warn, format!("{current} (available: {available}): clock_gettime is slower than with tsc and may exit to the hypervisor"))
            .fix("clocksource=tsc tsc=reliable on the kernel command line, only where the TSC is invariant and synchronised across sockets")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn missing_invariant_tsc_warns() {
        let d = tuned();
        d.write("/proc/cpuinfo", "flags\t: fpu tsc constant_tsc\n");
        let i = tsc(&ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("nonstop_tsc"));
    }

    #[test]
    fn non_x86_cpuinfo_is_info() {
        let d = tuned();
        d.write(
            "/proc/cpuinfo",
            "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n",
        );
        assert_eq!(tsc(&ctx(&d).fs).status, Status::Info);
    }

    #[test]
    fn non_tsc_clocksource_warns() {
        let d = tuned();
        d.write(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            "kvm-clock\n",
        );
        let i = clocksource(&ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.fix.unwrap().contains("clocksource=tsc"));
    }
}
