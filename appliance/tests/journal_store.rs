//! The journal storage layer through its public API: round trips across segments, the torn
//! tail at every byte of the last record, corruption reports, injected write failures,
//! retention and snapshots.

use appliance::journal::format::{frame_len, SegmentHeader};
use appliance::journal::{
    latest_valid_snapshot, latest_valid_snapshot_info, remove_segments_before,
    remove_snapshots_before, repair_tail, scan, verify_snapshot, write_snapshot, Damage, Fault,
    FrameDamage, HeaderDamage, IoOp, JournalError, JournalReader, JournalWriter, SnapshotReader,
    SnapshotWriter, TornReason, WriterOptions,
};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: the counter only has to hand out unique numbers.
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "appliance-journal-it-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn opts(segment_bytes: u64) -> WriterOptions {
    WriterOptions {
        segment_bytes,
        max_payload: 1024,
        buffer_bytes: 64 << 10,
    }
}

/// Varied sizes, empty payloads included.
fn payload(seq: u64) -> Vec<u8> {
    let len = (seq * 7919 % 201) as usize;
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

fn kind(seq: u64) -> u16 {
    1 + (seq % 7) as u16
}

fn append_all(w: &mut JournalWriter, seqs: std::ops::RangeInclusive<u64>) {
    for seq in seqs {
        let got = match w.append(kind(seq), &payload(seq)) {
            Ok(s) => s,
            Err(_) => {
                w.write().unwrap();
                w.append(kind(seq), &payload(seq)).unwrap()
            }
        };
        assert_eq!(got, seq);
    }
    w.write().unwrap();
    w.sync().unwrap();
}

/// A journal of records 1..=n in `segment_bytes` segments.
fn journal(dir: &Path, n: u64, segment_bytes: u64) {
    let mut w = JournalWriter::open(dir, opts(segment_bytes), 1).unwrap();
    append_all(&mut w, 1..=n);
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    seq: u64,
    kind: u16,
    payload: Vec<u8>,
    segment: PathBuf,
    offset: u64,
}

fn read_from(dir: &Path, from: u64) -> Vec<Rec> {
    let report = scan(dir).unwrap();
    let mut r = JournalReader::new(&report, from).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(Rec {
            seq: rec.seq,
            kind: rec.kind,
            payload: rec.payload.to_vec(),
            segment: rec.segment.to_path_buf(),
            offset: rec.offset,
        });
    }
    out
}

fn assert_records(recs: &[Rec], seqs: std::ops::RangeInclusive<u64>) {
    let got: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(got, seqs.collect::<Vec<_>>());
    for r in recs {
        assert_eq!(
            (r.kind, &r.payload),
            (kind(r.seq), &payload(r.seq)),
            "seq {}",
            r.seq
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to.join("segments")).unwrap();
    for e in fs::read_dir(from.join("segments")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join("segments").join(e.file_name())).unwrap();
    }
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, offset).unwrap();
}

fn corrupt(dir: &Path) -> (PathBuf, u64, Damage, String) {
    match scan(dir) {
        Err(e @ JournalError::Corrupt { .. }) => {
            let text = e.to_string();
            let JournalError::Corrupt {
                path,
                offset,
                damage,
            } = e
            else {
                unreachable!()
            };
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&format!("byte {offset}")), "{text}");
            (path, offset, damage, text)
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn round_trip_of_varied_records_across_many_small_segments() {
    let d = TempDir::new("roundtrip");
    journal(&d.0, 3000, 8192);
    let report = scan(&d.0).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(report.records(), 3000);
    assert_eq!(
        (report.first_seq(), report.last_seq()),
        (Some(1), Some(3000))
    );
    assert_eq!(report.next_seq(), Some(3001));
    assert!(
        report.segments.len() > 30,
        "{} segments",
        report.segments.len()
    );
    for pair in report.segments.windows(2) {
        assert_eq!(pair[0].next_seq(), pair[1].first_seq);
    }
    let all = read_from(&d.0, 1);
    assert_records(&all, 1..=3000);
    // Every record's reported place holds it.
    for r in all.iter().step_by(97) {
        let bytes = fs::read(&r.segment).unwrap();
        let at = r.offset as usize;
        assert_eq!(
            u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            r.seq
        );
    }
    assert_records(&read_from(&d.0, 1234), 1234..=3000);
    assert!(read_from(&d.0, 3001).is_empty());
    assert!(matches!(
        JournalReader::new(&report, 3002),
        Err(JournalError::SeqOutOfRange { .. })
    ));
    // Reopen and continue.
    let mut w = JournalWriter::open(&d.0, opts(8192), 3001).unwrap();
    append_all(&mut w, 3001..=3500);
    drop(w);
    assert_records(&read_from(&d.0, 1), 1..=3500);
}

#[test]
fn an_empty_journal_scans_empty_and_a_fresh_writer_starts_a_segment() {
    let d = TempDir::new("empty");
    let report = scan(&d.0.join("nothing-here")).unwrap();
    assert_eq!((report.segments.len(), report.next_seq()), (0, None));
    let w = JournalWriter::open(&d.0, opts(4096), 77).unwrap();
    assert!(w.segment_path().ends_with("00000000000000000077.seg"));
    drop(w);
    let report = scan(&d.0).unwrap();
    assert_eq!((report.records(), report.next_seq()), (0, Some(77)));
    assert!(read_from(&d.0, 77).is_empty());
}

/// Builds a journal whose last record (seq `n`) has a 37-byte payload (61 bytes + 3 of
/// padding), and returns its segment and offset.
fn journal_with_known_last(dir: &Path, n: u64) -> (PathBuf, u64) {
    let mut w = JournalWriter::open(dir, opts(4096), 1).unwrap();
    append_all(&mut w, 1..=n - 1);
    assert_eq!(w.append(5, &[0x5a; 37]), Ok(n));
    w.write().unwrap();
    w.sync().unwrap();
    drop(w);
    let recs = read_from(dir, n);
    (recs[0].segment.clone(), recs[0].offset)
}

/// After damage to the last record (seq `n`, at `start`): what the scan must say, then repair,
/// reopen, append, and check the journal is whole.
fn check_cut_and_continue(dir: &Path, n: u64, start: u64, cut: u64, how: &str) {
    let report = scan(dir).unwrap_or_else(|e| panic!("{how} at {cut}: {e}"));
    let payload_end = start + 24 + 37;
    let survivors = if cut >= payload_end {
        assert!(
            report.torn_tail.is_none(),
            "{how} at {cut}: record is complete"
        );
        n
    } else if cut == start && how == "truncate" {
        // The file now ends exactly where the record began: a clean end.
        assert!(report.torn_tail.is_none(), "{how} at {cut}");
        n - 1
    } else if cut == start {
        // Zeroing from the first header byte leaves an all-zero header: a clean end.
        assert!(report.torn_tail.is_none(), "{how} at {cut}");
        n - 1
    } else {
        let t = report
            .torn_tail
            .as_ref()
            .unwrap_or_else(|| panic!("{how} at {cut}"));
        assert_eq!(
            (t.offset, t.last_good_seq),
            (start, n - 1),
            "{how} at {cut}"
        );
        n - 1
    };
    assert_eq!(report.next_seq(), Some(survivors + 1), "{how} at {cut}");
    assert!(
        matches!(
            JournalWriter::open(dir, opts(4096), survivors + 1),
            Err(JournalError::TornTailPresent { .. })
        ) == report.torn_tail.is_some()
    );
    let cut_report = repair_tail(&report).unwrap();
    assert_eq!(cut_report.is_some(), report.torn_tail.is_some());
    if let Some(c) = &cut_report {
        assert_eq!((c.offset, c.last_good_seq), (start, n - 1));
        assert!(
            c.garbage_bytes > 0 && c.garbage_bytes <= cut - start,
            "{how} at {cut}"
        );
        assert_eq!(
            fs::metadata(&c.segment).unwrap().len(),
            4096,
            "length restored"
        );
    }
    let after = scan(dir).unwrap();
    assert!(after.torn_tail.is_none());
    let mut w = JournalWriter::open(dir, opts(4096), survivors + 1).unwrap();
    assert_eq!(w.append(6, b"after the cut"), Ok(survivors + 1));
    w.write().unwrap();
    w.sync().unwrap();
    drop(w);
    let recs = read_from(dir, 1);
    assert_records(&recs[..n as usize - 1], 1..=n - 1);
    assert_eq!(recs.len() as u64, survivors + 1);
    let last = recs.last().unwrap();
    assert_eq!(
        (last.seq, last.payload.as_slice()),
        (survivors + 1, &b"after the cut"[..])
    );
}

#[test]
fn torn_tail_truncated_at_every_byte_of_the_last_record_is_cut_and_writing_continues() {
    let pristine = TempDir::new("torn-trunc-src");
    let n = 60;
    let (seg, start) = journal_with_known_last(&pristine.0, n);
    assert!(
        seg != segment_paths(&pristine.0)[0],
        "the journal spans segments"
    );
    let work = TempDir::new("torn-trunc");
    let name = seg.file_name().unwrap();
    for cut in start..start + frame_len(37) as u64 {
        copy_dir(&pristine.0, &work.0);
        let f = OpenOptions::new()
            .write(true)
            .open(work.0.join("segments").join(name))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        check_cut_and_continue(&work.0, n, start, cut, "truncate");
    }
}

#[test]
fn torn_tail_zeroed_from_every_byte_of_the_last_record_is_cut_and_writing_continues() {
    let pristine = TempDir::new("torn-zero-src");
    let n = 60;
    let (seg, start) = journal_with_known_last(&pristine.0, n);
    let work = TempDir::new("torn-zero");
    let name = seg.file_name().unwrap();
    for cut in start..start + frame_len(37) as u64 {
        copy_dir(&pristine.0, &work.0);
        let path = work.0.join("segments").join(name);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&vec![0u8; (4096 - cut) as usize], cut)
            .unwrap();
        drop(f);
        check_cut_and_continue(&work.0, n, start, cut, "zero");
    }
}

#[test]
fn garbage_without_a_valid_frame_after_the_last_record_is_a_torn_tail() {
    // 16 KiB segments: 40 records leave room after the last one for the garbage.
    const SEG: u64 = 16384;
    let d = TempDir::new("garbage");
    journal(&d.0, 40, SEG);
    let report = scan(&d.0).unwrap();
    let last = report.segments.last().unwrap().clone();
    // Non-zero bytes after the end of data (as a stale or misdirected write would leave).
    let garbage: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect();
    let f = OpenOptions::new().write(true).open(&last.path).unwrap();
    f.write_all_at(&garbage, last.data_end).unwrap();
    drop(f);
    let report = scan(&d.0).unwrap();
    let t = report.torn_tail.clone().unwrap();
    assert_eq!((t.offset, t.last_good_seq), (last.data_end, 40));
    assert!(matches!(
        t.reason,
        TornReason::Frame(_) | TornReason::GarbageAfterEnd { .. }
    ));
    assert_eq!(t.garbage_end - t.offset, 500);
    let cut = repair_tail(&report).unwrap().unwrap();
    assert_eq!(cut.garbage_bytes, 500);
    let mut w = JournalWriter::open(&d.0, opts(SEG), 41).unwrap();
    append_all(&mut w, 41..=45);
    drop(w);
    assert_records(&read_from(&d.0, 1), 1..=45);

    // Garbage after an all-zero header: the end marker, then junk.
    let report = scan(&d.0).unwrap();
    let last = report.segments.last().unwrap().clone();
    let f = OpenOptions::new().write(true).open(&last.path).unwrap();
    f.write_all_at(&garbage[..100], last.data_end + 200)
        .unwrap();
    drop(f);
    let t = scan(&d.0).unwrap().torn_tail.unwrap();
    assert_eq!(t.offset, last.data_end);
    assert_eq!(
        t.reason,
        TornReason::GarbageAfterEnd {
            first_nonzero: last.data_end + 200
        }
    );

    // A bad last record overwritten by garbage part-way is torn too.
    let d2 = TempDir::new("garbage2");
    let (seg, start) = journal_with_known_last(&d2.0, 30);
    let room = (4096 - start - 30).min(300) as usize;
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&garbage[..room], start + 30).unwrap();
    drop(f);
    let t = scan(&d2.0).unwrap().torn_tail.unwrap();
    assert_eq!((t.offset, t.last_good_seq), (start, 29));
    assert!(matches!(
        t.reason,
        TornReason::Frame(FrameDamage::Crc { .. })
    ));
}

#[test]
fn a_flipped_byte_in_a_record_followed_by_good_records_is_corruption_naming_file_and_offset() {
    let d = TempDir::new("flip-mid");
    journal(&d.0, 200, 16384);
    let recs = read_from(&d.0, 1);
    // A record with a payload, in the last segment, with records after it.
    let last_seg = segment_paths(&d.0).pop().unwrap();
    assert_eq!(segment_paths(&d.0).len(), 2);
    let in_last: Vec<&Rec> = recs.iter().filter(|r| r.segment == last_seg).collect();
    let i = (0..in_last.len() - 1)
        .find(|&i| in_last[i].payload.len() > 8)
        .unwrap();
    let (victim, next) = (in_last[i], in_last[i + 1]);
    flip(
        &victim.segment,
        victim.offset + 24 + (victim.payload.len() as u64) / 2,
    );
    let (path, offset, damage, _) = corrupt(&d.0);
    assert_eq!((path, offset), (victim.segment.clone(), victim.offset));
    match damage {
        Damage::FrameFollowedByValid {
            damage: FrameDamage::Crc { .. },
            valid_offset,
            valid_seq,
        } => assert_eq!((valid_offset, valid_seq), (next.offset, next.seq)),
        other => panic!("{other:?}"),
    }
    // A damaged length field is caught the same way.
    flip(
        &victim.segment,
        victim.offset + 24 + (victim.payload.len() as u64) / 2,
    );
    flip(&victim.segment, victim.offset + 2);
    let (_, offset, damage, _) = corrupt(&d.0);
    assert_eq!(offset, victim.offset);
    assert!(
        matches!(damage, Damage::FrameFollowedByValid { .. }),
        "{damage:?}"
    );
}

#[test]
fn a_flipped_byte_in_a_segment_that_is_not_the_last_is_corruption() {
    let d = TempDir::new("flip-nonlast");
    journal(&d.0, 200, 4096);
    let recs = read_from(&d.0, 1);
    let first_seg = segment_paths(&d.0)[0].clone();
    let in_first: Vec<&Rec> = recs.iter().filter(|r| r.segment == first_seg).collect();
    // Its last record: nothing valid follows in that segment, but it is not the last segment,
    // so this is not a torn tail.
    let victim = in_first.last().unwrap();
    flip(&first_seg, victim.offset + 12);
    let (path, offset, damage, text) = corrupt(&d.0);
    assert_eq!((path, offset), (first_seg.clone(), victim.offset));
    assert!(
        matches!(damage, Damage::Frame(FrameDamage::Crc { .. })),
        "{damage:?}"
    );
    assert!(text.contains("not in the last segment"), "{text}");
    flip(&first_seg, victim.offset + 12);
    // Non-zero bytes in the unused end of a non-last segment (one with room for a frame
    // header after its data: a shorter remainder is read as a truncated frame header).
    let report = scan(&d.0).unwrap();
    let roomy = report.segments[..report.segments.len() - 1]
        .iter()
        .find(|s| s.data_end + 64 < 4096)
        .unwrap();
    let at = roomy.data_end + 40;
    flip(&roomy.path, at);
    let (path, offset, damage, _) = corrupt(&d.0);
    assert_eq!((&path, offset), (&roomy.path, at));
    assert_eq!(damage, Damage::DataAfterEnd { first_nonzero: at });
}

#[test]
fn a_flipped_byte_in_a_segment_header_is_corruption() {
    let d = TempDir::new("flip-header");
    journal(&d.0, 200, 4096);
    let segs = segment_paths(&d.0);
    for victim in [&segs[1], segs.last().unwrap()] {
        flip(victim, 30);
        let (path, offset, damage, _) = corrupt(&d.0);
        assert_eq!((&path, offset), (victim, 0));
        assert!(
            matches!(damage, Damage::Header(HeaderDamage::Crc { .. })),
            "{damage:?}"
        );
        flip(victim, 30);
    }
    assert!(scan(&d.0).is_ok());
}

#[test]
fn an_unknown_format_version_is_refused_with_a_clear_error() {
    let d = TempDir::new("version");
    journal(&d.0, 10, 4096);
    let seg = segment_paths(&d.0)[0].clone();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&2u16.to_le_bytes(), 8).unwrap();
    drop(f);
    let (_, offset, damage, text) = corrupt(&d.0);
    assert_eq!(offset, 0);
    assert_eq!(damage, Damage::Header(HeaderDamage::Version { found: 2 }));
    assert!(text.contains("format version 2 is not supported"), "{text}");
}

#[test]
fn a_missing_segment_or_a_valid_record_after_the_end_marker_is_corruption() {
    let d = TempDir::new("gap");
    journal(&d.0, 200, 4096);
    let segs = segment_paths(&d.0);
    let report = scan(&d.0).unwrap();
    fs::remove_file(&segs[2]).unwrap();
    let (path, offset, damage, _) = corrupt(&d.0);
    assert_eq!((path, offset), (segs[3].clone(), 24));
    assert_eq!(
        damage,
        Damage::SegmentSeq {
            expected: report.segments[2].first_seq,
            found: report.segments[3].first_seq
        }
    );

    // A record's header zeroed in the last segment: the end marker, then valid records.
    let d = TempDir::new("hole");
    journal(&d.0, 200, 16384);
    let recs = read_from(&d.0, 1);
    let last_seg = segment_paths(&d.0).pop().unwrap();
    let in_last: Vec<&Rec> = recs.iter().filter(|r| r.segment == last_seg).collect();
    let f = OpenOptions::new().write(true).open(&last_seg).unwrap();
    f.write_all_at(&[0u8; 24], in_last[1].offset).unwrap();
    drop(f);
    let (_, offset, damage, _) = corrupt(&d.0);
    assert_eq!(offset, in_last[1].offset);
    assert_eq!(
        damage,
        Damage::RecordAfterEnd {
            valid_offset: in_last[2].offset,
            valid_seq: in_last[2].seq
        }
    );
}

#[test]
fn injected_enospc_on_pwrite_and_on_segment_creation_loses_and_duplicates_nothing() {
    let d = TempDir::new("faults");
    let mut w = JournalWriter::open(&d.0, opts(4096), 1).unwrap();
    let write_calls = Arc::new(AtomicUsize::new(0));
    let prealloc_calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let (wc, pc, fl) = (
        write_calls.clone(),
        prealloc_calls.clone(),
        failures.clone(),
    );
    w.set_fault_hook(Some(Box::new(move |op| {
        let fail = match op {
            // Every third record write: a short write, then (next call) ENOSPC.
            IoOp::Write { len, .. } if len > 64 => match wc.fetch_add(1, Ordering::Relaxed) % 6 {
                2 => return Some(Fault::Short(len / 2)),
                3 => true,
                _ => false,
            },
            // Every other new segment: the disk is full while it is being zero-filled.
            IoOp::Preallocate { .. } => pc.fetch_add(1, Ordering::Relaxed) % 2 == 0,
            _ => false,
        };
        if fail {
            fl.fetch_add(1, Ordering::Relaxed);
            return Some(Fault::Error(io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        None
    })));
    let mut next = 1u64;
    let mut errors = 0;
    while next <= 1500 || w.buffered_bytes() > 0 {
        while next <= 1500 && w.append(kind(next), &payload(next)).is_ok() {
            next += 1;
            if next % 25 == 0 {
                break;
            }
        }
        let before = w.written_seq();
        match w.write() {
            Ok(()) => assert_eq!(w.written_seq(), w.appended_seq()),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                assert!(
                    w.written_seq() < w.appended_seq(),
                    "failed records not counted"
                );
                assert!(w.written_seq() >= before);
                errors += 1;
            }
        }
    }
    w.sync().unwrap();
    assert_eq!(w.synced_seq(), 1500);
    assert!(errors > 10, "{errors} failed writes");
    assert!(prealloc_calls.load(Ordering::Relaxed) > 10);
    assert!(w.rotations() > 10);
    drop(w);
    let report = scan(&d.0).unwrap();
    assert!(report.torn_tail.is_none());
    assert_records(&read_from(&d.0, 1), 1..=1500);
    // Nothing half-made was left behind.
    for e in fs::read_dir(d.0.join("segments")).unwrap() {
        let name = e.unwrap().file_name();
        assert!(name.to_string_lossy().ends_with(".seg"), "{name:?}");
    }
}

#[test]
fn rotation_and_retention_remove_only_fully_covered_segments_and_never_the_last() {
    let d = TempDir::new("retention");
    journal(&d.0, 2000, 4096);
    let report = scan(&d.0).unwrap();
    let n = report.segments.len();
    assert!(n > 20);
    // Every segment ends where the next begins, and each was rotated because the next record
    // did not fit: its free space is smaller than the frame that opened the next one.
    let recs = read_from(&d.0, 1);
    for pair in report.segments.windows(2) {
        let opener = recs.iter().find(|r| r.seq == pair[1].first_seq).unwrap();
        assert!(4096 - pair[0].data_end < frame_len(opener.payload.len()) as u64);
    }
    let keep_from = report.segments[5].first_seq + 3;
    let removed = remove_segments_before(&d.0, keep_from).unwrap();
    assert_eq!(removed.len(), 5);
    for (r, s) in removed.iter().zip(&report.segments) {
        assert_eq!((&r.path, r.first_seq), (&s.path, s.first_seq));
        assert_eq!(r.last_seq, s.last_seq().unwrap());
        assert!(r.last_seq < keep_from);
    }
    let after = scan(&d.0).unwrap();
    assert_eq!(after.first_seq(), Some(report.segments[5].first_seq));
    assert!(matches!(
        JournalReader::new(&after, 1),
        Err(JournalError::SeqOutOfRange { .. })
    ));
    assert_records(&read_from(&d.0, keep_from), keep_from..=2000);
    let removed = remove_segments_before(&d.0, u64::MAX).unwrap();
    assert_eq!(removed.len(), n - 6);
    assert_eq!(
        segment_paths(&d.0),
        vec![report.segments[n - 1].path.clone()]
    );
    let mut w = JournalWriter::open(&d.0, opts(4096), 2001).unwrap();
    append_all(&mut w, 2001..=2100);
    drop(w);
    assert_records(
        &read_from(&d.0, report.segments[n - 1].first_seq),
        report.segments[n - 1].first_seq..=2100,
    );
}

#[test]
fn the_newest_valid_snapshot_is_found_past_damaged_newer_ones() {
    let d = TempDir::new("snap");
    assert!(latest_valid_snapshot(&d.0).unwrap().latest.is_none());
    let p10 = write_snapshot(&d.0, 10, b"state at ten").unwrap();
    let p20 = write_snapshot(&d.0, 20, &vec![7u8; 100_000]).unwrap();
    let p30 = write_snapshot(&d.0, 30, b"state at thirty").unwrap();
    assert!(p30.ends_with("snapshots/00000000000000000030.snap"));
    // A write that crashed before its rename.
    fs::write(
        d.0.join("snapshots/00000000000000000040.snap.tmp"),
        b"partial",
    )
    .unwrap();
    let s = latest_valid_snapshot(&d.0).unwrap();
    let latest = s.latest.unwrap();
    assert_eq!(
        (latest.seq, &latest.path, latest.payload.as_slice()),
        (30, &p30, &b"state at thirty"[..])
    );
    assert!(s.skipped.is_empty());

    flip(&p30, 64 + 3);
    let s = latest_valid_snapshot(&d.0).unwrap();
    let latest = s.latest.unwrap();
    assert_eq!((latest.seq, latest.payload), (20, vec![7u8; 100_000]));
    assert_eq!(s.skipped.len(), 1);
    assert_eq!(s.skipped[0].path, p30);
    assert!(matches!(
        s.skipped[0].error,
        JournalError::Corrupt {
            damage: Damage::PayloadCrc { .. },
            offset: 64,
            ..
        }
    ));
    assert!(s.skipped[0]
        .error
        .to_string()
        .contains(&p30.display().to_string()));

    // A partial (truncated) file and a damaged header are skipped too.
    OpenOptions::new()
        .write(true)
        .open(&p20)
        .unwrap()
        .set_len(5000)
        .unwrap();
    let s = latest_valid_snapshot(&d.0).unwrap();
    assert_eq!(s.latest.unwrap().seq, 10);
    assert!(matches!(
        s.skipped[1].error,
        JournalError::Corrupt {
            damage: Damage::SnapshotLength { .. },
            ..
        }
    ));
    let (info, skipped) = latest_valid_snapshot_info(&d.0).unwrap();
    assert_eq!((info.unwrap().path, skipped.len()), (p10.clone(), 2));
    flip(&p10, 20);
    let s = latest_valid_snapshot(&d.0).unwrap();
    assert!(s.latest.is_none());
    assert!(matches!(
        s.skipped[2].error,
        JournalError::Corrupt {
            damage: Damage::Header(HeaderDamage::Crc { .. }),
            offset: 0,
            ..
        }
    ));
}

#[test]
fn snapshot_retention_keeps_at_least_two_and_clears_stale_temporaries() {
    let d = TempDir::new("snap-retention");
    for seq in [5, 10, 15, 20, 25] {
        write_snapshot(&d.0, seq, format!("s{seq}").as_bytes()).unwrap();
    }
    fs::write(
        d.0.join("snapshots/00000000000000000007.snap.tmp"),
        b"crashed",
    )
    .unwrap();
    let removed = remove_snapshots_before(&d.0, 20, 0).unwrap();
    let names: Vec<String> = removed
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "00000000000000000005.snap",
            "00000000000000000010.snap",
            "00000000000000000015.snap",
            "00000000000000000007.snap.tmp"
        ]
    );
    // Asking to remove everything still keeps the newest two.
    assert!(remove_snapshots_before(&d.0, u64::MAX, 1)
        .unwrap()
        .is_empty());
    assert_eq!(latest_valid_snapshot(&d.0).unwrap().latest.unwrap().seq, 25);
    // keep = 3 keeps three.
    for seq in [30, 35] {
        write_snapshot(&d.0, seq, b"x").unwrap();
    }
    assert_eq!(remove_snapshots_before(&d.0, u64::MAX, 3).unwrap().len(), 1);
}

#[test]
fn a_large_snapshot_streams_in_and_out_and_damage_fails_the_last_read() {
    let d = TempDir::new("snap-large");
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let chunks = 24;
    let mut w = SnapshotWriter::create(&d.0, 1_000_000).unwrap();
    for i in 0..chunks {
        w.write_all(&chunk[i..]).unwrap();
        w.write_all(&chunk[..i]).unwrap();
    }
    let path = w.finish().unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        64 + chunks as u64 * (1 << 20)
    );
    let info = verify_snapshot(&path).unwrap();
    assert_eq!(
        (info.seq, info.payload_len),
        (1_000_000, chunks as u64 * (1 << 20))
    );
    let mut r = SnapshotReader::open(&path).unwrap();
    let mut got = vec![0u8; 1 << 20];
    for i in 0..chunks {
        r.read_exact(&mut got).unwrap();
        assert!(got[..(1 << 20) - i] == chunk[i..] && got[(1 << 20) - i..] == chunk[..i]);
    }
    assert_eq!(r.read(&mut got).unwrap(), 0);

    flip(&path, 64 + 12_345_678);
    assert!(matches!(
        verify_snapshot(&path),
        Err(JournalError::Corrupt {
            damage: Damage::PayloadCrc { .. },
            ..
        })
    ));
    let mut r = SnapshotReader::open(&path).unwrap();
    let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // A writer dropped before finish leaves nothing.
    let mut w = SnapshotWriter::create(&d.0, 2_000_000).unwrap();
    w.write_all(b"abandoned").unwrap();
    drop(w);
    let left: Vec<_> = fs::read_dir(d.0.join("snapshots")).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn segment_names_and_headers_agree() {
    let d = TempDir::new("names");
    journal(&d.0, 300, 4096);
    for p in segment_paths(&d.0) {
        let bytes = fs::read(&p).unwrap();
        let h = SegmentHeader::decode(&bytes).unwrap();
        assert_eq!(
            p.file_name().unwrap().to_string_lossy(),
            format!("{:020}.seg", h.first_seq)
        );
        assert_eq!((h.segment_bytes, bytes.len()), (4096, 4096));
    }
    // A renamed segment is caught.
    let segs = segment_paths(&d.0);
    let last = segs.last().unwrap();
    let renamed = last.with_file_name("00000000000000999999.seg");
    fs::rename(last, &renamed).unwrap();
    let (path, offset, damage, _) = corrupt(&d.0);
    assert_eq!((path, offset), (renamed, 24));
    assert!(matches!(
        damage,
        Damage::NameMismatch {
            name_seq: 999_999,
            ..
        }
    ));
}
