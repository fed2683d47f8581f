//! The operator's console: a Unix socket served by a cold thread, one command per connection,
//! one JSON line back. `appliance admin ...` is its command line.
//!
//! Authentication is the socket's: it is created mode 0600, and every connection's peer
//! credentials (`SO_PEERCRED`) must be root's or the appliance's own user's. Commands reach
//! the hot threads over each gateway's control rings (`gateway::control`), so the console
//! never takes a lock a hot thread could wait on.
//!
//! Commands (words separated by spaces):
//! - `sessions`: every session: name, protocol, gateway, firm, connected, killed, sequence
//!   numbers, working orders, throttle refusals and the limits in force.
//! - `kill session NAME`, `unkill session NAME`: the kill switch of the sessions named NAME
//!   (a FIX CompID or a binary username; `fix:NAME` or `binary:NAME` picks one protocol).
//! - `kill firm NAME`, `unkill firm NAME`: the kill switch of every session of a firm.
//! - `halt SYMBOL`, `resume SYMBOL`: new orders and replaces on the instrument are refused
//!   while halted (cancels go on); `instruments` lists them with their state.
//! - `disconnect NAME`: logs the session out (FIX Logout with a text, binary Logout 7) and
//!   closes its connection.
//! - `cancel session NAME [SYMBOL]`, `cancel firm NAME [SYMBOL]`: cancels the working orders
//!   (on one instrument if given), an ExecutionReport each ("cancelled by the venue's
//!   operator"); the sessions keep trading.
//!
//! Every change is journaled by the gateways (`CONTROL` records with the operator's uid), so
//! kill switches and halts survive a restart; every command is logged.

pub mod client;

use crate::engine::OwnerId;
use crate::gateway::control::{
    AdminLink, Control, ControlReply, ControlRequest, Credentials, SessionLimits, SessionRow,
    Target, BUSY,
};
use crate::vocab::Protocol;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a client has to send its command, and the console to collect the gateways'
/// answers.
const DEADLINE: Duration = Duration::from_secs(2);

/// The console's commands, as counted (`appliance_admin_commands_total{command}`).
pub const COMMANDS: [&str; 10] = [
    "sessions",
    "instruments",
    "kill",
    "unkill",
    "halt",
    "resume",
    "disconnect",
    "cancel",
    "reload",
    "other",
];

/// Commands served, by command and result (ok, refused); read by the exporter.
#[derive(Debug, Default)]
pub struct AdminStats {
    counts: [[std::sync::atomic::AtomicU64; 2]; COMMANDS.len()],
}

impl AdminStats {
    fn count(&self, command: &str, ok: bool) {
        let i = COMMANDS
            .iter()
            .position(|c| *c == command)
            .unwrap_or(COMMANDS.len() - 1);
        self.counts[i][usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// `(command, result, count)` for every pair.
    pub fn samples(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::new();
        for (i, c) in COMMANDS.iter().enumerate() {
            for (j, r) in ["ok", "refused"].iter().enumerate() {
                v.push((*c, *r, self.counts[i][j].load(Ordering::Relaxed)));
            }
        }
        v
    }
}

/// A configured session, as the console names it.
#[derive(Clone, Debug)]
pub struct DirectoryEntry {
    /// Gateway index.
    pub gateway: usize,
    /// Local index in the gateway.
    pub local: u16,
    /// FIX CompID or binary username.
    pub name: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Firm id.
    pub owner: OwnerId,
    /// Firm name.
    pub owner_name: String,
}

/// The running console.
pub struct AdminServer {
    thread: crate::runtime::cold_thread::ColdThread,
    path: PathBuf,
}

/// What the console works with.
pub struct ConsoleParts {
    /// Each gateway's control rings.
    pub links: Vec<AdminLink>,
    /// The configured sessions.
    pub directory: Vec<DirectoryEntry>,
    /// (symbol, id, halted at start).
    pub instruments: Vec<(String, crate::engine::InstrumentId, bool)>,
    /// The configuration file (`None`: the embedded default), read again by `reload`.
    pub config_path: Option<PathBuf>,
    /// The configuration in force.
    pub config: crate::config::Config,
    /// Its counters, read by the exporter.
    pub stats: std::sync::Arc<AdminStats>,
    /// The market-data feed, told of halts and resumes.
    pub feed: Option<crate::marketdata::publisher::StateSender>,
}

impl AdminServer {
    /// Binds `path` (a stale socket file left by a crash is replaced; a live one is an
    /// error) and starts the console thread.
    pub fn start(path: &Path, parts: ConsoleParts) -> std::io::Result<Self> {
        let ConsoleParts {
            links,
            directory,
            instruments,
            config_path,
            config,
            stats,
            feed,
        } = parts;
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{}: another appliance answers on it", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let listener = UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let thread = crate::runtime::cold_thread::ColdThread::spawn("admin", move |stop| {
            let mut console = Console {
                links,
                directory,
                stats,
                feed,
                config_path,
                config,
                instruments,
            };
            serve(listener, &mut console, stop)
        })?;
        Ok(Self {
            thread,
            path: path.to_path_buf(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the thread and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.thread.join() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the console thread knows.
struct Console {
    links: Vec<AdminLink>,
    directory: Vec<DirectoryEntry>,
    stats: std::sync::Arc<AdminStats>,
    /// The market-data feed, told of halts and resumes.
    feed: Option<crate::marketdata::publisher::StateSender>,
    /// The configuration file the appliance started with (`None`: the embedded default),
    /// and the configuration in force (what a reload compares with).
    config_path: Option<PathBuf>,
    config: crate::config::Config,
    /// (symbol, id, halted): the console is the only one that halts and resumes.
    instruments: Vec<(String, crate::engine::InstrumentId, bool)>,
}

fn serve(listener: UnixListener, console: &mut Console, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let answer = match authorised(&stream) {
                    Ok(uid) => read_command(&stream)
                        .map(|line| {
                            for l in console.links.iter_mut() {
                                l.operator = uid;
                            }
                            execute(&line, console)
                        })
                        .unwrap_or_else(|e| error(&e)),
                    Err(e) => error(&e),
                };
                let mut stream = stream;
                let _ = stream.set_write_timeout(Some(DEADLINE));
                let _ = writeln!(stream, "{answer}");
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The process's uid.
pub fn own_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Root or the appliance's own user, by the peer's credentials; returns the peer's uid.
fn authorised(stream: &UnixStream) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    // SAFETY: ucred is plain data; getsockopt writes at most `len` bytes into it.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket fd and a pointer to a ucred of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    let me = own_uid();
    if r == 0 && (cred.uid == 0 || cred.uid == me) {
        Ok(cred.uid)
    } else {
        Err("not authorised: only root and the appliance's user may use the console".into())
    }
}

fn read_command(stream: &UnixStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream.take_limited())
        .read_line(&mut line)
        .map_err(|e| format!("reading the command: {e}"))?;
    Ok(line.trim().to_string())
}

/// At most 1 KiB of command.
trait TakeLimited {
    fn take_limited(&self) -> std::io::Take<&UnixStream>;
}

impl TakeLimited for UnixStream {
    fn take_limited(&self) -> std::io::Take<&UnixStream> {
        use std::io::Read;
        self.take(1024)
    }
}

fn error(e: &str) -> String {
    serde_json::json!({ "ok": false, "error": e }).to_string()
}

fn execute(line: &str, console: &mut Console) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (links, directory) = (&mut console.links, &console.directory);
    let result = match words.as_slice() {
        ["sessions"] => sessions(links, directory),
        [verb @ ("kill" | "unkill"), "session", name] => {
            kill_sessions(links, directory, name, *verb == "kill")
        }
        [verb @ ("kill" | "unkill"), "firm", name] => {
            kill_firm(links, directory, name, *verb == "kill")
        }
        [verb @ ("halt" | "resume"), symbol] => {
            let r = halt(links, &mut console.instruments, symbol, *verb == "halt");
            if let (Ok(_), Some(feed)) = (&r, &console.feed) {
                if let Some((_, id, h)) = console.instruments.iter().find(|(s, _, _)| s == symbol) {
                    feed.send(*id, *h);
                }
            }
            r
        }
        ["instruments"] => Ok(serde_json::json!({
            "ok": true,
            "instruments": console
                .instruments
                .iter()
                .map(|(s, _, h)| serde_json::json!({ "symbol": s, "halted": h }))
                .collect::<Vec<_>>(),
        })),
        ["disconnect", name] => disconnect(links, directory, name),
        ["reload"] => reload(console),
        ["cancel", scope @ ("session" | "firm"), name, rest @ ..] if rest.len() <= 1 => {
            let symbol = rest.first().copied();
            match symbol.map(|s| console.instruments.iter().find(|(n, _, _)| n == s)) {
                Some(None) => Err(format!("no instrument {:?}", symbol.unwrap_or(""))),
                found => {
                    let id = found.flatten().map(|(_, id, _)| *id);
                    cancel(links, directory, *scope == "firm", name, id)
                }
            }
        }
        _ => Err(format!(
            "unknown command {line:?}: sessions | kill|unkill session NAME | kill|unkill firm \
             NAME | halt|resume SYMBOL | instruments | disconnect NAME | cancel session|firm \
             NAME [SYMBOL] | reload"
        )),
    };
    console
        .stats
        .count(words.first().copied().unwrap_or(""), result.is_ok());
    match result {
        Ok(v) => v.to_string(),
        Err(e) => error(&e),
    }
}

fn halt(
    links: &mut [AdminLink],
    instruments: &mut [(String, crate::engine::InstrumentId, bool)],
    symbol: &str,
    halted: bool,
) -> Result<serde_json::Value, String> {
    let Some(entry) = instruments.iter_mut().find(|(s, _, _)| s == symbol) else {
        return Err(format!("no instrument {symbol:?}"));
    };
    for link in links.iter_mut() {
        let req = ControlRequest::Halt {
            instrument: entry.1,
            halted,
        };
        ask(link, req)?;
    }
    entry.2 = halted;
    if halted {
        tracing::warn!("admin: instrument {symbol} halted");
    } else {
        tracing::warn!("admin: instrument {symbol} resumed");
    }
    Ok(serde_json::json!({ "ok": true, "symbol": symbol, "halted": halted }))
}

fn disconnect(
    links: &mut [AdminLink],
    directory: &[DirectoryEntry],
    name: &str,
) -> Result<serde_json::Value, String> {
    let hits: Vec<&DirectoryEntry> = directory.iter().filter(|e| matches(e, name)).collect();
    if hits.is_empty() {
        return Err(format!("no session named {name:?}"));
    }
    let mut affected = 0;
    for e in hits {
        let link = links
            .iter_mut()
            .find(|l| l.gateway == e.gateway)
            .ok_or_else(|| format!("no gateway {}", e.gateway))?;
        affected += ask(link, ControlRequest::Disconnect { session: e.local })?.1;
    }
    tracing::warn!("admin: disconnected {name} ({affected} connection(s))");
    Ok(serde_json::json!({ "ok": true, "affected": affected }))
}

/// What a reload may change of a FIX session or binary user: its credentials and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reloadable {
    username: Option<String>,
    password: Option<String>,
    limits: SessionLimits,
}

fn fix_reloadable(s: &crate::config::FixSessionConfig) -> Reloadable {
    Reloadable {
        username: s.username.clone(),
        password: s.password.clone(),
        limits: SessionLimits {
            max_messages_per_sec: s.max_messages_per_sec,
            max_orders_per_sec: s.max_orders_per_sec,
            throttle_policy: s.throttle_policy,
            max_open_orders: s.max_open_orders,
            max_open_notional: s.max_open_notional,
        },
    }
}

fn binary_reloadable(u: &crate::config::BinaryUserConfig) -> Reloadable {
    Reloadable {
        username: None,
        password: u.password.clone(),
        limits: SessionLimits {
            max_messages_per_sec: u.max_messages_per_sec,
            max_orders_per_sec: u.max_orders_per_sec,
            throttle_policy: u.throttle_policy,
            max_open_orders: u.max_open_orders,
            max_open_notional: u.max_open_notional,
        },
    }
}

/// The sections of `new` that differ from `old` in more than what a reload may change.
fn needs_restart(old: &crate::config::Config, new: &crate::config::Config) -> Vec<String> {
    let mut same = new.clone();
    // Take the running values of what may change live; whatever still differs may not.
    for (n, o) in same.fix.sessions.iter_mut().zip(&old.fix.sessions) {
        (n.username, n.password) = (o.username.clone(), o.password.clone());
        (n.max_messages_per_sec, n.max_orders_per_sec) =
            (o.max_messages_per_sec, o.max_orders_per_sec);
        (n.throttle_policy, n.max_open_orders) = (o.throttle_policy, o.max_open_orders);
        n.max_open_notional = o.max_open_notional;
    }
    for (n, o) in same.binary.users.iter_mut().zip(&old.binary.users) {
        n.password = o.password.clone();
        (n.max_messages_per_sec, n.max_orders_per_sec) =
            (o.max_messages_per_sec, o.max_orders_per_sec);
        (n.throttle_policy, n.max_open_orders) = (o.throttle_policy, o.max_open_orders);
        n.max_open_notional = o.max_open_notional;
    }
    let (a, b) = match (serde_json::to_value(old), serde_json::to_value(&same)) {
        (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) => (a, b),
        _ => return vec!["(the configuration does not serialise)".into()],
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("[{k}]"))
        .collect()
}

/// `reload`: reads the configuration file again and applies what may change while running
/// (sessions' credentials, throttles and quotas). Anything else that changed refuses the
/// whole reload (nothing applied): it needs a restart.
fn reload(console: &mut Console) -> Result<serde_json::Value, String> {
    let Some(path) = console.config_path.clone() else {
        return Err(
            "the appliance runs on the embedded default configuration: there is no \
                    file to reload (start it with --config FILE)"
                .into(),
        );
    };
    let new = crate::config::Config::load(&path)
        .map_err(|e| format!("{}: {e:#}; nothing reloaded", path.display()))?;
    let restart = needs_restart(&console.config, &new);
    if !restart.is_empty() {
        return Err(format!(
            "{} changed in {}: only sessions' credentials, throttles and quotas change while \
             running; nothing reloaded (restart to apply the rest)",
            restart.join(", "),
            path.display()
        ));
    }
    let mut changes: Vec<(Protocol, String, Reloadable, bool)> = Vec::new();
    for (o, n) in console.config.fix.sessions.iter().zip(&new.fix.sessions) {
        let (a, b) = (fix_reloadable(o), fix_reloadable(n));
        if a != b {
            let creds = (a.username, a.password) != (b.username.clone(), b.password.clone());
            changes.push((Protocol::Fix, n.target_comp_id.clone(), b, creds));
        }
    }
    for (o, n) in console.config.binary.users.iter().zip(&new.binary.users) {
        let (a, b) = (binary_reloadable(o), binary_reloadable(n));
        if a != b {
            let creds = a.password != b.password;
            changes.push((Protocol::Binary, n.username.clone(), b, creds));
        }
    }
    let mut names = Vec::new();
    for (protocol, name, r, creds) in changes {
        let e = console
            .directory
            .iter()
            .find(|e| e.protocol == protocol && e.name == name)
            .ok_or_else(|| format!("no session {}:{name}", protocol.label()))?;
        let link = console
            .links
            .iter_mut()
            .find(|l| l.gateway == e.gateway)
            .ok_or_else(|| format!("no gateway {}", e.gateway))?;
        let credentials = creds.then(|| {
            Box::new(Credentials {
                bind: (r.username.clone(), r.password.clone()),
                fix: (r.username.clone(), r.password.clone()),
            })
        });
        let req = ControlRequest::Reload {
            session: e.local,
            limits: r.limits,
        };
        ask_with(link, req, credentials)?;
        let label = format!("{}:{name}", protocol.label());
        tracing::warn!(
            "admin: reloaded {label}{}: {:?}",
            if creds { " (credentials changed)" } else { "" },
            r.limits
        );
        names.push(label);
    }
    console.config = new;
    Ok(serde_json::json!({ "ok": true, "reloaded": names }))
}

/// The operator's mass cancel: every working order of a session (or of a firm), on one
/// instrument if given; the sessions keep trading.
fn cancel(
    links: &mut [AdminLink],
    directory: &[DirectoryEntry],
    firm: bool,
    name: &str,
    instrument: Option<crate::engine::InstrumentId>,
) -> Result<serde_json::Value, String> {
    let mut targets: Vec<(usize, Target)> = Vec::new();
    let mut names = Vec::new();
    for e in directory {
        let hit = if firm {
            e.owner_name == name
        } else {
            matches(e, name)
        };
        if hit {
            names.push(format!("{}:{}", e.protocol.label(), e.name));
            let t = if firm {
                Target::Owner(e.owner)
            } else {
                Target::Session(e.local)
            };
            if !targets.contains(&(e.gateway, t)) {
                targets.push((e.gateway, t));
            }
        }
    }
    if targets.is_empty() {
        let what = if firm { "firm" } else { "session" };
        return Err(format!("no {what} named {name:?}"));
    }
    let mut affected = 0;
    for (g, target) in targets {
        let link = links
            .iter_mut()
            .find(|l| l.gateway == g)
            .ok_or_else(|| format!("no gateway {g}"))?;
        let req = ControlRequest::Cancel { target, instrument };
        let deadline = Instant::now() + DEADLINE;
        loop {
            match ask(link, req)?.1 {
                BUSY if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                BUSY => return Err(format!("gateway {g}: the engine rings stayed full for 2 s")),
                n => {
                    affected += n;
                    break;
                }
            }
        }
    }
    tracing::warn!(
        "admin: cancelled the working orders of {}{}",
        names.join(", "),
        instrument.map_or(String::new(), |i| format!(" on instrument {i}"))
    );
    Ok(serde_json::json!({ "ok": true, "affected": affected, "sessions": names }))
}

/// Sends `req` to gateway `g` and collects its answer until `Done`.
fn ask(link: &mut AdminLink, req: ControlRequest) -> Result<(Vec<SessionRow>, u32), String> {
    ask_with(link, req, None)
}

/// [`ask`] with credentials for a reload (the ones replaced come back and are dropped here,
/// off the gateway's thread).
fn ask_with(
    link: &mut AdminLink,
    req: ControlRequest,
    credentials: Option<Box<Credentials>>,
) -> Result<(Vec<SessionRow>, u32), String> {
    // Answers of an earlier command that timed out are stale.
    while link.replies.pop().is_some() {}
    let uid = link.operator;
    link.requests
        .push(Control {
            request: req,
            uid,
            credentials,
        })
        .map_err(|_| format!("gateway {} is not taking commands", link.gateway))?;
    link.waker.wake_after_publish();
    let deadline = Instant::now() + DEADLINE;
    let mut rows = Vec::new();
    loop {
        match link.replies.pop() {
            Some(ControlReply::Session(r)) => rows.push(r),
            Some(ControlReply::Credentials(old)) => drop(old),
            Some(ControlReply::Done { affected }) => return Ok((rows, affected)),
            None if Instant::now() >= deadline => {
                return Err(format!(
                    "gateway {} did not answer within 2 s",
                    link.gateway
                ))
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn sessions(
    links: &mut [AdminLink],
    directory: &[DirectoryEntry],
) -> Result<serde_json::Value, String> {
    let mut out = Vec::new();
    for link in links.iter_mut() {
        let g = link.gateway;
        let (rows, _) = ask(link, ControlRequest::Sessions)?;
        for r in rows {
            let Some(e) = directory
                .iter()
                .find(|e| e.gateway == g && e.local == r.local)
            else {
                continue;
            };
            out.push(serde_json::json!({
                "name": e.name,
                "protocol": e.protocol.label(),
                "gateway": g,
                "firm": e.owner_name,
                "connected": r.connected,
                "killed": r.killed,
                "next_in": r.next_in,
                "next_out": r.next_out,
                "open_orders": r.open_orders,
                "throttled": r.throttled,
                "max_messages_per_sec": r.max_messages_per_sec,
                "max_orders_per_sec": r.max_orders_per_sec,
                "max_open_orders": r.max_open_orders,
                "max_open_notional": r.max_open_notional,
            }));
        }
    }
    Ok(serde_json::json!({ "ok": true, "sessions": out }))
}

/// `NAME`, `fix:NAME` or `binary:NAME`.
fn matches(e: &DirectoryEntry, name: &str) -> bool {
    match name.split_once(':') {
        Some((p, n)) => p == e.protocol.label() && n == e.name,
        None => name == e.name,
    }
}

fn kill_sessions(
    links: &mut [AdminLink],
    directory: &[DirectoryEntry],
    name: &str,
    engage: bool,
) -> Result<serde_json::Value, String> {
    let hits: Vec<&DirectoryEntry> = directory.iter().filter(|e| matches(e, name)).collect();
    if hits.is_empty() {
        return Err(format!("no session named {name:?}"));
    }
    let mut affected = 0;
    let mut names = Vec::new();
    for e in hits {
        let link = links
            .iter_mut()
            .find(|l| l.gateway == e.gateway)
            .ok_or_else(|| format!("no gateway {}", e.gateway))?;
        let req = ControlRequest::Kill {
            target: Target::Session(e.local),
            engage,
        };
        affected += ask(link, req)?.1;
        names.push(format!("{}:{}", e.protocol.label(), e.name));
    }
    action_logged(engage, &names);
    Ok(serde_json::json!({ "ok": true, "affected": affected, "sessions": names }))
}

fn kill_firm(
    links: &mut [AdminLink],
    directory: &[DirectoryEntry],
    firm: &str,
    engage: bool,
) -> Result<serde_json::Value, String> {
    let Some(owner) = directory
        .iter()
        .find(|e| e.owner_name == firm)
        .map(|e| e.owner)
    else {
        return Err(format!("no firm named {firm:?}"));
    };
    let mut affected = 0;
    for link in links.iter_mut() {
        let req = ControlRequest::Kill {
            target: Target::Owner(owner),
            engage,
        };
        affected += ask(link, req)?.1;
    }
    let names: Vec<String> = directory
        .iter()
        .filter(|e| e.owner == owner)
        .map(|e| format!("{}:{}", e.protocol.label(), e.name))
        .collect();
    action_logged(engage, &names);
    Ok(serde_json::json!({ "ok": true, "affected": affected, "firm": firm, "sessions": names }))
}

fn action_logged(engage: bool, names: &[String]) {
    if engage {
        tracing::warn!("admin: kill switch engaged for {}", names.join(", "));
    } else {
        tracing::warn!("admin: kill switch lifted for {}", names.join(", "));
    }
}
