//! The tag=value codec, in layers that each work alone: [`frame`] finds and checks message
//! boundaries, [`decode`] splits a frame into fields (and checks them against the dictionary
//! in the same pass), [`encode`] writes messages; [`num`] and [`time`] convert numbers,
//! fixed-point prices and UTCTimestamps without allocation; `scan` finds a field's tag and
//! value sixteen bytes at a time; `shape` decodes a message laid out like the last valid one
//! without redoing what depends only on the layout.

pub mod decode;
pub mod encode;
pub mod frame;
pub mod num;
pub(crate) mod scan;
pub(crate) mod shape;
pub mod time;
