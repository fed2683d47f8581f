//! Application messages.
