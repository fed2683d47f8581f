//! A journal writer killed with SIGKILL in the middle of writing leaves a journal whose only
//! possible fault is a torn tail: never a hole followed by valid records, which recovery must
//! treat as damage and refuse to start on.
//!
//! The writer runs in a child process (this test binary re-executed with an environment
//! variable) appending and writing large batches in a tight loop, so a kill very likely lands
//! in the middle of copying one into the mapped segment. (With `memcpy` it did: glibc's
//! vector copy stores a range's first 64 bytes last, so a killed copy left the batch's first
//! record header zero and the records after it whole.)

use appliance::journal::{scan, JournalWriter, WriterOptions};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "APPLIANCE_JOURNAL_KILL_CHILD";
const TEST_NAME: &str = "a_writer_killed_mid_copy_leaves_at_most_a_torn_tail";

fn opts() -> WriterOptions {
    WriterOptions {
        // One segment holds everything the child writes before it is killed, so every
        // write goes through the segment's mapping.
        segment_bytes: 64 << 20,
        max_payload: 1024,
        buffer_bytes: 1 << 20,
    }
}

/// The child: batches of 400 records (about 90 KB) written back to back, for ever (until
/// killed; bounded to 20 s in case nobody kills it).
fn child(dir: &str) {
    let mut w = JournalWriter::open(std::path::Path::new(dir), opts(), 1).unwrap();
    let start = Instant::now();
    let mut seq = 0u64;
    let mut payload = [0u8; 400];
    while start.elapsed() < Duration::from_secs(20) {
        for _ in 0..400 {
            seq += 1;
            let len = 64 + (seq * 7919 % 300) as usize;
            for (i, b) in payload[..len].iter_mut().enumerate() {
                *b = (seq as usize + i) as u8;
            }
            w.append(1, &payload[..len]).unwrap();
        }
        w.write().unwrap();
        if seq == 400 {
            // Tells the parent the journal exists and is being written.
            println!("writing");
        }
        if w.written_seq() * 300 > (48 << 20) {
            // Close to the end of the segment: stop rather than rotate.
            std::thread::sleep(Duration::from_secs(20));
        }
    }
}

#[test]
fn a_writer_killed_mid_copy_leaves_at_most_a_torn_tail() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut torn = 0;
    for round in 0..30u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first batch, then let it write for 5-35 ms more.
        {
            use std::io::BufRead;
            let out = c.stdout.take().unwrap();
            // The test harness prints its own lines first.
            let mut r = std::io::BufReader::new(out);
            let mut seen = String::new();
            loop {
                let mut line = String::new();
                let n = r.read_line(&mut line).unwrap();
                assert!(
                    n > 0,
                    "round {round}: the child did not start writing: {seen:?}"
                );
                if line.contains("writing") {
                    break;
                }
                seen.push_str(&line);
            }
        }
        std::thread::sleep(Duration::from_millis(5 + (round * 13) % 31));
        c.kill().unwrap();
        let _ = c.wait();
        let report = scan(dir.path()).unwrap_or_else(|e| {
            panic!("round {round}: a killed writer left damage, not a torn tail: {e}")
        });
        assert!(
            report.last_seq().unwrap_or(0) >= 400,
            "round {round}: the first batch is in the journal"
        );
        torn += usize::from(report.torn_tail.is_some());
    }
    // Not asserted (it depends on where each kill lands), reported for the reader.
    eprintln!("30 kills: {torn} left a torn tail, the rest ended on a record boundary");
}
