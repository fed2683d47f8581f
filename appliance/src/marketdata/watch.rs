//! `appliance watch`: a terminal view of the order-by-order feed, from the consumer's side
//! ([`super::consumer`]): each instrument's ladder (the best levels each side: price with the
//! instrument's decimals, size, order count), its last trades, and the feed's state (session,
//! next sequence number, messages, gaps detected and repaired, heartbeats, time since the last
//! packet, whether a snapshot was used). It joins late by snapshot, as the appliance may have
//! been running for a while.
//!
//! The view ([`View`]) is a ratatui widget that draws into any buffer: the terminal (crossterm
//! backend, [`run`]), ratatui's `TestBackend` in tests, or a plain buffer printed as text for
//! `--once` ([`text`]). A thread reads the UDP socket into a queue (the live packets wait there
//! while a snapshot or a retransmission is asked for); the main thread applies them, draws and
//! reads the keyboard.

use super::consumer::{Feed, Join, NoRecovery, Recovery, RecoveryClient};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Width of the text `--once` prints.
pub const TEXT_WIDTH: u16 = 120;

/// Lines of the feed's state block (borders included).
const STATE_HEIGHT: u16 = 7;

/// Width of a ladder (borders excluded): six columns, their gaps, and a gap before the
/// trades.
const LADDER_WIDTH: u16 = 66;

/// What to draw: the feed as the consumer follows it.
pub struct View<'a> {
    /// The feed.
    pub feed: &'a Feed,
    /// Levels shown each side.
    pub levels: usize,
    /// Now (for the time since the last packet).
    pub now: Instant,
    /// Where the packets come from and the recovery service, as shown.
    pub source: &'a str,
}

impl View<'_> {
    /// Lines the whole view needs.
    pub fn height(&self) -> u16 {
        let books = self.feed.books.books().count() as u16;
        let each = self.levels as u16 + 3;
        STATE_HEIGHT + if books == 0 { 3 } else { books * each }
    }

    fn state_lines(&self) -> Vec<Line<'static>> {
        let f = self.feed;
        let s = &f.stats;
        let state = if f.ended {
            "ended (end of session)"
        } else if s.packets == 0 {
            "waiting for packets"
        } else {
            "live"
        };
        let last = match s.last_packet {
            Some(t) => format!(
                "{:.1} s ago",
                self.now.saturating_duration_since(t).as_secs_f64()
            ),
            None => "never".to_string(),
        };
        let snapshot = match &f.join {
            Join::Waiting => "not yet".to_string(),
            Join::FromStart => "not needed (joined at the session's start)".to_string(),
            Join::Snapshot { as_of, orders } => {
                format!("used, as of sequence {as_of} ({orders} orders)")
            }
            Join::WithoutSnapshot(e) => format!("failed ({e}): earlier orders are missing"),
        };
        let snaps = if s.snapshots > 1 {
            format!(", {} taken", s.snapshots)
        } else {
            String::new()
        };
        let errors = match &s.last_error {
            Some(e) => format!(
                "inconsistencies {}  malformed {}  last error: {e}",
                s.inconsistencies, s.malformed
            ),
            None => "no errors".to_string(),
        };
        vec![
            Line::from(format!(
                "session {}   {}   next seq {}   last packet {}",
                f.session_text().unwrap_or_else(|| "-".into()),
                state,
                f.next_seq().map_or_else(|| "-".into(), |n| n.to_string()),
                last
            )),
            Line::from(format!(
                "messages {}   heartbeats {}   packets {}   duplicates {}   resting orders {}",
                s.messages,
                s.heartbeats,
                s.packets,
                s.duplicates,
                f.books.resting_orders()
            )),
            Line::from(format!(
                "gaps {} detected, {} repaired, {} unrepaired ({} messages retransmitted)",
                s.gaps_detected, s.gaps_repaired, s.gaps_unrepaired, s.retransmitted
            )),
            Line::from(format!("snapshot: {snapshot}{snaps}")),
            Line::from(errors),
        ]
    }
}

fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).alignment(Alignment::Right))
}

/// `ts` (Unix nanoseconds) as `HH:MM:SS.mmm` (UTC).
fn time_of_day(ts: u64) -> String {
    let ms = (ts / 1_000_000) % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

impl Widget for &View<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let books: Vec<_> = self.feed.books.books().collect();
        let each = self.levels as u16 + 3;
        let mut rows = vec![Constraint::Length(STATE_HEIGHT)];
        if books.is_empty() {
            rows.push(Constraint::Length(3));
        }
        rows.extend(books.iter().map(|_| Constraint::Length(each)));
        rows.push(Constraint::Min(0));
        let parts = Layout::vertical(rows).split(area);

        let title = format!(" feed: {} ", self.source);
        Paragraph::new(self.state_lines())
            .block(Block::bordered().title(title))
            .render(parts[0], buf);
        if books.is_empty() {
            Paragraph::new(
                "no instrument yet (the directory comes with the snapshot or the session's start)",
            )
            .block(Block::bordered())
            .render(parts[1], buf);
            return;
        }
        let bid = Style::default().fg(Color::Green);
        let ask = Style::default().fg(Color::Red);
        let head = Style::default().add_modifier(Modifier::BOLD);
        for (book, &part) in books.iter().zip(parts[1..].iter()) {
            let title = format!(
                " {}{}  (instrument {}, {} decimals, tick {}) ",
                book.symbol,
                if book.halted { " HALTED" } else { "" },
                book.instrument,
                book.price_decimals,
                book.format_price(book.tick as i64)
            );
            let block = Block::bordered().title(Line::from(title).style(head));
            let inner = block.inner(part);
            block.render(part, buf);
            let [ladder, trades] =
                Layout::horizontal([Constraint::Length(LADDER_WIDTH), Constraint::Min(0)])
                    .areas(inner);

            let bids = book.bids(self.levels);
            let asks = book.asks(self.levels);
            let blank = || Cell::from("");
            let ladder_rows = (0..self.levels).map(|i| {
                let b = bids.get(i);
                let a = asks.get(i);
                Row::new(vec![
                    b.map_or_else(blank, |l| right(l.orders.to_string())),
                    b.map_or_else(blank, |l| right(l.size.to_string())),
                    b.map_or_else(blank, |l| right(book.format_price(l.price)).style(bid)),
                    a.map_or_else(blank, |l| right(book.format_price(l.price)).style(ask)),
                    a.map_or_else(blank, |l| right(l.size.to_string())),
                    a.map_or_else(blank, |l| right(l.orders.to_string())),
                ])
            });
            let header = Row::new(vec![
                right("orders".into()),
                right("bid size".into()),
                right("bid".into()),
                right("ask".into()),
                right("ask size".into()),
                right("orders".into()),
            ])
            .style(head);
            Table::new(
                ladder_rows,
                [
                    Constraint::Length(6),
                    Constraint::Length(9),
                    Constraint::Length(14),
                    Constraint::Length(14),
                    Constraint::Length(9),
                    Constraint::Length(6),
                ],
            )
            .header(header)
            .render(ladder, buf);

            let trade_rows = book.trades().take(self.levels).map(|t| {
                Row::new(vec![
                    Cell::from(time_of_day(t.ts)),
                    right(book.format_price(t.price)),
                    right(t.qty.to_string()),
                    right(t.match_id.to_string()),
                    // The aggressor was on the other side of the resting order.
                    Cell::from(if t.resting_side == b'B' {
                        "sell"
                    } else {
                        "buy"
                    }),
                ])
            });
            let header = Row::new(vec![
                Cell::from("last trades"),
                right("price".into()),
                right("qty".into()),
                right("match".into()),
                Cell::from("aggr"),
            ])
            .style(head);
            Table::new(
                trade_rows,
                [
                    Constraint::Length(12),
                    Constraint::Length(14),
                    Constraint::Length(8),
                    Constraint::Length(8),
                    Constraint::Length(4),
                ],
            )
            .header(header)
            .render(trades, buf);
        }
    }
}

/// The view as plain text, [`TEXT_WIDTH`] columns wide (trailing blanks trimmed).
pub fn text(view: &View) -> String {
    let area = Rect::new(0, 0, TEXT_WIDTH, view.height());
    let mut buf = Buffer::empty(area);
    view.render(area, &mut buf);
    buffer_text(&buf)
}

/// A buffer's symbols, line by line, trailing blanks trimmed.
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            if let Some(c) = buf.cell((x, y)) {
                line.push_str(c.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `appliance watch` was asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the feed arrives: a local address, or a multicast group (joined) and its port.
    pub listen: SocketAddr,
    /// The recovery service (snapshots, retransmission); none: no late join, no repair.
    pub recovery: Option<SocketAddr>,
    /// Levels shown each side.
    pub levels: usize,
    /// `--once --for`: no terminal UI, run this long, print the view as text.
    pub once: Option<Duration>,
}

/// The socket the feed arrives on: `listen` itself, or, for a multicast group, its port on
/// every interface with the group joined.
pub fn bind(listen: SocketAddr) -> std::io::Result<UdpSocket> {
    match listen.ip() {
        IpAddr::V4(g) if g.is_multicast() => {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, listen.port()))?;
            s.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?;
            Ok(s)
        }
        IpAddr::V6(g) if g.is_multicast() => {
            let s = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, listen.port()))?;
            s.join_multicast_v6(&g, 0)?;
            Ok(s)
        }
        _ => UdpSocket::bind(listen),
    }
}

/// Reads `socket` into a queue until `stop`.
fn reader(
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Receiver<(Vec<u8>, Instant)>> {
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("watch-feed".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    if tx.send((buf[..n].to_vec(), Instant::now())).is_err() {
                        break;
                    }
                }
            }
        })?;
    Ok(rx)
}

/// Runs `appliance watch`; returns the exit code.
pub fn run(opts: &Options) -> anyhow::Result<i32> {
    use anyhow::Context;
    let socket = bind(opts.listen).with_context(|| format!("listening on {}", opts.listen))?;
    let stop = Arc::new(AtomicBool::new(false));
    let rx = reader(socket, stop.clone())?;
    let mut recovery: Box<dyn Recovery> = match opts.recovery {
        Some(a) => Box::new(RecoveryClient::new(a, Duration::from_secs(2))),
        None => Box::new(NoRecovery),
    };
    let source = format!(
        "{}, recovery {}",
        opts.listen,
        opts.recovery
            .map_or_else(|| "none".to_string(), |a| a.to_string())
    );
    let mut feed = Feed::new();
    let result = match opts.once {
        Some(d) => once(&rx, &mut feed, recovery.as_mut(), opts, &source, d),
        None => interactive(&rx, &mut feed, recovery.as_mut(), opts, &source),
    };
    stop.store(true, Ordering::Relaxed);
    result
}

fn once(
    rx: &Receiver<(Vec<u8>, Instant)>,
    feed: &mut Feed,
    recovery: &mut dyn Recovery,
    opts: &Options,
    source: &str,
    d: Duration,
) -> anyhow::Result<i32> {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok((p, t)) => feed.on_packet(&p, t, recovery),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the socket reader stopped"),
        }
    }
    if feed.stats.packets == 0 {
        eprintln!(
            "appliance watch: no packet arrived on {} in {:.1} s (is the appliance running, \
             publishing there?)",
            opts.listen,
            d.as_secs_f64()
        );
        return Ok(1);
    }
    let view = View {
        feed,
        levels: opts.levels,
        now: Instant::now(),
        source,
    };
    print!("{}", text(&view));
    Ok(0)
}

fn interactive(
    rx: &Receiver<(Vec<u8>, Instant)>,
    feed: &mut Feed,
    recovery: &mut dyn Recovery,
    opts: &Options,
    source: &str,
) -> anyhow::Result<i32> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    // Raw mode and the alternate screen; a panic hook restores the terminal too.
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> anyhow::Result<()> {
        loop {
            while let Ok((p, t)) = rx.try_recv() {
                feed.on_packet(&p, t, recovery);
            }
            let view = View {
                feed,
                levels: opts.levels,
                now: Instant::now(),
                source,
            };
            terminal.draw(|f| f.render_widget(&view, f.area()))?;
            if event::poll(Duration::from_millis(100))? {
                if let Event::Key(k) = event::read()? {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if k.kind == KeyEventKind::Press && (k.code == KeyCode::Char('q') || ctrl_c) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result.map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{encode_header, system_event, Message, PacketHeader, HEADER};
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn packet(seq: u64, msgs: &[Message]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER];
        encode_header(
            &mut p,
            &PacketHeader {
                session: *b"2606121412",
                seq,
                count: msgs.len() as u16,
            },
        );
        for m in msgs {
            let mut b = [0u8; 64];
            let n = m.encode(&mut b);
            p.extend_from_slice(&(n as u16).to_be_bytes());
            p.extend_from_slice(&b[..n]);
        }
        p
    }

    fn add(order: u64, side: u8, price: i64, qty: u64) -> Message {
        Message::Add {
            ts: 0,
            order,
            instrument: 0,
            side,
            qty,
            price,
        }
    }

    fn feed() -> Feed {
        let mut feed = Feed::new();
        let msgs = [
            Message::System {
                ts: 0,
                code: system_event::START,
            },
            Message::Directory {
                ts: 0,
                instrument: 0,
                symbol: *b"ACME    ",
                price_decimals: 4,
                tick: 100,
            },
            add(1, b'B', 990_000, 10),
            add(2, b'B', 990_000, 15),
            add(3, b'B', 985_000, 7),
            add(4, b'S', 1_010_000, 4),
            add(5, b'S', 1_010_000, 1),
            Message::Executed {
                ts: 45_296_789_000_000,
                order: 5,
                qty: 1,
                match_id: 4242,
                price: 1_010_000,
            },
        ];
        feed.on_packet(&packet(1, &msgs), Instant::now(), &mut NoRecovery);
        feed
    }

    #[test]
    fn the_ladder_shows_prices_sizes_orders_and_trades() {
        let feed = feed();
        let view = View {
            feed: &feed,
            levels: 5,
            now: Instant::now(),
            source: "127.0.0.1:9200, recovery none",
        };
        let mut terminal = Terminal::new(TestBackend::new(TEXT_WIDTH, view.height())).unwrap();
        terminal.draw(|f| f.render_widget(&view, f.area())).unwrap();
        let screen = buffer_text(terminal.backend().buffer());
        let line = |needle: &str| {
            screen
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in\n{screen}"))
                .to_string()
        };
        // Best bid: two orders, 25; best ask: one order of 4 (the other traded).
        let best = line("99.0000");
        let words: Vec<&str> = best.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "99.0000").unwrap();
        assert_eq!(&words[at - 2..at], &["2", "25"], "{best}");
        assert_eq!(&words[at + 1..at + 4], &["101.0000", "4", "1"], "{best}");
        assert!(line("98.5000").contains(" 7 "), "{screen}");
        // The trade: time, price, quantity, match number, aggressor.
        let trade = line("4242");
        assert!(trade.contains("12:34:56.789"), "{trade}");
        assert!(
            trade.contains("101.0000") && trade.contains("buy"),
            "{trade}"
        );
        assert!(line("ACME").contains("4 decimals, tick 0.0100"), "{screen}");
        assert!(
            line("session 2606121412").contains("next seq 9"),
            "{screen}"
        );
        assert!(
            line("snapshot:").contains("not needed"),
            "joined at the session's start: {screen}"
        );
        assert!(line("gaps").contains("0 detected"), "{screen}");
        // The text --once prints is the same view.
        assert_eq!(text(&view), screen);
    }

    #[test]
    fn an_empty_feed_says_it_waits() {
        let feed = Feed::new();
        let view = View {
            feed: &feed,
            levels: 3,
            now: Instant::now(),
            source: "x",
        };
        let t = text(&view);
        assert!(t.contains("waiting for packets"), "{t}");
        assert!(t.contains("last packet never"), "{t}");
    }
}
