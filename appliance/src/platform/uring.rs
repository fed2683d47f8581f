//! Can this process use io_uring, and if not, why (in one line)?
//!
//! Shared by `check-host` and by the runtime's choice between the io_uring and epoll backends.
//! The probe sets up a tiny ring, checks that the kernel knows the opcodes the gateway uses and
//! completes one NOP round trip, so "ok" means io_uring works here, not merely that the
//! syscall exists.

use std::fmt;

use io_uring::{opcode, IoUring, Probe};

use super::sysfs::HostFs;

/// Why io_uring cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UringUnavailable {
    /// ENOSYS: kernel older than 5.1 or built without CONFIG_IO_URING.
    NotInKernel,
    /// `kernel.io_uring_disabled` = 2: disabled for everyone.
    DisabledBySysctl,
    /// `kernel.io_uring_disabled` = 1 and this process is not in `kernel.io_uring_group`.
    RestrictedToGroup,
    /// EPERM with the sysctl allowing it: a seccomp filter (container runtime, systemd
    /// `SystemCallFilter=`) or an LSM blocks the syscalls.
    Blocked,
    /// ENOMEM: ring memory is charged to RLIMIT_MEMLOCK on kernels before 5.12.
    MemlockTooLow,
    /// The kernel lacks opcodes the gateway needs.
    MissingOpcodes(Vec<&'static str>),
    /// Anything else, with the OS error text.
    Other(String),
}

impl fmt::Display for UringUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInKernel => f.write_str(
                "io_uring_setup: ENOSYS (kernel older than 5.1 or built without CONFIG_IO_URING)",
            ),
            Self::DisabledBySysctl => {
                f.write_str("io_uring disabled by sysctl kernel.io_uring_disabled=2")
            }
            Self::RestrictedToGroup => f.write_str(
                "io_uring restricted by kernel.io_uring_disabled=1 to kernel.io_uring_group, \
                 and this process is not in that group",
            ),
            Self::Blocked => f.write_str(
                "io_uring_setup: EPERM with the sysctl allowing it: a seccomp profile (container \
                 runtime default, systemd SystemCallFilter=) or an LSM blocks io_uring",
            ),
            Self::MemlockTooLow => f.write_str(
                "io_uring_setup: ENOMEM (ring memory counts against RLIMIT_MEMLOCK before \
                 Linux 5.12; raise LimitMEMLOCK)",
            ),
            Self::MissingOpcodes(ops) => {
                write!(f, "kernel lacks io_uring opcodes: {}", ops.join(", "))
            }
            Self::Other(e) => write!(f, "io_uring unusable: {e}"),
        }
    }
}

/// Opcodes the gateway cannot run without.
const REQUIRED: [(u8, &str); 5] = [
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// Whether io_uring works in this process: `Ok` after a ring was set up, the required opcodes
/// were found and a NOP completed.
pub fn probe() -> Result<(), UringUnavailable> {
    let ring = IoUring::new(4).map_err(|e| classify(&e, &HostFs::real()))?;
    let mut ops = Probe::new();
    ring.submitter()
        .register_probe(&mut ops)
        .map_err(|e| UringUnavailable::Other(format!("IORING_REGISTER_PROBE: {e}")))?;
    let missing: Vec<&'static str> = REQUIRED
        .iter()
        .filter(|(code, _)| !ops.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(UringUnavailable::MissingOpcodes(missing));
    }
    nop_round_trip(ring)
}

fn nop_round_trip(mut ring: IoUring) -> Result<(), UringUnavailable> {
    let nop = opcode::Nop::new().build().user_data(0x5eed);
    // SAFETY: a NOP references no buffers or descriptors, so nothing must outlive it.
    unsafe { ring.submission().push(&nop) }
        .map_err(|_| UringUnavailable::Other("submission queue full on a fresh ring".into()))?;
    ring.submit_and_wait(1)
        .map_err(|e| UringUnavailable::Other(format!("io_uring_enter: {e}")))?;
    match ring.completion().next() {
        Some(cqe) if cqe.user_data() == 0x5eed && cqe.result() >= 0 => Ok(()),
        Some(cqe) => Err(UringUnavailable::Other(format!(
            "NOP completed with result {}",
            cqe.result()
        ))),
        None => Err(UringUnavailable::Other("NOP did not complete".into())),
    }
}

/// Maps a ring set-up error to its cause, reading `kernel.io_uring_disabled` under `fs` to
/// tell a sysctl from a seccomp filter.
pub fn classify(err: &std::io::Error, fs: &HostFs) -> UringUnavailable {
    match err.raw_os_error() {
        Some(libc::ENOSYS) => UringUnavailable::NotInKernel,
        Some(libc::EPERM) | Some(libc::EACCES) => {
            match fs.read_u64("/proc/sys/kernel/io_uring_disabled") {
                Some(2) => UringUnavailable::DisabledBySysctl,
                Some(1) => UringUnavailable::RestrictedToGroup,
                _ => UringUnavailable::Blocked,
            }
        }
        Some(libc::ENOMEM) => UringUnavailable::MemlockTooLow,
        _ => UringUnavailable::Other(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::sysfs::fake::tree;

    #[test]
    fn errors_are_classified_with_the_sysctl() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let (_d, two) = tree(&[("/proc/sys/kernel/io_uring_disabled", "2\n")]);
        assert_eq!(classify(&eperm, &two), UringUnavailable::DisabledBySysctl);
        let (_d1, one) = tree(&[("/proc/sys/kernel/io_uring_disabled", "1\n")]);
        assert_eq!(classify(&eperm, &one), UringUnavailable::RestrictedToGroup);
        let (_d0, zero) = tree(&[("/proc/sys/kernel/io_uring_disabled", "0\n")]);
        assert_eq!(classify(&eperm, &zero), UringUnavailable::Blocked);
        let enosys = std::io::Error::from_raw_os_error(libc::ENOSYS);
        assert_eq!(classify(&enosys, &zero), UringUnavailable::NotInKernel);
        assert!(UringUnavailable::Blocked.to_string().contains("seccomp"));
    }

    #[test]
    fn probe_succeeds_on_this_kernel() {
        // The project's machines run Linux 6.x with io_uring enabled (docs/operations.md);
        // a failure here names the cause.
        if let Err(e) = probe() {
            panic!("io_uring probe failed on this host: {e}");
        }
    }
}
