//! Time-bounded, proptest-driven fuzzing of the parser and the session state machine (stable
//! Rust: no nightly, so no cargo-fuzz/libFuzzer here). Inputs are FIX-shaped token soups and
//! random mutations of valid traffic; failures are shrunk by proptest to a minimal input.
//!
//! `FIX_FUZZ_SECS` sets the time budget per target (default 2 s inside the normal test run;
//! `scripts/ci/45-fix-fuzz.sh` gives each target 30 s in release mode).

mod common;

use std::time::{Duration, Instant};

use common::*;
use fix::codec::decode::{decode, FieldIndex};
use fix::codec::frame::{next_frame, FrameStatus};
use fix::dict::{validate, TagSet};
use fix::session::{Event, MemoryStore, Scratch};
use fix::{Session, SessionConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn budget() -> Duration {
    let secs = std::env::var("FIX_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// Runs `test` on values of `strategy` until the budget is spent; panics (with proptest's
/// minimal failing input) on the first failure. Returns the number of cases run.
fn fuzz<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) -> u64
where
    S::Value: std::fmt::Debug,
{
    let deadline = Instant::now() + budget();
    let mut cases = 0;
    while Instant::now() < deadline {
        // A fresh runner per batch: each draws a new random seed (a runner that already
        // succeeded does not run again).
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz failure: {e}");
        }
        cases += 256;
    }
    eprintln!("fuzz: {cases} cases in {:?}", budget());
    cases
}

/// FIX-shaped tokens: real fields, broken fields, framing fragments, raw bytes.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"8=FIX.4.4\x01".to_vec()),
        Just(b"9=".to_vec()),
        Just(b"10=".to_vec()),
        Just(b"\x01".to_vec()),
        Just(b"=".to_vec()),
        Just(b"35=D\x01".to_vec()),
        Just(b"35=A\x01".to_vec()),
        Just(b"34=2\x01".to_vec()),
        Just(b"49=TW44\x01".to_vec()),
        Just(b"56=ISLD\x01".to_vec()),
        Just(b"43=Y\x01".to_vec()),
        Just(b"386=2\x01336=X\x01".to_vec()),
        Just(b"-1=x\x01".to_vec()),
        "[0-9]{1,4}=[ -~]{0,8}\x01".prop_map(|s| s.into_bytes()),
        "[0-9]{1,12}".prop_map(|s| s.into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(token(), 0..40).prop_map(|v| v.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
            (any::<usize>(), token()).prop_map(|(p, t)| Mutation::Insert(p, t)),
            (any::<usize>(), 1usize..8).prop_map(|(p, n)| Mutation::Delete(p, n)),
            any::<usize>().prop_map(Mutation::Truncate),
        ],
        0..6,
    )
}

fn mutate(mut m: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for mu in muts {
        if m.is_empty() {
            break;
        }
        match mu {
            Mutation::Flip(p, b) => {
                let i = p % m.len();
                m[i] = *b;
            }
            Mutation::Insert(p, t) => {
                let i = p % (m.len() + 1);
                m.splice(i..i, t.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let i = p % m.len();
                let e = (i + n).min(m.len());
                m.drain(i..e);
            }
            Mutation::Truncate(p) => m.truncate(p % (m.len() + 1)),
        }
    }
    m
}

/// Framer + decoder + validator on one buffer: no panic, and progress is always bounded.
fn parse_all(input: &[u8]) -> Result<(), TestCaseError> {
    let mut idx = FieldIndex::for_message_size(4096);
    let mut seen = TagSet::EMPTY;
    let mut pos = 0;
    while pos < input.len() {
        match next_frame(&input[pos..], 4096) {
            FrameStatus::Incomplete => break,
            FrameStatus::Garbled { skip, .. } => {
                prop_assert!(skip > 0 && skip <= input.len() - pos, "skip {skip}");
                pos += skip;
            }
            FrameStatus::Complete(f) => {
                prop_assert!(f.len > 0 && f.len <= input.len() - pos);
                if let Ok(msg) = decode(&input[pos..], &f, &mut idx) {
                    let _ = validate(&msg, &mut seen);
                    let _ = msg.get(11);
                }
                pos += f.len;
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_parser_token_soup() {
    let n = fuzz(soup(), |input| parse_all(&input));
    assert!(n > 0);
}

#[test]
fn fuzz_parser_mutated_messages() {
    let valid = msg_at("35=D|34=2|49=TW44|52=<T>|56=ISLD|11=A|21=1|38=100|40=2|44=1.5|54=1|55=X|60=<T>|386=1|336=S|", T0);
    let n = fuzz(mutations(), |muts| parse_all(&mutate(valid.clone(), &muts)));
    assert!(n > 0);
}

/// Feeds a logged-on acceptor a stream of valid, mutated and garbage messages in random
/// chunks with random timer ticks; checks it never panics, always makes progress, and only
/// ever writes well-formed frames.
#[test]
fn fuzz_session() {
    let strategy = (
        proptest::collection::vec((0u8..5, mutations(), soup(), 0u64..3), 1..12),
        proptest::collection::vec(1usize..200, 1..8),
        any::<bool>(),
    );
    let n = fuzz(strategy, |(steps, chunks, logged_on)| {
        let mut s = Session::new(
            SessionConfig::acceptor("ISLD", "TW44"),
            MemoryStore::with_capacity(1 << 16, 256),
        );
        let mut scratch = Scratch::new(8192);
        let mut out = Vec::new();
        let mut now = T0;
        s.on_connected(now);
        let mut stream = Vec::new();
        if logged_on {
            stream.extend(msg_at("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=5|", now));
        }
        for (seq, (kind, muts, garbage, ahead)) in (2u64..).zip(steps.iter()) {
            let body = match kind {
                0 => format!("35=D|34={seq}|49=TW44|52=<T>|56=ISLD|11=A|21=1|38=100|40=2|44=1.5|54=1|55=X|60=<T>|"),
                1 => format!("35=1|34={seq}|49=TW44|52=<T>|56=ISLD|112=T|"),
                2 => format!("35=2|34={}|49=TW44|52=<T>|56=ISLD|7=1|16=0|", seq + ahead),
                3 => format!("35=4|34={seq}|49=TW44|52=<T>|56=ISLD|123=Y|36={}|", seq + 1 + ahead),
                _ => format!("35=4|34={}|49=TW44|52=<T>|56=ISLD|36={}|", u64::MAX - ahead, u64::MAX - ahead),
            };
            stream.extend(mutate(msg_at(&body, now), muts));
            stream.extend_from_slice(garbage);
        }
        let mut inbuf: Vec<u8> = Vec::new();
        let mut pos = 0;
        let mut ci = 0;
        'outer: while pos < stream.len() {
            let take = chunks[ci % chunks.len()].min(stream.len() - pos);
            ci += 1;
            inbuf.extend_from_slice(&stream[pos..pos + take]);
            pos += take;
            let mut replays = 0;
            loop {
                let r = s.on_input(&inbuf, &mut scratch, now, &mut out);
                prop_assert!(r.consumed <= inbuf.len());
                let consumed = r.consumed;
                let (stop, need_more) = match r.event {
                    Event::NeedMore => (false, true),
                    Event::Disconnect(_) => (true, false),
                    _ => (false, false),
                };
                inbuf.drain(..consumed);
                if stop {
                    break 'outer;
                }
                if need_more {
                    break;
                }
                if consumed == 0 {
                    replays += 1;
                    prop_assert!(replays < 1000, "no progress");
                }
            }
            now += 700_000_000;
            if s.on_timer(now, &mut out).is_some() {
                break;
            }
        }
        // Everything the session wrote is a sequence of well-formed frames.
        let mut p = 0;
        while p < out.len() {
            match next_frame(&out[p..], 1 << 20) {
                FrameStatus::Complete(f) => p += f.len,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "bad output frame {other:?}: {}",
                        vis(&out[p..])
                    )))
                }
            }
        }
        Ok(())
    });
    assert!(n > 0);
}
