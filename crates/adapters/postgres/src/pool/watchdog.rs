//! A socket that fails when the server owes an answer and stays silent too long.
//!
//! PostgreSQL ends the answer to every simple `Query` and every `Sync` (and to the
//! start-up) with one `ReadyForQuery` message, so counting those written against those
//! read tells exactly whether an answer is owed: the frontend and backend streams are
//! split into messages (a type byte and a length; the start-up message has no type
//! byte). While an answer is owed, the read side runs a timer that every byte from the
//! server resets; when it runs out, reads fail with `TimedOut`, the connection ends and
//! every statement waiting on it fails at once. An idle connection owes nothing and
//! never times out.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Any byte stream a connection can run over (TCP or a Unix socket).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub(crate) type BoxedIo = Box<dyn Io>;

/// Splits a protocol stream into messages and reports each one's type byte (0 for the
/// untyped start-up message).
struct Framer {
    /// The next message has no type byte (the frontend's start-up message).
    untyped_next: bool,
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message body still to skip.
    body_left: usize,
}

impl Framer {
    fn new(starts_untyped: bool) -> Self {
        Framer {
            untyped_next: starts_untyped,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    /// Feeds bytes; calls `message` with the type of every message that starts in them.
    fn feed(&mut self, mut bytes: &[u8], mut message: impl FnMut(u8)) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let want = if self.untyped_next { 4 } else { 5 };
            let n = (want - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len < want {
                return;
            }
            let (kind, len) = if self.untyped_next {
                (0, &self.header[..4])
            } else {
                (self.header[0], &self.header[1..5])
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            // the length counts itself
            self.body_left = len.saturating_sub(4);
            self.header_len = 0;
            self.untyped_next = false;
            message(kind);
        }
    }
}

pub(crate) struct Watchdog {
    inner: BoxedIo,
    silence: Duration,
    /// `ReadyForQuery` messages the server still owes.
    owed: u64,
    sent: Framer,
    received: Framer,
    deadline: Pin<Box<Sleep>>,
}

impl Watchdog {
    pub(crate) fn new(inner: BoxedIo, silence: Duration) -> Watchdog {
        Watchdog {
            inner,
            silence,
            owed: 0,
            sent: Framer::new(true),
            received: Framer::new(false),
            deadline: Box::pin(tokio::time::sleep(silence)),
        }
    }

    fn restart_timer(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.silence);
    }
}

impl AsyncRead for Watchdog {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if !fresh.is_empty() {
                    let owed = &mut me.owed;
                    me.received.feed(fresh, |kind| {
                        if kind == b'Z' {
                            *owed = owed.saturating_sub(1);
                        }
                    });
                    // bytes arrived: the server is alive, the silence starts again
                    me.restart_timer();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if me.owed > 0 && me.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the database sent nothing for {} ms while an answer was owed",
                            me.silence.as_millis()
                        ),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Watchdog {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        let written = match Pin::new(&mut me.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let was_idle = me.owed == 0;
        let owed = &mut me.owed;
        me.sent.feed(&data[..written], |kind| {
            // start-up, simple query and sync each get exactly one ReadyForQuery
            if matches!(kind, 0 | b'Q' | b'S') {
                *owed += 1;
            }
        });
        if was_idle && me.owed > 0 {
            me.restart_timer();
            // the read side last looked while nothing was owed and armed no timer:
            // have it look again
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn messages_are_found_across_any_split_of_the_stream() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&12u32.to_be_bytes());
        stream.extend_from_slice(&[0, 3, 0, 0, 1, 2, 3, 4]);
        stream.extend(message(b'Q', b"SELECT 1\0"));
        stream.extend(message(b'P', b"x"));
        stream.extend(message(b'S', b""));
        for chunk in 1..=stream.len() {
            let mut framer = Framer::new(true);
            let mut kinds = Vec::new();
            for piece in stream.chunks(chunk) {
                framer.feed(piece, |k| kinds.push(k));
            }
            assert_eq!(kinds, vec![0, b'Q', b'P', b'S'], "chunks of {chunk}");
        }
    }

    /// Invariant: a connection that owes nothing never times out; one that owes an
    /// answer and hears nothing fails after the silence.
    #[tokio::test]
    async fn only_an_owed_answer_times_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(1024);
        let mut dog = Watchdog::new(Box::new(client), Duration::from_millis(100));
        // the start-up is owed an answer; the server gives it
        dog.write_all(&8u32.to_be_bytes()).await.unwrap();
        dog.write_all(&[0, 3, 0, 0]).await.unwrap();
        let mut startup = [0u8; 8];
        server.read_exact(&mut startup).await.unwrap();
        server.write_all(&message(b'Z', b"I")).await.unwrap();
        let mut got = [0u8; 6];
        dog.read_exact(&mut got).await.unwrap();
        // idle: a read waits past the silence without failing
        let idle = tokio::time::timeout(Duration::from_millis(300), dog.read(&mut got)).await;
        assert!(idle.is_err(), "an idle connection must not time out");
        // a query owes an answer: silence fails the read
        dog.write_all(&message(b'Q', b"SELECT 1\0")).await.unwrap();
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(2), dog.read(&mut got))
            .await
            .expect("the watchdog fires")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
}
