//! A small blocking TCP driver around [`fix::Acceptor`] for tests and tools: one thread per
//! connection, the registry behind a mutex. It shows the calling pattern the io_uring gateway
//! uses (append bytes, `identify` while unbound, `on_input` until `NeedMore`, `on_timer`,
//! flush the output) without being a production server: it binds 127.0.0.1 only and stops
//! when told.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fix::session::{Event, MessageStore, Scratch, Session};
use fix::{Acceptor, Identify, Message};

/// UTC nanoseconds since the epoch: the one clock read, done by the driver, never the crate.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What the application does with application messages.
pub trait App<S: MessageStore>: Send + 'static {
    /// Called for every validated, in-sequence application message.
    fn on_message(
        &mut self,
        session: &mut Session<S>,
        msg: &Message<'_>,
        now: u64,
        out: &mut Vec<u8>,
    );
    /// Called for every session event (for logging and assertions).
    fn on_event(&mut self, _what: &str) {}
}

/// A running acceptor.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Stops accepting and waits for the listener thread (connection threads end on their own
    /// when their peer goes away or within a read timeout).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts an acceptor on 127.0.0.1 (ephemeral port) serving `acceptor`'s sessions with `app`.
pub fn spawn<S, A>(acceptor: Acceptor<S>, app: A) -> Server
where
    S: MessageStore + Send + 'static,
    A: App<S>,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let stop = Arc::new(AtomicBool::new(false));
    let reg = Arc::new(Mutex::new((acceptor, app)));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = conn else { continue };
            let reg = reg.clone();
            let stop3 = stop2.clone();
            std::thread::spawn(move || serve(stream, reg, stop3));
        }
    });
    Server {
        addr,
        stop,
        thread: Some(thread),
    }
}

fn serve<S, A>(mut stream: TcpStream, reg: Arc<Mutex<(Acceptor<S>, A)>>, stop: Arc<AtomicBool>)
where
    S: MessageStore + Send + 'static,
    A: App<S>,
{
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let max = reg.lock().map(|r| r.0.max_message_size()).unwrap_or(8192);
    let mut scratch = Scratch::new(max.max(64));
    let mut inbuf: Vec<u8> = Vec::with_capacity(max * 2);
    let mut out: Vec<u8> = Vec::with_capacity(max * 4);
    let mut bound = None;
    let mut chunk = vec![0u8; 65536];
    let mut peer_closed = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => peer_closed = true,
            Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => peer_closed = true,
        }
        let now = now_ns();
        let mut close = false;
        {
            let mut guard = reg.lock().expect("registry lock");
            let (acceptor, app) = &mut *guard;
            if bound.is_none() && !inbuf.is_empty() {
                match acceptor.identify(&inbuf, now) {
                    Identify::NeedMore => {}
                    Identify::Bind(id) => {
                        app.on_event(&format!("bind {id:?}"));
                        bound = Some(id);
                    }
                    Identify::Reject(e) => {
                        app.on_event(&format!("reject connection: {e:?}"));
                        close = true;
                    }
                }
            }
            if let Some(id) = bound {
                let session = acceptor.session(id);
                let mut pos = 0;
                while !close {
                    let r = session.on_input(&inbuf[pos..], &mut scratch, now, &mut out);
                    pos += r.consumed;
                    match r.event {
                        Event::NeedMore => break,
                        Event::App(msg) => app.on_message(session, &msg, now, &mut out),
                        Event::Disconnect(d) => {
                            app.on_event(&format!("disconnect: {d:?}"));
                            close = true;
                        }
                        other => app.on_event(&format!("{other:?}")),
                    }
                }
                inbuf.drain(..pos);
                // The rest of an answer to the peer's ResendRequest (written a batch at a
                // time; our new messages are held back until it is out).
                while !close && session.resend_pending() {
                    match session.pump_resend(now, &mut out) {
                        Ok(_) => {}
                        Err(d) => {
                            app.on_event(&format!("resend disconnect: {d:?}"));
                            close = true;
                        }
                    }
                }
                if !close {
                    if let Some(d) = session.on_timer(now, &mut out) {
                        app.on_event(&format!("timer disconnect: {d:?}"));
                        close = true;
                    }
                }
            }
            if peer_closed || close {
                if let Some(id) = bound.take() {
                    acceptor.release(id);
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                close = true;
            }
            out.clear();
        }
        if close || peer_closed {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
    if let Some(id) = bound {
        if let Ok(mut g) = reg.lock() {
            g.0.release(id);
        }
    }
}
