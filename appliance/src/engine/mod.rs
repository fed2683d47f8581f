//! The matching engine: sans-IO, commands in, events out.
