//! Connection budgets and the closing deadline, against the real appliance binary (tried as
//! a new user would):
//! - 3,000 idle TCP connections to the FIX port used to take every slot (64 per gateway,
//!   each held for 10 s), and a well-behaved CLIENT1 could not log on. Connections that have
//!   not logged on now share a budget (in all and per source address) and the oldest makes
//!   way for the newcomer: CLIENT1 logs on at once, and the flood from one address never
//!   pushes out connections from another.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

fn metric(app: &App, name: &str) -> f64 {
    app.metric_sum(name)
}

/// Raises this process's open-file limit to its hard limit (3,000 sockets).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        assert!(
            r.rlim_cur >= 4_096,
            "this test needs 4,096 open files (ulimit -Hn is {})",
            r.rlim_max
        );
    }
}

/// A TCP connection to `to` from source address `from` (loopback has all of 127/8).
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(to4) = to else {
        panic!("IPv4 listener expected")
    };
    let from: std::net::Ipv4Addr = from.parse().unwrap();
    // SAFETY: plain socket calls on a descriptor this function owns until it is handed to
    // TcpStream (which then owns and closes it).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as u16;
        a.sin_addr.s_addr = u32::from(from).to_be();
        if libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        a.sin_port = to4.port().to_be();
        a.sin_addr.s_addr = u32::from(*to4.ip()).to_be();
        if libc::connect(fd, (&a as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Whether the appliance has closed `s` (EOF or reset), without waiting for data.
fn closed_by_peer(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let mut reader = s;
    let r = match reader.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    r
}

#[test]
fn three_thousand_idle_connections_do_not_lock_a_configured_session_out() {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    // The logon timeout longer than any flood takes on a slow machine, so the connections
    // from 127.0.0.2 are closed by nothing but eviction.
    let cfg = config_file(
        dir.path(),
        "off",
        &[("logon_timeout_secs = 10", "logon_timeout_secs = 120")],
    );
    let mut app = App::start(&cfg);

    let t0 = Instant::now();
    // Four idle connections from another address, first.
    let others: Vec<TcpStream> = (0..4)
        .map(|_| connect_from("127.0.0.2", app.fix).expect("connect from 127.0.0.2"))
        .collect();
    // 3,000 idle connections from 127.0.0.1.
    let mut flood = Vec::with_capacity(3_000);
    for i in 0..3_000 {
        match connect_from("127.0.0.1", app.fix) {
            Ok(s) => flood.push(s),
            Err(e) => panic!("connection {i} of the flood failed: {e}"),
        }
    }
    // Once the appliance has taken the whole flood from its accept queue: each newcomer
    // evicted the oldest of the flood or, when the slots freed by evictions were still
    // closing, was refused itself.
    // (Counters reach the exporter every publish interval: wait for them.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut evicted, mut refused) = (0.0, 0.0);
    while evicted + refused < 2_980.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        evicted = metric(&app, "appliance_connections_evicted_total");
        refused = metric(&app, "appliance_connections_refused_total");
    }
    eprintln!(
        "flood taken after {:?}: {evicted} evicted, {refused} refused",
        t0.elapsed()
    );
    assert!(
        evicted + refused >= 2_980.0 && evicted >= 1_000.0,
        "about 3,000 - 16 of the flood evicted or refused, not {evicted} + {refused}"
    );
    // Then CLIENT1 logs on at its first attempt (FixClient::logon fails after 5 s without an
    // answer) and trades.
    let t = Instant::now();
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    let logon_took = t.elapsed();
    c.order(
        "B1",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let m = c.recv();
    assert_eq!((m.msg_type.as_str(), m.req(39)), ("8", "0"), "{m:?}");

    // The flood pushed out its own oldest, never the other address's connections.
    for (i, s) in others.iter().enumerate() {
        assert!(
            !closed_by_peer(s),
            "connection {i} from 127.0.0.2 was closed by the flood from 127.0.0.1"
        );
    }
    let still_open = flood
        .iter()
        .rev()
        .take(100)
        .filter(|s| !closed_by_peer(s))
        .count();
    assert!(
        still_open <= 16,
        "at most max_unauthenticated_per_address (16) of the flood are kept, {still_open} of the last 100 are"
    );
    assert!(closed_by_peer(&flood[0]), "the oldest was evicted");
    eprintln!(
        "CLIENT1 logged on in {logon_took:?} after the flood; {evicted} evicted, {refused} refused"
    );
    drop(flood);
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// The appliance's side of an accepted connection runs a keepalive timer (`gateway.
/// tcp_keepalive_secs`), as `/proc/net/tcp` shows (timer kind 2), so the kernel notices a
/// peer that vanished even when the session's heartbeats are long.
#[test]
fn accepted_connections_run_a_keepalive_timer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[]);
    let mut app = App::start(&cfg);
    let _c = FixClient::logon(app.fix, "CLIENT1");
    let port = format!("{:04X}", app.fix.port());
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    // Fields: sl local rem st tx:rx tr:when ...; the appliance's side has the listener's port.
    let timers: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            (local_port == port && f.get(3) == Some(&"01")).then(|| f[5].to_string())
        })
        .collect();
    assert_eq!(
        timers.len(),
        1,
        "one established connection on the FIX port: {timers:?}"
    );
    assert!(
        timers[0].starts_with("02:"),
        "keepalive timer on the appliance's side, not {:?}",
        timers[0]
    );
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// Sets the appliance's soft open-file limit to `n` (the hard limit stays).
fn set_nofile(pid: u32, n: u64) {
    // SAFETY: prlimit on our own child with valid rlimit structs.
    unsafe {
        let mut old: libc::rlimit = std::mem::zeroed();
        let rc = libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        );
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
        let r = libc::rlimit {
            rlim_cur: n.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        let rc = libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &r,
            std::ptr::null_mut(),
        );
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
}

/// Out of descriptors (EMFILE), the gateway pauses accepting for 100 ms at a time instead of
/// retrying at once: before, the listener stayed readable with connections waiting and the
/// gateway thread spun on failing accepts. Once descriptors are free again, accepting resumes
/// by itself and a configured session logs on. On the epoll backend: on this kernel (6.18) a
/// limit lowered with prlimit after start does not stop io_uring's accepts (its requests were
/// not refused), so the io_uring backend's pause (the same rule: the multishot accept is
/// cancelled and re-armed when the pause ends) cannot be reached this way.
#[test]
fn out_of_descriptors_the_epoll_gateway_pauses_accepting_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[("io = \"auto\"", "io = \"epoll\"")]);
    let mut app = App::start(&cfg);
    let pid = app.pid().unwrap();
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    // Room for two more descriptors only; then twenty connections wait in the backlog.
    set_nofile(pid, open_fds + 2);
    let waiting: Vec<TcpStream> = (0..20)
        .map(|_| connect_from("127.0.0.1", app.fix).expect("connect (the kernel queues it)"))
        .collect();
    // Two seconds out of descriptors (the exporter cannot accept a scrape meanwhile either).
    std::thread::sleep(Duration::from_secs(2));
    // Descriptors back: accepting resumes by itself, the waiting connections are taken (and,
    // silent, closed at the logon timeout), and CLIENT1 logs on.
    drop(waiting);
    set_nofile(pid, 4096);
    // (Counters reach the exporter every publish interval.)
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut errors = 0.0;
    while errors < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        errors = metric(&app, "appliance_accept_errors_total");
    }
    eprintln!("{errors} failed accepts in 2 s out of descriptors");
    assert!(errors >= 1.0, "the accepts failed (EMFILE): {errors}");
    // Paused 100 ms after each failure: about 20 failures in 2 s. Spinning, it was hundreds
    // of thousands.
    assert!(
        errors <= 60.0,
        "{errors} failed accepts in 2 s: the gateway retries without pausing"
    );
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    c.order(
        "E1",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(39), "0");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}
