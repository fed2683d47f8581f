//! What the journal costs on this machine: append+write throughput, throughput with an
//! fdatasync every millisecond's worth of records, the raw fdatasync latency, segment
//! preparation, rotation, and recovery (scan + replay).
//!
//! ```sh
//! nice -n 10 cargo run --release -p appliance --example journal_cost [-- DIR]
//! ```
//!
//! DIR (default: the system temporary directory) should be on the filesystem the journal will
//! use; everything written there is removed at the end.

use appliance::journal::{scan, JournalReader, JournalWriter, PreparedSegment, WriterOptions};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RECORDS: u64 = 2_000_000;

/// 64..=128-byte payloads from a fixed LCG, so every run writes the same bytes.
struct Payloads {
    state: u64,
    buf: [u8; 128],
}

impl Payloads {
    fn new() -> Self {
        Self {
            state: 0x9e37_79b9_7f4a_7c15,
            buf: [0; 128],
        }
    }

    fn next(&mut self) -> &[u8] {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 64 + (self.state >> 58) as usize; // 64..=127
        let len = len + ((self.state >> 57) & 1) as usize; // ..=128
        let fill = self.state.to_le_bytes();
        for (i, b) in self.buf[..len].iter_mut().enumerate() {
            *b = fill[i % 8] ^ i as u8;
        }
        &self.buf[..len]
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let d = base.join(format!("journal-cost-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// Appends RECORDS records; `sync_every` = records per fdatasync (0: never, write only).
/// Returns (elapsed without preparation, preparation time, sync latencies, rotations).
fn run(dir: &Path, sync_every: u64) -> (Duration, Duration, Vec<Duration>, u64) {
    let mut w = JournalWriter::open(dir, WriterOptions::default(), 1).expect("open");
    let mut p = Payloads::new();
    let mut prep = Duration::ZERO;
    let mut syncs = Vec::new();
    let t0 = Instant::now();
    for seq in 1..=RECORDS {
        // Never full: the loop writes whenever less than one frame of room is left.
        w.append(1, p.next()).expect("append");
        if sync_every > 0 && seq % sync_every == 0 {
            w.write().expect("write");
            let t = Instant::now();
            w.sync().expect("sync");
            syncs.push(t.elapsed());
        } else if w.buffer_free() < 256 {
            w.write().expect("write");
        }
        // The agent would ask a cold thread; here the preparation is timed and taken out.
        if !w.has_prepared() && w.segment_room() < (32 << 20) {
            let t = Instant::now();
            w.prepare_next().expect("prepare");
            prep += t.elapsed();
        }
    }
    w.write().expect("write");
    let elapsed = t0.elapsed();
    w.sync().expect("sync");
    (elapsed - prep, prep, syncs, w.rotations())
}

fn fdatasync_latency(path: &Path, prepare: impl FnOnce(&File)) -> Vec<Duration> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("create");
    prepare(&f);
    let block = [0xa5u8; 4096];
    let mut lat: Vec<Duration> = (0..1000u64)
        .map(|i| {
            f.write_all_at(&block, i * 4096).expect("pwrite");
            let t = Instant::now();
            f.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect();
    lat.sort();
    drop(f);
    let _ = fs::remove_file(path);
    lat
}

fn fallocate(f: &File, len: u64) {
    // SAFETY: fallocate on a descriptor owned by `f`, alive for the call; no memory is passed.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
    assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
}

fn zero_fill(f: &File, len: u64) {
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        f.write_all_at(&zeros, off).expect("pwrite");
        off += zeros.len() as u64;
    }
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    println!(
        "journal_cost: {RECORDS} records of 64..=128 bytes, 64 MiB segments, in {}",
        base.display()
    );

    // 1. append + write, no sync.
    let dir_a = fresh(&base, "write-only");
    let (t, prep, _, rot) = run(&dir_a, 0);
    let rate = RECORDS as f64 / t.as_secs_f64();
    println!(
        "append+write (no sync):      {:>10.0} records/s  (~{:.0} MB/s of frames; {rot} rotations; \
         {:.0} ms of segment preparation excluded)",
        rate,
        RECORDS as f64 * 120.0 / t.as_secs_f64() / 1e6,
        prep.as_secs_f64() * 1e3
    );

    // 2. the same with an fdatasync every 1 ms worth of records (at the rate just measured).
    let per_ms = ((rate / 1000.0) as u64).max(1);
    let dir_b = fresh(&base, "sync-1ms");
    let (t, _, mut syncs, _) = run(&dir_b, per_ms);
    syncs.sort();
    println!(
        "append+write+sync every {per_ms} records (1 ms at the rate above): {:>10.0} records/s; \
         sync p50 {} p99 {} max {}",
        RECORDS as f64 / t.as_secs_f64(),
        us(pct(&syncs, 0.5)),
        us(pct(&syncs, 0.99)),
        us(*syncs.last().unwrap())
    );
    let _ = fs::remove_dir_all(&dir_b);

    // 3. recovery over the 2M-record journal of step 1 (page cache warm: just written).
    let t = Instant::now();
    let report = scan(&dir_a).expect("scan");
    let t_scan = t.elapsed();
    let t = Instant::now();
    let mut r = JournalReader::new(&report, 1).expect("reader");
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(rec) = r.next_record().expect("read") {
        n += 1;
        bytes += rec.payload.len() as u64 + rec.payload.first().copied().unwrap_or(0) as u64;
    }
    let t_read = t.elapsed();
    assert_eq!(n, RECORDS);
    println!(
        "recovery (warm cache):       scan {:.0} ms, replay {:.0} ms ({:.1} M records/s; {} segments; checksum {bytes})",
        t_scan.as_secs_f64() * 1e3,
        t_read.as_secs_f64() * 1e3,
        n as f64 / t_read.as_secs_f64() / 1e6,
        report.segments.len()
    );
    let _ = fs::remove_dir_all(&dir_a);

    // 4. raw fdatasync after a 4 KiB pwrite, by how the file's blocks were reserved.
    let scratch = fresh(&base, "fdatasync");
    fs::create_dir_all(&scratch).expect("mkdir");
    let len = 1000 * 4096;
    for (name, lat) in [
        (
            "zero-filled (what segments use)",
            fdatasync_latency(&scratch.join("a"), |f| {
                zero_fill(f, len);
                f.sync_all().unwrap();
            }),
        ),
        (
            "fallocate only (unwritten extents)",
            fdatasync_latency(&scratch.join("b"), |f| {
                fallocate(f, len);
                f.sync_all().unwrap();
            }),
        ),
        (
            "appending to an empty file",
            fdatasync_latency(&scratch.join("c"), |_| {}),
        ),
    ] {
        println!(
            "fdatasync after 4 KiB pwrite, {name:<36} p50 {} p99 {} max {}",
            us(pct(&lat, 0.5)),
            us(pct(&lat, 0.99)),
            us(*lat.last().unwrap())
        );
    }

    // 5. preparing a 64 MiB segment: fallocate + zero-fill + fsync (PreparedSegment) vs
    //    zero-fill + fsync alone.
    let seg_len = 64 << 20;
    fs::create_dir_all(scratch.join("segments")).expect("mkdir");
    let t = Instant::now();
    let p = PreparedSegment::create(&scratch, seg_len).expect("prepare");
    let t_prep = t.elapsed();
    drop(p);
    let t = Instant::now();
    let f = File::create(scratch.join("z")).expect("create");
    zero_fill(&f, seg_len);
    f.sync_all().unwrap();
    let t_zero = t.elapsed();
    drop(f);
    println!(
        "prepare a 64 MiB segment:    fallocate+zero+fsync {:.0} ms; zero+fsync {:.0} ms",
        t_prep.as_secs_f64() * 1e3,
        t_zero.as_secs_f64() * 1e3
    );

    // 6. a rotation onto a prepared segment, timed as the write() call that performs it:
    //    fdatasync of the old segment's unsynced tail (at most 500 records here, as with a
    //    sync every few hundred microseconds), header pwrite + fdatasync, rename, and the
    //    record's own pwrite.
    let rot_dir = fresh(&base, "rotation");
    let opts = WriterOptions {
        segment_bytes: 1 << 20,
        max_payload: 128,
        buffer_bytes: 1 << 20,
    };
    let mut w = JournalWriter::open(&rot_dir, opts, 1).expect("open");
    let mut p = Payloads::new();
    let mut rot = Vec::new();
    let mut since_sync = 0;
    while rot.len() < 50 {
        if !w.has_prepared() {
            w.prepare_next().expect("prepare");
        }
        let before = w.rotations();
        w.append(1, p.next()).expect("append");
        let t = Instant::now();
        w.write().expect("write");
        let e = t.elapsed();
        since_sync += 1;
        if w.rotations() > before {
            rot.push(e);
        }
        if since_sync == 500 || w.rotations() > before {
            w.sync().expect("sync");
            since_sync = 0;
        }
    }
    rot.sort();
    println!(
        "rotation onto a prepared segment (write() that rotates): p50 {} p99 {}",
        us(pct(&rot, 0.5)),
        us(pct(&rot, 0.99))
    );
    drop(w);
    let _ = fs::remove_dir_all(&rot_dir);
    let _ = fs::remove_dir_all(&scratch);
}
