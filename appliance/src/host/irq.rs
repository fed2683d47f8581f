//! IRQ items: no device interrupt may land on a pinned core, and irqbalance must not move one
//! back there.

use super::report::{Item, Status};
use super::HostRequirements;
use crate::platform::isolation::Isolation;
use crate::platform::sysfs::HostFs;
use crate::platform::CpuSet;

pub(super) fn check(req: &HostRequirements, fs: &HostFs) -> Vec<Item> {
    vec![affinity(req, fs), irqbalance(req, fs)]
}

/// Parses a hex CPU mask as in `/proc/irq/default_smp_affinity` (`ff,ffffffff`).
fn parse_mask(mask: &str) -> Option<CpuSet> {
    let hex: String = mask.trim().chars().filter(|c| *c != ',').collect();
    let mut set = CpuSet::new();
    for (i, c) in hex.chars().rev().enumerate() {
        let nibble = c.to_digit(16)?;
        for bit in 0..4 {
            if nibble & (1 << bit) != 0 {
                set.insert(i * 4 + bit);
            }
        }
    }
    Some(set)
}

fn affinity(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "irq.affinity";
    const T: &str = "device IRQs kept off pinned cores";
    let want = req.pinned();
    let irqs: Vec<String> = fs
        .list("/proc/irq")
        .into_iter()
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    if irqs.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            "no /proc/irq (container or restricted /proc)",
        );
    }
    if want.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("{} IRQs; no pinned cores to keep them off", irqs.len()),
        );
    }
    // Where each IRQ is delivered now (effective_affinity_list), falling back to where it may
    // go (smp_affinity_list) on kernels without the effective file. Kernel-managed vectors
    // keep an allowed set that includes isolated cores even when `isolcpus=managed_irq`
    // steers delivery away; counting them would make a tuned host warn forever.
    let mut hits = Vec::new();
    let mut allowed_only = 0;
    for n in &irqs {
        let list = |f: &str| {
            fs.read(&format!("/proc/irq/{n}/{f}"))
                .and_then(|s| CpuSet::parse(&s).ok())
        };
        let allowed = list("smp_affinity_list");
        let Some(delivered) = list("effective_affinity_list").or_else(|| allowed.clone()) else {
            continue;
        };
        if !delivered.intersection(&want).is_empty() {
            hits.push(n.as_str());
        } else if allowed.is_some_and(|a| !a.intersection(&want).is_empty()) {
            allowed_only += 1;
        }
    }
    let default_hits = fs
        .read("/proc/irq/default_smp_affinity")
        .and_then(|m| parse_mask(&m))
        .map(|s| s.intersection(&want))
        .filter(|s| !s.is_empty());
    let managed = if allowed_only > 0 {
        format!("; {allowed_only} more are allowed there but delivered elsewhere (kernel-managed?)")
    } else {
        String::new()
    };
    if hits.is_empty() && default_hits.is_none() {
        return Item::new(
            ID,
            T,
            Status::Ok,
            format!("{} IRQs, none delivered to [{want}]{managed}", irqs.len()),
        );
    }
    let mut observed = format!(
        "{} of {} IRQs delivered to pinned cores [{want}]",
        hits.len(),
        irqs.len()
    );
    if !hits.is_empty() {
        let shown: Vec<&str> = hits.iter().take(12).copied().collect();
        observed.push_str(&format!(
            " (IRQs {}{})",
            shown.join(","),
            if hits.len() > 12 { ",..." } else { "" }
        ));
    }
    if let Some(d) = default_hits {
        observed.push_str(&format!("; new IRQs default to cores including [{d}]"));
    }
    observed.push_str(&managed);
    Item::new(ID, T, Status::Warn, observed).fix(format!(
        "tuning/irq-affinity.sh --isolated {want} --apply (appliance-tuning.service does it at boot); \
         irqaffinity=<housekeeping cores> and isolcpus=managed_irq,... on the command line for IRQs set up before boot"
    ))
}

/// Whether a process named `name` runs (scanning `/proc/<pid>/comm`).
fn process_running(fs: &HostFs, name: &str) -> bool {
    fs.list("/proc")
        .into_iter()
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .any(|p| fs.read_trim(&format!("/proc/{p}/comm")).as_deref() == Some(name))
}

fn irqbalance(req: &HostRequirements, fs: &HostFs) -> Item {
    const ID: &str = "irq.irqbalance";
    const T: &str = "irqbalance leaves pinned cores alone";
    if !process_running(fs, "irqbalance") {
        return Item::new(ID, T, Status::Ok, "irqbalance is not running");
    }
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            "irqbalance is running; no pinned cores",
        );
    }
    let iso = Isolation::read(fs);
    let skipped = iso.isolcpus.union(&iso.nohz_full);
    if want.is_subset(&skipped) {
        Item::new(ID, T, Status::Ok, format!("irqbalance is running; it skips isolcpus/nohz_full cores, which cover [{want}] (irqbalance >= 1.8)"))
    } else {
        Item::new(ID, T, Status::Warn, format!("irqbalance is running and may route IRQs onto pinned cores [{}]", want.difference(&skipped)))
            .fix(format!("IRQBALANCE_BANNED_CPULIST={want} in /etc/default/irqbalance, or `systemctl disable --now irqbalance` and use tuning/irq-affinity.sh"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn hex_masks_parse() {
        assert_eq!(parse_mask("03\n").unwrap().to_string(), "0-1");
        assert_eq!(parse_mask("1,00000001").unwrap().to_string(), "0,32");
        assert!(parse_mask("zz").is_none());
    }

    #[test]
    fn irq_allowed_on_a_pinned_core_warns_with_the_script() {
        let d = tuned();
        d.write("/proc/irq/30/smp_affinity_list", "0-7\n");
        let i = affinity(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("IRQs 30"), "{}", i.observed);
        assert!(i
            .fix
            .unwrap()
            .contains("tuning/irq-affinity.sh --isolated 2-3"));
    }

    #[test]
    fn delivery_counts_not_the_allowed_set_of_managed_irqs() {
        let d = tuned();
        // A managed vector: allowed everywhere, delivered on a housekeeping core.
        d.write("/proc/irq/40/smp_affinity_list", "0-7\n");
        d.write("/proc/irq/40/effective_affinity_list", "1\n");
        let i = affinity(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Ok, "{}", i.observed);
        assert!(
            i.observed.contains("1 more are allowed there"),
            "{}",
            i.observed
        );
        // Delivered to a pinned core: warn.
        d.write("/proc/irq/40/effective_affinity_list", "3\n");
        let i = affinity(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("IRQs 40"), "{}", i.observed);
    }

    #[test]
    fn default_affinity_covering_pinned_cores_warns() {
        let d = tuned();
        d.write("/proc/irq/default_smp_affinity", "ff\n");
        let i = affinity(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("default to cores including [2-3]"));
    }

    #[test]
    fn no_proc_irq_is_info() {
        let d = TempDir::new();
        assert_eq!(affinity(&req(), &ctx(&d).fs).status, Status::Info);
    }

    #[test]
    fn irqbalance_warns_unless_cores_are_isolated() {
        let d = tuned();
        d.write("/proc/812/comm", "irqbalance\n");
        assert_eq!(
            irqbalance(&req(), &ctx(&d).fs).status,
            Status::Ok,
            "isolated cores are skipped"
        );
        d.write("/sys/devices/system/cpu/isolated", "\n");
        d.write("/sys/devices/system/cpu/nohz_full", "\n");
        d.write("/proc/cmdline", "");
        let i = irqbalance(&req(), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.fix.unwrap().contains("IRQBALANCE_BANNED_CPULIST=2-3"));
    }
}
