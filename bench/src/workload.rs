//! The standard workload files (`workloads/README.md`): parsing into engine commands.
//!
//! Parsing is the cold part of a benchmark: the whole file becomes a `Vec<Command>` before
//! anything is timed, so the figures measure the engine, not the text parser.

use appliance::engine::{
    Cancel, Command, InstrumentId, NewOrder, OrdType, Replace, SessionId, Side, StpMode,
    TimeInForce,
};

/// Every workload command is entered by this one session (the format has no sessions; cancels
/// and replaces must come from the order's session).
pub const WORKLOAD_SESSION: SessionId = 1;

/// A parsed workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Profile name from the header (`# workload NAME ...`), else empty.
    pub name: String,
    /// Number of symbols (instrument ids `0..symbols`).
    pub symbols: u32,
    /// The preload: resting orders entered before the measured part.
    pub preload: Vec<Command>,
    /// The measured commands.
    pub commands: Vec<Command>,
}

/// A line that does not follow the format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("workload line {line}: {msg}")]
pub struct WorkloadError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

fn num<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, String> {
    let f = field.ok_or_else(|| format!("missing {what}"))?;
    f.parse().map_err(|_| format!("bad {what} {f:?}"))
}

/// Parses one command line (not a comment).
pub fn parse_line(line: &str) -> Result<Command, String> {
    let mut f = line.split_ascii_whitespace();
    let kind = f.next().ok_or("empty line")?;
    let cmd = match kind {
        "N" => {
            let order_id = num(f.next(), "order id")?;
            let instrument: InstrumentId = num(f.next(), "symbol")?;
            let side = match f.next() {
                Some("B") => Side::Buy,
                Some("S") => Side::Sell,
                s => return Err(format!("bad side {s:?}")),
            };
            let ord_type = match f.next() {
                Some("L") => OrdType::Limit,
                Some("M") => OrdType::Market,
                t => return Err(format!("bad order type {t:?}")),
            };
            let tif = match f.next() {
                Some("G") => TimeInForce::Gtc,
                Some("I") => TimeInForce::Ioc,
                Some("D") => TimeInForce::Day,
                Some("F") => TimeInForce::Fok,
                t => return Err(format!("bad time in force {t:?}")),
            };
            let price = num(f.next(), "price")?;
            let qty = num(f.next(), "quantity")?;
            let owner = num(f.next(), "owner")?;
            Command::New(NewOrder {
                order_id,
                instrument,
                session: WORKLOAD_SESSION,
                owner,
                side,
                ord_type,
                tif,
                price,
                qty,
                post_only: false,
                stp: StpMode::None,
            })
        }
        "X" => Command::Cancel(Cancel {
            order_id: num(f.next(), "order id")?,
            session: WORKLOAD_SESSION,
        }),
        "R" => Command::Replace(Replace {
            order_id: num(f.next(), "order id")?,
            session: WORKLOAD_SESSION,
            price: None,
            qty: num(f.next(), "quantity")?,
        }),
        k => return Err(format!("unknown command {k:?}")),
    };
    if let Some(extra) = f.next() {
        return Err(format!("unexpected field {extra:?}"));
    }
    Ok(cmd)
}

/// Parses a whole workload file. The header comment names the profile, the preload size and
/// the symbol count; without a header nothing is preloaded and the symbols are counted.
pub fn parse(text: &str) -> Result<Workload, WorkloadError> {
    let mut name = String::new();
    let mut preload_n: Option<usize> = None;
    let mut symbols: Option<u32> = None;
    let mut all = Vec::with_capacity(text.len() / 24);
    let mut max_symbol = 0u32;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_ascii_whitespace().collect();
            if words.first() == Some(&"workload") && all.is_empty() {
                name = words.get(1).unwrap_or(&"").to_string();
                for pair in words.windows(2) {
                    match pair[0] {
                        "preload" => preload_n = pair[1].parse().ok(),
                        "symbols" => symbols = pair[1].parse().ok(),
                        _ => {}
                    }
                }
            }
            continue;
        }
        let cmd = parse_line(line).map_err(|msg| WorkloadError { line: i + 1, msg })?;
        if let Command::New(o) = &cmd {
            max_symbol = max_symbol.max(o.instrument);
        }
        all.push(cmd);
    }
    let preload_n = preload_n.unwrap_or(0).min(all.len());
    let commands = all.split_off(preload_n);
    let symbols = symbols.unwrap_or(if all.is_empty() && commands.is_empty() {
        0
    } else {
        max_symbol + 1
    });
    Ok(Workload {
        name,
        symbols,
        preload: all,
        commands,
    })
}

impl Workload {
    /// Upper bound on orders that can rest at once: every limit Day/GTC order in the file.
    pub fn max_resting(&self) -> usize {
        self.preload
            .iter()
            .chain(&self.commands)
            .filter(|c| {
                matches!(c, Command::New(o) if o.ord_type == OrdType::Limit && !o.tif.is_immediate())
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# workload smoke seed 42 commands 3 preload 2 symbols 2
N 1 0 B L G 99990 17 5
N 2 1 S L G 100004 3 77
X 1
R 2 2
N 3 0 S M I 0 120 9
";

    #[test]
    fn parses_header_preload_and_every_line_kind() {
        let w = parse(SAMPLE).unwrap();
        assert_eq!(w.name, "smoke");
        assert_eq!(w.symbols, 2);
        assert_eq!(w.preload.len(), 2);
        assert_eq!(w.commands.len(), 3);
        assert_eq!(
            w.preload[0],
            Command::New(NewOrder {
                order_id: 1,
                instrument: 0,
                session: WORKLOAD_SESSION,
                owner: 5,
                side: Side::Buy,
                ord_type: OrdType::Limit,
                tif: TimeInForce::Gtc,
                price: 99_990,
                qty: 17,
                post_only: false,
                stp: StpMode::None,
            })
        );
        assert_eq!(
            w.commands[0],
            Command::Cancel(Cancel {
                order_id: 1,
                session: WORKLOAD_SESSION
            })
        );
        assert_eq!(
            w.commands[1],
            Command::Replace(Replace {
                order_id: 2,
                session: WORKLOAD_SESSION,
                price: None,
                qty: 2
            })
        );
        match w.commands[2] {
            Command::New(o) => {
                assert_eq!(
                    (o.ord_type, o.tif, o.side, o.qty),
                    (OrdType::Market, TimeInForce::Ioc, Side::Sell, 120)
                )
            }
            c => panic!("{c:?}"),
        }
        assert_eq!(w.max_resting(), 2);
    }

    #[test]
    fn without_a_header_nothing_is_preloaded() {
        let w = parse("N 1 3 B L G 10 1 1\nX 1\n").unwrap();
        assert_eq!((w.preload.len(), w.commands.len(), w.symbols), (0, 2, 4));
        assert_eq!(w.name, "");
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let cases = [
            ("N 1 0 Q L G 10 1 1", "bad side"),
            ("N 1 0 B L G ten 1 1", "bad price"),
            ("N 1 0 B L G 10 1", "missing owner"),
            ("N 1 0 B Z G 10 1 1", "bad order type"),
            ("N 1 0 B L Q 10 1 1", "bad time in force"),
            ("X", "missing order id"),
            ("X 1 2", "unexpected field"),
            ("Y 1", "unknown command"),
        ];
        for (line, want) in cases {
            let err = parse(&format!("# comment\n{line}\n")).unwrap_err();
            assert_eq!(err.line, 2, "{line}");
            assert!(err.msg.contains(want), "{line}: {}", err.msg);
        }
    }
}
