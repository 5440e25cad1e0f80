//! A TCP proxy for tests that put a database (or any server) behind a link that can
//! stall or break: `stall()` stops forwarding bytes in both directions while keeping the
//! connections open (a hung server or a dropped route), `stall_replies()` only the
//! server's answers (the server does the work, the client never hears of it),
//! `hold_replies_after(b"COMMIT")` holds the server's answers on each connection from
//! the moment its client sends those bytes (the database commits; the client never
//! hears of it), `resume()` forwards again, `break_connections()` closes every
//! connection open now (a restart or a reset), and `black_hole_connections()` silently
//! stops the connections open now for good while new ones work (a failover or a NAT
//! that forgot them: no reset ever arrives).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    replies_stalled: Arc<AtomicBool>,
    /// Bytes after which a connection's replies are held (see `hold_replies_after`).
    trap: Arc<Mutex<Option<Vec<u8>>>>,
    /// Connections whose replies are held by the trap.
    trapped: Arc<AtomicU64>,
    /// Bumped by `black_hole_connections`: connections opened before it never forward again.
    epoch: Arc<AtomicU64>,
    /// Bumped by `break_connections`: connections opened before it close.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stalled = Arc::new(AtomicBool::new(false));
        let replies_stalled = Arc::new(AtomicBool::new(false));
        let trap: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let trapped = Arc::new(AtomicU64::new(0));
        let epoch = Arc::new(AtomicU64::new(0));
        let (generation, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = {
            let stalled = stalled.clone();
            let replies_stalled = replies_stalled.clone();
            let generation = generation.clone();
            let accepted = accepted.clone();
            let (trap, trapped) = (trap.clone(), trapped.clone());
            let epoch = epoch.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let stalled = stalled.clone();
                    let replies_stalled = replies_stalled.clone();
                    let (trap, trapped) = (trap.clone(), trapped.clone());
                    let epoch = epoch.clone();
                    let born_epoch = epoch.load(Ordering::SeqCst);
                    let mut gen_rx = generation.subscribe();
                    let born = *gen_rx.borrow_and_update();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        // this connection's replies, held once its client sent the trap
                        let held = Arc::new(AtomicBool::new(false));
                        let watch_trap = Trap {
                            bytes: trap,
                            held: held.clone(),
                            trapped,
                        };
                        let pump = async {
                            let gone = || epoch.load(Ordering::SeqCst) != born_epoch;
                            let requests = || stalled.load(Ordering::SeqCst) || gone();
                            let replies = || {
                                requests()
                                    || replies_stalled.load(Ordering::SeqCst)
                                    || held.load(Ordering::SeqCst)
                            };
                            tokio::join!(
                                pump(cr, sw, requests, Some(watch_trap)),
                                pump(sr, cw, replies, None)
                            )
                        };
                        tokio::select! {
                            _ = pump => {}
                            _ = async {
                                while gen_rx.changed().await.is_ok() {
                                    if *gen_rx.borrow() != born {
                                        break;
                                    }
                                }
                            } => {}
                        }
                    });
                }
            })
        };
        Ok(TcpProxy {
            addr,
            stalled,
            replies_stalled,
            trap,
            trapped,
            epoch,
            generation,
            accepted,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding: bytes wait in both directions, connections stay open.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Stops forwarding the server's bytes only: requests still reach the server, which
    /// acts on them, but no answer comes back.
    pub fn stall_replies(&self) {
        self.replies_stalled.store(true, Ordering::SeqCst);
    }

    /// From now on, holds the replies of each connection whose client sends `bytes`
    /// (e.g. `b"COMMIT"`): what it sent reaches the server, no answer comes back.
    pub fn hold_replies_after(&self, bytes: &[u8]) {
        *self.trap.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes.to_vec());
    }

    /// How many connections have their replies held by [`TcpProxy::hold_replies_after`].
    pub fn held_connections(&self) -> u64 {
        self.trapped.load(Ordering::SeqCst)
    }

    /// Forwards again, the bytes that waited included, and sets no new trap (replies a
    /// trap already holds stay held until their connection breaks).
    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        self.replies_stalled.store(false, Ordering::SeqCst);
        *self.trap.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Stops forwarding on every connection open now, for good, without closing it:
    /// their peers wait forever. Connections opened afterwards work as usual.
    pub fn black_hole_connections(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Closes every connection open now; new ones are accepted as before.
    pub fn break_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// A PostgreSQL URL like `url` that goes through this proxy instead.
    pub fn postgres_url(&self, url: &str) -> String {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let (head, rest) = url.split_at(scheme_end);
        let (authority, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let userinfo = authority.rfind('@').map_or("", |i| &authority[..=i]);
        format!("{head}{userinfo}{}{tail}", self.addr)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.break_connections();
        self.task.abort();
    }
}

/// Holds a connection's replies once its client sent the trap's bytes.
struct Trap {
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
    held: Arc<AtomicBool>,
    trapped: Arc<AtomicU64>,
}

impl Trap {
    fn watch(&self, sent: &[u8]) {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(bytes) = bytes else { return };
        if !self.held.load(Ordering::SeqCst)
            && !bytes.is_empty()
            && sent.windows(bytes.len()).any(|w| w == bytes.as_slice())
        {
            self.held.store(true, Ordering::SeqCst);
            self.trapped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Copies `from` to `to` while `held` is false; `trap` watches what passes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    held: impl Fn() -> bool,
    trap: Option<Trap>,
) {
    let stalled = held;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while stalled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // bytes read just before a stall wait for the resume too
        while stalled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(trap) = &trap {
            trap.watch(&buf[..n]);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The address of the host and port of a PostgreSQL URL (for [`TcpProxy::start`]).
pub fn postgres_addr(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    hostport.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stalled_proxy_holds_bytes_until_resumed_and_breaks_on_demand() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = TcpProxy::start(echo_addr).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = [0u8; 4];
        c.write_all(b"ping").await.unwrap();
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");

        proxy.stall();
        c.write_all(b"wait").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(200), c.read_exact(&mut b)).await;
        assert!(waited.is_err(), "nothing passes a stalled proxy");
        proxy.resume();
        tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut b))
            .await
            .expect("the held bytes pass after resume")
            .unwrap();
        assert_eq!(&b, b"wait");

        // only the answers held: the request reaches the server, its echo does not come back
        proxy.stall_replies();
        c.write_all(b"half").await.unwrap();
        let held = tokio::time::timeout(Duration::from_millis(200), c.read_exact(&mut b)).await;
        assert!(held.is_err(), "no reply passes");
        proxy.resume();
        tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b, b"half");

        // the trap: the bytes that spring it pass, the answer to them does not
        proxy.hold_replies_after(b"COMMIT");
        c.write_all(b"ping").await.unwrap();
        c.read_exact(&mut b).await.unwrap();
        c.write_all(b"COMMIT").await.unwrap();
        let mut six = [0u8; 6];
        let trapped =
            tokio::time::timeout(Duration::from_millis(200), c.read_exact(&mut six)).await;
        assert!(trapped.is_err(), "the answer to the trap is held");
        assert_eq!(proxy.held_connections(), 1);

        proxy.break_connections();
        let closed = tokio::time::timeout(Duration::from_secs(2), c.read(&mut b))
            .await
            .expect("a broken connection ends");
        assert!(matches!(closed, Ok(0) | Err(_)));
        assert_eq!(proxy.accepted(), 1);
    }

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        assert_eq!(
            postgres_addr("postgres://postgres@127.0.0.1:5432/db?x=1"),
            Some("127.0.0.1:5432".parse().unwrap())
        );
    }
}
