//! Byte layouts of segment headers, record frames and snapshot headers, and their checks.
//!
//! Everything is little-endian. The tables are in the module documentation of
//! [`crate::journal`]; this file is the single place that reads or writes those bytes, so the
//! writer, the scan, the reader and the snapshot code cannot disagree about an offset.

use std::fmt;

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MAJNLSEG";
/// First eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"MAJNLSNP";
/// The only format version this build writes and reads (segments and snapshots alike).
pub const FORMAT_VERSION: u16 = 1;
/// Size of a segment header; the first record frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Size of a snapshot header; the payload starts here.
pub const SNAPSHOT_HEADER_BYTES: usize = 64;
/// Size of a record frame header (payload follows).
pub const FRAME_HEADER_BYTES: usize = 24;
/// Frames start at multiples of this (relative to the file start), so a scan looking for a
/// surviving record after damage only has to try one offset in eight.
pub const FRAME_ALIGN: usize = 8;
/// Largest payload the format allows. A length above it is "impossible" to the scan, which
/// keeps the torn-tail search cheap; writers may be configured lower, never higher.
/// Snapshots, not records, carry large state.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Bytes a record with a `payload_len`-byte payload occupies in a segment: header, payload,
/// zero padding to [`FRAME_ALIGN`].
#[inline]
pub const fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_BYTES + payload_len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// What can be wrong with a segment or snapshot header. Carried inside
/// [`Damage`] and [`crate::journal::JournalError`], which add the file and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDamage {
    /// The file is shorter than a header.
    Short {
        /// Bytes present.
        len: u64,
    },
    /// The first eight bytes are not the expected magic: not a journal file of this kind.
    Magic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A version this build does not read (written by a newer build, or the header is damaged).
    Version {
        /// The version field found.
        found: u16,
    },
    /// The header-size field is not the size this version defines.
    HeaderSize {
        /// The size field found.
        found: u16,
    },
    /// The header CRC does not verify.
    Crc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the header bytes.
        computed: u32,
    },
}

impl fmt::Display for HeaderDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { len } => {
                write!(f, "file is {len} bytes, shorter than its 64-byte header")
            }
            Self::Magic { found } => write!(f, "bad magic {found:02x?}"),
            Self::Version { found } => write!(
                f,
                "format version {found} is not supported (this build reads version \
                 {FORMAT_VERSION}); refusing to read it: it was written by a newer build, or its \
                 header is damaged"
            ),
            Self::HeaderSize { found } => write!(f, "header size field {found}, expected 64"),
            Self::Crc { stored, computed } => write!(
                f,
                "header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// The checks every 64-byte header shares: magic, version, size, CRC over bytes 0..60.
fn check_header(bytes: &[u8], magic: &[u8; 8]) -> Result<(), HeaderDamage> {
    if bytes.len() < 64 {
        return Err(HeaderDamage::Short {
            len: bytes.len() as u64,
        });
    }
    if &bytes[0..8] != magic {
        let mut found = [0u8; 8];
        found.copy_from_slice(&bytes[0..8]);
        return Err(HeaderDamage::Magic { found });
    }
    let version = u16_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderDamage::Version { found: version });
    }
    let size = u16_at(bytes, 10);
    if size as usize != 64 {
        return Err(HeaderDamage::HeaderSize { found: size });
    }
    let stored = u32_at(bytes, 60);
    let computed = crc32c::crc32c(&bytes[0..60]);
    if stored != computed {
        return Err(HeaderDamage::Crc { stored, computed });
    }
    Ok(())
}

/// The decoded header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// File size when the segment was created (informational: the scan trusts the file length).
    pub segment_bytes: u64,
    /// Sequence number of the first record this segment holds (or will hold).
    pub first_seq: u64,
    /// When the segment was put into use, Unix nanoseconds.
    pub created_unix_ns: u64,
}

impl SegmentHeader {
    /// The 64 header bytes, CRC included.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_BYTES as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_bytes.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.created_unix_ns.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies the first 64 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderDamage> {
        check_header(bytes, &SEGMENT_MAGIC)?;
        Ok(Self {
            segment_bytes: u64_at(bytes, 16),
            first_seq: u64_at(bytes, 24),
            created_unix_ns: u64_at(bytes, 32),
        })
    }
}

/// The decoded header of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The snapshot reflects every record up to and including this sequence number.
    pub seq: u64,
    /// Payload bytes following the header.
    pub payload_len: u64,
    /// CRC32C of the payload.
    pub payload_crc: u32,
    /// When the snapshot was written, Unix nanoseconds.
    pub created_unix_ns: u64,
}

impl SnapshotHeader {
    /// The 64 header bytes, CRC included.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_BYTES] {
        let mut b = [0u8; SNAPSHOT_HEADER_BYTES];
        b[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SNAPSHOT_HEADER_BYTES as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.payload_crc.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_unix_ns.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies the first 64 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderDamage> {
        check_header(bytes, &SNAPSHOT_MAGIC)?;
        Ok(Self {
            seq: u64_at(bytes, 16),
            payload_len: u64_at(bytes, 24),
            payload_crc: u32_at(bytes, 32),
            created_unix_ns: u64_at(bytes, 40),
        })
    }
}

/// The fields of a record frame header, as stored (not yet verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes after the 24-byte header.
    pub payload_len: u32,
    /// CRC32C over frame bytes 8..24 and the payload.
    pub crc: u32,
    /// Global sequence number.
    pub seq: u64,
    /// Record kind, defined by the layer above; never 0.
    pub kind: u16,
    /// Reserved, 0.
    pub flags: u16,
    /// Reserved, 0.
    pub reserved: u32,
}

impl FrameHeader {
    /// Reads the 24 header bytes at the start of `b` (which must hold at least 24 bytes).
    #[inline]
    pub fn read(b: &[u8]) -> Self {
        Self {
            payload_len: u32_at(b, 0),
            crc: u32_at(b, 4),
            seq: u64_at(b, 8),
            kind: u16_at(b, 16),
            flags: u16_at(b, 18),
            reserved: u32_at(b, 20),
        }
    }

    /// True for the all-zero header that marks the end of written data.
    #[inline]
    pub fn is_end_marker(&self) -> bool {
        self.payload_len == 0
            && self.crc == 0
            && self.seq == 0
            && self.kind == 0
            && self.flags == 0
            && self.reserved == 0
    }
}

/// Writes a complete frame header (CRC included) for a payload already in place: `frame`
/// starts at the frame and holds at least the header and `payload_len` payload bytes.
/// Used by the writer after the payload was copied or filled in, so the payload is read once,
/// from cache, by the CRC.
#[inline]
pub fn seal_frame(frame: &mut [u8], payload_len: usize, seq: u64, kind: u16) {
    frame[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    frame[16..18].copy_from_slice(&kind.to_le_bytes());
    frame[18..24].fill(0);
    let crc = frame_crc(&frame[8..FRAME_HEADER_BYTES + payload_len]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC of a frame: over its bytes from offset 8 (seq, kind, flags, reserved) through the end
/// of the payload. The length field is covered indirectly: a wrong length makes the CRC run
/// over the wrong bytes. Padding is not covered.
#[inline]
pub fn frame_crc(from_seq_to_payload_end: &[u8]) -> u32 {
    crc32c::crc32c(from_seq_to_payload_end)
}

/// Why the bytes at a frame position are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameDamage {
    /// Fewer than 24 bytes are left before the end of the file, and they are not all zero.
    TruncatedHeader {
        /// Bytes left.
        available: u64,
    },
    /// The length field exceeds [`MAX_PAYLOAD`].
    PayloadTooLong {
        /// The length field.
        len: u32,
    },
    /// The frame would end past the end of the file.
    PastEndOfFile {
        /// The length field.
        len: u32,
    },
    /// The CRC does not verify.
    Crc {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the frame.
        computed: u32,
    },
}

impl fmt::Display for FrameDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedHeader { available } => write!(
                f,
                "only {available} non-zero bytes left for a 24-byte record header"
            ),
            Self::PayloadTooLong { len } => {
                write!(
                    f,
                    "record length {len} exceeds the format's limit of {MAX_PAYLOAD}"
                )
            }
            Self::PastEndOfFile { len } => {
                write!(
                    f,
                    "record of length {len} would end past the end of the file"
                )
            }
            Self::Crc { stored, computed } => write!(
                f,
                "record CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// What is at a frame position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The all-zero header (or fewer than 24 bytes left, all zero): end of written data.
    End,
    /// A frame whose CRC verifies. Its seq, kind and reserved fields are not judged here.
    Valid {
        /// The header fields.
        header: FrameHeader,
        /// Bytes the frame occupies, padding included.
        len: usize,
    },
    /// Not a record.
    Bad(FrameDamage),
}

/// Classifies the bytes at `off` (a multiple of [`FRAME_ALIGN`]) of a segment image.
#[inline]
pub fn frame_at(bytes: &[u8], off: usize) -> Frame {
    let rest = &bytes[off.min(bytes.len())..];
    if rest.len() < FRAME_HEADER_BYTES {
        return if rest.iter().all(|&b| b == 0) {
            Frame::End
        } else {
            Frame::Bad(FrameDamage::TruncatedHeader {
                available: rest.len() as u64,
            })
        };
    }
    let header = FrameHeader::read(rest);
    if header.is_end_marker() {
        return Frame::End;
    }
    if header.payload_len as usize > MAX_PAYLOAD {
        return Frame::Bad(FrameDamage::PayloadTooLong {
            len: header.payload_len,
        });
    }
    let payload_end = FRAME_HEADER_BYTES + header.payload_len as usize;
    if payload_end > rest.len() {
        return Frame::Bad(FrameDamage::PastEndOfFile {
            len: header.payload_len,
        });
    }
    let computed = frame_crc(&rest[8..payload_end]);
    if computed != header.crc {
        return Frame::Bad(FrameDamage::Crc {
            stored: header.crc,
            computed,
        });
    }
    Frame::Valid {
        header,
        len: frame_len(header.payload_len as usize),
    }
}

/// True if some frame this format could have written (kind non-zero, reserved fields zero,
/// length within limits, CRC verifies) starts at `off`. The cheap field tests come first, so
/// trying every aligned offset of a mostly-zero or random tail costs a few loads per offset,
/// and a CRC only where a frame is plausible.
#[inline]
pub fn plausible_valid_frame_at(bytes: &[u8], off: usize) -> Option<FrameHeader> {
    if off + FRAME_HEADER_BYTES > bytes.len() {
        return None;
    }
    let h = FrameHeader::read(&bytes[off..]);
    if h.kind == 0 || h.flags != 0 || h.reserved != 0 || h.payload_len as usize > MAX_PAYLOAD {
        return None;
    }
    let payload_end = off + FRAME_HEADER_BYTES + h.payload_len as usize;
    if payload_end > bytes.len() {
        return None;
    }
    (frame_crc(&bytes[off + 8..payload_end]) == h.crc).then_some(h)
}

/// Offset of the first non-zero byte of `bytes`, if any. Word-at-a-time, because the scan
/// runs it over the unwritten (zero) remainder of every segment.
pub fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(64);
    let mut base = 0;
    for c in &mut chunks {
        let any = c.chunks_exact(8).fold(0u64, |acc, w| acc | u64_at(w, 0));
        if any != 0 {
            return c.iter().position(|&b| b != 0).map(|p| base + p);
        }
        base += 64;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != 0)
        .map(|p| base + p)
}

/// Offset just past the last non-zero byte of `bytes` (0 if all zero).
pub fn nonzero_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_rounds_header_and_payload_up_to_eight() {
        assert_eq!(frame_len(0), 24);
        assert_eq!(frame_len(1), 32);
        assert_eq!(frame_len(8), 32);
        assert_eq!(frame_len(9), 40);
        assert_eq!(frame_len(MAX_PAYLOAD), 24 + MAX_PAYLOAD);
    }

    #[test]
    fn segment_header_round_trips_and_every_byte_is_covered() {
        let h = SegmentHeader {
            segment_bytes: 65536,
            first_seq: 42,
            created_unix_ns: 1_700_000_000_000_000_000,
        };
        let b = h.encode();
        assert_eq!(&b[0..8], b"MAJNLSEG");
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..64 {
            let mut d = b;
            d[i] ^= 0x10;
            assert!(
                SegmentHeader::decode(&d).is_err(),
                "flip at byte {i} not detected"
            );
        }
    }

    #[test]
    fn unknown_version_is_refused_by_name() {
        let mut b = SegmentHeader {
            segment_bytes: 4096,
            first_seq: 1,
            created_unix_ns: 0,
        }
        .encode();
        b[8..10].copy_from_slice(&2u16.to_le_bytes());
        let e = SegmentHeader::decode(&b).unwrap_err();
        assert_eq!(e, HeaderDamage::Version { found: 2 });
        assert!(e.to_string().contains("format version 2 is not supported"));
    }

    #[test]
    fn snapshot_header_round_trips() {
        let h = SnapshotHeader {
            seq: 9,
            payload_len: 123,
            payload_crc: 0xdead_beef,
            created_unix_ns: 5,
        };
        let b = h.encode();
        assert_eq!(SnapshotHeader::decode(&b), Ok(h));
        assert!(matches!(
            SegmentHeader::decode(&b),
            Err(HeaderDamage::Magic { .. })
        ));
    }

    #[test]
    fn sealed_frame_is_valid_and_zero_header_is_the_end_marker() {
        let mut buf = vec![0u8; 64];
        buf[24..29].copy_from_slice(b"hello");
        seal_frame(&mut buf, 5, 7, 3);
        match frame_at(&buf, 0) {
            Frame::Valid { header, len } => {
                assert_eq!((header.seq, header.kind, header.payload_len), (7, 3, 5));
                assert_eq!(len, 32);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(frame_at(&buf, 32), Frame::End);
        assert!(plausible_valid_frame_at(&buf, 0).is_some());
        assert!(plausible_valid_frame_at(&buf, 8).is_none());
        buf[26] ^= 1;
        assert!(matches!(
            frame_at(&buf, 0),
            Frame::Bad(FrameDamage::Crc { .. })
        ));
    }

    #[test]
    fn short_tail_is_end_when_zero_and_damage_otherwise() {
        let buf = [0u8; 16];
        assert_eq!(frame_at(&buf, 0), Frame::End);
        let mut buf = [0u8; 16];
        buf[3] = 1;
        assert_eq!(
            frame_at(&buf, 0),
            Frame::Bad(FrameDamage::TruncatedHeader { available: 16 })
        );
    }

    #[test]
    fn zero_search_helpers_find_the_edges() {
        let mut b = vec![0u8; 300];
        assert_eq!(first_nonzero(&b), None);
        assert_eq!(nonzero_end(&b), 0);
        b[130] = 1;
        b[200] = 2;
        assert_eq!(first_nonzero(&b), Some(130));
        assert_eq!(nonzero_end(&b), 201);
        b[299] = 3;
        assert_eq!(nonzero_end(&b), 300);
    }
}
