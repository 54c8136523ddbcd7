//! One connection: hyper HTTP/1.1 with a header-read timeout (a timer set, so it is
//! really on), a keep-alive idle timeout, a bounded read buffer, request heads checked
//! before hyper sees them (`head_check.rs`), and graceful close when the server stops.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::head_check::{encode_answer, Answer, HeadCheck};
use crate::config::HttpConfig;
use crate::http::{handle, head_refusal, AppState};

#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_buf: usize,
    /// Longest request head (`server/head_check.rs`).
    pub max_head: usize,
}

impl From<&HttpConfig> for ConnLimits {
    fn from(h: &HttpConfig) -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(h.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(h.keepalive_idle_seconds),
            // hyper refuses a buffer under 8 KiB.
            max_buf: h.max_header_bytes.max(8192),
            max_head: h.max_header_bytes,
        }
    }
}

pub async fn serve_connection<S>(
    state: Arc<AppState>,
    stream: S,
    peer: SocketAddr,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let tracked = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let refusal_state = state.clone();
    let answer: Answer = Box::new(move |e| {
        let (parts, body) = head_refusal(&refusal_state, peer, e.into());
        encode_answer(&parts, &body)
    });
    let (checked, mut refused) = HeadCheck::new(tracked, limits.max_head, answer);
    let io = TokioIo::new(checked);
    let service = service_fn(move |req| handle(state.clone(), req, peer));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);

    let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(tick);
    let mut closing = *stop.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            r = &mut refused, if !closing => {
                // A refused head: answer the request in flight (if any), then the
                // refusal is written as hyper closes the stream. (An error: the stream
                // is gone, and so is the connection.)
                closing = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = stop.changed(), if !closing => {
                // Finish the request in flight (if any), then close.
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick(), if !closing => {
                if activity.idle_for() >= limits.idle_timeout {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Last time bytes moved on the connection, as milliseconds since `base`.
#[derive(Clone)]
struct Activity {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.base.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A stream that records activity on every read and write.
struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
