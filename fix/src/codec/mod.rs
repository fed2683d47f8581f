//! The tag=value codec, in layers that each work alone: [`frame`] finds and checks message
//! boundaries, [`decode`] splits a frame into fields, [`encode`] writes messages; [`num`] and
//! [`time`] convert numbers, fixed-point prices and UTCTimestamps without allocation.

pub mod decode;
pub mod encode;
pub mod frame;
pub mod num;
pub mod time;
