//! QuickFIX FIX 4.4 acceptance suite runner.
//!
//! For every script in `conformance/quickfix-fix44/definitions/` it starts a fresh acceptor
//! built on the `fix` crate (SenderCompID ISLD, TargetCompID TW44, ResetOnLogon=Y) with an echo
//! application, plays the script against it over loopback TCP the way QuickFIX's Ruby harness
//! does (same `<TIME>` substitution, same BodyLength/CheckSum fix-up, same field-by-field
//! comparison with the patterns of `fields.fmt`), writes a log per script and prints one line
//! per script and a closing `N passed, M failed`.
//!
//! ```text
//! cargo run --release -p fix --example conformance -- [--jobs N] [--logs DIR]
//!     [--expected-failures docs/fix-conformance.md] [SCRIPT_NAME_SUBSTRING...]
//! ```
//! Exit status 0 when every failure is listed in the expected-failures file (or none failed).

#[path = "support/tcp_acceptor.rs"]
mod tcp_acceptor;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fix::codec::time::{write_timestamp, TimePrecision};
use fix::dict;
use fix::session::{BusinessRejectReason, MemoryStore, Session, SessionConfig};
use fix::{tags, Acceptor, Message};
use regex::Regex;
use tcp_acceptor::App;

// ------------------------------------------------------------------------------------------
// The application under test: an echo (reflector), as QuickFIX's acceptance server uses.
// ------------------------------------------------------------------------------------------

struct Echo {
    seen_cl_ord_ids: HashSet<Vec<u8>>,
    log: Arc<Mutex<String>>,
}

impl Echo {
    fn echo(
        &mut self,
        session: &mut Session<MemoryStore>,
        msg: &Message<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        // Header: everything the session does not write itself, in ascending tag order.
        let mut header: Vec<(u32, &[u8])> = msg
            .header_fields()
            .iter()
            .filter(|f| {
                !matches!(
                    f.tag,
                    tags::BEGIN_STRING
                        | tags::BODY_LENGTH
                        | tags::MSG_TYPE
                        | tags::MSG_SEQ_NUM
                        | tags::SENDER_COMP_ID
                        | tags::TARGET_COMP_ID
                        | tags::SENDING_TIME
                        | tags::POSS_DUP_FLAG
                        | tags::ORIG_SENDING_TIME
                )
            })
            .map(|f| (f.tag, msg.value(f)))
            .collect();
        header.sort_by_key(|h| h.0);
        // Body: QuickFIX keeps fields in ascending tag order; a repeating group stays attached
        // to its count field in wire order.
        let def = dict::message_def(msg.msg_type());
        let body = msg.body_fields();
        let mut blocks: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            let f = body[i];
            let mut block = Vec::new();
            push_field(&mut block, f.tag, msg.value(&f));
            i += 1;
            if let Some(g) = def.and_then(|d| d.groups.iter().find(|g| g.count_tag == f.tag)) {
                while i < body.len() && in_group(g, body[i].tag) {
                    push_field(&mut block, body[i].tag, msg.value(&body[i]));
                    i += 1;
                }
            }
            blocks.push((f.tag, block));
        }
        blocks.sort_by_key(|b| b.0);
        let bytes: Vec<u8> = blocks.into_iter().flat_map(|b| b.1).collect();
        if let Err(e) = session.send_raw(msg.msg_type(), &header, &bytes, now, out) {
            self.on_event(&format!("echo failed: {e:?}"));
        }
    }
}

fn in_group(g: &dict::GroupDef, tag: u32) -> bool {
    g.members.contains(&tag) || g.groups.iter().any(|s| in_group(s, tag))
}

fn push_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    out.extend_from_slice(tag.to_string().as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(1);
}

impl App<MemoryStore> for Echo {
    fn on_message(
        &mut self,
        session: &mut Session<MemoryStore>,
        msg: &Message<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        match msg.msg_type() {
            b"D" => {
                let id = msg.get(tags::CL_ORD_ID).unwrap_or(b"").to_vec();
                let seen = !self.seen_cl_ord_ids.insert(id);
                if msg.poss_resend() && seen {
                    self.on_event("drop PossResend order already seen");
                    return;
                }
                self.echo(session, msg, now, out);
            }
            b"d" => self.echo(session, msg, now, out),
            _ => {
                let r = session.send_business_reject(
                    msg,
                    BusinessRejectReason::UnsupportedMessageType,
                    None,
                    None,
                    now,
                    out,
                );
                if let Err(e) = r {
                    self.on_event(&format!("reject failed: {e:?}"));
                }
            }
        }
    }
    fn on_event(&mut self, what: &str) {
        if let Ok(mut l) = self.log.lock() {
            let _ = writeln!(l, "  acceptor: {what}");
        }
    }
}

fn start_acceptor(log: Arc<Mutex<String>>) -> tcp_acceptor::Server {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.reset_on_logon = true;
    let mut acceptor = Acceptor::new();
    acceptor.add(Session::new(
        cfg,
        MemoryStore::with_capacity(1 << 20, 10_000),
    ));
    tcp_acceptor::spawn(
        acceptor,
        Echo {
            seen_cl_ord_ids: HashSet::new(),
            log,
        },
    )
}

// ------------------------------------------------------------------------------------------
// The script player: QuickFIX's Reflector/ReflectorClient/Comparator semantics.
// ------------------------------------------------------------------------------------------

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn utc_secs_string(offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let t = (now + offset).max(0) as u64 * 1_000_000_000;
    let mut b = [0u8; 32];
    let n = write_timestamp(&mut b, t, TimePrecision::Seconds).unwrap_or(0);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// `<TIME>`, `<TIME+N>`, `<TIME-N>` -> current UTC time (seconds precision).
fn timify(s: &str) -> String {
    let re = Regex::new(r"<TIME([+-]\d+)?>").expect("regex");
    re.replace_all(s, |c: &regex::Captures<'_>| {
        let off = c
            .get(1)
            .map_or(0, |m| m.as_str().parse::<i64>().unwrap_or(0));
        utc_secs_string(off)
    })
    .into_owned()
}

/// Fills in BodyLength and CheckSum when the script leaves them out, exactly as the Ruby
/// harness's `fixify!` (including its quirks, which some scripts rely on to make bad frames).
fn fixify(msg: &str) -> String {
    let has_length =
        msg.contains("\x019=") && msg[msg.find("\x019=").unwrap_or(0) + 1..].contains('\x01');
    if !msg.starts_with("8=") {
        return msg.to_string();
    }
    let Some(h) = msg.find('\x01') else {
        return msg.to_string();
    };
    let head = &msg[..=h];
    let mut rest = msg[h + 1..].to_string();
    let mut checksum: Option<String> = None;
    if rest.ends_with('\x01') {
        if let Some(i) = rest.find("\x0110=") {
            checksum = Some(rest[i..].to_string());
            rest.truncate(i);
        }
    }
    let length = if has_length {
        String::new()
    } else {
        format!("9={}\x01", rest.len())
    };
    let checksum = checksum.unwrap_or_else(|| {
        let sum: u32 = head
            .bytes()
            .chain(length.bytes())
            .chain(rest.bytes())
            .map(u32::from)
            .sum();
        format!("10={:03}\x01", sum % 256)
    });
    format!("{head}{length}{rest}{checksum}")
}

struct Comparator {
    patterns: HashMap<String, Regex>,
}

impl Comparator {
    fn load(path: &Path) -> Comparator {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut patterns = HashMap::new();
        for line in text.lines() {
            if let Some((tag, pat)) = line.split_once('=') {
                if let Ok(re) = Regex::new(pat) {
                    patterns.insert(tag.to_string(), re);
                }
            }
        }
        Comparator { patterns }
    }

    /// Ruby `split("=")[1]`: the text between the first and second '='.
    fn split(field: &str) -> (&str, Option<&str>) {
        let mut it = field.split('=');
        let tag = it.next().unwrap_or("");
        (tag, it.next().filter(|v| !v.is_empty()))
    }

    fn compare(&self, expected: &str, actual: &str) -> Result<(), String> {
        let split = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s.split('\x01').map(str::to_string).collect();
            while v.last().is_some_and(|x| x.is_empty()) {
                v.pop();
            }
            v
        };
        let e = split(expected);
        let a = split(actual);
        if e.len() != a.len() {
            return Err("Number of fields do no match".into());
        }
        for (ef, af) in e.iter().zip(a.iter()) {
            let (et, ev) = Self::split(ef);
            let (at, av) = Self::split(af);
            if et != at {
                return Err(format!("Expected field ({et}) but found field ({at})"));
            }
            match self.patterns.get(et) {
                Some(re) => {
                    if !av.is_some_and(|v| re.is_match(v)) {
                        return Err(format!("Field ({et}) does not match pattern"));
                    }
                }
                None => {
                    if ev != av {
                        return Err(format!(
                            "Value in field ({et}) should be ({}) but was ({})",
                            ev.unwrap_or(""),
                            av.unwrap_or("")
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn read_until(&mut self, delim: &[u8], deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(p) = self.buf.windows(delim.len()).position(|w| w == delim) {
                let out: Vec<u8> = self.buf.drain(..p + delim.len()).collect();
                return Ok(out);
            }
            self.fill(deadline)?;
        }
    }
    fn read_exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            self.fill(deadline)?;
        }
        Ok(self.buf.drain(..n).collect())
    }
    fn fill(&mut self, deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("Timed out waiting for a message".into());
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("Was disconnected, expected data".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err("Timed out waiting for a message".into())
            }
            Err(e) => Err(format!("Was disconnected, expected data ({e})")),
        }
    }
    /// QuickFIX `FixParser.readFixMessage`: up to `<SOH>9=`, the length, the body, the checksum.
    fn read_fix_message(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut m = self.read_until(b"\x019=", deadline)?;
        let len_field = self.read_until(b"\x01", deadline)?;
        let len: usize = std::str::from_utf8(&len_field[..len_field.len() - 1])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("BodyLength is not a number")?;
        m.extend_from_slice(&len_field);
        m.extend(self.read_exact(len, deadline)?);
        m.extend(self.read_until(b"\x01", deadline)?);
        Ok(String::from_utf8_lossy(&m).into_owned())
    }
    fn wait_disconnect(&mut self) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err("Expected disconnection, got data".into());
        }
        let _ = self.stream.set_read_timeout(Some(DISCONNECT_TIMEOUT));
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => Ok(()),
            Ok(_) => Err("Expected disconnection, got data".into()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err("Connection hangs after ten seconds.".into())
            }
            Err(_) => Ok(()),
        }
    }
}

fn visible(s: &str) -> String {
    s.replace('\x01', "|")
}

/// Plays one script against `addr`; `Err` carries the first mismatch.
fn play(
    script: &str,
    addr: SocketAddr,
    cmp: &Comparator,
    log: &Arc<Mutex<String>>,
) -> Result<(), String> {
    let mut conns: HashMap<u32, Conn> = HashMap::new();
    let say = |s: String| {
        if let Ok(mut l) = log.lock() {
            l.push_str(&s);
            l.push('\n');
        }
    };
    let numbered = Regex::new(r"^[IEie]\d,").expect("regex");
    for (n, raw) in script.lines().enumerate() {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cid, body) = if numbered.is_match(line) {
            (line.as_bytes()[1] as u32 - b'0' as u32, &line[3..])
        } else {
            (1, &line[1..])
        };
        let body = fixify(&timify(body));
        let lineno = n + 1;
        let fail = |what: String| Err(format!("line {lineno}: {what}"));
        match line.as_bytes()[0] {
            b'i' if body == "CONNECT" => {
                say(format!("[{lineno}] connect {cid}"));
                match TcpStream::connect(addr) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        conns.insert(
                            cid,
                            Conn {
                                stream: s,
                                buf: Vec::new(),
                            },
                        );
                    }
                    Err(e) => return fail(format!("failed to connect: {e}")),
                }
            }
            b'i' if body == "DISCONNECT" => {
                say(format!("[{lineno}] disconnect {cid}"));
                if let Some(c) = conns.remove(&cid) {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                }
            }
            b'e' if body == "CONNECT" => {}
            b'e' if body == "DISCONNECT" => {
                say(format!("[{lineno}] expect disconnect {cid}"));
                let Some(c) = conns.get_mut(&cid) else {
                    return fail("no connection".into());
                };
                if let Err(e) = c.wait_disconnect() {
                    return fail(e);
                }
                conns.remove(&cid);
            }
            b'I' => {
                say(format!("[{lineno}] send {cid}: {}", visible(&body)));
                let Some(c) = conns.get_mut(&cid) else {
                    return fail("Unable to send message because connection was dropped".into());
                };
                if let Err(e) = c.stream.write_all(body.as_bytes()) {
                    return fail(format!("send failed: {e}"));
                }
            }
            b'E' => {
                say(format!("[{lineno}] expect {cid}: {}", visible(&body)));
                let Some(c) = conns.get_mut(&cid) else {
                    return fail("no connection".into());
                };
                let got = match c.read_fix_message() {
                    Ok(m) => m,
                    Err(e) => return fail(e),
                };
                say(format!("[{lineno}] received {cid}: {}", visible(&got)));
                if let Err(reason) = cmp.compare(&body, &got) {
                    return fail(format!(
                        "{reason}; expected {} received {}",
                        visible(&body),
                        visible(&got)
                    ));
                }
            }
            _ => return fail(format!("syntax error: {line}")),
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Suite driver
// ------------------------------------------------------------------------------------------

struct Outcome {
    name: String,
    result: Result<(), String>,
    secs: f64,
}

fn expected_failures(path: &Path) -> HashMap<String, String> {
    // Rows `| script | reason |` of the "Known failures" table.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = HashMap::new();
    let mut in_section = false;
    for line in text.lines() {
        if line.starts_with("## ") {
            in_section = line.to_ascii_lowercase().contains("known failures");
            continue;
        }
        if in_section && line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.len() >= 2
                && !cells[0].is_empty()
                && !cells[0].starts_with('-')
                && cells[0] != "script"
            {
                out.insert(cells[0].trim_matches('`').to_string(), cells[1].to_string());
            }
        }
    }
    out
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut jobs = 16usize;
    let mut logs = root.join("conformance").join("logs");
    let mut expected_file: Option<PathBuf> = None;
    let mut filters: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--jobs" => {
                jobs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(jobs)
                    .max(1)
            }
            "--logs" => logs = PathBuf::from(args.next().expect("--logs DIR")),
            "--expected-failures" => expected_file = args.next().map(PathBuf::from),
            _ => filters.push(a),
        }
    }
    let defs = root.join("conformance/quickfix-fix44/definitions");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&defs)
        .expect("conformance/quickfix-fix44/definitions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "def"))
        .filter(|p| {
            let n = p.file_stem().unwrap_or_default().to_string_lossy();
            filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str()))
        })
        .collect();
    scripts.sort();
    let _ = std::fs::create_dir_all(&logs);
    let cmp = Arc::new(Comparator::load(
        &root.join("conformance/quickfix-fix44/fields.fmt"),
    ));
    // Workers pop from the back: put the slow scripts (waiting on timers by design) there so
    // they start first and the suite's wall time is that of the slowest script.
    let mut order = scripts.clone();
    order.reverse();
    order.sort_by_key(|p| {
        let n = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        ["6_", "4a_", "2i_"]
            .iter()
            .position(|s| n.starts_with(s))
            .map_or(0, |i| 3 - i)
    });
    let queue = Arc::new(Mutex::new(order));
    let results: Arc<Mutex<Vec<Outcome>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..jobs.min(scripts.len().max(1)) {
        let (queue, results, cmp, logs) =
            (queue.clone(), results.clone(), cmp.clone(), logs.clone());
        workers.push(std::thread::spawn(move || {
            // The guard is consumed inside `and_then`, so the lock is not held while playing.
            while let Some(path) = queue.lock().ok().and_then(|mut q| q.pop()) {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let script = std::fs::read_to_string(&path).unwrap_or_default();
                let log = Arc::new(Mutex::new(format!("script {name}\n")));
                let server = start_acceptor(log.clone());
                let t0 = Instant::now();
                let result = play(&script, server.addr, &cmp, &log);
                let secs = t0.elapsed().as_secs_f64();
                server.stop();
                if let Ok(mut l) = log.lock() {
                    let _ = writeln!(
                        l,
                        "result: {}",
                        match &result {
                            Ok(()) => "pass".to_string(),
                            Err(e) => format!("FAIL {e}"),
                        }
                    );
                    let _ = std::fs::write(logs.join(format!("{name}.log")), l.as_bytes());
                }
                let line = match &result {
                    Ok(()) => format!("pass  {name:<45} {secs:>5.1}s"),
                    Err(e) => format!(
                        "FAIL  {name:<45} {secs:>5.1}s  {}",
                        e.chars().take(400).collect::<String>()
                    ),
                };
                println!("{line}");
                if let Ok(mut r) = results.lock() {
                    r.push(Outcome { name, result, secs });
                }
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let results = results
        .lock()
        .map(|r| {
            r.iter()
                .map(|o| (o.name.clone(), o.result.clone(), o.secs))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let passed = results.iter().filter(|r| r.1.is_ok()).count();
    let failed: Vec<&String> = results
        .iter()
        .filter(|r| r.1.is_err())
        .map(|r| &r.0)
        .collect();
    println!(
        "logs in {}; wall time {:.1}s",
        logs.display(),
        started.elapsed().as_secs_f64()
    );
    let mut ok = failed.is_empty();
    if let Some(f) = expected_file {
        let known = expected_failures(&f);
        let unexpected: Vec<&&String> = failed
            .iter()
            .filter(|n| !known.contains_key(n.as_str()))
            .collect();
        for n in &failed {
            if let Some(reason) = known.get(n.as_str()) {
                println!("known failure {n}: {reason}");
            }
        }
        for n in known.keys() {
            if results.iter().any(|r| &r.0 == n && r.1.is_ok()) {
                println!(
                    "note: {n} is listed as a known failure in {} but passed",
                    f.display()
                );
            }
        }
        if !unexpected.is_empty() {
            println!(
                "unexpected failures (not in {}): {:?}",
                f.display(),
                unexpected
            );
        }
        ok = unexpected.is_empty();
    }
    println!("{} passed, {} failed", passed, failed.len());
    std::process::exit(if ok { 0 } else { 1 });
}
