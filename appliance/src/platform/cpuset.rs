//! Sets of CPUs and the kernel's "cpulist" notation (`0-3,8,10-11`).
//!
//! The kernel speaks cpulists everywhere the appliance looks: `isolcpus=`, `nohz_full=`,
//! `/sys/devices/system/cpu/isolated`, `/proc/irq/N/smp_affinity_list`, NUMA node `cpulist`.
//! One parser and one formatter keep check-host, the platform layer and the tuning scripts'
//! expectations in agreement.

use std::collections::BTreeSet;
use std::fmt;

/// A set of logical CPU numbers, ordered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(BTreeSet<usize>);

/// A cpulist that could not be parsed; carries the offending token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid cpulist token {0:?}")]
pub struct CpuListError(pub String);

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a kernel cpulist: comma-separated numbers and ranges, ranges optionally strided
    /// as `a-b:used/group` (see the kernel's `Documentation/admin-guide/kernel-parameters.rst`).
    /// An empty or whitespace-only string is the empty set (that is what an empty
    /// `/sys/devices/system/cpu/isolated` means).
    pub fn parse(list: &str) -> Result<Self, CpuListError> {
        let mut set = BTreeSet::new();
        for token in list
            .trim()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let bad = || CpuListError(token.to_owned());
            let (range, stride) = match token.split_once(':') {
                Some((r, s)) => {
                    let (used, group) = s.split_once('/').ok_or_else(bad)?;
                    let used: usize = used.parse().map_err(|_| bad())?;
                    let group: usize = group.parse().map_err(|_| bad())?;
                    if used == 0 || group == 0 || used > group {
                        return Err(bad());
                    }
                    (r, Some((used, group)))
                }
                None => (token, None),
            };
            let (lo, hi) = match range.split_once('-') {
                Some((a, b)) => (
                    a.parse::<usize>().map_err(|_| bad())?,
                    b.parse::<usize>().map_err(|_| bad())?,
                ),
                None => {
                    let n = range.parse::<usize>().map_err(|_| bad())?;
                    (n, n)
                }
            };
            if lo > hi || hi > 65_535 {
                return Err(bad());
            }
            for cpu in lo..=hi {
                let keep = match stride {
                    Some((used, group)) => (cpu - lo) % group < used,
                    None => true,
                };
                if keep {
                    set.insert(cpu);
                }
            }
        }
        Ok(Self(set))
    }

    /// Parses the value of a kernel parameter that may carry alphabetic flags before the list,
    /// e.g. `isolcpus=nohz,domain,managed_irq,2-5`; the flags are returned separately.
    pub fn parse_with_flags(value: &str) -> Result<(Self, Vec<String>), CpuListError> {
        let mut flags = Vec::new();
        let mut rest = Vec::new();
        for token in value.split(',') {
            if token
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            {
                flags.push(token.to_owned());
            } else {
                rest.push(token);
            }
        }
        Ok((Self::parse(&rest.join(","))?, flags))
    }

    /// Builds a set from CPU numbers.
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> Self {
        Self(cpus.into_iter().collect())
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.0.contains(&cpu)
    }

    /// Adds `cpu`.
    pub fn insert(&mut self, cpu: usize) {
        self.0.insert(cpu);
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().copied()
    }

    /// CPUs in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.union(&other.0).copied().collect())
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.intersection(&other.0).copied().collect())
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.difference(&other.0).copied().collect())
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromIterator<usize> for CpuSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        Self::from_cpus(iter)
    }
}

/// Formats as a canonical cpulist (`0-3,8`); the empty set formats as `` (empty), like sysfs.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(lo) = iter.next() {
            let mut hi = lo;
            while iter.peek() == Some(&(hi + 1)) {
                hi += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_ranges_and_strides() {
        assert_eq!(
            CpuSet::parse("0-3,8,10-11").unwrap(),
            CpuSet::from_cpus([0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(CpuSet::parse("\n").unwrap(), CpuSet::new());
        assert_eq!(
            CpuSet::parse("0-7:2/4").unwrap(),
            CpuSet::from_cpus([0, 1, 4, 5])
        );
        assert!(CpuSet::parse("3-1").is_err());
        assert!(CpuSet::parse("x").is_err());
        assert!(CpuSet::parse("0-7:5/4").is_err());
    }

    #[test]
    fn flags_are_split_from_the_list() {
        let (set, flags) = CpuSet::parse_with_flags("nohz,domain,managed_irq,2-5").unwrap();
        assert_eq!(set, CpuSet::from_cpus([2, 3, 4, 5]));
        assert_eq!(flags, vec!["nohz", "domain", "managed_irq"]);
    }

    #[test]
    fn formats_canonically_and_round_trips() {
        let set = CpuSet::from_cpus([5, 0, 1, 2, 8, 10, 11]);
        assert_eq!(set.to_string(), "0-2,5,8,10-11");
        assert_eq!(CpuSet::parse(&set.to_string()).unwrap(), set);
        assert_eq!(CpuSet::new().to_string(), "");
    }

    #[test]
    fn set_algebra() {
        let a = CpuSet::from_cpus([1, 2, 3]);
        let b = CpuSet::from_cpus([3, 4]);
        assert_eq!(a.union(&b).to_string(), "1-4");
        assert_eq!(a.intersection(&b).to_string(), "3");
        assert_eq!(a.difference(&b).to_string(), "1-2");
        assert!(CpuSet::from_cpus([3]).is_subset(&b));
    }
}
