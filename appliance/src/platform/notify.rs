//! Readiness and status for systemd (`Type=notify`), via the `sd-notify` crate.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset (run from a shell, tests, CI), so the
//! runtime calls them unconditionally. Errors are returned for the caller to log once; a failed
//! notification never stops the appliance.

use sd_notify::NotifyState;

/// Tells systemd start-up and recovery are complete: `systemctl start` returns, and units
/// ordered after the appliance start, only now.
pub fn notify_ready() -> std::io::Result<()> {
    sd_notify::notify(&[NotifyState::Ready])
}

/// Tells systemd an orderly shutdown has begun.
pub fn notify_stopping() -> std::io::Result<()> {
    sd_notify::notify(&[NotifyState::Stopping])
}

/// A one-line status shown by `systemctl status appliance` (e.g. "replaying journal: 40%").
pub fn notify_status(status: &str) -> std::io::Result<()> {
    // The protocol is newline-separated: a newline inside would start a bogus assignment.
    let line: String = status
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    sd_notify::notify(&[NotifyState::Status(&line)])
}
