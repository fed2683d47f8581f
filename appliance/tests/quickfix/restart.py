#!/usr/bin/env python3
"""QuickFIX initiator with a persistent FileStore across an appliance restart
(appliance/tests/quickfix_restart.rs drives it over stdin/stdout, one JSON object per line).

Phase 1: logs on as CLIENT1, rests BUY-R (buy 10 ACME @ 100.00 GTC), logs out; prints
{"phase": 1, ...} and waits for a line on stdin. Meanwhile the test trades against BUY-R
from another session (CLIENT1's fill report is stored by the appliance while CLIENT1 is
away), then kills the appliance with SIGKILL and says "go".

Phase 2: a new initiator over the same FileStore (ResetOnLogon=N: no reset) keeps trying to
connect every second while the test restarts the appliance on the same port. After the Logon
QuickFIX sees the appliance's sequence number above what it expects, asks with a
ResendRequest and gets the missed fill report (PossDupFlag=Y). Then it trades on: SELL-2
crosses the rest of BUY-R (a fill on both sides) and a cancel of what is left succeeds.
Prints {"phase": 2, ...} and exits.

Usage: restart.py PORT WORKDIR
"""
import json
import os
import sys
import threading
import time

try:
    import quickfix as fix
except ImportError:
    print(json.dumps({"error": "import quickfix failed: run `pip install quickfix-ssl`"}), flush=True)
    sys.exit(3)

PORT = int(sys.argv[1])
WORK = sys.argv[2]
DICT = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")


def now_str():
    t = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + ".%03d" % int((t % 1) * 1000)


class Observer(fix.Application):
    def __init__(self):
        super().__init__()
        self.lock = threading.Condition()
        self.sid = None
        self.logons = 0
        self.logouts = 0
        self.logon_seq_out = []
        self.logon_seq_in = []
        self.resend_requests_out = []
        self.rejects_out = 0
        self.rejects_in = 0
        # (ClOrdID, ExecType, OrdStatus, LastQty, PossDupFlag, MsgSeqNum)
        self.reports = []

    def _f(self, m, tag, header=False):
        src = m.getHeader() if header else m
        return src.getField(tag) if src.isSetField(tag) else None

    def onCreate(self, sid):
        self.sid = sid

    def onLogon(self, sid):
        with self.lock:
            self.logons += 1
            self.lock.notify_all()

    def onLogout(self, sid):
        with self.lock:
            self.logouts += 1
            self.lock.notify_all()

    def toAdmin(self, m, sid):
        t = self._f(m, 35, True)
        with self.lock:
            if t == "A":
                self.logon_seq_out.append(int(self._f(m, 34, True)))
            elif t == "2":
                self.resend_requests_out.append((int(self._f(m, 7)), int(self._f(m, 16))))
            elif t == "3":
                self.rejects_out += 1

    def fromAdmin(self, m, sid):
        t = self._f(m, 35, True)
        with self.lock:
            if t == "A":
                self.logon_seq_in.append(int(self._f(m, 34, True)))
            elif t == "3":
                self.rejects_in += 1
            self.lock.notify_all()

    def toApp(self, m, sid):
        pass

    def fromApp(self, m, sid):
        if self._f(m, 35, True) != "8":
            return
        with self.lock:
            self.reports.append((
                m.getField(11), m.getField(150), m.getField(39), self._f(m, 32) or "",
                self._f(m, 43, True) or "N", int(self._f(m, 34, True)),
            ))
            self.lock.notify_all()

    def count(self, cl, exec_type):
        return sum(1 for r in self.reports if r[0] == cl and r[1] == exec_type)

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError("timed out waiting for " + what)
                self.lock.wait(left)


def settings_file():
    path = os.path.join(WORK, "initiator.cfg")
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
ResetOnLogout=N
ResetOnDisconnect=N
PersistMessages=Y

[SESSION]
BeginString=FIX.4.4
SenderCompID=CLIENT1
TargetCompID=APPLIANCE
SocketConnectHost=127.0.0.1
SocketConnectPort={PORT}
HeartBtInt=5
""")
    return path


def order(cl, side, qty, price, tif):
    m = fix.Message()
    m.getHeader().setField(fix.MsgType("D"))
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


def cancel(cl, orig, side):
    m = fix.Message()
    m.getHeader().setField(fix.MsgType("F"))
    m.setField(fix.OrigClOrdID(orig))
    m.setField(fix.ClOrdID(cl))
    m.setField(fix.Symbol("ACME"))
    m.setField(fix.Side(side))
    m.setField(fix.StringField(60, now_str()))
    return m


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    os.makedirs(WORK, exist_ok=True)
    app = Observer()
    settings = fix.SessionSettings(settings_file())
    send = lambda m: fix.Session.sendToTarget(m, app.sid)
    result = {"phase": 1}
    ok = True
    try:
        initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
        initiator.start()
        try:
            app.wait(lambda: app.logons >= 1, 20, "first logon")
            send(order("BUY-R", "1", 10, "100.00", "1"))
            app.wait(lambda: app.count("BUY-R", "0") == 1, 10, "BUY-R acknowledged")
            session = fix.Session.lookupSession(app.sid)
            session.logout("phase 1 done")
            app.wait(lambda: app.logouts >= 1, 10, "first logout")
            result["sender_after_phase1"] = session.getExpectedSenderNum()
            result["target_after_phase1"] = session.getExpectedTargetNum()
        finally:
            initiator.stop()
            # Destroy it now: QuickFIX keeps one global registry of sessions, and the old
            # initiator's destructor running after the next one registered CLIENT1 would
            # take the new session with it.
            del initiator
    except Exception as e:
        result["error"] = str(e)
        ok = False
    emit(result)
    if not ok:
        sys.exit(1)

    # The test trades against BUY-R, kills the appliance and says go.
    if sys.stdin.readline().strip() != "go":
        emit({"phase": 2, "error": "no go from the test"})
        sys.exit(1)
    result = {"phase": 2}
    try:
        initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
        initiator.start()
        try:
            app.wait(lambda: app.logons >= 2, 60, "logon after the restart")
            app.wait(lambda: any(r[0] == "BUY-R" and r[1] == "F" for r in app.reports), 20,
                     "the fill report missed while away, by ResendRequest")
            send(order("SELL-2", "2", 2, "100.00", "3"))
            app.wait(lambda: app.count("SELL-2", "F") == 1 and
                     sum(1 for r in app.reports if r[0] == "BUY-R" and r[1] == "F") == 2, 10,
                     "SELL-2 trading with the rest of BUY-R")
            send(cancel("CXL-R", "BUY-R", "1"))
            app.wait(lambda: app.count("CXL-R", "4") == 1 or app.count("CXL-R", "8") == 1, 10,
                     "the cancel of BUY-R")
            session = fix.Session.lookupSession(app.sid)
            want = app.logouts + 1
            session.logout("done")
            app.wait(lambda: app.logouts >= want, 10, "last logout")
        finally:
            initiator.stop()
    except Exception as e:
        result["error"] = str(e)
        ok = False
    result.update({
        "logons": app.logons,
        "logon_seq_out": app.logon_seq_out,
        "logon_seq_in": app.logon_seq_in,
        "resend_requests_out": app.resend_requests_out,
        "rejects_sent_by_quickfix": app.rejects_out,
        "rejects_received": app.rejects_in,
        "reports": app.reports,
    })
    emit(result)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
