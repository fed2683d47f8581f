#!/usr/bin/env python3
"""A QuickFIX acceptor with order matching: the comparator for the appliance's latency targets.

The appliance's relative targets are stated against "a QuickFIX acceptor with order matching,
measured by `bench latency` in the same run". This is that venue: the FIX 4.4 session layer is
QuickFIX (PyPI `quickfix-ssl`, `import quickfix`), the order book is plain Python. It speaks
what the appliance speaks (docs/fix-rules-of-engagement.md), so `bench latency --protocol fix`
drives both the same way, and every request gets the answer the appliance would give:

- NewOrderSingle (D): ExecutionReport 150=0 39=0 first, then one 150=F report per fill to each
  side (39=1/2, 31/32/6/14/151), then for an IOC, FOK or market remainder 150=4; refused
  orders get 150=8 39=8 with OrdRejReason (103) and Text (58).
- OrderCancelRequest (F): 150=4 with 11 = the cancel's ClOrdID and 41 = the order's, or
  OrderCancelReject (9) with 102=1 (unknown order) or 102=0 (too late: filled or cancelled).
- OrderCancelReplaceRequest (G): 150=5 (or 150=4 when the new total is at or below the filled
  quantity), or OrderCancelReject 434=2.
- OrderMassCancelRequest (q, 530=7 all, 530=1 one symbol): a 150=4 report per cancelled
  order, then OrderMassCancelReport (r) with 533 = the count.
- Anything else: BusinessMessageReject 380=3 (raised as QuickFIX's UnsupportedMessageType).

Matching: price-time priority per symbol (best price first, arrival order within a price),
trades at the resting order's price, partial fills on both sides, limit and market orders,
TimeInForce Day/GTC (rest), IOC (remainder cancelled), FOK (all or nothing, book untouched
otherwise); market orders never rest. Prices are integers with 4 implied decimals, converted
from the decimal text exactly (no floats anywhere on the order path). The instruments, tick,
price band, quantity and notional limits are those of the appliance's embedded default
configuration (appliance/config/default.toml); self-trade prevention is off, as there; a
session's resting orders are cancelled when it disconnects (cancel_on_disconnect = true).

Session settings mirror the appliance's: SenderCompID APPLIANCE, sessions CLIENT1..CLIENT8,
FIX44.xml validation, ResetOnLogon, the client's HeartBtInt, a memory store, Nagle off.

Run (then `bench latency --protocol fix --port 19888 ...`, or bench/vs-quickfix.sh):

    pip install quickfix-ssl==1.15.1.post4      # scripts/requirements.txt
    python3 bench/quickfix_venue.py [--port 19888] [--run-for 600] [--log-dir DIR]

It prints `listening on 127.0.0.1:PORT` once it accepts connections (`--port 0` picks a free
port), and stops by itself after --run-for seconds, or on SIGINT/SIGTERM.
"""

import argparse
import bisect
import collections
import os
import signal
import socket
import sys
import threading
import time
import traceback

try:
    import quickfix as fix
except ImportError:
    sys.exit("quickfix_venue.py: `import quickfix` failed: pip install quickfix-ssl==1.15.1.post4")

# ---- The appliance's embedded default configuration (appliance/config/default.toml) ----

PRICE_DECIMALS = 4
# AvgPx carries two more decimals than prices, as the appliance's reports do.
AVG_PX_DECIMALS = PRICE_DECIMALS + 2
TICK_UNITS = 100  # 0.01
BAND_BPS = 1_000  # 10% around the last trade price (the reference price before a trade)
MAX_ORDER_QTY = 1_000_000
MAX_NOTIONAL = 100_000_000 * 10**PRICE_DECIMALS  # 100000000.00, in price units x quantity
REFERENCE_PRICES = {"ACME": 1_000_000, "BOLT": 500_000, "CRUX": 250_000}  # 100, 50, 25
SESSIONS = ["CLIENT%d" % i for i in range(1, 9)]
SENDER_COMP_ID = "APPLIANCE"
# Finished orders remembered so that a late cancel is answered "too late" rather than
# "unknown" and a reused ClOrdID is refused (the appliance's gateway keeps 262,144).
FINISHED_MEMORY = 262_144

BUY, SELL = "1", "2"
MARKET, LIMIT = "1", "2"
DAY, GTC, IOC, FOK = "0", "1", "3", "4"

# Text (58) and reason codes as the appliance sends them (appliance/src/vocab.rs).
REJECT_UNKNOWN_SYMBOL = (1, "unknown symbol")
REJECT_DUPLICATE = (6, "duplicate ClOrdID")
REJECT_ORD_TYPE = (11, "unsupported order type")
REJECT_TIF = (11, "unsupported time in force")
REJECT_SIDE = (99, "invalid side")
REJECT_QTY = (13, "invalid quantity")
REJECT_QTY_MAX = (13, "quantity above the maximum")
REJECT_PRICE = (99, "invalid price for the instrument")
REJECT_TICK = (99, "price not a multiple of the tick size")
REJECT_BAND = (3, "price outside the price band")
REJECT_NOTIONAL = (3, "notional above the maximum")
CXL_TOO_LATE = (0, "too late: order no longer live")
CXL_UNKNOWN = (1, "unknown order")
CXL_DUPLICATE = (6, "duplicate ClOrdID")
CXL_OTHER = 99


# ---- Exact decimal <-> integer conversions (no float on the order path) ----


def price_to_units(text):
    """`"101.25"` -> 1_012_500 (4 implied decimals), exactly; None if it is not a plain decimal
    or has more significant decimals than that. Trailing zeros are not significant."""
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > PRICE_DECIMALS:
        return None
    return int(whole) * 10**PRICE_DECIMALS + int(frac.ljust(PRICE_DECIMALS, "0") or 0)


def qty_to_int(text):
    """A whole quantity (`100` or `100.00`; `100.5` is not one), or None."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not (frac.isdigit() and frac.strip("0") == "")):
        return None
    return int(whole)


def units_to_text(units, decimals=PRICE_DECIMALS):
    """1_012_500 -> `"101.25"`: trailing zeros trimmed, as the appliance writes prices."""
    whole, frac = divmod(units, 10**decimals)
    if frac == 0:
        return str(whole)
    return ("%d.%0*d" % (whole, decimals, frac)).rstrip("0")


class Clock:
    """UTCTimestamp text with milliseconds, the calendar part formatted once per second
    (strftime per message would be a measurable share of a Python venue's time)."""

    def __init__(self):
        self.second = -1
        self.prefix = ""

    def now(self):
        ns = time.time_ns()
        second, rest = divmod(ns, 1_000_000_000)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(second))
        return "%s.%03d" % (self.prefix, rest // 1_000_000)


# ---- The order book ----


class Order:
    __slots__ = (
        "order_id", "cl_ord_id", "session", "symbol", "side", "ord_type", "tif",
        "price", "qty", "cum_qty", "cum_notional", "account",
    )

    def __init__(self, order_id, cl_ord_id, session, symbol, side, ord_type, tif, price, qty,
                 account):
        self.order_id = order_id
        self.cl_ord_id = cl_ord_id
        self.session = session  # the Client it belongs to
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.price = price  # integer units; None for a market order
        self.qty = qty  # total (filled + open), FIX OrderQty
        self.cum_qty = 0
        self.cum_notional = 0  # sum of price units x quantity over the fills, for AvgPx
        self.account = account

    @property
    def leaves(self):
        return self.qty - self.cum_qty

    def status(self):
        """OrdStatus of a live order."""
        if self.cum_qty == 0:
            return "0"
        return "2" if self.cum_qty >= self.qty else "1"


class BookSide:
    """One side of a book: a sorted list of prices and, per price, the orders in arrival order
    (an OrderedDict, so a cancel in the middle of a level is O(1) and the head is O(1))."""

    def __init__(self, is_bid):
        self.is_bid = is_bid
        self.prices = []  # ascending; the best bid is the last, the best ask the first
        self.levels = {}  # price -> OrderedDict(order_id -> Order)

    def best(self):
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def reaches(self, price, limit):
        """Whether an aggressor with `limit` (None: market) may trade at this side's `price`."""
        if limit is None:
            return True
        return price >= limit if self.is_bid else price <= limit

    def by_priority(self):
        """Prices from the best, for the FOK fillability count."""
        return reversed(self.prices) if self.is_bid else iter(self.prices)

    def add(self, order):
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = collections.OrderedDict()
            bisect.insort(self.prices, order.price)
        level[order.order_id] = order

    def remove(self, order):
        level = self.levels[order.price]
        del level[order.order_id]
        if not level:
            self.drop_level(order.price)

    def drop_level(self, price):
        del self.levels[price]
        del self.prices[bisect.bisect_left(self.prices, price)]


class Book:
    def __init__(self, symbol, reference_price):
        self.symbol = symbol
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        # The band is centred on the last trade price, the reference price until a trade.
        self.band_centre = reference_price

    def own_side(self, side):
        return self.bids if side == BUY else self.asks

    def opposite(self, side):
        return self.asks if side == BUY else self.bids

    def in_band(self, price):
        return abs(price - self.band_centre) * 10_000 <= self.band_centre * BAND_BPS

    def fillable(self, side, limit, qty):
        """Whether `qty` could trade right now within `limit` (FOK)."""
        opposite = self.opposite(side)
        available = 0
        for price in opposite.by_priority():
            if not opposite.reaches(price, limit):
                break
            for maker in opposite.levels[price].values():
                available += maker.leaves
                if available >= qty:
                    return True
        return False


class Client:
    """A FIX session's application state: its QuickFIX Session and its live orders."""

    def __init__(self, name, session):
        self.name = name
        self.session = session
        self.live = {}  # ClOrdID -> Order


# ---- The venue: QuickFIX application callbacks and the matching ----


class Venue(fix.Application):
    """Every callback runs on the SocketAcceptor's one thread (one thread serves all
    connections and the matching, like the appliance's shared threading), so the books need no
    lock."""

    def __init__(self):
        super().__init__()
        self.books = {symbol: Book(symbol, ref) for symbol, ref in REFERENCE_PRICES.items()}
        self.clients = {}  # SessionID string -> Client
        self.finished = collections.OrderedDict()  # (client name, ClOrdID) -> final OrdStatus
        self.next_order_id = 0
        self.next_exec_id = 0
        self.clock = Clock()
        self.handlers = {
            "D": self.on_new_order,
            "F": self.on_cancel,
            "G": self.on_replace,
            "q": self.on_mass_cancel,
        }

    # -- QuickFIX callbacks --

    def onCreate(self, session_id):
        pass

    def onLogon(self, session_id):
        key = session_id.toString()
        self.clients[key] = Client(
            session_id.getTargetCompID().getValue(), fix.Session.lookupSession(session_id)
        )

    def onLogout(self, session_id):
        # cancel_on_disconnect = true, as in the appliance's default sessions. No reports: the
        # session is gone and ResetOnLogon starts the next connection afresh.
        client = self.clients.pop(session_id.toString(), None)
        if client is not None:
            for order in list(client.live.values()):
                self.books[order.symbol].own_side(order.side).remove(order)
                self.finish(order, "4")

    def toAdmin(self, message, session_id):
        pass

    def fromAdmin(self, message, session_id):
        pass

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        # Called only for messages QuickFIX validated against FIX44.xml.
        msg_type = message.getHeader().getField(35)
        handler = self.handlers.get(msg_type)
        if handler is None:
            raise fix.UnsupportedMessageType()  # QuickFIX answers BusinessMessageReject 380=3
        client = self.clients[session_id.toString()]
        try:
            handler(client, message)
        except Exception:  # a bug here must not leave the request unanswered silently
            traceback.print_exc()
            self.business_reject(client, message, "venue error: " + repr(sys.exc_info()[1]))

    # -- outbound messages --

    def send(self, client, msg_type, fields):
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in fields:
            message.setField(tag, value)
        client.session.send(message)

    def exec_id(self):
        self.next_exec_id += 1
        return str(self.next_exec_id)

    def execution_report(self, order, exec_type, ord_status, leaves, cl_ord_id=None,
                         orig_cl_ord_id=None, last_qty=None, last_px=None, text=None):
        """ExecutionReport (8) about `order`, to its own session, with every field QuickFIX's
        FIX44.xml requires (37 17 150 39 54 151 14 6, and 55 11 60)."""
        avg_px = 0
        if order.cum_qty:
            avg_px = order.cum_notional * 10 ** (AVG_PX_DECIMALS - PRICE_DECIMALS) // order.cum_qty
        fields = [
            (37, str(order.order_id)),
            (11, cl_ord_id or order.cl_ord_id),
            (17, self.exec_id()),
            (150, exec_type),
            (39, ord_status),
            (55, order.symbol),
            (54, order.side),
            (38, str(order.qty)),
            (40, order.ord_type),
            (59, order.tif),
            (151, str(leaves)),
            (14, str(order.cum_qty)),
            (6, units_to_text(avg_px, AVG_PX_DECIMALS)),
            (60, self.clock.now()),
        ]
        if order.price is not None:
            fields.append((44, units_to_text(order.price)))
        if orig_cl_ord_id is not None:
            fields.append((41, orig_cl_ord_id))
        if last_qty is not None:
            fields.append((32, str(last_qty)))
            fields.append((31, units_to_text(last_px)))
        if order.account is not None:
            fields.append((1, order.account))
        if text is not None:
            fields.append((58, text))
        self.send(order.session, "8", fields)

    def reject_order(self, client, message, reason):
        """ExecutionReport 150=8 39=8 for a refused NewOrderSingle (OrderID NONE)."""
        code, text = reason
        fields = [
            (37, "NONE"),
            (11, message.getField(11)),
            (17, self.exec_id()),
            (150, "8"),
            (39, "8"),
            (103, str(code)),
            (55, message.getField(55)),
            (54, message.getField(54)),
            (38, message.getField(38)),
            (40, message.getField(40)),
            (151, "0"),
            (14, "0"),
            (6, "0"),
            (60, self.clock.now()),
            (58, text),
        ]
        self.send(client, "8", fields)

    def cancel_reject(self, client, message, response_to, reason, ord_status="8"):
        """OrderCancelReject (9): 434=1 for a cancel, 2 for a replace."""
        code, text = reason
        fields = [
            (37, "NONE"),
            (11, message.getField(11)),
            (41, message.getField(41)),
            (39, ord_status),
            (434, response_to),
            (102, str(code)),
            (60, self.clock.now()),
            (58, text),
        ]
        self.send(client, "9", fields)

    def business_reject(self, client, message, text):
        header = message.getHeader()
        fields = [
            (45, header.getField(34)),
            (372, header.getField(35)),
            (380, "0"),
            (58, text[:200]),
        ]
        if message.isSetField(11):
            fields.append((379, message.getField(11)))
        self.send(client, "j", fields)

    # -- order lifecycle --

    def finish(self, order, ord_status):
        """The order leaves the session's live set; remembered (bounded) for late requests."""
        client = order.session
        del client.live[order.cl_ord_id]
        self.finished[(client.name, order.cl_ord_id)] = ord_status
        if len(self.finished) > FINISHED_MEMORY:
            self.finished.popitem(last=False)

    def known_cl_ord_id(self, client, cl_ord_id):
        return cl_ord_id in client.live or (client.name, cl_ord_id) in self.finished

    def match(self, book, taker):
        """Trades `taker` against the opposite side while prices reach its limit: best price
        first, arrival order within a price, at the resting order's price. Reports go to the
        maker, then the taker, per trade."""
        opposite = book.opposite(taker.side)
        while taker.cum_qty < taker.qty:
            price = opposite.best()
            if price is None or not opposite.reaches(price, taker.price):
                return
            level = opposite.levels[price]
            while level and taker.cum_qty < taker.qty:
                maker = next(iter(level.values()))
                qty = min(taker.leaves, maker.leaves)
                book.band_centre = price
                for order in (maker, taker):
                    order.cum_qty += qty
                    order.cum_notional += price * qty
                    leaves = order.leaves
                    self.execution_report(order, "F", "2" if leaves == 0 else "1", leaves,
                                          last_qty=qty, last_px=price)
                if maker.leaves == 0:
                    level.popitem(last=False)
                    self.finish(maker, "2")
            if not level:
                opposite.drop_level(price)

    def after_matching(self, book, order):
        """The remainder of an order that has matched: rests (Day/GTC limit), or is cancelled
        (IOC, FOK, market), or the order is finished because it filled."""
        if order.leaves == 0:
            self.finish(order, "2")
        elif order.price is not None and order.tif in (DAY, GTC):
            book.own_side(order.side).add(order)
        else:
            self.execution_report(order, "4", "4", 0, text="unfilled remainder cancelled")
            self.finish(order, "4")

    def on_new_order(self, client, message):
        cl_ord_id = message.getField(11)
        symbol = message.getField(55)
        side = message.getField(54)
        ord_type = message.getField(40)
        tif = message.getField(59) if message.isSetField(59) else DAY
        if side not in (BUY, SELL):
            return self.reject_order(client, message, REJECT_SIDE)
        if ord_type not in (MARKET, LIMIT):
            return self.reject_order(client, message, REJECT_ORD_TYPE)
        if tif not in (DAY, GTC, IOC, FOK):
            return self.reject_order(client, message, REJECT_TIF)
        if self.known_cl_ord_id(client, cl_ord_id):
            return self.reject_order(client, message, REJECT_DUPLICATE)
        book = self.books.get(symbol)
        if book is None:
            return self.reject_order(client, message, REJECT_UNKNOWN_SYMBOL)
        qty = qty_to_int(message.getField(38))
        if not qty:
            return self.reject_order(client, message, REJECT_QTY)
        if qty > MAX_ORDER_QTY:
            return self.reject_order(client, message, REJECT_QTY_MAX)
        price = None
        if ord_type == LIMIT:
            price = price_to_units(message.getField(44)) if message.isSetField(44) else None
            if not price:
                return self.reject_order(client, message, REJECT_PRICE)
            if price % TICK_UNITS:
                return self.reject_order(client, message, REJECT_TICK)
            if not book.in_band(price):
                return self.reject_order(client, message, REJECT_BAND)
            notional_price = price
        else:
            # A market order is valued at the opposite best price (where it starts trading).
            notional_price = book.opposite(side).best() or 0
        if notional_price * qty > MAX_NOTIONAL:
            return self.reject_order(client, message, REJECT_NOTIONAL)

        self.next_order_id += 1
        account = message.getField(1) if message.isSetField(1) else None
        order = Order(self.next_order_id, cl_ord_id, client, symbol, side, ord_type, tif, price,
                      qty, account)
        client.live[cl_ord_id] = order
        self.execution_report(order, "0", "0", qty)
        if tif == FOK and not book.fillable(side, price, qty):
            # All or nothing: the book is not touched.
            self.execution_report(order, "4", "4", 0, text="fill or kill could not fill")
            return self.finish(order, "4")
        self.match(book, order)
        self.after_matching(book, order)

    def on_cancel(self, client, message):
        orig = message.getField(41)
        order = client.live.get(orig)
        if order is None:
            return self.refuse_late_or_unknown(client, message, "1", orig)
        self.books[order.symbol].own_side(order.side).remove(order)
        self.execution_report(order, "4", "4", 0, cl_ord_id=message.getField(11),
                              orig_cl_ord_id=orig)
        self.finish(order, "4")

    def refuse_late_or_unknown(self, client, message, response_to, orig):
        final_status = self.finished.get((client.name, orig))
        if final_status is None:
            self.cancel_reject(client, message, response_to, CXL_UNKNOWN)
        else:
            self.cancel_reject(client, message, response_to, CXL_TOO_LATE, final_status)

    def on_replace(self, client, message):
        orig = message.getField(41)
        new_id = message.getField(11)
        order = client.live.get(orig)
        if order is None:
            return self.refuse_late_or_unknown(client, message, "2", orig)
        status = order.status()
        if new_id != orig and self.known_cl_ord_id(client, new_id):
            return self.cancel_reject(client, message, "2", CXL_DUPLICATE, status)
        qty = qty_to_int(message.getField(38))
        if not qty or qty > MAX_ORDER_QTY:
            return self.cancel_reject(client, message, "2", (CXL_OTHER, REJECT_QTY[1]), status)
        book = self.books[order.symbol]
        price = order.price
        if message.getField(40) == LIMIT and message.isSetField(44):
            price = price_to_units(message.getField(44))
            if not price:
                return self.cancel_reject(client, message, "2", (CXL_OTHER, REJECT_PRICE[1]),
                                          status)
            if price % TICK_UNITS:
                return self.cancel_reject(client, message, "2", (CXL_OTHER, REJECT_TICK[1]),
                                          status)
            # The band is checked only when the price changes: a quantity reduction is never
            # refused because the band moved.
            if price != order.price and not book.in_band(price):
                return self.cancel_reject(client, message, "2", (CXL_OTHER, REJECT_BAND[1]),
                                          status)
        if price * qty > MAX_NOTIONAL:
            return self.cancel_reject(client, message, "2", (CXL_OTHER, REJECT_NOTIONAL[1]),
                                      status)

        side = book.own_side(order.side)
        # The order takes the replace's ClOrdID from here on.
        del client.live[orig]
        order.cl_ord_id = new_id
        client.live[new_id] = order
        if qty <= order.cum_qty:
            # Replaced to a total at or below what has filled: the order is finished.
            side.remove(order)
            self.execution_report(order, "4", "4", 0, orig_cl_ord_id=orig,
                                  text="replaced below the filled quantity")
            return self.finish(order, "4")
        if price == order.price and qty - order.cum_qty <= order.leaves:
            # Same price, open quantity down (or equal): in place, priority kept.
            order.qty = qty
            self.execution_report(order, "5", order.status(), order.leaves, orig_cl_ord_id=orig)
            return None
        # Quantity up or a new price: priority lost; a new price may trade like a new order.
        side.remove(order)
        order.qty = qty
        order.price = price
        self.execution_report(order, "5", order.status(), order.leaves, orig_cl_ord_id=orig)
        self.match(book, order)
        self.after_matching(book, order)
        return None

    def on_mass_cancel(self, client, message):
        cl_ord_id = message.getField(11)
        request_type = message.getField(530)
        symbol = message.getField(55) if message.isSetField(55) else None
        side = message.getField(54) if message.isSetField(54) else None
        reject_reason = None
        if request_type == "1":
            if symbol not in self.books:
                reject_reason = "1"  # unknown security
        elif request_type != "7":
            reject_reason = "99"  # only 1 (by symbol) and 7 (all) are supported
        count = 0
        if reject_reason is None:
            for order in list(client.live.values()):
                if request_type == "1" and order.symbol != symbol:
                    continue
                if side is not None and order.side != side:
                    continue
                self.books[order.symbol].own_side(order.side).remove(order)
                self.execution_report(order, "4", "4", 0, text="mass cancel")
                self.finish(order, "4")
                count += 1
        self.next_order_id += 1
        fields = [
            (11, cl_ord_id),
            (37, str(self.next_order_id) if reject_reason is None else "NONE"),
            (530, request_type),
            (531, request_type if reject_reason is None else "0"),
            (533, str(count)),
            (60, self.clock.now()),
        ]
        if symbol is not None:
            fields.append((55, symbol))
        if reject_reason is not None:
            fields.append((532, reject_reason))
            fields.append((58, "mass cancel rejected"))
        self.send(client, "r", fields)


# ---- Settings, the listening socket, start and stop ----


def data_dictionary_path():
    # quickfix-ssl installs its dictionaries as data files under the interpreter's prefix, not
    # next to the module in site-packages.
    path = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    if not os.path.exists(path):
        sys.exit("quickfix_venue.py: %s not found (is quickfix-ssl installed in this Python?)"
                 % path)
    return path


def settings_text(port, log_dir):
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "SocketAcceptPort=%d" % port,
        "SenderCompID=" + SENDER_COMP_ID,
        "BeginString=FIX.4.4",
        # Always in session (StartTime = EndTime): the appliance has no trading hours.
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        "SocketNodelay=Y",
        "SocketReuseAddress=Y",
        "UseDataDictionary=Y",
        "DataDictionary=" + data_dictionary_path(),
        # The bench logs on with ResetSeqNumFlag=Y; every Logon starts both sides at 1.
        "ResetOnLogon=Y",
        # SendingTime within 120 s, the appliance's sending_time_window_secs.
        "CheckLatency=Y",
        "MaxLatency=120",
        # HeartBtInt: an acceptor takes the one in the client's Logon (the bench sends 30).
    ]
    if log_dir:
        lines.append("FileLogPath=" + log_dir)
    for target in SESSIONS:
        lines += ["[SESSION]", "TargetCompID=" + target]
    return "\n".join(lines) + "\n"


def listening_fd(port):
    """The descriptor of this process's listening TCP socket on `port`."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue  # not a socket (or already closed)
        try:
            if (probe.family == socket.AF_INET and probe.type == socket.SOCK_STREAM
                    and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                    and probe.getsockname()[1] == port):
                return fd
        except OSError:
            pass
        finally:
            probe.close()
    return None


def start(venue, port, log_dir):
    """Starts the acceptor listening on 127.0.0.1:`port` only (0: a free port); returns the
    acceptor and the port.

    QuickFIX 1.15.1 has no SocketAcceptHost: its acceptor binds every interface. So QuickFIX
    is given a throwaway port, and its listening descriptor is then replaced (dup2) by a socket
    of ours bound to 127.0.0.1:`port`; QuickFIX's select loop accepts from that descriptor
    unchanged. The throwaway all-interfaces listener exists for the few milliseconds between
    QuickFIX's start and the dup2, on a port nobody was told."""
    loopback = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    loopback.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    loopback.bind(("127.0.0.1", port))
    loopback.listen(128)
    port = loopback.getsockname()[1]
    throwaway = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    throwaway.bind(("0.0.0.0", 0))
    throwaway_port = throwaway.getsockname()[1]
    throwaway.close()

    settings = fix.SessionSettings()
    settings.setFromString(settings_text(throwaway_port, log_dir))
    store = fix.MemoryStoreFactory()
    if log_dir:
        # Only on request (debugging): a file log writes every message and event.
        os.makedirs(log_dir, exist_ok=True)
        acceptor = fix.SocketAcceptor(venue, store, settings, fix.FileLogFactory(settings))
    else:
        # No log factory at all: QuickFIX logs nothing, so logging cannot dominate the figures.
        acceptor = fix.SocketAcceptor(venue, store, settings)
    acceptor.start()
    fd = listening_fd(throwaway_port)
    if fd is None:
        acceptor.stop(True)
        sys.exit("quickfix_venue.py: QuickFIX's listening socket on %d not found" % throwaway_port)
    os.dup2(loopback.fileno(), fd)
    loopback.close()
    # QuickFIX is blocked in select() on the old descriptor for up to its timer interval; a
    # connection to the new one waits at most that long, once, at start-up.
    return acceptor, port


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=19888,
                        help="FIX port on 127.0.0.1 (0: pick a free one; default 19888)")
    parser.add_argument("--run-for", type=float, default=600.0,
                        help="stop after this many seconds (default 600)")
    parser.add_argument("--log-dir", help="QuickFIX file log here (default: no log at all)")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    venue = Venue()
    acceptor, port = start(venue, args.port, args.log_dir)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    deadline = time.monotonic() + args.run_for
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
    # Logs the sessions out (QuickFIX waits for their Logouts, at most a few seconds).
    acceptor.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
