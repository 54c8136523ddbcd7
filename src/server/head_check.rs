//! Every request head is checked before hyper parses it, for two reasons hyper gives no
//! hook for:
//!
//! * a head hyper would refuse itself (malformed, a target over 64 KiB, too many or too
//!   large headers) got hyper's bare 400/414/431 with an empty body; here it gets the
//!   usual JSON answer;
//! * a request with both `Content-Length` and `Transfer-Encoding` is refused (400).
//!   hyper lets `Transfer-Encoding` win and drops `Content-Length` before the service
//!   sees the headers; a proxy in front that reads the length instead would disagree
//!   on where the next request starts (request smuggling).
//!
//! To know where each head starts, bodies are framed here the way hyper frames them
//! (`Content-Length`, or chunked). Bytes pass unchanged; a head is held back until it is
//! complete and judged. A refused head is never shown to hyper: the connection is shut
//! down gracefully (a request in flight still gets its answer) and the refusal is
//! written when hyper closes the stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Most headers in a head: hyper's own limit, so hyper never refuses first.
const MAX_HEADERS: usize = 100;
/// Longest request target: hyper's own limit (`http::Uri` holds no more); D21.
pub const MAX_TARGET_BYTES: usize = 65_534;
/// Longest chunk-size line (size and extensions) that is still framed.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes read from the socket at a time while a head is being assembled (a buffer on
/// the stack: idle connections keep none).
const SCRATCH_BYTES: usize = 8 * 1024;
/// Capacity of the checked-bytes buffer kept while it is empty.
const KEEP_READY_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("Invalid HTTP request")]
    Malformed,
    #[error("Request target too long")]
    TargetTooLong,
    #[error("Request header fields too large")]
    TooLarge,
    #[error("Content-Length and Transfer-Encoding in one request are refused")]
    LengthAndChunked,
    #[error("Invalid Content-Length")]
    BadLength,
    #[error("Transfer-Encoding must end in chunked (HTTP/1.1 only)")]
    BadTransferEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Head,
    /// Bytes left of a body with a `Content-Length`.
    Body(u64),
    ChunkSize,
    /// Bytes left of a chunk's data.
    ChunkData(u64),
    /// Bytes left of the CRLF after a chunk's data.
    ChunkEnd(usize),
    Trailers,
    /// Framing was lost in a malformed chunked body: hyper fails that body and closes
    /// the connection, so nothing after it is a head. Bytes pass unchecked.
    Opaque,
}

/// The framing state of one connection's incoming bytes.
#[derive(Debug)]
pub struct Framer {
    frame: Frame,
    /// Bytes of an incomplete head, chunk-size line or trailer section.
    held: Vec<u8>,
    max_head_bytes: usize,
}

impl Framer {
    pub fn new(max_head_bytes: usize) -> Framer {
        Framer {
            frame: Frame::Head,
            held: Vec::new(),
            max_head_bytes,
        }
    }

    /// Appends to `out` the bytes of `input` (after those held) that may go to hyper,
    /// and holds back the rest of an incomplete head. A refused head stops the feed.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), HeadError> {
        let joined;
        let data: &[u8] = if self.held.is_empty() {
            input
        } else {
            joined = [std::mem::take(&mut self.held).as_slice(), input].concat();
            &joined
        };
        let mut pos = 0;
        while pos < data.len() {
            match self.step(&data[pos..])? {
                Some(n) => {
                    out.extend_from_slice(&data[pos..pos + n]);
                    pos += n;
                }
                None => break,
            }
        }
        self.held = data[pos..].to_vec();
        Ok(())
    }

    /// Body bytes that may be read straight through, when nothing is held.
    pub fn body_left(&self) -> Option<u64> {
        match self.frame {
            _ if !self.held.is_empty() => None,
            Frame::Body(n) | Frame::ChunkData(n) => Some(n),
            Frame::Opaque => Some(u64::MAX),
            _ => None,
        }
    }

    /// Records `n` body bytes read straight through (at most [`Framer::body_left`]).
    pub fn passed(&mut self, n: usize) {
        self.frame = match self.frame {
            Frame::Body(left) => after_body(left - n as u64),
            Frame::ChunkData(left) => after_chunk(left - n as u64),
            other => other,
        };
    }

    /// How many leading bytes of `rest` pass in the current state (`None`: wait for
    /// more), moving to the next state.
    fn step(&mut self, rest: &[u8]) -> Result<Option<usize>, HeadError> {
        Ok(match self.frame {
            Frame::Head => self.head(rest)?,
            Frame::Body(left) => {
                let n = take(left, rest);
                self.frame = after_body(left - n as u64);
                Some(n)
            }
            Frame::ChunkData(left) => {
                let n = take(left, rest);
                self.frame = after_chunk(left - n as u64);
                Some(n)
            }
            Frame::ChunkSize => self.chunk_size(rest),
            Frame::ChunkEnd(left) => self.chunk_end(left, rest),
            Frame::Trailers => self.trailers(rest),
            Frame::Opaque => Some(rest.len()),
        })
    }

    fn head(&mut self, rest: &[u8]) -> Result<Option<usize>, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(rest) {
            Ok(httparse::Status::Complete(len)) if len > self.max_head_bytes => {
                Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Complete(len)) => {
                self.frame = body_frame(&req)?;
                Ok(Some(len))
            }
            Ok(httparse::Status::Partial) if rest.len() > self.max_head_bytes => {
                Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
            Err(_) => Err(HeadError::Malformed),
        }
    }

    fn chunk_size(&mut self, rest: &[u8]) -> Option<usize> {
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((n, 0))) => {
                self.frame = Frame::Trailers;
                Some(n)
            }
            Ok(httparse::Status::Complete((n, size))) => {
                self.frame = Frame::ChunkData(size);
                Some(n)
            }
            Ok(httparse::Status::Partial) if rest.len() <= MAX_CHUNK_LINE => None,
            _ => self.lose_framing(rest),
        }
    }

    fn chunk_end(&mut self, left: usize, rest: &[u8]) -> Option<usize> {
        let expected = &b"\r\n"[2 - left..];
        let n = left.min(rest.len());
        if rest[..n] != expected[..n] {
            return self.lose_framing(rest);
        }
        self.frame = match left - n {
            0 => Frame::ChunkSize,
            more => Frame::ChunkEnd(more),
        };
        Some(n)
    }

    /// The trailer section after the last chunk, up to its empty line.
    fn trailers(&mut self, rest: &[u8]) -> Option<usize> {
        let end = if rest.starts_with(b"\r\n") {
            Some(2)
        } else {
            rest.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
        };
        match end {
            Some(n) => {
                self.frame = Frame::Head;
                Some(n)
            }
            None if rest.len() > self.max_head_bytes => self.lose_framing(rest),
            None => None,
        }
    }

    fn lose_framing(&mut self, rest: &[u8]) -> Option<usize> {
        self.frame = Frame::Opaque;
        Some(rest.len())
    }
}

fn take(left: u64, rest: &[u8]) -> usize {
    usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()))
}

fn after_body(left: u64) -> Frame {
    match left {
        0 => Frame::Head,
        n => Frame::Body(n),
    }
}

fn after_chunk(left: u64) -> Frame {
    match left {
        0 => Frame::ChunkEnd(2),
        n => Frame::ChunkData(n),
    }
}

/// Judges a complete head and says how its body is framed (RFC 9112 §6.3, as hyper).
fn body_frame(req: &httparse::Request<'_, '_>) -> Result<Frame, HeadError> {
    let target = req.path.unwrap_or("");
    if target.len() > MAX_TARGET_BYTES {
        return Err(HeadError::TargetTooLong);
    }
    if http::Uri::try_from(target).is_err() {
        return Err(HeadError::Malformed);
    }
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(HeadError::BadLength)?;
            if length.is_some_and(|prev| prev != n) {
                return Err(HeadError::BadLength);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = Some(ends_in_chunked(h.value));
        }
    }
    match (length, chunked) {
        (Some(_), Some(_)) => Err(HeadError::LengthAndChunked),
        (None, Some(true)) if req.version == Some(1) => Ok(Frame::ChunkSize),
        (None, Some(_)) => Err(HeadError::BadTransferEncoding),
        (Some(n), None) => Ok(after_body(n)),
        (None, None) => Ok(Frame::Head),
    }
}

/// Digits only, as hyper reads a length (no sign, no list).
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn ends_in_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Builds the answer bytes for a refused head.
pub type Answer = Box<dyn FnOnce(HeadError) -> Bytes + Send>;

/// The connection's stream with its heads checked (see the module docs).
pub struct HeadCheck<S> {
    inner: S,
    framer: Framer,
    /// Checked bytes hyper has not read yet.
    ready: BytesMut,
    answer: Option<Answer>,
    /// Tells the connection loop to shut hyper down gracefully.
    refused_tx: Option<oneshot::Sender<()>>,
    /// The refusal's bytes not yet written; written when hyper shuts the stream down.
    refusal: Option<Bytes>,
}

impl<S> HeadCheck<S> {
    /// The receiver fires once a head was refused.
    pub fn new(inner: S, max_head_bytes: usize, answer: Answer) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let check = HeadCheck {
            inner,
            framer: Framer::new(max_head_bytes),
            ready: BytesMut::new(),
            answer: Some(answer),
            refused_tx: Some(tx),
            refusal: None,
        };
        (check, rx)
    }

    fn refuse(&mut self, e: HeadError) {
        if let Some(answer) = self.answer.take() {
            self.refusal = Some(answer(e));
        }
        if let Some(tx) = self.refused_tx.take() {
            let _ = tx.send(());
        }
    }
}

impl<S: AsyncRead + Unpin> HeadCheck<S> {
    /// Body bytes straight into hyper's buffer: no copy, no framing work per byte.
    fn read_body(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        left: u64,
    ) -> Poll<io::Result<()>> {
        let limit = usize::try_from(left).map_or(buf.remaining(), |l| l.min(buf.remaining()));
        let mut direct = ReadBuf::new(buf.initialize_unfilled_to(limit));
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut direct))?;
        let n = direct.filled().len();
        buf.advance(n);
        self.framer.passed(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadCheck<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                if this.ready.is_empty() && this.ready.capacity() > KEEP_READY_BYTES {
                    this.ready = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.refusal.is_some() {
                // No end of file: hyper would drop a request in flight on one. The
                // connection loop shuts hyper down instead.
                return Poll::Pending;
            }
            if let Some(left) = this.framer.body_left() {
                return this.read_body(cx, buf, left);
            }
            let mut scratch = [0u8; SCRATCH_BYTES];
            let mut raw = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw))?;
            let input = raw.filled();
            if input.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.framer.feed(input, &mut this.ready) {
                this.refuse(e);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadCheck<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Writes a pending refusal first: hyper has answered everything before it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while let Some(refusal) = this.refusal.as_mut().filter(|r| !r.is_empty()) {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, refusal))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            refusal.advance(n);
        }
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// An answer as HTTP/1.1 bytes; the connection closes after it.
pub fn encode_answer(parts: &http::response::Parts, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(256 + body.len());
    let reason = parts.status.canonical_reason().unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_u16()).as_bytes());
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    /// Feeds `input` whole and one byte at a time; both must pass the same bytes.
    fn run(input: &[u8]) -> Result<Vec<u8>, HeadError> {
        let mut whole = Framer::new(MAX);
        let mut out = BytesMut::new();
        let result = whole.feed(input, &mut out).map(|()| out.to_vec());
        let mut bytewise = Framer::new(MAX);
        let mut out = BytesMut::new();
        let by_byte = input
            .iter()
            .try_for_each(|b| bytewise.feed(&[*b], &mut out))
            .map(|()| out.to_vec());
        assert_eq!(result, by_byte);
        result
    }

    #[test]
    fn pipelined_requests_pass_unchanged() {
        let input = b"POST /a HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello\
            POST /b HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
            3;ext=1\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n\
            POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
            \r\nGET /d HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(run(input).unwrap(), input.to_vec());
    }

    #[test]
    fn an_incomplete_head_is_held_back() {
        let mut f = Framer::new(MAX);
        let mut out = BytesMut::new();
        f.feed(b"GET / HTTP/1.1\r\nhost: x\r\n", &mut out).unwrap();
        assert!(out.is_empty());
        f.feed(b"\r\nGET /", &mut out).unwrap();
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    }

    #[test]
    fn length_and_chunked_together_are_refused_in_either_order() {
        for head in [
            "POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
        ] {
            assert_eq!(run(head.as_bytes()), Err(HeadError::LengthAndChunked));
        }
    }

    #[test]
    fn a_smuggled_head_after_a_chunked_body_is_found() {
        let input = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n\
            POST /admin HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n";
        let mut f = Framer::new(MAX);
        let mut out = BytesMut::new();
        assert_eq!(f.feed(input, &mut out), Err(HeadError::LengthAndChunked));
        assert!(out.ends_with(b"0\r\n\r\n"), "the first request passed");
    }

    #[test]
    fn heads_hyper_would_refuse_are_named() {
        let many: String = (0..101).map(|i| format!("h{i}: v\r\n")).collect();
        let cases = [
            ("GARBAGE\r\n\r\n".to_string(), HeadError::Malformed),
            (
                "GET / HTTP/1.1\r\nbad header\r\n\r\n".into(),
                HeadError::Malformed,
            ),
            (format!("GET / HTTP/1.1\r\n{many}\r\n"), HeadError::TooLarge),
            (
                format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX)),
                HeadError::TooLarge,
            ),
            (
                "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".into(),
                HeadError::BadTransferEncoding,
            ),
            (
                "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n".into(),
                HeadError::BadTransferEncoding,
            ),
            (
                "POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (
                "POST / HTTP/1.1\r\ncontent-length: +1\r\n\r\n".into(),
                HeadError::BadLength,
            ),
        ];
        for (head, expected) in cases {
            assert_eq!(run(head.as_bytes()), Err(expected), "{head:?}");
        }
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET_BYTES));
        let mut f = Framer::new(100 * 1024);
        assert_eq!(
            f.feed(long_target.as_bytes(), &mut BytesMut::new()),
            Err(HeadError::TargetTooLong)
        );
    }

    #[test]
    fn a_broken_chunked_body_stops_the_checks() {
        let input = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n\
            GARBAGE\r\n\r\n";
        assert_eq!(run(input).unwrap(), input.to_vec());
    }

    #[test]
    fn body_bytes_can_be_read_straight_through() {
        let mut f = Framer::new(MAX);
        let mut out = BytesMut::new();
        f.feed(b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n", &mut out)
            .unwrap();
        assert_eq!(f.body_left(), Some(10));
        f.passed(10);
        assert_eq!(f.body_left(), None);
        f.feed(b"GARBAGE\r\n\r\n", &mut out).unwrap_err();
    }
}
