//! The gateway's view of orders: what it must remember to turn engine events into replies.
//!
//! The engine knows orders by [`OrderId`]; clients know them by their own id (FIX ClOrdID,
//! binary token). The gateway keeps, per order, everything a reply needs that the engine's
//! event does not carry (client id, symbol, original quantity, average-price accumulator), in a
//! slab reserved at start-up, and an index from (session, client id) to the slab slot.
//!
//! The [`OrderId`] the gateway gives the engine encodes where to find the order again, so the
//! return path needs no hash lookup: `gateway (8 bits) | generation (24 bits) | slot (32 bits)`.
//! The generation tells a stale id (an event for an order whose slot was reused) from a live one.
//!
//! Slots are reused oldest-first (a FIFO free list): an order's client id stays in the index
//! until its slot is reused, so duplicate client ids are refused among at least the last
//! `capacity` orders, and a cancel naming a recently finished order gets "too late" rather than
//! "unknown".

use crate::engine::{InstrumentId, OrdType, OrderId, Price, Qty, Side, TimeInForce};

/// Longest client order id kept (FIX ClOrdID); longer ids are refused at the gateway.
pub const MAX_CLIENT_ID: usize = 36;

/// A client's order id: FIX ClOrdID bytes, or a binary token's 8 little-endian bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientId {
    len: u8,
    bytes: [u8; MAX_CLIENT_ID],
}

impl Default for ClientId {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; MAX_CLIENT_ID],
        }
    }
}

impl std::fmt::Debug for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientId({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

impl ClientId {
    /// From raw bytes; `None` when longer than [`MAX_CLIENT_ID`].
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() > MAX_CLIENT_ID {
            return None;
        }
        let mut id = Self {
            len: b.len() as u8,
            bytes: [0; MAX_CLIENT_ID],
        };
        id.bytes[..b.len()].copy_from_slice(b);
        Some(id)
    }

    /// From a binary-protocol token.
    #[inline]
    pub fn from_token(token: u64) -> Self {
        let mut id = Self {
            len: 8,
            bytes: [0; MAX_CLIENT_ID],
        };
        id.bytes[..8].copy_from_slice(&token.to_le_bytes());
        id
    }

    /// The id's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The binary token this id was made from (0 if it is not 8 bytes long).
    #[inline]
    pub fn token(&self) -> u64 {
        if self.len != 8 {
            return 0;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[..8]);
        u64::from_le_bytes(b)
    }
}

/// Where an order is in its life, as far as the gateway knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderState {
    /// The slot holds no order.
    #[default]
    Free,
    /// Sent to the engine, not acknowledged yet.
    PendingNew,
    /// Acknowledged and not finished.
    Live,
    /// Filled, cancelled or rejected: kept only so duplicate ids and late cancels are answered.
    Done,
}

/// A cancel or replace the gateway sent and the engine has not answered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pending {
    /// Nothing pending.
    #[default]
    None,
    /// A cancel, asked with this request id (FIX ClOrdID of the cancel request).
    Cancel(ClientId),
    /// A replace: the order takes this client id (and these values) when it is applied.
    Replace(ClientId),
}

/// What the gateway remembers about one order.
#[derive(Clone, Copy, Debug)]
pub struct OrderInfo {
    /// Generation of the slot (matches bits 32..56 of the order id while this order owns it).
    pub generation: u32,
    /// Life-cycle state.
    pub state: OrderState,
    /// Local session index (within this gateway).
    pub session: u16,
    /// The client's current id for the order.
    pub client_id: ClientId,
    /// The id before the last replace (FIX OrigClOrdID of the replace's report).
    pub orig_client_id: ClientId,
    /// A cancel or replace in flight.
    pub pending: Pending,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only, as entered.
    pub post_only: bool,
    /// Current limit price.
    pub price: Price,
    /// Current total quantity.
    pub qty: Qty,
    /// Filled so far.
    pub cum_qty: Qty,
    /// Sum of price x quantity over fills (for the average price).
    pub cum_notional: i128,
}

impl OrderInfo {
    /// A free slot.
    pub const EMPTY: OrderInfo = OrderInfo {
        generation: 0,
        state: OrderState::Free,
        session: 0,
        client_id: ClientId {
            len: 0,
            bytes: [0; MAX_CLIENT_ID],
        },
        orig_client_id: ClientId {
            len: 0,
            bytes: [0; MAX_CLIENT_ID],
        },
        pending: Pending::None,
        instrument: 0,
        side: Side::Buy,
        ord_type: OrdType::Limit,
        tif: TimeInForce::Day,
        post_only: false,
        price: 0,
        qty: 0,
        cum_qty: 0,
        cum_notional: 0,
    };
}

/// Index entry: the key is kept in full so finished orders are still recognised.
#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    session: u16,
    id: ClientId,
    slot: u32,
}

/// Why an order could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The session already used this client id (among the orders still remembered).
    Duplicate,
    /// Every slot holds a live or pending order.
    Full,
}

/// The order slab and its client-id index. All memory is reserved by [`OrderBook::new`].
pub struct OrderBook {
    gateway: u8,
    orders: Vec<OrderInfo>,
    /// FIFO of free slots: reuse the slot that has been free longest.
    free: std::collections::VecDeque<u32>,
    index: Vec<Entry>,
    mask: usize,
    /// SipHash-1-3 keyed at random when the book is made (std's `RandomState`): a client
    /// cannot compute ClOrdIDs that collide in the index (with an unkeyed hash it could
    /// build a probe run of the table's length and slow every session of the gateway). The
    /// key changes only where entries sit in the index, never which slot an order gets, so
    /// snapshots, the state hash and the engine's output are the same from run to run.
    hasher: std::hash::RandomState,
    /// Live or pending orders per local session (for the open-order quota).
    live_per_session: Vec<u32>,
    /// Gross open notional per (local session, instrument), `session * instruments +
    /// instrument`: the sum of |price| x leaves over the session's working orders, in price
    /// units x quantity (for the notional quota). Kept by every change of a working order's
    /// terms ([`OrderBook::unexpose`] before, [`OrderBook::expose`] after) and by `finish`.
    exposure: Vec<i128>,
    /// Instruments per session row of `exposure`.
    instruments: usize,
}

const SLOT_BITS: u32 = 32;
const GEN_BITS: u32 = 24;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

impl OrderBook {
    /// A book for `capacity` orders belonging to gateway `gateway`.
    pub fn new(gateway: u8, capacity: usize) -> Self {
        assert!(capacity >= 1 && capacity <= u32::MAX as usize);
        // An order holds at most three ids at once (previous, current, pending replace):
        // four entries per slot keep the load at or below 3/4 in the worst case and near 1/2
        // in practice, and the probe loops always find an empty entry.
        let index_len = (capacity * 4).next_power_of_two();
        Self {
            gateway,
            orders: vec![OrderInfo::EMPTY; capacity],
            free: (0..capacity as u32).collect(),
            index: vec![Entry::default(); index_len],
            mask: index_len - 1,
            hasher: std::hash::RandomState::new(),
            live_per_session: Vec::new(),
            exposure: Vec::new(),
            instruments: 0,
        }
    }

    /// The order id of the order in `slot`.
    #[inline]
    pub fn order_id(&self, slot: u32) -> OrderId {
        ((self.gateway as u64) << (SLOT_BITS + GEN_BITS))
            | ((self.orders[slot as usize].generation as u64 & GEN_MASK) << SLOT_BITS)
            | slot as u64
    }

    /// The gateway an order id belongs to.
    #[inline]
    pub fn gateway_of(order_id: OrderId) -> u8 {
        (order_id >> (SLOT_BITS + GEN_BITS)) as u8
    }

    /// The slot of `order_id`, if the id is this gateway's and still current.
    #[inline]
    pub fn slot_of(&self, order_id: OrderId) -> Option<u32> {
        if Self::gateway_of(order_id) != self.gateway {
            return None;
        }
        let slot = (order_id & u32::MAX as u64) as u32;
        let gen = ((order_id >> SLOT_BITS) & GEN_MASK) as u32;
        let o = self.orders.get(slot as usize)?;
        (o.state != OrderState::Free && o.generation & GEN_MASK as u32 == gen).then_some(slot)
    }

    /// The order in `slot`.
    #[inline]
    pub fn get(&self, slot: u32) -> &OrderInfo {
        &self.orders[slot as usize]
    }

    /// The order in `slot`, to update.
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut OrderInfo {
        &mut self.orders[slot as usize]
    }

    /// Looks up a client id of a session.
    #[inline]
    pub fn find(&self, session: u16, id: &ClientId) -> Option<u32> {
        let mut i = self.home(session, id);
        loop {
            let e = &self.index[i];
            if !e.used {
                return None;
            }
            if e.session == session && e.id == *id {
                return Some(e.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Registers a new order under `id` and returns its slot. Capacity is reclaimed from the
    /// oldest finished order; only when every slot holds a live order is the call refused.
    #[inline]
    pub fn insert(&mut self, session: u16, id: ClientId) -> Result<u32, InsertError> {
        if self.find(session, &id).is_some() {
            return Err(InsertError::Duplicate);
        }
        let slot = self.take_free_slot().ok_or(InsertError::Full)?;
        self.count_live(session as usize, true);
        let o = &mut self.orders[slot as usize];
        o.generation = o.generation.wrapping_add(1) & GEN_MASK as u32;
        o.state = OrderState::PendingNew;
        o.session = session;
        o.client_id = id;
        o.orig_client_id = id;
        o.pending = Pending::None;
        o.cum_qty = 0;
        o.cum_notional = 0;
        self.index_insert(session, id, slot);
        Ok(slot)
    }

    /// Adds another client id for an existing order (the new ClOrdID of a replace), so the
    /// order can be found by it. Fails on a duplicate. An order holds at most three ids at
    /// once (the previous, the current and a pending replace's); the caller removes the
    /// oldest with [`OrderBook::remove_alias`] when a replace is applied or refused, so that
    /// reclaiming the slot forgets every id (it removes `client_id` and `orig_client_id`).
    pub fn add_alias(&mut self, session: u16, id: ClientId, slot: u32) -> Result<(), InsertError> {
        if self.find(session, &id).is_some() {
            return Err(InsertError::Duplicate);
        }
        self.index_insert(session, id, slot);
        Ok(())
    }

    /// Forgets one id of an order (see [`OrderBook::add_alias`]).
    pub fn remove_alias(&mut self, session: u16, id: &ClientId, slot: u32) {
        self.index_remove_slot(session, id, slot);
    }

    /// Marks the order finished; its slot goes to the back of the free list, its ids stay
    /// findable until the slot is reused.
    #[inline]
    pub fn finish(&mut self, slot: u32) {
        self.unexpose(slot);
        let o = &mut self.orders[slot as usize];
        if o.state != OrderState::Done && o.state != OrderState::Free {
            o.state = OrderState::Done;
            o.pending = Pending::None;
            let s = o.session as usize;
            self.free.push_back(slot);
            self.count_live(s, false);
        }
    }

    /// Sizes the per-session live counts and open notionals for `sessions` local sessions
    /// and `instruments` instruments (cold path, at start, before any order).
    pub fn set_sessions(&mut self, sessions: usize, instruments: usize) {
        self.live_per_session = vec![0; sessions];
        self.instruments = instruments;
        self.exposure = vec![0; sessions * instruments];
    }

    /// An order's part of its session's open notional: |price| x leaves while it works.
    #[inline]
    fn exposure_of(o: &OrderInfo) -> i128 {
        match o.state {
            OrderState::PendingNew | OrderState::Live => {
                (o.price as i128).abs() * o.qty.saturating_sub(o.cum_qty) as i128
            }
            _ => 0,
        }
    }

    /// Adds (`add`) or takes off the part of the order in `slot` in its session's open
    /// notional, reading the order in place.
    #[inline]
    fn adjust_exposure(&mut self, slot: u32, add: bool) {
        let o = &self.orders[slot as usize];
        let x = Self::exposure_of(o);
        if x == 0 || o.instrument as usize >= self.instruments {
            return;
        }
        let i = o.session as usize * self.instruments + o.instrument as usize;
        if let Some(e) = self.exposure.get_mut(i) {
            if add {
                *e += x;
            } else {
                *e -= x;
            }
        }
    }

    /// Adds the order in `slot` to its session's open notional (after its terms changed).
    #[inline]
    pub fn expose(&mut self, slot: u32) {
        self.adjust_exposure(slot, true);
    }

    /// Takes the order in `slot` out of its session's open notional (before its terms
    /// change).
    #[inline]
    pub fn unexpose(&mut self, slot: u32) {
        self.adjust_exposure(slot, false);
    }

    /// Gross open notional of local session `s` on `instrument` (price units x quantity).
    #[inline]
    pub fn exposure(&self, s: u16, instrument: InstrumentId) -> i128 {
        if (instrument as usize) >= self.instruments {
            return 0;
        }
        let i = s as usize * self.instruments + instrument as usize;
        self.exposure.get(i).copied().unwrap_or(0)
    }

    /// What the order in `slot` adds to its session's open notional now.
    #[inline]
    pub fn exposure_of_slot(&self, slot: u32) -> i128 {
        Self::exposure_of(&self.orders[slot as usize])
    }

    /// Recomputes every open notional from the orders (cold path: after recovery, whose
    /// replay sets terms without the bookkeeping).
    fn recompute_exposure(&mut self) {
        self.exposure.iter_mut().for_each(|e| *e = 0);
        for slot in 0..self.orders.len() as u32 {
            self.expose(slot);
        }
    }

    /// Live or pending orders of local session `s`.
    #[inline]
    pub fn live_of(&self, s: u16) -> u32 {
        self.live_per_session.get(s as usize).copied().unwrap_or(0)
    }

    #[inline]
    fn count_live(&mut self, s: usize, up: bool) {
        if let Some(n) = self.live_per_session.get_mut(s) {
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
        }
    }

    /// Orders that are live or pending (for tests and metrics).
    pub fn live(&self) -> usize {
        self.orders
            .iter()
            .filter(|o| matches!(o.state, OrderState::PendingNew | OrderState::Live))
            .count()
    }

    /// Capacity (slots).
    pub fn capacity(&self) -> usize {
        self.orders.len()
    }

    /// Splits an order id into (gateway, generation, slot).
    #[inline]
    pub fn parts(order_id: OrderId) -> (u8, u32, u32) {
        (
            Self::gateway_of(order_id),
            ((order_id >> SLOT_BITS) & GEN_MASK) as u32,
            (order_id & u32::MAX as u64) as u32,
        )
    }

    /// Recovery: puts an order entered by session `session` as `id` into the slot and
    /// generation its order id names (as the live table had chosen them), forgetting the
    /// finished order the slot held. The free list is rebuilt by
    /// [`OrderBook::rebuild_free_list`] once recovery is done. Cold path.
    pub fn restore_insert(
        &mut self,
        order_id: OrderId,
        session: u16,
        id: ClientId,
    ) -> Result<u32, String> {
        let (g, gen, slot) = Self::parts(order_id);
        if g != self.gateway || slot as usize >= self.orders.len() {
            return Err(format!(
                "order id {order_id:#x} is not a slot of gateway {} (capacity {})",
                self.gateway,
                self.orders.len()
            ));
        }
        let o = self.orders[slot as usize];
        match o.state {
            OrderState::Free => {}
            OrderState::Done => {
                self.index_remove_slot(o.session, &o.client_id, slot);
                self.index_remove_slot(o.session, &o.orig_client_id, slot);
            }
            _ => {
                return Err(format!(
                    "order id {order_id:#x}: slot {slot} still holds a live order"
                ))
            }
        }
        if self.find(session, &id).is_some() {
            return Err(format!(
                "order id {order_id:#x}: client id {id:?} already indexed for session {session}"
            ));
        }
        self.count_live(session as usize, true);
        let o = &mut self.orders[slot as usize];
        o.generation = gen;
        o.state = OrderState::PendingNew;
        o.session = session;
        o.client_id = id;
        o.orig_client_id = id;
        o.pending = Pending::None;
        o.cum_qty = 0;
        o.cum_notional = 0;
        self.index_insert(session, id, slot);
        Ok(slot)
    }

    /// Rebuilds the free list from the slots' states (after recovery): free slots first,
    /// then finished ones, each ascending. Cold path.
    pub fn rebuild_free_list(&mut self) {
        self.free.clear();
        let states = |want: OrderState| {
            self.orders
                .iter()
                .enumerate()
                .filter(move |(_, o)| o.state == want)
                .map(|(i, _)| i as u32)
        };
        let list: Vec<u32> = states(OrderState::Free)
            .chain(states(OrderState::Done))
            .collect();
        self.free.extend(list);
        self.recompute_exposure();
    }

    /// Every slot holding an order (live, pending or finished), ascending. Cold path.
    pub fn occupied(&self) -> impl Iterator<Item = (u32, &OrderInfo)> {
        self.orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.state != OrderState::Free)
            .map(|(i, o)| (i as u32, o))
    }

    /// Recovery from a snapshot: puts `info` into `slot` as it was, with its client ids
    /// indexed (current, previous and a pending replace's). Cold path.
    pub fn restore_slot(&mut self, slot: u32, info: OrderInfo) -> Result<(), String> {
        if slot as usize >= self.orders.len()
            || self.orders[slot as usize].state != OrderState::Free
        {
            return Err(format!("slot {slot} out of range or restored twice"));
        }
        self.orders[slot as usize] = info;
        if matches!(info.state, OrderState::PendingNew | OrderState::Live) {
            self.count_live(info.session as usize, true);
        }
        self.index_insert(info.session, info.client_id, slot);
        if info.orig_client_id != info.client_id {
            self.index_insert(info.session, info.orig_client_id, slot);
        }
        if let Pending::Replace(new_id) = info.pending {
            if new_id != info.client_id && new_id != info.orig_client_id {
                self.index_insert(info.session, new_id, slot);
            }
        }
        Ok(())
    }

    fn take_free_slot(&mut self) -> Option<u32> {
        while let Some(slot) = self.free.pop_front() {
            let o = self.orders[slot as usize];
            match o.state {
                OrderState::Free => return Some(slot),
                OrderState::Done => {
                    // Forget every id that pointed at the finished order.
                    self.index_remove_slot(o.session, &o.client_id, slot);
                    self.index_remove_slot(o.session, &o.orig_client_id, slot);
                    return Some(slot);
                }
                // A slot is only queued when free or done; anything else is a bookkeeping bug
                // that must not hand a live order's slot to another order.
                _ => continue,
            }
        }
        None
    }

    /// Where `(session, id)` starts probing in the index.
    #[inline]
    fn home(&self, session: u16, id: &ClientId) -> usize {
        use std::hash::BuildHasher;
        self.hasher.hash_one((session, id.as_bytes())) as usize & self.mask
    }

    /// The longest probe run in the index: how many entries a lookup may have to look at
    /// (cold path: walks the whole index; for tests and diagnostics).
    pub fn longest_probe(&self) -> usize {
        let mut longest = 0;
        for (i, e) in self.index.iter().enumerate() {
            if e.used {
                let home = self.home(e.session, &e.id);
                longest = longest.max(((i + self.index.len() - home) & self.mask) + 1);
            }
        }
        longest
    }

    fn index_insert(&mut self, session: u16, id: ClientId, slot: u32) {
        let mut i = self.home(session, &id);
        while self.index[i].used {
            i = (i + 1) & self.mask;
        }
        self.index[i] = Entry {
            used: true,
            session,
            id,
            slot,
        };
    }

    /// Removes the entry (session, id) if it points at `slot`, closing the gap by shifting
    /// later entries of the probe run back (no tombstones, so lookups stay short forever).
    fn index_remove_slot(&mut self, session: u16, id: &ClientId, slot: u32) {
        let mut i = self.home(session, id);
        loop {
            let e = &self.index[i];
            if !e.used {
                return;
            }
            if e.session == session && e.id == *id && e.slot == slot {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = self.index[j];
            if !e.used {
                break;
            }
            let home = self.home(e.session, &e.id);
            // Move `e` into the hole unless its home lies cyclically in (hole, j].
            let in_range = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !in_range {
                self.index[hole] = e;
                hole = j;
            }
        }
        self.index[hole] = Entry::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index hash this gateway used before it was keyed: FNV-1a over the session and the
    /// bytes, a Fibonacci multiply, the low bits. An adversary can compute it offline.
    fn unkeyed_home(session: u16, id: &[u8], mask: usize) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in session.to_le_bytes().iter().chain(id) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h.wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize & mask
    }

    #[test]
    fn client_ids_chosen_to_collide_do_not_build_a_probe_run() {
        // 600 ClOrdIDs that all share one home under the unkeyed hash (found by brute force,
        // as an attacker would): there, every lookup walked a run of up to 600 entries.
        let book_capacity = 1024;
        let mut book = OrderBook::new(0, book_capacity);
        let mask = book.mask;
        let mut ids = Vec::new();
        let mut n: u64 = 0;
        while ids.len() < 600 {
            let text = format!("ATTACK-{n:012}");
            n += 1;
            if unkeyed_home(7, text.as_bytes(), mask) == 0 {
                ids.push(text);
            }
        }
        for t in &ids {
            book.insert(7, ClientId::from_bytes(t.as_bytes()).unwrap())
                .unwrap();
        }
        // Keyed: about as long as random ids at this load (600 in 4,096: a handful).
        let longest = book.longest_probe();
        assert!(
            longest <= 24,
            "longest probe run {longest} for 600 colliding ids"
        );
        for t in &ids {
            assert!(book
                .find(7, &ClientId::from_bytes(t.as_bytes()).unwrap())
                .is_some());
        }
        // The same ids under the unkeyed hash would have formed one run of 600.
        let runs = ids
            .iter()
            .filter(|t| unkeyed_home(7, t.as_bytes(), mask) == 0)
            .count();
        assert_eq!(runs, 600);
    }

    fn id(s: &str) -> ClientId {
        ClientId::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn live_orders_are_counted_per_session() {
        let mut b = OrderBook::new(0, 8);
        b.set_sessions(2, 1);
        let s1 = b.insert(0, id("a")).unwrap();
        b.insert(0, id("b")).unwrap();
        b.insert(1, id("c")).unwrap();
        assert_eq!((b.live_of(0), b.live_of(1)), (2, 1));
        b.finish(s1);
        b.finish(s1); // twice: counted once
        assert_eq!(b.live_of(0), 1);
        // A restored live order counts; a restored finished one does not.
        let mut r = OrderBook::new(0, 8);
        r.set_sessions(2, 1);
        let mut info = *b.get(s1);
        info.state = OrderState::Live;
        r.restore_slot(3, info).unwrap();
        info.state = OrderState::Done;
        info.client_id = id("z");
        info.orig_client_id = id("z");
        r.restore_slot(4, info).unwrap();
        assert_eq!(r.live_of(0), 1);
    }

    #[test]
    fn client_ids() {
        assert!(ClientId::from_bytes(&[b'x'; MAX_CLIENT_ID + 1]).is_none());
        assert_eq!(MAX_CLIENT_ID, 36, "a UUID fits");
        assert_eq!(
            ClientId::from_bytes(&[b'u'; 36]).unwrap().as_bytes(),
            &[b'u'; 36]
        );
        assert_eq!(id("abc").as_bytes(), b"abc");
        assert_eq!(ClientId::from_token(42).token(), 42);
        assert_eq!(id("abc").token(), 0);
    }

    #[test]
    fn order_ids_encode_gateway_generation_and_slot() {
        let mut b = OrderBook::new(3, 4);
        let s = b.insert(1, id("a")).unwrap();
        let oid = b.order_id(s);
        assert_eq!(OrderBook::gateway_of(oid), 3);
        assert_eq!(b.slot_of(oid), Some(s));
        // Another gateway's id, or a stale generation, is not found.
        assert_eq!(b.slot_of(oid ^ (1 << 56)), None);
        b.finish(s);
        for k in 0..4 {
            b.insert(1, id(&format!("x{k}"))).unwrap();
        }
        assert_eq!(
            b.slot_of(oid),
            None,
            "the slot was reused: the old id is stale"
        );
    }

    #[test]
    fn duplicates_refused_while_remembered_and_finished_orders_found() {
        let mut b = OrderBook::new(0, 3);
        let a = b.insert(7, id("A")).unwrap();
        assert_eq!(b.insert(7, id("A")), Err(InsertError::Duplicate));
        // Same id in another session is a different order.
        let a2 = b.insert(8, id("A")).unwrap();
        assert_ne!(a, a2);
        b.finish(a);
        assert_eq!(
            b.find(7, &id("A")),
            Some(a),
            "a finished order stays findable"
        );
        assert_eq!(b.get(a).state, OrderState::Done);
        assert_eq!(b.insert(7, id("A")), Err(InsertError::Duplicate));
    }

    #[test]
    fn capacity_reclaims_oldest_finished_and_refuses_when_all_live() {
        let mut b = OrderBook::new(0, 2);
        let a = b.insert(1, id("a")).unwrap();
        let _c = b.insert(1, id("c")).unwrap();
        assert_eq!(
            b.insert(1, id("d")),
            Err(InsertError::Full),
            "both slots hold live orders"
        );
        b.finish(a);
        let d = b.insert(1, id("d")).unwrap();
        assert_eq!(d, a);
        assert_eq!(
            b.find(1, &id("a")),
            None,
            "the reused slot's old id is forgotten"
        );
        assert_eq!(b.find(1, &id("d")), Some(d));
    }

    #[test]
    fn aliases_follow_replaces_and_are_forgotten_with_the_slot() {
        let mut b = OrderBook::new(0, 1);
        let s = b.insert(1, id("old")).unwrap();
        b.add_alias(1, id("new"), s).unwrap();
        // A second replace pending at the same time would add a third id; refusing it
        // removes the id again.
        b.add_alias(1, id("newer"), s).unwrap();
        b.remove_alias(1, &id("newer"), s);
        assert_eq!(b.find(1, &id("newer")), None);
        assert_eq!(b.add_alias(1, id("old"), s), Err(InsertError::Duplicate));
        b.get_mut(s).orig_client_id = id("old");
        b.get_mut(s).client_id = id("new");
        assert_eq!(b.find(1, &id("old")), Some(s));
        assert_eq!(b.find(1, &id("new")), Some(s));
        b.finish(s);
        b.insert(1, id("next")).unwrap();
        assert_eq!(b.find(1, &id("old")), None);
        assert_eq!(b.find(1, &id("new")), None);
    }

    /// Random inserts and slot reuse against a HashMap model: the open-addressing index with
    /// backward-shift deletion finds exactly the ids the model holds.
    #[test]
    fn index_matches_a_model_under_churn() {
        use std::collections::HashMap;
        let cap = 64;
        let mut b = OrderBook::new(0, cap);
        let mut model: HashMap<(u16, Vec<u8>), u32> = HashMap::new();
        let mut live: Vec<u32> = Vec::new();
        let mut x: u64 = 0x1234_5678;
        for n in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let session = (x % 3) as u16;
            if x % 5 < 3 || live.is_empty() {
                let cid = id(&format!("o{n}"));
                match b.insert(session, cid) {
                    Ok(slot) => {
                        // The slot's previous ids disappear from the model.
                        model.retain(|_, s| *s != slot);
                        model.insert((session, cid.as_bytes().to_vec()), slot);
                        live.push(slot);
                    }
                    Err(InsertError::Full) => assert_eq!(live.len(), cap),
                    Err(e) => panic!("{e:?}"),
                }
            } else {
                let k = (x as usize / 7) % live.len();
                b.finish(live.swap_remove(k));
            }
        }
        for ((session, bytes), slot) in &model {
            let cid = ClientId::from_bytes(bytes).unwrap();
            assert_eq!(b.find(*session, &cid), Some(*slot));
        }
        let used = b.index.iter().filter(|e| e.used).count();
        assert_eq!(used, model.len());
    }
}
