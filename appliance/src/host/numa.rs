//! NUMA items: the pinned cores share one node, and it is the NIC's.

use super::report::{Item, Status};
use super::HostRequirements;
use crate::platform::sysfs::HostFs;
use crate::platform::CpuSet;

pub(super) fn check(req: &HostRequirements, fs: &HostFs) -> Vec<Item> {
    let nodes = nodes(fs);
    vec![cores(req, &nodes), nic(req, fs, &nodes)]
}

/// (node number, its CPUs).
fn nodes(fs: &HostFs) -> Vec<(usize, CpuSet)> {
    fs.list("/sys/devices/system/node")
        .into_iter()
        .filter_map(|n| {
            let id: usize = n.strip_prefix("node")?.parse().ok()?;
            let cpus =
                CpuSet::parse(&fs.read(&format!("/sys/devices/system/node/{n}/cpulist"))?).ok()?;
            Some((id, cpus))
        })
        .collect()
}

/// The nodes holding any of `cpus`.
fn nodes_of(nodes: &[(usize, CpuSet)], cpus: &CpuSet) -> Vec<usize> {
    nodes
        .iter()
        .filter(|(_, c)| !c.intersection(cpus).is_empty())
        .map(|(n, _)| *n)
        .collect()
}

fn list(ns: &[usize]) -> String {
    ns.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn cores(req: &HostRequirements, nodes: &[(usize, CpuSet)]) -> Item {
    const ID: &str = "numa.cores";
    const T: &str = "pinned cores on one NUMA node";
    if nodes.is_empty() {
        return Item::new(ID, T, Status::Info, "no NUMA topology exposed");
    }
    if nodes.len() == 1 {
        return Item::new(ID, T, Status::Ok, "single NUMA node");
    }
    let want = req.pinned();
    if want.is_empty() {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("{} NUMA nodes; no pinned cores", nodes.len()),
        );
    }
    let on = nodes_of(nodes, &want);
    if on.len() <= 1 {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("pinned [{want}] on node {}", list(&on)),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("pinned [{want}] span nodes {}: every ring crossing nodes pays the interconnect", list(&on)))
            .fix("pin engines and gateways to cores of one node, the NIC's (see `lscpu -e` and numa.nic)")
    }
}

fn nic(req: &HostRequirements, fs: &HostFs, nodes: &[(usize, CpuSet)]) -> Item {
    const ID: &str = "numa.nic";
    const T: &str = "NIC on the pinned cores' node";
    let Some(name) = req.nic.as_deref() else {
        return Item::new(ID, T, Status::Info, "no NIC given (check-host --nic IFACE)");
    };
    if !fs.exists(&format!("/sys/class/net/{name}")) {
        let have = fs.list("/sys/class/net").join(", ");
        return Item::new(
            ID,
            T,
            Status::Fail,
            format!("interface {name} not found (have: {have})"),
        )
        .fix("name an existing interface (ip -br link)");
    }
    let Some(raw) = fs.read_trim(&format!("/sys/class/net/{name}/device/numa_node")) else {
        return Item::new(
            ID,
            T,
            Status::Info,
            format!("{name} has no PCI device (virtual interface): no NUMA placement to check"),
        );
    };
    let node: i64 = raw.parse().unwrap_or(-1);
    if node < 0 || nodes.len() <= 1 {
        return Item::new(
            ID,
            T,
            Status::Ok,
            format!("{name}: single node or no NUMA affinity reported (numa_node {raw})"),
        );
    }
    let want = req.pinned();
    let on = nodes_of(nodes, &want);
    if want.is_empty() {
        Item::new(
            ID,
            T,
            Status::Info,
            format!("{name} on node {node}; no pinned cores"),
        )
    } else if on.iter().all(|n| *n as i64 == node) {
        Item::new(
            ID,
            T,
            Status::Ok,
            format!("{name} and pinned [{want}] on node {node}"),
        )
    } else {
        Item::new(ID, T, Status::Warn, format!("{name} on node {node}, pinned [{want}] on node {}: every packet crosses the interconnect", list(&on)))
            .fix(format!("pin to cores of node {node} (/sys/devices/system/node/node{node}/cpulist)"))
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
    fn cores_across_nodes_warn() {
        let d = tuned();
        let mut r = req();
        r.pinned_cores = vec![2, 5];
        assert_eq!(item(&d, &r, "numa.cores").status, Status::Warn);
        assert_eq!(item(&d, &req(), "numa.cores").status, Status::Ok);
    }

    #[test]
    fn nic_on_the_other_node_warns_and_a_missing_nic_fails() {
        let d = tuned();
        d.write("/sys/class/net/eth0/device/numa_node", "1\n");
        let i = item(&d, &req(), "numa.nic");
        assert_eq!(i.status, Status::Warn);
        assert!(i.fix.unwrap().contains("node1"));
        let mut r = req();
        r.nic = Some("ens9".into());
        assert_eq!(item(&d, &r, "numa.nic").status, Status::Fail);
    }

    #[test]
    fn virtual_nic_and_no_nic_are_info() {
        let d = tuned();
        d.write("/sys/class/net/lo/address", "00:00:00:00:00:00\n");
        let mut r = req();
        r.nic = Some("lo".into());
        assert_eq!(item(&d, &r, "numa.nic").status, Status::Info);
        r.nic = None;
        assert_eq!(item(&d, &r, "numa.nic").status, Status::Info);
    }
}
