//! Defensive, root-relative reads of `/proc` and `/sys`.
//!
//! Everything the appliance learns about the host comes through [`HostFs`], whose root is
//! injectable: production reads `/`, tests point it at a temporary directory holding a fake
//! `proc/` and `sys/` tree. Every read returns `Option`, because on real machines files are
//! missing for ordinary reasons (a VM without cpufreq, a kernel without `nohz_full`, a container
//! hiding `/proc/irq`): a missing file is a fact to report, never a reason to crash.

use std::fs;
use std::path::{Path, PathBuf};

/// A view of the host's `/proc` and `/sys`, rooted at an injectable directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFs {
    root: PathBuf,
}

impl Default for HostFs {
    fn default() -> Self {
        Self::real()
    }
}

impl HostFs {
    /// The running host (`/`).
    pub fn real() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// A tree rooted at `root`: `/proc/cmdline` is read from `root/proc/cmdline`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root this view reads from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the absolute host path `abs` (e.g. `/proc/cmdline`) lives under this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// The whole file, or `None` when it is missing or unreadable.
    pub fn read(&self, abs: &str) -> Option<String> {
        fs::read_to_string(self.path(abs)).ok()
    }

    /// The file with surrounding whitespace removed (sysfs values end in a newline).
    pub fn read_trim(&self, abs: &str) -> Option<String> {
        self.read(abs).map(|s| s.trim().to_owned())
    }

    /// The file parsed as an unsigned integer.
    pub fn read_u64(&self, abs: &str) -> Option<u64> {
        self.read_trim(abs)?.parse().ok()
    }

    /// Whether the path exists (file or directory).
    pub fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// The names of the entries of a directory, sorted; empty when it is missing.
    pub fn list(&self, abs: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(abs))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// The selected value in a sysfs multiple-choice file such as
/// `/sys/kernel/mm/transparent_hugepage/enabled` (`always [madvise] never` -> `madvise`).
pub fn bracketed_choice(s: &str) -> Option<&str> {
    let start = s.find('[')?;
    let end = s[start..].find(']')? + start;
    Some(&s[start + 1..end])
}

/// Fake `/proc` + `/sys` trees for unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::HostFs;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temporary directory removed on drop.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            // Relaxed: the counter only has to hand out unique numbers; nothing is published.
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("appliance-fake-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }

        /// Writes `content` at the absolute host path `abs` inside the tree.
        pub(crate) fn write(&self, abs: &str, content: &str) {
            let path = self.0.join(abs.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A tree holding `files` (absolute host path, content), and a [`HostFs`] rooted at it.
    pub(crate) fn tree(files: &[(&str, &str)]) -> (TempDir, HostFs) {
        let d = TempDir::new();
        for (p, content) in files {
            d.write(p, content);
        }
        let hf = HostFs::at(&d.0);
        (d, hf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_choice_picks_the_selected_word() {
        assert_eq!(
            bracketed_choice("always [madvise] never\n"),
            Some("madvise")
        );
        assert_eq!(bracketed_choice("[always] madvise never"), Some("always"));
        assert_eq!(bracketed_choice("madvise"), None);
    }

    #[test]
    fn paths_are_rooted_and_missing_files_are_none() {
        let (d, fs_) = fake::tree(&[("/proc/sys/vm/nr_hugepages", "12\n")]);
        let dir = d.0.clone();
        assert_eq!(fs_.path("/proc/cmdline"), dir.join("proc/cmdline"));
        assert_eq!(fs_.read_u64("/proc/sys/vm/nr_hugepages"), Some(12));
        assert_eq!(fs_.read("/proc/cmdline"), None);
        assert_eq!(fs_.list("/proc/sys"), vec!["vm".to_owned()]);
        assert!(fs_.list("/nope").is_empty());
    }
}
