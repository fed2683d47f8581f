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
