//! From the engines' events to order-by-order feed messages. The feed shows resting orders
//! only, as TotalView-ITCH does: an incoming order that trades at once appears as the
//! executions of the orders it took (`E`), and as an `A` for what is left of it when the
//! command is done (nothing for an IOC's or a market order's remainder, which is cancelled).
//!
//! The engine processes one command at a time and the events of a command arrive before an
//! [`Translator::end_of_command`] marker, so the translator holds the command's incoming
//! order (new, or replaced out of its place) until then. Everything here runs on the
//! publisher's thread; the table of resting orders is reserved at start-up.

use super::wire::{side_byte, Message};
use crate::engine::{Event, EventKind, InstrumentId, OrderId, Price, Qty, Side};
use std::collections::HashMap;

/// A resting order as the feed last showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Resting {
    instrument: InstrumentId,
    side: Side,
    price: Price,
    leaves: Qty,
}

/// The command's incoming order, shown at the end of the command if it rests.
#[derive(Clone, Copy, Debug)]
struct Incoming {
    order: OrderId,
    resting: Resting,
    /// A replace of an order the feed showed (`U` or `D` at the end), or a new order (`A`).
    replaced: bool,
}

/// The translator's state: what the feed has shown.
pub struct Translator {
    resting: HashMap<OrderId, Resting>,
    incoming: Option<Incoming>,
}

impl Translator {
    /// A translator for at most `orders` resting orders (more still work, by growing).
    pub fn with_capacity(orders: usize) -> Self {
        Self {
            resting: HashMap::with_capacity(orders),
            incoming: None,
        }
    }

    /// Orders resting as the feed shows them.
    pub fn resting(&self) -> usize {
        self.resting.len()
    }

    /// An order already resting when the feed starts (the books recovered from the journal):
    /// shown as an `A`, in queue order.
    pub fn seed(&mut self, o: &crate::engine::OrderInfo, ts: u64, out: &mut impl FnMut(Message)) {
        let r = Resting {
            instrument: o.instrument,
            side: o.side,
            price: o.price,
            leaves: o.leaves,
        };
        self.resting.insert(o.order_id, r);
        out(add(o.order_id, &r, ts));
    }

    /// Translates one event.
    #[inline]
    pub fn event(&mut self, ev: &Event, ts: u64, out: &mut impl FnMut(Message)) {
        match &ev.kind {
            EventKind::Accepted(a) => {
                // Market orders never rest (their remainder is cancelled); a limit order
                // rests with what is left at the end of the command.
                self.incoming = (a.price != 0).then_some(Incoming {
                    order: a.order_id,
                    resting: Resting {
                        instrument: a.instrument,
                        side: a.side,
                        price: a.price,
                        leaves: a.qty,
                    },
                    replaced: false,
                });
            }
            EventKind::Trade(t) => {
                if let Some(r) = self.resting.get_mut(&t.maker.order_id) {
                    out(Message::Executed {
                        ts,
                        order: t.maker.order_id,
                        qty: t.qty,
                        match_id: t.exec_id,
                        price: t.price,
                    });
                    r.leaves = t.maker.leaves;
                    if r.leaves == 0 {
                        self.resting.remove(&t.maker.order_id);
                    }
                }
                if let Some(i) = self.incoming.as_mut() {
                    if i.order == t.taker.order_id {
                        i.resting.leaves = t.taker.leaves;
                    }
                }
            }
            EventKind::Cancelled(c) => {
                if self.resting.remove(&c.order_id).is_some() {
                    out(Message::Delete {
                        ts,
                        order: c.order_id,
                    });
                } else if self.incoming.is_some_and(|i| i.order == c.order_id) {
                    // The remainder of an IOC, a FOK that could not fill, a self-trade
                    // prevention of the incoming order: it never rested. A replaced order
                    // cancelled in the same command leaves the book.
                    if let Some(i) = self.incoming.take() {
                        if i.replaced {
                            out(Message::Delete {
                                ts,
                                order: c.order_id,
                            });
                        }
                    }
                }
            }
            EventKind::Replaced(r) => {
                let Some(old) = self.resting.get(&r.order_id).copied() else {
                    return;
                };
                if r.priority_kept {
                    // Same price, less quantity: it keeps its place.
                    let cut = old.leaves.saturating_sub(r.leaves);
                    if cut > 0 {
                        out(Message::Cancel {
                            ts,
                            order: r.order_id,
                            qty: cut,
                        });
                    }
                    if let Some(o) = self.resting.get_mut(&r.order_id) {
                        o.leaves = r.leaves;
                    }
                } else {
                    // It leaves its place; it may trade at its new price before it rests.
                    self.resting.remove(&r.order_id);
                    self.incoming = Some(Incoming {
                        order: r.order_id,
                        resting: Resting {
                            price: r.price,
                            leaves: r.leaves,
                            ..old
                        },
                        replaced: true,
                    });
                }
            }
            EventKind::Rejected(_)
            | EventKind::CancelRejected(_)
            | EventKind::MassCancelDone(_)
            | EventKind::BookChange(_) => {}
        }
    }

    /// The command is done: its incoming order rests with what is left (`A`, or `U` for a
    /// replace), or leaves the book (`D`, a replace that traded in full).
    #[inline]
    pub fn end_of_command(&mut self, ts: u64, out: &mut impl FnMut(Message)) {
        let Some(i) = self.incoming.take() else {
            return;
        };
        let r = i.resting;
        match (i.replaced, r.leaves > 0) {
            (false, true) => {
                self.resting.insert(i.order, r);
                out(add(i.order, &r, ts));
            }
            (false, false) => {}
            (true, true) => {
                self.resting.insert(i.order, r);
                out(Message::Replace {
                    ts,
                    order: i.order,
                    qty: r.leaves,
                    price: r.price,
                });
            }
            (true, false) => out(Message::Delete { ts, order: i.order }),
        }
    }
}

fn add(order: OrderId, r: &Resting, ts: u64) -> Message {
    Message::Add {
        ts,
        order,
        instrument: r.instrument,
        side: side_byte(r.side),
        qty: r.leaves,
        price: r.price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{
        Capacity, Command, Engine, EngineConfig, InstrumentConfig, NewOrder, OrdType, Replace,
        StpMode, TimeInForce,
    };

    fn order(order_id: OrderId, side: Side, price: Price, qty: Qty, tif: TimeInForce) -> Command {
        Command::New(NewOrder {
            order_id,
            instrument: 0,
            session: order_id as u32,
            owner: order_id as u32,
            side,
            ord_type: if price == 0 {
                OrdType::Market
            } else {
                OrdType::Limit
            },
            tif,
            price,
            qty,
            post_only: false,
            stp: StpMode::None,
        })
    }

    /// Runs commands through a real engine and the translator; returns the messages' types
    /// and the order each names.
    fn feed(cmds: &[Command]) -> Vec<(char, u64, u64)> {
        let mut e = Engine::new(EngineConfig {
            instruments: vec![InstrumentConfig::plain(0, "TEST")],
            capacity: Capacity {
                max_orders: 64,
                max_levels_per_side: 16,
            },
        })
        .unwrap();
        let mut tr = Translator::with_capacity(16);
        let mut out = Vec::new();
        for c in cmds {
            let mut evs = Vec::new();
            e.process(c, &mut evs);
            let mut push = |m: Message| {
                let (order, qty) = match m {
                    Message::Add { order, qty, .. } | Message::Replace { order, qty, .. } => {
                        (order, qty)
                    }
                    Message::Executed { order, qty, .. } | Message::Cancel { order, qty, .. } => {
                        (order, qty)
                    }
                    Message::Delete { order, .. } => (order, 0),
                    _ => (0, 0),
                };
                out.push((m.msg_type() as char, order, qty));
            };
            for ev in &evs {
                tr.event(ev, 0, &mut push);
            }
            tr.end_of_command(0, &mut push);
        }
        out
    }

    #[test]
    fn an_aggressor_shows_as_executions_then_an_add_of_its_remainder() {
        let got = feed(&[
            order(1, Side::Sell, 100, 5, TimeInForce::Gtc),
            order(2, Side::Buy, 100, 8, TimeInForce::Gtc),
        ]);
        assert_eq!(got, [('A', 1, 5), ('E', 1, 5), ('A', 2, 3)]);
    }

    #[test]
    fn immediate_orders_never_rest() {
        let got = feed(&[
            order(1, Side::Sell, 100, 5, TimeInForce::Gtc),
            order(2, Side::Buy, 100, 8, TimeInForce::Ioc),
            order(3, Side::Buy, 0, 4, TimeInForce::Ioc),
            order(4, Side::Buy, 100, 9, TimeInForce::Fok),
        ]);
        assert_eq!(
            got,
            [('A', 1, 5), ('E', 1, 5)],
            "nothing of 2, 3 or 4 rests"
        );
    }

    #[test]
    fn replaces_cut_in_place_or_move_to_the_back() {
        let got = feed(&[
            order(1, Side::Buy, 100, 5, TimeInForce::Gtc),
            order(2, Side::Sell, 105, 3, TimeInForce::Gtc),
            // Same price, less: keeps its place (X of the difference).
            Command::Replace(Replace {
                order_id: 1,
                session: 1,
                price: Some(100),
                qty: 4,
            }),
            // A new price that crosses: executions of the resting sell, then U of the rest.
            Command::Replace(Replace {
                order_id: 1,
                session: 1,
                price: Some(105),
                qty: 4,
            }),
        ]);
        assert_eq!(
            got,
            [
                ('A', 1, 5),
                ('A', 2, 3),
                ('X', 1, 1),
                ('E', 2, 3),
                ('U', 1, 1)
            ]
        );
    }

    #[test]
    fn a_replace_that_trades_in_full_deletes_the_order() {
        let got = feed(&[
            order(1, Side::Buy, 100, 3, TimeInForce::Gtc),
            order(2, Side::Sell, 105, 3, TimeInForce::Gtc),
            Command::Replace(Replace {
                order_id: 1,
                session: 1,
                price: Some(105),
                qty: 3,
            }),
        ]);
        assert_eq!(got, [('A', 1, 3), ('A', 2, 3), ('E', 2, 3), ('D', 1, 0)]);
    }
}
