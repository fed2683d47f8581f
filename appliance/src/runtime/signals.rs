//! SIGINT/SIGTERM handling without a handler: the main thread blocks both before any other
//! thread exists (so every thread inherits the mask and no hot thread is ever interrupted),
//! then waits for them synchronously with `sigtimedwait`.

use std::time::Duration;

/// The blocked set, to wait on.
pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGINT and SIGTERM in the calling thread; call before spawning threads.
    pub fn block() -> Self {
        // SAFETY: sigset_t is plain data; the libc calls only write into `set` and the
        // calling thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Self { set }
        }
    }

    /// Waits up to `timeout` for SIGINT or SIGTERM; returns the signal number if one came.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.set` is an initialised sigset_t; a null siginfo pointer is allowed.
        let r = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
        (r > 0).then_some(r)
    }
}
