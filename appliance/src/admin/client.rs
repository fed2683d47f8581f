//! `appliance admin ...`: sends one command to the console's socket and prints the answer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends `words` as one command to the console at `socket`; returns the JSON answer line.
pub fn request(socket: &Path, words: &[String]) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the console at {} ({e}): is the appliance running with admin.socket \
             set, and are you root or its user?",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    writeln!(s, "{}", words.join(" "))?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    if line.is_empty() {
        anyhow::bail!("the console closed the connection without an answer");
    }
    Ok(line.trim_end().to_string())
}
