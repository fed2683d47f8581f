//! The fast engine against a deliberately simple reference model on random command streams.
//!
//! The model keeps each book as one `Vec` of resting orders in arrival order and finds
//! everything (best price, level totals, the next order in the queue) by scanning it. It
//! follows the rules in `docs/engine.md` line by line, with none of the engine's data
//! structures. Proptest drives both with the same commands and requires identical events for
//! every command and identical books at the end.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct MOrder {
    id: OrderId,
    session: SessionId,
    owner: OwnerId,
    side: Side,
    price: Price,
    leaves: Qty,
    filled: Qty,
    tif: TimeInForce,
    stp: StpMode,
    post_only: bool,
}

struct MBook {
    cfg: InstrumentConfig,
    last_trade: Option<Price>,
    trades: u64,
    /// Resting orders, earliest priority first.
    orders: Vec<MOrder>,
}

struct Model {
    seq: Seq,
    books: Vec<MBook>,
    max_orders: usize,
    max_levels: usize,
    out: Vec<Event>,
}

struct MTaker {
    id: OrderId,
    session: SessionId,
    owner: OwnerId,
    side: Side,
    limit: Option<Price>,
    leaves: Qty,
    filled: Qty,
    stp: StpMode,
}

impl MBook {
    /// Distinct prices on a side, best first.
    fn prices(&self, side: Side) -> Vec<Price> {
        let mut p: Vec<Price> = self
            .orders
            .iter()
            .filter(|o| o.side == side)
            .map(|o| o.price)
            .collect();
        p.sort();
        p.dedup();
        if side == Side::Buy {
            p.reverse();
        }
        p
    }
    fn level(&self, side: Side, price: Price) -> (Qty, u32) {
        let at = self
            .orders
            .iter()
            .filter(|o| o.side == side && o.price == price);
        at.fold((0, 0), |(q, c), o| (q + o.leaves, c + 1))
    }
    fn in_band(&self, price: Price) -> bool {
        match self.cfg.price_band {
            PriceBand::None => true,
            PriceBand::Static { min, max } => min <= price && price <= max,
            PriceBand::Percent {
                bps,
                reference_price,
            } => {
                let r = self.last_trade.unwrap_or(reference_price) as i128;
                (price as i128 - r).abs() * 10_000 <= r * bps as i128
            }
        }
    }
    fn crosses(&self, side: Side, price: Price) -> bool {
        match self.prices(side.opposite()).first() {
            None => false,
            Some(&best) => match side {
                Side::Buy => price >= best,
                Side::Sell => price <= best,
            },
        }
    }
    fn notional_ok(&self, price: Price, qty: Qty) -> bool {
        self.cfg
            .max_notional
            .is_none_or(|m| (price as u128) * (qty as u128) <= m as u128)
    }
}

fn marketable(side: Side, limit: Option<Price>, p: Price) -> bool {
    match (limit, side) {
        (None, _) => true,
        (Some(l), Side::Buy) => p <= l,
        (Some(l), Side::Sell) => p >= l,
    }
}

impl Model {
    fn new(cfg: &EngineConfig) -> Model {
        let mut books: Vec<MBook> = cfg
            .instruments
            .iter()
            .map(|c| MBook {
                cfg: c.clone(),
                last_trade: None,
                trades: 0,
                orders: Vec::new(),
            })
            .collect();
        books.sort_by_key(|b| b.cfg.id);
        Model {
            seq: 0,
            books,
            max_orders: cfg.capacity.max_orders as usize,
            max_levels: cfg.capacity.max_levels_per_side as usize,
            out: Vec::new(),
        }
    }

    fn emit(&mut self, kind: EventKind) {
        self.out.push(Event {
            seq: self.seq,
            kind,
        });
    }

    fn book_ix(&self, instrument: InstrumentId) -> Option<usize> {
        self.books.iter().position(|b| b.cfg.id == instrument)
    }

    fn find(&self, id: OrderId) -> Option<(usize, usize)> {
        for (b, book) in self.books.iter().enumerate() {
            if let Some(i) = book.orders.iter().position(|o| o.id == id) {
                return Some((b, i));
            }
        }
        None
    }

    /// The configured maximum, never above u64::MAX / max_orders (docs/engine.md).
    fn max_qty(&self, c: &InstrumentConfig) -> Qty {
        c.max_order_qty
            .unwrap_or(Qty::MAX)
            .min(Qty::MAX / self.max_orders as Qty)
    }

    fn live(&self) -> usize {
        self.books.iter().map(|b| b.orders.len()).sum()
    }

    fn level_change(&mut self, b: usize, side: Side, price: Price, existed_before: bool) {
        let (qty, count) = self.books[b].level(side, price);
        let action = if count == 0 {
            BookAction::Delete
        } else if existed_before {
            BookAction::Update
        } else {
            BookAction::Add
        };
        let instrument = self.books[b].cfg.id;
        self.emit(EventKind::BookChange(BookChange {
            instrument,
            side,
            action,
            price,
            qty,
            count,
        }));
    }

    fn cancelled(&mut self, b: usize, o: &MOrder, reason: CancelReason) {
        let instrument = self.books[b].cfg.id;
        self.emit(EventKind::Cancelled(Cancelled {
            order_id: o.id,
            instrument,
            session: o.session,
            side: o.side,
            reason,
            price: o.price,
            cancelled_qty: o.leaves,
            cum_qty: o.filled,
        }));
    }

    fn process(&mut self, cmd: &Command) -> Vec<Event> {
        self.seq += 1;
        self.out.clear();
        match *cmd {
            Command::New(o) => self.new_order(o),
            Command::Cancel(c) => self.cancel(c),
            Command::Replace(r) => self.replace(r),
            Command::MassCancel(m) => {
                let unknown = m.instrument.is_some_and(|i| self.book_ix(i).is_none());
                let count = if unknown {
                    0
                } else {
                    self.cancel_where(m.instrument, m.reason, |o| {
                        m.side.is_none_or(|s| o.side == s)
                            && match m.scope {
                                MassCancelScope::ByOwner => o.owner == m.owner,
                                MassCancelScope::BySession => o.session == m.session,
                            }
                    })
                };
                self.emit(EventKind::MassCancelDone(MassCancelDone {
                    session: m.session,
                    owner: m.owner,
                    instrument: m.instrument,
                    scope: Some(m.scope),
                    reason: m.reason,
                    rejected: unknown.then_some(RejectReason::UnknownInstrument),
                    count,
                }));
            }
            Command::ExpireDayOrders(x) => {
                let unknown = x.instrument.is_some_and(|i| self.book_ix(i).is_none());
                let count = if unknown {
                    0
                } else {
                    self.cancel_where(x.instrument, CancelReason::DayExpired, |o| {
                        o.tif == TimeInForce::Day
                    })
                };
                self.emit(EventKind::MassCancelDone(MassCancelDone {
                    session: 0,
                    owner: 0,
                    instrument: x.instrument,
                    scope: None,
                    reason: CancelReason::DayExpired,
                    rejected: unknown.then_some(RejectReason::UnknownInstrument),
                    count,
                }));
            }
        }
        self.out.clone()
    }

    fn cancel_where(
        &mut self,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        pick: impl Fn(&MOrder) -> bool,
    ) -> u32 {
        // Every Cancelled first (the engine's order among them is its arena order; the
        // comparison sorts them), then each changed level in book order.
        let mut changed = Vec::new();
        let mut count = 0;
        for b in 0..self.books.len() {
            if instrument.is_some_and(|i| i != self.books[b].cfg.id) {
                continue;
            }
            let victims: Vec<MOrder> = self.books[b]
                .orders
                .iter()
                .filter(|o| pick(o))
                .cloned()
                .collect();
            for v in &victims {
                self.books[b].orders.retain(|o| o.id != v.id);
                self.cancelled(b, v, reason);
                count += 1;
            }
            for side in [Side::Buy, Side::Sell] {
                let mut prices: Vec<Price> = victims
                    .iter()
                    .filter(|v| v.side == side)
                    .map(|v| v.price)
                    .collect();
                prices.sort();
                prices.dedup();
                if side == Side::Buy {
                    prices.reverse();
                }
                changed.extend(prices.into_iter().map(|p| (b, side, p)));
            }
        }
        for (b, side, price) in changed {
            self.level_change(b, side, price, true);
        }
        count
    }

    fn check_new(&self, b: usize, o: &NewOrder) -> Result<(), RejectReason> {
        let book = &self.books[b];
        let c = &book.cfg;
        if self.find(o.order_id).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if o.qty % c.lot_size != 0 {
            return Err(RejectReason::OffLot);
        }
        if o.qty > self.max_qty(c) {
            return Err(RejectReason::QuantityOverMax);
        }
        let limit = o.ord_type == OrdType::Limit;
        if limit {
            if o.price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if o.price % c.tick_size != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(o.price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        let value_at = if limit {
            Some(o.price)
        } else {
            book.prices(o.side.opposite()).first().copied()
        };
        if value_at.is_some_and(|p| !book.notional_ok(p, o.qty)) {
            return Err(RejectReason::NotionalOverMax);
        }
        let may_rest = limit && !matches!(o.tif, TimeInForce::Ioc | TimeInForce::Fok);
        if o.post_only {
            if !may_rest {
                return Err(RejectReason::PostOnlyNotResting);
            }
            if book.crosses(o.side, o.price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
        }
        if may_rest {
            if self.live() >= self.max_orders {
                return Err(RejectReason::OrderCapacityExhausted);
            }
            let prices = book.prices(o.side);
            if prices.len() >= self.max_levels && !prices.contains(&o.price) {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }

    fn new_order(&mut self, o: NewOrder) {
        let checked = match self.book_ix(o.instrument) {
            None => Err(RejectReason::UnknownInstrument),
            Some(b) => self.check_new(b, &o).map(|_| b),
        };
        let b = match checked {
            Ok(b) => b,
            Err(reason) => {
                return self.emit(EventKind::Rejected(Rejected {
                    order_id: o.order_id,
                    instrument: o.instrument,
                    session: o.session,
                    side: o.side,
                    ord_type: o.ord_type,
                    reason,
                    price: o.price,
                    qty: o.qty,
                }))
            }
        };
        let market = o.ord_type == OrdType::Market;
        let price = if market { 0 } else { o.price };
        self.emit(EventKind::Accepted(Accepted {
            order_id: o.order_id,
            instrument: o.instrument,
            session: o.session,
            owner: o.owner,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            post_only: o.post_only,
            price,
            qty: o.qty,
        }));
        let mut t = MTaker {
            id: o.order_id,
            session: o.session,
            owner: o.owner,
            side: o.side,
            limit: (!market).then_some(o.price),
            leaves: o.qty,
            filled: 0,
            stp: o.stp,
        };
        let as_order = |t: &MTaker| MOrder {
            id: t.id,
            session: t.session,
            owner: t.owner,
            side: t.side,
            price,
            leaves: t.leaves,
            filled: t.filled,
            tif: o.tif,
            stp: o.stp,
            post_only: o.post_only,
        };
        if o.tif == TimeInForce::Fok && !self.fillable(b, &t) {
            return self.cancelled(b, &as_order(&t), CancelReason::FokUnfillable);
        }
        let killed = self.match_taker(b, &mut t);
        if t.leaves == 0 {
            return;
        }
        if killed {
            return self.cancelled(b, &as_order(&t), CancelReason::SelfTrade);
        }
        if market || matches!(o.tif, TimeInForce::Ioc | TimeInForce::Fok) {
            return self.cancelled(b, &as_order(&t), CancelReason::Unfilled);
        }
        self.rest(b, as_order(&t));
    }

    fn rest(&mut self, b: usize, o: MOrder) {
        let existed = self.books[b].level(o.side, o.price).1 > 0;
        let (side, price) = (o.side, o.price);
        self.books[b].orders.push(o);
        self.level_change(b, side, price, existed);
    }

    fn fillable(&self, b: usize, t: &MTaker) -> bool {
        let book = &self.books[b];
        let opp = t.side.opposite();
        let mut need = t.leaves;
        for p in book.prices(opp) {
            if !marketable(t.side, t.limit, p) {
                return false;
            }
            for m in book.orders.iter().filter(|m| m.side == opp && m.price == p) {
                if t.stp != StpMode::None && m.owner == t.owner {
                    if t.stp != StpMode::CancelResting {
                        return false;
                    }
                    continue;
                }
                if m.leaves >= need {
                    return true;
                }
                need -= m.leaves;
            }
        }
        false
    }

    fn match_taker(&mut self, b: usize, t: &mut MTaker) -> bool {
        let opp = t.side.opposite();
        let instrument = self.books[b].cfg.id;
        while t.leaves > 0 {
            let Some(&best) = self.books[b].prices(opp).first() else {
                break;
            };
            if !marketable(t.side, t.limit, best) {
                break;
            }
            let (mut killed, mut changed) = (false, false);
            while t.leaves > 0 {
                let Some(i) = self.books[b]
                    .orders
                    .iter()
                    .position(|m| m.side == opp && m.price == best)
                else {
                    break;
                };
                let m = self.books[b].orders[i].clone();
                if t.stp != StpMode::None && m.owner == t.owner {
                    if t.stp != StpMode::CancelAggressing {
                        self.books[b].orders.remove(i);
                        self.cancelled(b, &m, CancelReason::SelfTrade);
                        changed = true;
                    }
                    if t.stp != StpMode::CancelResting {
                        killed = true;
                        break;
                    }
                    continue;
                }
                let q = t.leaves.min(m.leaves);
                t.leaves -= q;
                t.filled += q;
                let book = &mut self.books[b];
                book.orders[i].leaves -= q;
                book.orders[i].filled += q;
                let (ml, mc) = (book.orders[i].leaves, book.orders[i].filled);
                if ml == 0 {
                    book.orders.remove(i);
                }
                book.last_trade = Some(best);
                book.trades += 1;
                let exec_id = ((instrument as u64) << EXEC_COUNTER_BITS) | book.trades;
                changed = true;
                self.emit(EventKind::Trade(Trade {
                    exec_id,
                    instrument,
                    price: best,
                    qty: q,
                    aggressor_side: t.side,
                    maker: Fill {
                        order_id: m.id,
                        session: m.session,
                        leaves: ml,
                        cum_qty: mc,
                    },
                    taker: Fill {
                        order_id: t.id,
                        session: t.session,
                        leaves: t.leaves,
                        cum_qty: t.filled,
                    },
                }));
            }
            if changed {
                self.level_change(b, opp, best, true);
            }
            if killed {
                return true;
            }
        }
        false
    }

    fn cancel(&mut self, c: Cancel) {
        let reject = |m: &mut Model, reason| {
            m.emit(EventKind::CancelRejected(CancelRejected {
                order_id: c.order_id,
                session: c.session,
                kind: CancelKind::Cancel,
                reason,
            }))
        };
        let Some((b, i)) = self.find(c.order_id) else {
            return reject(self, RejectReason::UnknownOrder);
        };
        if self.books[b].orders[i].session != c.session {
            return reject(self, RejectReason::NotOrderOwner);
        }
        let o = self.books[b].orders.remove(i);
        self.cancelled(b, &o, CancelReason::User);
        self.level_change(b, o.side, o.price, true);
    }

    fn check_replace(
        &self,
        b: usize,
        o: &MOrder,
        r: &Replace,
        new_price: Price,
    ) -> Result<(), RejectReason> {
        let book = &self.books[b];
        let c = &book.cfg;
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if r.qty % c.lot_size != 0 {
            return Err(RejectReason::OffLot);
        }
        if r.qty > self.max_qty(c) {
            return Err(RejectReason::QuantityOverMax);
        }
        let moved = new_price != o.price;
        if moved {
            if new_price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if new_price % c.tick_size != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(new_price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        if !book.notional_ok(new_price, r.qty) {
            return Err(RejectReason::NotionalOverMax);
        }
        if moved {
            if o.post_only && book.crosses(o.side, new_price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
            let prices = book.prices(o.side);
            if prices.len() >= self.max_levels && !prices.contains(&new_price) {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }

    fn replace(&mut self, r: Replace) {
        let reject = |m: &mut Model, reason| {
            m.emit(EventKind::CancelRejected(CancelRejected {
                order_id: r.order_id,
                session: r.session,
                kind: CancelKind::Replace,
                reason,
            }))
        };
        let Some((b, i)) = self.find(r.order_id) else {
            return reject(self, RejectReason::UnknownOrder);
        };
        let o = self.books[b].orders[i].clone();
        if o.session != r.session {
            return reject(self, RejectReason::NotOrderOwner);
        }
        let new_price = r.price.unwrap_or(o.price);
        if let Err(reason) = self.check_replace(b, &o, &r, new_price) {
            return reject(self, reason);
        }
        if r.qty <= o.filled {
            self.books[b].orders.remove(i);
            self.cancelled(b, &o, CancelReason::ReplacedBelowFilled);
            return self.level_change(b, o.side, o.price, true);
        }
        let new_leaves = r.qty - o.filled;
        let same = new_price == o.price;
        let keep = same && new_leaves <= o.leaves;
        let instrument = self.books[b].cfg.id;
        self.emit(EventKind::Replaced(Replaced {
            order_id: o.id,
            instrument,
            session: o.session,
            side: o.side,
            priority_kept: keep,
            price: new_price,
            qty: r.qty,
            leaves: new_leaves,
            cum_qty: o.filled,
        }));
        if same {
            if keep {
                self.books[b].orders[i].leaves = new_leaves;
            } else {
                let mut moved = self.books[b].orders.remove(i);
                moved.leaves = new_leaves;
                self.books[b].orders.push(moved);
            }
            if new_leaves != o.leaves || !keep {
                self.level_change(b, o.side, o.price, true);
            }
            return;
        }
        self.books[b].orders.remove(i);
        self.level_change(b, o.side, o.price, true);
        let mut t = MTaker {
            id: o.id,
            session: o.session,
            owner: o.owner,
            side: o.side,
            limit: Some(new_price),
            leaves: new_leaves,
            filled: o.filled,
            stp: o.stp,
        };
        let killed = self.match_taker(b, &mut t);
        let now = MOrder {
            price: new_price,
            leaves: t.leaves,
            filled: t.filled,
            ..o
        };
        if t.leaves == 0 {
        } else if killed {
            self.cancelled(b, &now, CancelReason::SelfTrade);
        } else {
            self.rest(b, now);
        }
    }

    fn dump(&self) -> Vec<BookDump> {
        self.books
            .iter()
            .map(|book| {
                let side_dump = |side: Side| {
                    book.prices(side)
                        .into_iter()
                        .map(|p| {
                            let (qty, count) = book.level(side, p);
                            LevelDump {
                                info: LevelInfo {
                                    price: p,
                                    qty,
                                    count,
                                },
                                orders: book
                                    .orders
                                    .iter()
                                    .filter(|o| o.side == side && o.price == p)
                                    .map(|o| OrderInfo {
                                        order_id: o.id,
                                        instrument: book.cfg.id,
                                        session: o.session,
                                        owner: o.owner,
                                        side,
                                        price: p,
                                        leaves: o.leaves,
                                        filled: o.filled,
                                        tif: o.tif,
                                        stp: o.stp,
                                        post_only: o.post_only,
                                    })
                                    .collect(),
                            }
                        })
                        .collect()
                };
                BookDump {
                    instrument: book.cfg.id,
                    last_trade: book.last_trade,
                    bids: side_dump(Side::Buy),
                    asks: side_dump(Side::Sell),
                }
            })
            .collect()
    }
}

/// A mass cancel's `Cancelled` events come in the engine's arena order, which the model does
/// not reproduce (docs/engine.md leaves it unspecified beyond being deterministic): compare that
/// block sorted by order id, everything else exactly.
fn normalized(cmd: &Command, mut evs: Vec<Event>) -> Vec<Event> {
    if matches!(cmd, Command::MassCancel(_) | Command::ExpireDayOrders(_)) {
        let n = evs
            .iter()
            .take_while(|e| matches!(e.kind, EventKind::Cancelled(_)))
            .count();
        evs[..n].sort_by_key(|e| match e.kind {
            EventKind::Cancelled(c) => c.order_id,
            _ => unreachable!(),
        });
    }
    evs
}

/// Two small books with every kind of rule switched on in the second, and capacities small
/// enough that exhaustion happens in most runs.
fn model_config() -> EngineConfig {
    EngineConfig {
        instruments: vec![
            InstrumentConfig::plain(0, "A"),
            InstrumentConfig {
                id: 2,
                symbol: "B".into(),
                tick_size: 2,
                lot_size: 5,
                max_order_qty: Some(60),
                max_notional: Some(5_000),
                price_band: PriceBand::Percent {
                    bps: 500,
                    reference_price: 100,
                },
            },
        ],
        capacity: Capacity {
            max_orders: 24,
            max_levels_per_side: 6,
        },
    }
}

/// Order ids from three gateways with overlapping counters (the index's hard case), few
/// enough that cancels and replaces often name live orders and duplicates happen.
fn id() -> impl Strategy<Value = OrderId> {
    (0u8..3, 1u64..17).prop_map(|(gateway, counter)| order_id(gateway, counter))
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn new_order() -> impl Strategy<Value = Command> {
    (
        (
            id(),
            prop_oneof![3 => Just(0u32), 3 => Just(2u32), 1 => Just(1u32)],
            1u32..4,
            1u32..4,
            side(),
        ),
        (
            prop_oneof![6 => Just(OrdType::Limit), 1 => Just(OrdType::Market)],
            prop::sample::select(TimeInForce::ALL.to_vec()),
        ),
        (
            90i64..111,
            prop_oneof![8 => 1u64..25, 1 => Just(0u64), 2 => (1u64..14).prop_map(|x| x * 5)],
        ),
        (
            prop::bool::weighted(0.15),
            prop::sample::select(StpMode::ALL.to_vec()),
        ),
    )
        .prop_map(
            |(
                (order_id, instrument, session, owner, side),
                (ord_type, tif),
                (price, qty),
                (post_only, stp),
            )| {
                Command::New(NewOrder {
                    order_id,
                    instrument,
                    session,
                    owner,
                    side,
                    ord_type,
                    tif,
                    price,
                    qty,
                    post_only,
                    stp,
                })
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        10 => new_order(),
        3 => (id(), prop_oneof![4 => Just(1u32), 1 => 2u32..4]).prop_map(|(order_id, session)| Command::Cancel(Cancel { order_id, session })),
        3 => (id(), 1u32..4, prop::option::of(90i64..111), prop_oneof![1u64..30, (1u64..14).prop_map(|x| x * 5)]).prop_map(|(order_id, session, price, qty)| Command::Replace(Replace { order_id, session, price, qty })),
        1 => (1u32..4, 1u32..4, prop::option::of(prop::sample::select(vec![0u32, 1, 2])), prop::bool::ANY, prop::bool::ANY, prop::option::of(prop::sample::select(vec![Side::Buy, Side::Sell]))).prop_map(|(session, owner, instrument, by_owner, disconnect, side)| Command::MassCancel(MassCancel {
            side,
            session,
            owner,
            instrument,
            scope: if by_owner { MassCancelScope::ByOwner } else { MassCancelScope::BySession },
            reason: if disconnect { CancelReason::Disconnect } else { CancelReason::MassCancel },
        })),
        1 => prop::option::of(prop::sample::select(vec![0u32, 1, 2])).prop_map(|instrument| Command::ExpireDayOrders(ExpireDayOrders { instrument })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_reference_model(cmds in prop::collection::vec(command(), 1..250)) {
        let cfg = model_config();
        let mut engine = Engine::new(cfg.clone()).unwrap();
        let mut model = Model::new(&cfg);
        for (n, cmd) in cmds.iter().enumerate() {
            let mut got = Vec::new();
            engine.process(cmd, &mut got);
            let want = normalized(cmd, model.process(cmd));
            prop_assert_eq!(&normalized(cmd, got), &want, "command #{} {:?}", n, cmd);
            if let Err(e) = engine.check_invariants() {
                prop_assert!(false, "invariant broken after command #{} {:?}: {}", n, cmd, e);
            }
        }
        prop_assert_eq!(engine.dump(), model.dump());
    }
}

/// Proptest starts from random streams; this runs a long, dense stream of the benchmark mix
/// (many more orders per level than proptest's short streams) through both.
#[test]
fn engine_matches_the_model_on_a_long_workload_mix() {
    let mut cfg = common::plain_config();
    cfg.capacity = Capacity {
        max_orders: 4096,
        max_levels_per_side: 1024,
    };
    let mut engine = Engine::new(cfg.clone()).unwrap();
    let mut model = Model::new(&cfg);
    let mut mix = common::MixGen::new(7);
    for n in 0..20_000 {
        let cmd = if n < 500 {
            mix.passive()
        } else {
            mix.next_command()
        };
        let mut got = Vec::new();
        engine.process(&cmd, &mut got);
        assert_eq!(got, model.process(&cmd), "command #{n} {cmd:?}");
    }
    engine.check_invariants().unwrap();
    assert_eq!(engine.dump(), model.dump());
}
