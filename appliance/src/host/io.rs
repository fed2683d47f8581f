//! The io_uring item: the live probe's verdict, with the fix for each cause.

use super::report::{Item, Status};
use crate::platform::sysfs::HostFs;
use crate::platform::uring::UringUnavailable;

pub(super) fn check(probe: &Result<(), UringUnavailable>, fs: &HostFs) -> Item {
    const ID: &str = "io_uring";
    const T: &str = "io_uring available";
    let Err(why) = probe else {
        return Item::new(
            ID,
            T,
            Status::Ok,
            "ring set up, gateway opcodes supported, NOP round trip completed",
        );
    };
    let fix = match why {
        UringUnavailable::NotInKernel => "Linux 6.1 or later built with CONFIG_IO_URING".to_owned(),
        UringUnavailable::DisabledBySysctl | UringUnavailable::RestrictedToGroup => {
            let level = fs.read_trim("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
            format!("sysctl -w kernel.io_uring_disabled=0 (now {level}), or add the service user to kernel.io_uring_group")
        }
        UringUnavailable::Blocked => "allow io_uring_setup/io_uring_enter/io_uring_register in the seccomp profile (docker: --security-opt seccomp=...; systemd: SystemCallFilter=@system-service includes them)".to_owned(),
        UringUnavailable::MemlockTooLow => "LimitMEMLOCK=infinity (the unit sets it) or a kernel >= 5.12".to_owned(),
        UringUnavailable::MissingOpcodes(_) => "Linux 6.1 or later".to_owned(),
        UringUnavailable::Other(_) => "see the error; gateway.io = \"epoll\" runs without io_uring".to_owned(),
    };
    Item::new(
        ID,
        T,
        Status::Warn,
        format!("{why}; gateway.io = \"auto\" falls back to epoll"),
    )
    .fix(fix)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn unavailable_io_uring_warns_with_the_cause_and_fix() {
        let d = tuned();
        d.write("/proc/sys/kernel/io_uring_disabled", "2\n");
        let i = check(&Err(UringUnavailable::DisabledBySysctl), &ctx(&d).fs);
        assert_eq!(i.status, Status::Warn);
        assert!(i.observed.contains("kernel.io_uring_disabled=2") && i.observed.contains("epoll"));
        assert!(i.fix.unwrap().contains("(now 2)"));
        assert_eq!(check(&Ok(()), &ctx(&d).fs).status, Status::Ok);
    }
}
