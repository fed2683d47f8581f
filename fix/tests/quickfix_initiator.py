#!/usr/bin/env python3
"""QuickFIX initiator for the interoperability test (fix/tests/quickfix_interop.rs).

Logs on to the acceptor under test, exchanges heartbeats and a test request, sends orders,
receives execution reports that QuickFIX validates against its own FIX44.xml, goes through
resend requests in both directions, logs out, reconnects with sequence numbers continuing and
logs out again. Prints one JSON object with what it observed; exits non-zero on a failed step.

Usage: quickfix_initiator.py PORT WORKDIR
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
        self.resend_requests_in = []   # ResendRequests the acceptor sent us (BeginSeqNo)
        self.resend_requests_out = []  # ResendRequests QuickFIX sent to the acceptor
        self.rejects_out = 0           # session Rejects QuickFIX sent (invalid messages from the acceptor)
        self.rejects_in = 0
        self.logon_seq_out = []        # MsgSeqNum of our Logons
        self.logon_seq_in = []         # MsgSeqNum of the acceptor's Logons
        self.logout_seq_out = []       # MsgSeqNum of our Logouts
        self.logout_seq_in = []        # MsgSeqNum of the acceptor's Logouts
        self.reports = []              # (ClOrdID, ExecType, OrdStatus, PossDupFlag, MsgSeqNum)

    def _field(self, m, tag, header=False):
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
        t = self._field(m, 35, True)
        with self.lock:
            if t == "A":
                self.logon_seq_out.append(int(self._field(m, 34, True)))
            elif t == "5":
                self.logout_seq_out.append(int(self._field(m, 34, True)))
            elif t == "2":
                self.resend_requests_out.append(int(self._field(m, 7)))
            elif t == "3":
                self.rejects_out += 1

    def fromAdmin(self, m, sid):
        t = self._field(m, 35, True)
        with self.lock:
            if t == "0":
                if m.isSetField(112):
                    self.test_request_answers.append(m.getField(112))
                else:
                    self.heartbeats_in += 1
            elif t == "A":
                self.logon_seq_in.append(int(self._field(m, 34, True)))
            elif t == "5":
                self.logout_seq_in.append(int(self._field(m, 34, True)))
            elif t == "2":
                self.resend_requests_in.append(int(self._field(m, 7)))
            elif t == "3":
                self.rejects_in += 1
            self.lock.notify_all()

    def toApp(self, m, sid):
        pass

    def fromApp(self, m, sid):
        # Only called for messages QuickFIX has validated against FIX44.xml.
        if self._field(m, 35, True) == "8":
            with self.lock:
                self.reports.append((
                    m.getField(11), m.getField(150), m.getField(39),
                    self._field(m, 43, True) or "N", int(self._field(m, 34, True)),
                ))
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
SenderCompID=QFCLIENT
TargetCompID=ISLD
SocketConnectHost=127.0.0.1
SocketConnectPort={PORT}
HeartBtInt=1
""")
    return path


def order(cl, price, qty=100, side="1"):
    m = fix.Message()
    m.getHeader().setField(fix.MsgType("D"))
    m.setField(fix.ClOrdID(cl))
    m.setField(fix.HandlInst("1"))
    m.setField(fix.Symbol("INTC"))
    m.setField(fix.Side(side))
    m.setField(fix.StringField(60, now_str()))
    m.setField(fix.OrderQty(qty))
    m.setField(fix.OrdType("2"))
    m.setField(fix.StringField(44, price))
    return m


def main():
    os.makedirs(WORK, exist_ok=True)
    app = Observer()
    settings = fix.SessionSettings(settings_file())
    result = {}

    def run_connection(first):
        initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
        initiator.start()
        try:
            want = app.logons + 1
            app.wait(lambda: app.logons >= want, 20, "logon")
            session = fix.Session.lookupSession(app.sid)
            if first:
                # Heartbeats: stay idle for a few HeartBtInt.
                hb0 = app.heartbeats_in
                time.sleep(3.2)
                result["heartbeats_received"] = app.heartbeats_in - hb0
                # TestRequest answered with its TestReqID.
                tr = fix.Message()
                tr.getHeader().setField(fix.MsgType("1"))
                tr.setField(fix.TestReqID("TR-1"))
                fix.Session.sendToTarget(tr, app.sid)
                app.wait(lambda: "TR-1" in app.test_request_answers, 10, "heartbeat answering TR-1")
                result["test_request_answered"] = True
                # Orders: each gets an ack (150=0) and a fill (150=F); one off-tick price is
                # rejected with an ExecutionReport (150=8).
                for i in range(5):
                    fix.Session.sendToTarget(order("ORD-%d" % i, "10.25"), app.sid)
                fix.Session.sendToTarget(order("BAD-TICK", "10.255"), app.sid)
                app.wait(lambda: len(app.reports) >= 11, 10, "11 execution reports")
                # Resend served by the acceptor: it "loses" the ack of LOSE-1, QuickFIX sees
                # the gap on the fill, asks for a resend, gets the ack with PossDupFlag=Y.
                fix.Session.sendToTarget(order("LOSE-1", "10.50"), app.sid)
                app.wait(lambda: sum(1 for r in app.reports if r[0] == "LOSE-1") >= 2, 10, "LOSE-1 reports")
                # Resend served by QuickFIX: skip three of our sequence numbers; the acceptor
                # asks for them and QuickFIX gap-fills.
                session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + 3)
                fix.Session.sendToTarget(order("AFTER-GAP", "10.25"), app.sid)
                app.wait(lambda: len(app.resend_requests_in) >= 1, 10, "ResendRequest from acceptor")
                app.wait(lambda: sum(1 for r in app.reports if r[0] == "AFTER-GAP") >= 2, 10, "AFTER-GAP reports")
            else:
                fix.Session.sendToTarget(order("AGAIN", "10.25"), app.sid)
                app.wait(lambda: sum(1 for r in app.reports if r[0] == "AGAIN") >= 2, 10, "AGAIN reports")
            result["expected_sender_before_logout"] = session.getExpectedSenderNum()
            result["expected_target_before_logout"] = session.getExpectedTargetNum()
            want = app.logouts + 1
            session.logout("done")
            app.wait(lambda: app.logouts >= want, 10, "logout")
        finally:
            initiator.stop()

    try:
        run_connection(True)
        result["first_connection"] = {
            "sender": result.pop("expected_sender_before_logout"),
            "target": result.pop("expected_target_before_logout"),
        }
        run_connection(False)
        result["second_connection"] = {
            "sender": result.pop("expected_sender_before_logout"),
            "target": result.pop("expected_target_before_logout"),
        }
        ok = True
    except Exception as e:  # report what was observed so far
        result["error"] = str(e)
        ok = False
    result.update({
        "logons": app.logons,
        "logouts": app.logouts,
        "logon_seq_out": app.logon_seq_out,
        "logon_seq_in": app.logon_seq_in,
        "logout_seq_out": app.logout_seq_out,
        "logout_seq_in": app.logout_seq_in,
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
