//! Pinning and scheduling classes on the real kernel. Each test runs in its own thread so the
//! changed affinity/policy dies with it.

use appliance::platform::sched::{current_affinity, current_policy, set_realtime_on};
use appliance::platform::{
    pin_current_thread, set_lowest_priority, CpuSet, LowPriority, SchedError,
};

fn last_cpu() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() - 1)
        .unwrap_or(0)
}

#[test]
fn pinning_restricts_the_thread_to_one_core() {
    let core = last_cpu();
    std::thread::spawn(move || {
        pin_current_thread(core).unwrap();
        assert_eq!(current_affinity(), CpuSet::from_cpus([core]));
    })
    .join()
    .unwrap();
}

#[test]
fn pinning_to_a_missing_core_is_an_error() {
    std::thread::spawn(|| {
        // Within cpu_set_t but absent from this machine: the kernel refuses.
        let err = pin_current_thread(1000).unwrap_err();
        assert!(matches!(err, SchedError::Pin { core: 1000, .. }), "{err}");
        // Beyond cpu_set_t: refused before any syscall (libc's CPU_SET would panic).
        let err = pin_current_thread(4000).unwrap_err();
        assert!(matches!(err, SchedError::Pin { core: 4000, .. }), "{err}");
        assert_eq!(
            current_affinity().len(),
            std::thread::available_parallelism().unwrap().get()
        );
    })
    .join()
    .unwrap();
}

#[test]
fn realtime_on_an_isolated_core_pins_and_switches_to_fifo() {
    let core = last_cpu();
    // The VM isolates nothing, so hand the check an isolated set naming `core`; the syscall
    // path is the real one. The thread exits at once: no FIFO thread is left spinning.
    std::thread::spawn(move || {
        match set_realtime_on(1, core, &CpuSet::from_cpus([core])) {
            Ok(()) => {
                assert_eq!(current_policy(), libc::SCHED_FIFO);
                assert_eq!(current_affinity(), CpuSet::from_cpus([core]));
            }
            // SAFETY: geteuid has no preconditions.
            Err(SchedError::Os { .. }) if unsafe { libc::geteuid() } != 0 => {
                panic!("SCHED_FIFO needs root or CAP_SYS_NICE: run the tests as root (CI does)")
            }
            Err(e) => panic!("{e}"),
        }
    })
    .join()
    .unwrap();
}

#[test]
fn realtime_is_refused_when_the_core_is_not_isolated() {
    std::thread::spawn(|| {
        let before = current_policy();
        let err = set_realtime_on(10, 0, &CpuSet::new()).unwrap_err();
        assert!(err.to_string().contains("not isolated"), "{err}");
        assert_eq!(current_policy(), before);
    })
    .join()
    .unwrap();
}

#[test]
fn lowest_priority_is_sched_idle() {
    std::thread::spawn(|| {
        assert_eq!(set_lowest_priority().unwrap(), LowPriority::SchedIdle);
        assert_eq!(current_policy(), libc::SCHED_IDLE);
    })
    .join()
    .unwrap();
}
