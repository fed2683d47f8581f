//! A named cold thread that runs until asked to stop: the console, the scheduler and the
//! audit writer each own one. The thread's body polls the stop flag it is given; stopping
//! (explicitly or on drop) sets the flag and joins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running cold thread.
pub struct ColdThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ColdThread {
    /// Spawns `body` as thread `name`; it returns once the flag it is given is set.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&flag))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Sets the stop flag and waits for the thread; true the first time (it was running).
    pub fn join(&mut self) -> bool {
        self.stop.store(true, Ordering::Release);
        match self.handle.take() {
            Some(h) => {
                let _ = h.join();
                true
            }
            None => false,
        }
    }
}

impl Drop for ColdThread {
    fn drop(&mut self) {
        self.join();
    }
}
