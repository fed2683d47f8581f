#!/usr/bin/env python3
"""QuickFIX initiator against the real appliance (appliance/tests/quickfix_interop.rs).

Logs on as CLIENT1 to APPLIANCE, stays idle for heartbeats, sends a TestRequest, trades on
ACME (an order crossed by its own opposite order: fills on both sides), gets an off-tick
order rejected, cancels, replaces, mass-cancels; every ExecutionReport and report is
validated by QuickFIX against its own FIX44.xml (fromApp is only called for valid messages;
invalid ones make QuickFIX send a Reject, counted). Then a ResendRequest each way, logout,
reconnect with sequence numbers continuing, one more order, logout. Prints one JSON object.

Usage: initiator.py PORT WORKDIR
"""
import json
import os
import sys
import threading
import time

try:
    import quickfix as fix
except ImportError:
    print(json.dumps({"error": "import quickfix failed: run `pip install quickfix-ssl`"}))
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
        self.heartbeats_in = 0
        self.test_request_answers = []
        self.resend_requests_in = []
        self.resend_requests_out = []
        self.rejects_out = 0
        self.rejects_in = 0
        self.logon_seq_out = []
        self.logon_seq_in = []
        self.reports = []  # (MsgType, ClOrdID, ExecType or response, OrdStatus, PossDupFlag)

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
                self.resend_requests_out.append(int(self._f(m, 7)))
            elif t == "3":
                self.rejects_out += 1

    def fromAdmin(self, m, sid):
        t = self._f(m, 35, True)
        with self.lock:
            if t == "0":
                if m.isSetField(112):
                    self.test_request_answers.append(m.getField(112))
                else:
                    self.heartbeats_in += 1
            elif t == "A":
                self.logon_seq_in.append(int(self._f(m, 34, True)))
            elif t == "2":
                self.resend_requests_in.append(int(self._f(m, 7)))
            elif t == "3":
                self.rejects_in += 1
            self.lock.notify_all()

    def toApp(self, m, sid):
        pass

    def fromApp(self, m, sid):
        t = self._f(m, 35, True)
        with self.lock:
            if t == "8":
                self.reports.append(("8", m.getField(11), m.getField(150), m.getField(39), self._f(m, 43, True) or "N"))
            elif t == "9":
                self.reports.append(("9", m.getField(11), m.getField(102) if m.isSetField(102) else "", m.getField(39), self._f(m, 43, True) or "N"))
            elif t == "r":
                self.reports.append(("r", self._f(m, 11) or "", m.getField(531), self._f(m, 533) or "", self._f(m, 43, True) or "N"))
            self.lock.notify_all()

    def count(self, kind, cl, what=None):
        return sum(1 for r in self.reports if r[0] == kind and r[1] == cl and (what is None or r[2] == what))

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

[SESSION]
BeginString=FIX.4.4
SenderCompID=CLIENT1
TargetCompID=APPLIANCE
SocketConnectHost=127.0.0.1
SocketConnectPort={PORT}
HeartBtInt=1
""")
    return path


def order(cl, side, qty, price, tif="0"):
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


def replace(cl, orig, side, qty, price):
    m = fix.Message()
    m.getHeader().setField(fix.MsgType("G"))
    m.setField(fix.OrigClOrdID(orig))
    m.setField(fix.ClOrdID(cl))
    m.setField(fix.HandlInst("1"))
    m.setField(fix.Symbol("ACME"))
    m.setField(fix.Side(side))
    m.setField(fix.StringField(60, now_str()))
    m.setField(fix.OrderQty(qty))
    m.setField(fix.OrdType("2"))
    m.setField(fix.StringField(44, price))
    return m


def mass_cancel(cl):
    m = fix.Message()
    m.getHeader().setField(fix.MsgType("q"))
    m.setField(fix.ClOrdID(cl))
    m.setField(fix.MassCancelRequestType("7"))
    m.setField(fix.StringField(60, now_str()))
    return m


def main():
    os.makedirs(WORK, exist_ok=True)
    app = Observer()
    settings = fix.SessionSettings(settings_file())
    result = {}
    send = lambda m: fix.Session.sendToTarget(m, app.sid)

    def run_connection(first):
        initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
        initiator.start()
        try:
            want = app.logons + 1
            app.wait(lambda: app.logons >= want, 20, "logon")
            session = fix.Session.lookupSession(app.sid)
            if first:
                hb0 = app.heartbeats_in
                time.sleep(3.2)
                result["heartbeats_received"] = app.heartbeats_in - hb0
                tr = fix.Message()
                tr.getHeader().setField(fix.MsgType("1"))
                tr.setField(fix.TestReqID("TR-1"))
                send(tr)
                app.wait(lambda: "TR-1" in app.test_request_answers, 10, "heartbeat answering TR-1")
                result["test_request_answered"] = True
                # Rest a buy, cross it with a sell: fills on both sides.
                send(order("BUY-1", "1", 100, "100.00"))
                app.wait(lambda: app.count("8", "BUY-1", "0") == 1, 10, "BUY-1 ack")
                send(order("SELL-1", "2", 40, "99.50", "3"))
                app.wait(lambda: app.count("8", "SELL-1", "F") == 1 and app.count("8", "BUY-1", "F") == 1, 10, "fills")
                send(order("BAD-TICK", "1", 10, "100.005"))
                app.wait(lambda: app.count("8", "BAD-TICK", "8") == 1, 10, "off-tick reject")
                send(replace("BUY-2", "BUY-1", "1", 80, "100.00"))
                app.wait(lambda: app.count("8", "BUY-2", "5") == 1, 10, "replace")
                send(cancel("BUY-3", "BUY-2", "1"))
                app.wait(lambda: app.count("8", "BUY-3", "4") == 1, 10, "cancel")
                send(cancel("BUY-4", "BUY-2", "1"))
                app.wait(lambda: app.count("9", "BUY-4") == 1, 10, "cancel reject (too late)")
                send(order("REST-1", "1", 5, "95.00", "1"))
                send(order("REST-2", "2", 5, "105.00", "1"))
                app.wait(lambda: app.count("8", "REST-2", "0") == 1, 10, "two resting orders")
                send(mass_cancel("MASS-1"))
                app.wait(lambda: app.count("r", "MASS-1") == 1, 10, "mass cancel report")
                # Resend served by the appliance: make QuickFIX expect three older messages;
                # the next message looks too high, QuickFIX asks, the appliance resends them
                # with PossDupFlag=Y.
                session.setNextTargetMsgSeqNum(session.getExpectedTargetNum() - 3)
                send(order("PROBE-1", "1", 1, "90.00", "3"))
                app.wait(lambda: any(r[4] == "Y" for r in app.reports), 10, "PossDup resent reports")
                app.wait(lambda: app.count("8", "PROBE-1", "4") == 1, 10, "PROBE-1 reports")
                # Resend served by QuickFIX: skip three of our sequence numbers.
                session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + 3)
                send(order("AFTER-GAP", "1", 1, "90.00", "3"))
                app.wait(lambda: len(app.resend_requests_in) >= 1, 10, "ResendRequest from the appliance")
                app.wait(lambda: app.count("8", "AFTER-GAP", "4") == 1, 10, "AFTER-GAP reports")
            else:
                send(order("AGAIN", "1", 1, "90.00", "3"))
                app.wait(lambda: app.count("8", "AGAIN", "4") == 1, 10, "AGAIN reports")
            result["expected_sender_before_logout"] = session.getExpectedSenderNum()
            result["expected_target_before_logout"] = session.getExpectedTargetNum()
            want = app.logouts + 1
            session.logout("done")
            app.wait(lambda: app.logouts >= want, 10, "logout")
        finally:
            initiator.stop()

    try:
        run_connection(True)
        result["first_connection"] = {"sender": result.pop("expected_sender_before_logout"), "target": result.pop("expected_target_before_logout")}
        run_connection(False)
        result["second_connection"] = {"sender": result.pop("expected_sender_before_logout"), "target": result.pop("expected_target_before_logout")}
        ok = True
    except Exception as e:
        result["error"] = str(e)
        ok = False
    result.update({
        "logons": app.logons,
        "logouts": app.logouts,
        "logon_seq_out": app.logon_seq_out,
        "logon_seq_in": app.logon_seq_in,
        "resend_requests_in": app.resend_requests_in,
        "resend_requests_out": app.resend_requests_out,
        "rejects_sent_by_quickfix": app.rejects_out,
        "rejects_received": app.rejects_in,
        "reports": app.reports,
    })
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
