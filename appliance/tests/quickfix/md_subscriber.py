#!/usr/bin/env python3
"""QuickFIX subscribes to the appliance's FIX market data (appliance/tests/quickfix_interop.rs).

Two QuickFIX sessions: CLIENT1 rests an offer; CLIENT2 sends a MarketDataRequest (35=V) built
with QuickFIX's FIX44 classes (groups NoMDEntryTypes and NoRelatedSym) for bids, offers and
trades on ACME, 5 levels, incremental; gets the snapshot (W), then buys part of the offer and
rests a bid and gets the incremental refreshes (X); asks for an unknown symbol and gets a
MarketDataRequestReject (Y); unsubscribes. Every W, X and Y is read through QuickFIX's group
classes after QuickFIX validated it against its own FIX44.xml (fromApp is only called for a
valid message; an invalid one makes QuickFIX send a Reject, counted). Prints one JSON object.

Usage: md_subscriber.py PORT WORKDIR
"""
import json
import os
import sys
import threading
import time

try:
    import quickfix as fix
    import quickfix44 as fix44
except ImportError:
    print(json.dumps({"error": "import quickfix failed: run `pip install quickfix-ssl`"}))
    sys.exit(3)

PORT = int(sys.argv[1])
WORK = sys.argv[2]
DICT = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")


def now_str():
    t = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + ".%03d" % int((t % 1) * 1000)


def opt(g, tag):
    return g.getField(tag) if g.isSetField(tag) else ""


class Observer(fix.Application):
    def __init__(self):
        super().__init__()
        self.lock = threading.Condition()
        self.sids = {}
        self.rejects_out = 0
        self.rejects_in = 0
        self.reports = []  # (session, ClOrdID, ExecType)
        self.snapshots = []  # (MDReqID, Symbol, [[269, 270, 271, 346]])
        self.incrementals = []  # (MDReqID, [[279, 269, 55, 270, 271, 346]])
        self.md_rejects = []  # (MDReqID, 281, 58)
        self.business_rejects = 0

    def onCreate(self, sid):
        self.sids[sid.getSenderCompID().getValue()] = sid

    def onLogon(self, sid):
        with self.lock:
            self.lock.notify_all()

    def onLogout(self, sid):
        pass

    def toAdmin(self, m, sid):
        if m.getHeader().getField(35) == "3":
            with self.lock:
                self.rejects_out += 1

    def fromAdmin(self, m, sid):
        if m.getHeader().getField(35) == "3":
            with self.lock:
                self.rejects_in += 1
                self.lock.notify_all()

    def toApp(self, m, sid):
        pass

    def fromApp(self, m, sid):
        t = m.getHeader().getField(35)
        who = sid.getSenderCompID().getValue()
        with self.lock:
            if t == "8":
                self.reports.append((who, m.getField(11), m.getField(150)))
            elif t == "W":
                g = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
                entries = []
                for i in range(1, int(m.getField(268)) + 1):
                    m.getGroup(i, g)
                    entries.append([g.getField(269), opt(g, 270), opt(g, 271), opt(g, 346)])
                self.snapshots.append((opt(m, 262), m.getField(55), entries))
            elif t == "X":
                g = fix44.MarketDataIncrementalRefresh.NoMDEntries()
                entries = []
                for i in range(1, int(m.getField(268)) + 1):
                    m.getGroup(i, g)
                    entries.append([g.getField(279), opt(g, 269), opt(g, 55), opt(g, 270), opt(g, 271), opt(g, 346)])
                self.incrementals.append((opt(m, 262), entries))
            elif t == "Y":
                self.md_rejects.append((m.getField(262), opt(m, 281), opt(m, 58)))
            elif t == "j":
                self.business_rejects += 1
            self.lock.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError("timed out waiting for " + what)
                self.lock.wait(left)


def settings_file():
    path = os.path.join(WORK, "md.cfg")
    sessions = "".join(f"""
[SESSION]
BeginString=FIX.4.4
SenderCompID={name}
TargetCompID=APPLIANCE
SocketConnectHost=127.0.0.1
SocketConnectPort={PORT}
HeartBtInt=30
""" for name in ("CLIENT1", "CLIENT2"))
    with open(path, "w") as f:
        f.write(f"""[DEFAULT]
ConnectionType=initiator
ReconnectInterval=1
FileStorePath={WORK}/store
FileLogPath={WORK}/log
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=Y
DataDictionary={DICT}
SocketNodelay=Y
ResetOnLogon=N
{sessions}""")
    return path


def order(cl, side, qty, price, tif):
    m = fix44.NewOrderSingle()
    m.setField(fix.ClOrdID(cl))
    m.setField(fix.HandlInst("1"))
    m.setField(fix.Symbol("ACME"))
    m.setField(fix.Side(side))
    m.setField(fix.StringField(60, now_str()))
    m.setField(fix.OrderQty(qty))
    m.setField(fix.OrdType("2"))
    m.setField(fix.StringField(44, price))
    m.setField(fix.TimeInForce(tif))
    return m


def md_request(req_id, kind, symbols, types=("0", "1", "2"), depth=5):
    m = fix44.MarketDataRequest()
    m.setField(fix.MDReqID(req_id))
    m.setField(fix.SubscriptionRequestType(kind))
    m.setField(fix.MarketDepth(depth))
    m.setField(fix.MDUpdateType(1))
    for t in types:
        g = fix44.MarketDataRequest.NoMDEntryTypes()
        g.setField(fix.MDEntryType(t))
        m.addGroup(g)
    for s in symbols:
        g = fix44.MarketDataRequest.NoRelatedSym()
        g.setField(fix.Symbol(s))
        m.addGroup(g)
    return m


def main():
    os.makedirs(WORK, exist_ok=True)
    app = Observer()
    settings = fix.SessionSettings(settings_file())
    result = {}
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    initiator.start()
    ok = False
    try:
        app.wait(lambda: len(app.sids) == 2 and all(fix.Session.lookupSession(s).isLoggedOn() for s in app.sids.values()), 20, "both logons")
        one, two = app.sids["CLIENT1"], app.sids["CLIENT2"]
        send = fix.Session.sendToTarget
        has = lambda who, cl, et: any(r == (who, cl, et) for r in app.reports)
        send(order("OFFER", "2", 7, "101.00", "1"), one)
        app.wait(lambda: has("CLIENT1", "OFFER", "0"), 10, "OFFER ack")
        send(md_request("MD1", "1", ["ACME"]), two)
        app.wait(lambda: len(app.snapshots) == 1, 10, "the snapshot")
        # Take 2 of the offer, rest a bid: a trade, an offer that shrinks, a new bid.
        send(order("TAKE", "1", 2, "101.00", "3"), two)
        send(order("BID", "1", 5, "99.00", "1"), two)
        app.wait(lambda: has("CLIENT2", "BID", "0"), 10, "BID ack")
        want = 3
        app.wait(lambda: sum(len(x[1]) for x in app.incrementals) >= want, 10, "three refresh entries")
        send(md_request("BAD", "1", ["NOPE"]), two)
        app.wait(lambda: len(app.md_rejects) == 1, 10, "the reject")
        send(md_request("MD1", "2", ["ACME"]), two)
        time.sleep(0.3)
        before = len(app.incrementals)
        send(order("BID2", "1", 1, "98.00", "1"), two)
        app.wait(lambda: has("CLIENT2", "BID2", "0"), 10, "BID2 ack")
        time.sleep(0.5)
        result["refreshes_after_unsubscribe"] = len(app.incrementals) - before
        ok = True
    except Exception as e:
        result["error"] = str(e)
    finally:
        initiator.stop()
    result.update({
        "snapshots": app.snapshots,
        "incrementals": app.incrementals,
        "md_rejects": app.md_rejects,
        "rejects_sent_by_quickfix": app.rejects_out,
        "rejects_received": app.rejects_in,
        "business_rejects": app.business_rejects,
    })
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
