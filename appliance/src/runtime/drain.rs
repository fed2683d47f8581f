//! The one way commands reach an engine in batches: a ring's read chunk processed with
//! prefetch hints. The runtime's engine agents, `bench book` and the tests all go through
//! [`drain_batch`] (or [`process_hinted`] for commands already in memory), so the path that is
//! benchmarked is the path that runs. Hot path.

use crate::engine::{Command, Engine};
use crate::rings::msg::ToEngine;
use crate::rings::ring::Receiver;

/// Anything that carries an engine command (a bare command, or a ring message).
pub trait HasCommand {
    /// The command.
    fn command(&self) -> &Command;
}

impl HasCommand for Command {
    #[inline]
    fn command(&self) -> &Command {
        self
    }
}

impl HasCommand for ToEngine {
    #[inline]
    fn command(&self) -> &Command {
        &self.cmd
    }
}

/// Processes the commands of `a` then `b` (a ring chunk's two halves) with `each`, giving the
/// engine its hints first: [`Engine::prefetch`] two commands ahead and
/// [`Engine::prefetch_order`] one ahead, so their cache misses overlap with this command's
/// work. The hints never change what the engine does.
#[inline]
pub fn process_hinted<T: HasCommand>(
    engine: &mut Engine,
    a: &[T],
    b: &[T],
    mut each: impl FnMut(&mut Engine, &T),
) {
    let len = a.len() + b.len();
    let at = |i: usize| -> &T {
        if i < a.len() {
            &a[i]
        } else {
            &b[i - a.len()]
        }
    };
    for i in 0..len {
        if i + 2 < len {
            engine.prefetch(at(i + 2).command());
        }
        if i + 1 < len {
            engine.prefetch_order(at(i + 1).command());
        }
        each(engine, at(i));
    }
}

/// Takes up to `max` commands from `rx` as one read chunk and processes them with
/// [`process_hinted`]. Returns how many were processed.
#[inline]
pub fn drain_batch<T: HasCommand>(
    rx: &mut Receiver<T>,
    engine: &mut Engine,
    max: usize,
    each: impl FnMut(&mut Engine, &T),
) -> usize {
    rx.read_batch(max, |a, b| process_hinted(engine, a, b, each))
}
