//! A TCP proxy for tests that put a database (or any server) behind a link that can
//! stall or break: `stall()` stops forwarding bytes in both directions while keeping the
//! connections open (a hung server or a dropped route), `resume()` forwards again,
//! `break_connections()` closes every connection open now (a restart or a reset), and
//! `black_hole_connections()` silently stops the connections open now for good while new
//! ones work (a failover or a NAT that forgot them: no reset ever arrives).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    /// Bumped by `break_connections`: connections opened before it close.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    /// Bumped by `black_hole_connections`: connections opened before it never forward again.
    epoch: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stalled = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let epoch = Arc::new(AtomicU64::new(0));
        let task = {
            let stalled = stalled.clone();
            let generation = generation.clone();
            let accepted = accepted.clone();
            let epoch = epoch.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let stalled = stalled.clone();
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
                        let pump = async {
                            let held = || {
                                stalled.load(Ordering::SeqCst)
                                    || epoch.load(Ordering::SeqCst) != born_epoch
                            };
                            tokio::join!(pump(cr, sw, held), pump(sr, cw, held))
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
            generation,
            accepted,
            epoch,
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

    /// Forwards again, the bytes that waited included.
    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Closes every connection open now; new ones are accepted as before.
    pub fn break_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Stops forwarding on every connection open now, for good, without closing it:
    /// their peers wait forever. Connections opened afterwards work as usual.
    pub fn black_hole_connections(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
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

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    held: impl Fn() -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while held() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // bytes read just before a stall wait for the resume too
        while held() {
            tokio::time::sleep(Duration::from_millis(10)).await;
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

        proxy.break_connections();
        let closed = tokio::time::timeout(Duration::from_secs(2), c.read(&mut b))
            .await
            .expect("a broken connection ends");
        assert!(matches!(closed, Ok(0) | Err(_)));
        assert_eq!(proxy.accepted(), 1);

        // a black hole: the old connection hears nothing, ever; a new one works
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        old.write_all(b"ping").await.unwrap();
        old.read_exact(&mut b).await.unwrap();
        proxy.black_hole_connections();
        old.write_all(b"lost").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(300), old.read_exact(&mut b)).await;
        assert!(silent.is_err(), "nothing passes a black hole");
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        new.write_all(b"pong").await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), new.read_exact(&mut b))
            .await
            .expect("a new connection works")
            .unwrap();
        assert_eq!(&b, b"pong");
    }

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        assert_eq!(
            postgres_addr("postgres://postgres@127.0.0.1:5432/db?x=1"),
            Some("127.0.0.1:5432".parse().unwrap())
        );
    }
}
