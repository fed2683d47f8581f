//! The floor: a plain loopback TCP ping-pong with the same message sizes as the venue's
//! request and reply, so every appliance figure can be quoted as a ratio to what the kernel's
//! TCP stack alone costs on this machine, measured in the same run.
//!
//! The server is the dumbest possible venue: for every `request` bytes it reads, it writes
//! `reply` bytes whose first 8 are the request's first 8 (the key). One thread per connection,
//! blocking reads (or a non-blocking spin loop with `spin`), `TCP_NODELAY` on. It also serves
//! as the trivial echo venue that measures the load generator's own ceiling.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running floor server.
pub struct EchoServer {
    /// Where it listens (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on 127.0.0.1:0 and serves up to `connections` clients, each on its own thread,
    /// pinned to `core` when given. Gives up accepting after 30 s; each connection thread ends
    /// when its client closes.
    pub fn start(
        request: usize,
        reply: usize,
        connections: usize,
        spin: bool,
        core: Option<usize>,
    ) -> std::io::Result<EchoServer> {
        assert!(request >= 8 && reply >= 8);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let acceptor = std::thread::Builder::new()
            .name("floor-accept".into())
            .spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut served = 0;
                let mut workers = Vec::new();
                while served < connections && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            served += 1;
                            workers.push(
                                std::thread::Builder::new()
                                    .name("floor-echo".into())
                                    .spawn(move || {
                                        if let Some(c) = core {
                                            core_affinity::set_for_current(core_affinity::CoreId {
                                                id: c,
                                            });
                                        }
                                        let _ = serve(s, request, reply, spin);
                                    })
                                    .expect("spawn floor-echo"),
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        Err(_) => break,
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })?;
        Ok(EchoServer {
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// Waits for every connection thread to end (their clients closed).
    pub fn join(mut self) {
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn serve(mut s: TcpStream, request: usize, reply: usize, spin: bool) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_nonblocking(spin)?;
    let mut inbuf = vec![0u8; 1 << 20];
    let mut len = 0;
    let mut out = Vec::with_capacity(1 << 20);
    let template = vec![b'y'; reply];
    loop {
        let n = match s.read(&mut inbuf[len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::hint::spin_loop();
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        let mut pos = 0;
        while len - pos >= request {
            let at = out.len();
            out.extend_from_slice(&template);
            out[at..at + 8].copy_from_slice(&inbuf[pos..pos + 8]);
            pos += request;
        }
        inbuf.copy_within(pos..len, 0);
        len -= pos;
        let mut w = 0;
        while w < out.len() {
            match s.write(&out[w..]) {
                Ok(n) => w += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    std::hint::spin_loop()
                }
                Err(e) => return Err(e),
            }
        }
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_key_in_a_reply_of_the_configured_size() {
        let srv = EchoServer::start(48, 64, 1, false, None).unwrap();
        let mut c = TcpStream::connect(srv.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Two requests in one write, the second split across writes.
        let mut req = [0u8; 96];
        req[..8].copy_from_slice(&7u64.to_le_bytes());
        req[48..56].copy_from_slice(&9u64.to_le_bytes());
        c.write_all(&req[..60]).unwrap();
        c.write_all(&req[60..]).unwrap();
        let mut got = [0u8; 128];
        c.read_exact(&mut got).unwrap();
        assert_eq!(u64::from_le_bytes(got[..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(got[64..72].try_into().unwrap()), 9);
        drop(c);
        srv.join();
    }
}
