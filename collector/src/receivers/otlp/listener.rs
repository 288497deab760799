//! Accepting connections for both servers: the connection cap, the TLS handshake and the
//! handshake deadline, before a connection is handed to the HTTP or gRPC server.
//!
//! - **Cap** (`max_connections`): a connection accepted while the cap is reached is closed at
//!   once (the client sees the connection closed and retries; an SDK backs off), rather than
//!   left waiting in the kernel's backlog where it would time out without a trace. Each
//!   refusal is counted in `weft_receiver_connections_refused{receiver,transport}`. A slot
//!   is held from the accept until the connection is closed, handshake included.
//! - **TLS**: the handshake runs on its own task per connection, so a slow or stalled
//!   handshake never holds up the accept loop. A failed one is counted in
//!   `weft_receiver_tls_handshakes_failed{receiver,transport}` and logged at debug level.
//! - **Handshake deadline**: a connection must prove it is a live client within the
//!   deadline, counted from the accept: for HTTP, by completing the headers of its first
//!   request; for gRPC, by completing the TLS handshake and sending the HTTP/2 connection
//!   preface and first SETTINGS frame. Until then every read also watches the deadline,
//!   and once it passes the read fails, which makes the server close the connection. This
//!   covers what the HTTP libraries leave open: hyper's HTTP/1 header timeout starts only
//!   once the protocol was detected, and HTTP/2 has no handshake timeout at all.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::telemetry::Telemetry;

/// How a connection proves it is a live client, ending its handshake deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proof {
    /// The server marks the connection when the headers of its first request are in.
    FirstRequest,
    /// The HTTP/2 client preface and the SETTINGS frame after it were read.
    Http2Preface,
}

/// What the accept loop of one server needs.
pub(crate) struct ListenerSettings {
    pub(crate) receiver: String,
    /// "grpc" or "http", for metric labels and logs.
    pub(crate) transport: &'static str,
    /// 0: no limit.
    pub(crate) max_connections: usize,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) proof: Proof,
    pub(crate) metrics: ListenerMetrics,
}

/// The counters of one server's accept loop.
#[derive(Clone)]
pub(crate) struct ListenerMetrics {
    pub(crate) refused: Counter,
    pub(crate) tls_failed: Counter,
}

impl ListenerMetrics {
    pub(crate) fn new(t: &Telemetry, receiver: &str, transport: &str) -> Self {
        let labels = [("receiver", receiver), ("transport", transport)];
        Self {
            refused: t.counter(
                "weft_receiver_connections_refused",
                "Connections closed at once because the receiver's max_connections was reached",
                &labels,
            ),
            tls_failed: t.counter(
                "weft_receiver_tls_handshakes_failed",
                "Connections closed because their TLS handshake failed or did not finish in time",
                &labels,
            ),
        }
    }
}

/// Accepts on `listener` until `stop`, handing each ready connection to the returned
/// receiver. The task ends (and the listening socket closes) once `stop` is cancelled.
pub(crate) fn spawn_accept_loop(
    listener: TcpListener,
    settings: ListenerSettings,
    stop: CancellationToken,
) -> (mpsc::Receiver<Conn>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let handle =
        tokio::spawn(accept_loop(listener, Arc::new(settings), tx, stop).in_current_span());
    (rx, handle)
}

async fn accept_loop(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    tx: mpsc::Sender<Conn>,
    stop: CancellationToken,
) {
    let slots =
        (settings.max_connections > 0).then(|| Arc::new(Semaphore::new(settings.max_connections)));
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up between its connect and our accept: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                // Out of file descriptors (or a similar resource error): wait a little instead
                // of spinning; the connection stays in the backlog meanwhile.
                tracing::warn!(component = %settings.receiver, transport = settings.transport, error = %e, "cannot accept a connection; retrying in 100 ms");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let permit = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    settings.metrics.refused.inc();
                    // Warn once a minute at most: a flood must not flood the log too.
                    let now = Instant::now();
                    if last_warning.is_none_or(|t| now - t >= Duration::from_secs(60)) {
                        last_warning = Some(now);
                        tracing::warn!(
                            component = %settings.receiver,
                            transport = settings.transport,
                            max_connections = settings.max_connections,
                            peer = %peer,
                            "max_connections reached: closing new connections until some close (raise max_connections if clients are legitimate)"
                        );
                    } else {
                        tracing::debug!(component = %settings.receiver, transport = settings.transport, peer = %peer, "max_connections reached: connection closed");
                    }
                    drop(tcp);
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(
            handshake(
                tcp,
                peer,
                permit,
                settings.clone(),
                tx.clone(),
                stop.clone(),
            )
            .in_current_span(),
        );
    }
}

/// Runs the TLS handshake (if any) within the deadline and hands the connection over.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
    settings: Arc<ListenerSettings>,
    tx: mpsc::Sender<Conn>,
    stop: CancellationToken,
) {
    let deadline = settings.handshake_timeout.map(|t| Instant::now() + t);
    let local = tcp.local_addr().ok();
    let io = match &settings.tls {
        None => Io::Plain(tcp),
        Some(acceptor) => {
            let accept = acceptor.accept(tcp);
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = async {
                    match deadline {
                        Some(d) => tokio::time::timeout_at(d, accept).await.unwrap_or_else(|_| {
                            Err(io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake did not finish within the handshake deadline"))
                        }),
                        None => accept.await,
                    }
                } => r,
            };
            match result {
                Ok(tls) => Io::Tls(Box::new(tls)),
                Err(e) => {
                    settings.metrics.tls_failed.inc();
                    tracing::debug!(component = %settings.receiver, transport = settings.transport, peer = %peer, error = %e, "TLS handshake failed; connection closed");
                    return;
                }
            }
        }
    };
    // HTTP/1 reads through hyper's own adaptive buffer; HTTP/2 through h2's codec, which
    // asks for 8 KiB at a time (see `ReadAhead`). Under TLS, rustls buffers the records.
    let ahead = (settings.proof == Proof::Http2Preface && matches!(io, Io::Plain(_)))
        .then(ReadAhead::default);
    let conn = Conn {
        io,
        ahead,
        watch: deadline.map(|d| Watch::new(d, settings.proof)),
        proven: Arc::new(AtomicBool::new(false)),
        _permit: permit,
        local,
        peer,
    };
    // The server is gone (shutting down): the connection is dropped, which closes it.
    let _ = tx.send(conn).await;
}

/// The byte stream under a connection.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Watches the handshake deadline until the connection proved itself.
struct Watch {
    sleep: Pin<Box<Sleep>>,
    /// For [`Proof::Http2Preface`]: the preface bytes seen so far.
    preface: Option<PrefaceProgress>,
}

impl Watch {
    fn new(deadline: Instant, proof: Proof) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            preface: (proof == Proof::Http2Preface).then(PrefaceProgress::default),
        }
    }
}

/// Counts the bytes of the HTTP/2 client preface: the 24-byte magic, then a SETTINGS frame
/// (a 9-byte header whose first 3 bytes are the payload length, then the payload). Whether
/// the bytes are right is the HTTP/2 server's business; only their arrival is tracked here.
#[derive(Default)]
struct PrefaceProgress {
    seen: usize,
    /// The 3 length bytes of the SETTINGS frame header (preface bytes 24..27).
    length: [u8; 3],
}

const MAGIC_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

impl PrefaceProgress {
    /// Takes newly read bytes; true once the preface and its SETTINGS frame are complete.
    fn observe(&mut self, bytes: &[u8]) -> bool {
        for (i, b) in bytes.iter().enumerate() {
            let at = self.seen + i;
            if (MAGIC_LEN..MAGIC_LEN + 3).contains(&at) {
                self.length[at - MAGIC_LEN] = *b;
            }
            if at >= MAGIC_LEN + FRAME_HEADER_LEN {
                break;
            }
        }
        self.seen += bytes.len();
        if self.seen < MAGIC_LEN + FRAME_HEADER_LEN {
            return false;
        }
        let payload = usize::from(self.length[0]) << 16
            | usize::from(self.length[1]) << 8
            | usize::from(self.length[2]);
        self.seen >= MAGIC_LEN + FRAME_HEADER_LEN + payload
    }
}

/// One accepted connection, TLS already negotiated. It holds its `max_connections` slot
/// until dropped.
pub(crate) struct Conn {
    io: Io,
    /// For plain HTTP/2: what was read off the socket before the codec asked for it.
    ahead: Option<ReadAhead>,
    watch: Option<Watch>,
    /// Set by the server for [`Proof::FirstRequest`].
    proven: Arc<AtomicBool>,
    _permit: Option<OwnedSemaphorePermit>,
    local: Option<SocketAddr>,
    peer: SocketAddr,
}

impl Conn {
    /// The flag the server sets once the first request's headers are in.
    pub(crate) fn proof_handle(&self) -> Arc<AtomicBool> {
        self.proven.clone()
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.proven.load(Ordering::Acquire) {
            this.watch = None;
        }
        if let Some(watch) = &mut this.watch {
            if watch.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not complete its handshake or first request in time",
                )));
            }
        }
        let before = buf.filled().len();
        let result = match (&mut this.io, &mut this.ahead) {
            (Io::Plain(s), Some(ahead)) => ahead.poll_read(s, cx, buf),
            (Io::Plain(s), None) => Pin::new(s).poll_read(cx, buf),
            (Io::Tls(s), _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let (Poll::Ready(Ok(())), Some(watch)) = (&result, &mut this.watch) {
            if let Some(preface) = &mut watch.preface {
                if preface.observe(&buf.filled()[before..]) {
                    this.proven.store(true, Ordering::Release);
                    this.watch = None;
                }
            }
        }
        result
    }
}

/// Reads a plain HTTP/2 connection in larger pieces than its codec asks for.
///
/// h2 reads frames through tokio-util's codec, whose buffer offers the socket 8 KiB (or
/// the rest of the frame being read) per read: a 36 KB export request took five
/// `recvfrom` calls, about a tenth of the receiver's CPU at a few thousand requests a
/// second (BENCHMARKS.md, issue 13). Reading up to [`READ_AHEAD`] at once and handing
/// the codec what it asks for from memory takes one or two calls per request when the
/// client wrote the whole request, for one more copy of each byte. The buffer is taken on
/// the first read, the same size as grpc-go's per-connection read buffer.
#[derive(Default)]
struct ReadAhead {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

/// The most a plain HTTP/2 connection reads off its socket per call.
const READ_AHEAD: usize = 32 * 1024;

impl ReadAhead {
    fn poll_read(
        &mut self,
        socket: &mut TcpStream,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.start == self.end {
            if out.remaining() >= READ_AHEAD {
                return Pin::new(socket).poll_read(cx, out);
            }
            if self.buf.is_empty() {
                self.buf = vec![0; READ_AHEAD].into_boxed_slice();
            }
            let mut into = ReadBuf::new(&mut self.buf);
            std::task::ready!(Pin::new(socket).poll_read(cx, &mut into))?;
            // Nothing read is the end of the stream: `out` stays as it was, which says so.
            self.end = into.filled().len();
            self.start = 0;
        }
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

/// One request in flight on a connection (see [`Activity::begin`]).
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Keeps the most recent moment a connection was busy, for the idle timeout.
#[derive(Default)]
pub(crate) struct Activity {
    state: Mutex<(usize, Option<Instant>)>,
}

impl Activity {
    /// A request started; it counts as in flight until the returned guard is dropped (also
    /// when its handler is dropped unfinished, e.g. an HTTP/2 stream the client reset).
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.state.lock().0 += 1;
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut s = self.state.lock();
        s.0 = s.0.saturating_sub(1);
        s.1 = Some(Instant::now());
    }

    /// When the connection becomes idle for `timeout`, counting from `since` (the accept)
    /// or the last request's end; `None` while a request is in flight.
    pub(crate) fn idle_deadline(&self, since: Instant, timeout: Duration) -> Option<Instant> {
        let s = self.state.lock();
        (s.0 == 0).then(|| s.1.unwrap_or(since) + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[test]
    fn the_http2_preface_is_tracked_across_reads() {
        let mut frame = PREFACE.to_vec();
        // SETTINGS frame: length 12, type 4, flags 0, stream 0, then 12 payload bytes.
        frame.extend_from_slice(&[0, 0, 12, 4, 0, 0, 0, 0, 0]);
        frame.extend_from_slice(&[0u8; 12]);
        let mut p = PrefaceProgress::default();
        for (i, b) in frame.iter().enumerate() {
            let done = p.observe(std::slice::from_ref(b));
            assert_eq!(done, i + 1 == frame.len(), "byte {i}");
        }
        let mut p = PrefaceProgress::default();
        assert!(p.observe(&frame));
        let mut p = PrefaceProgress::default();
        assert!(!p.observe(&frame[..30]));
        assert!(p.observe(&frame[30..]));
    }

    fn settings(
        max: usize,
        timeout: Option<Duration>,
        proof: Proof,
    ) -> (ListenerSettings, Telemetry) {
        let t = Telemetry::new();
        (
            ListenerSettings {
                receiver: "otlp".into(),
                transport: "http",
                max_connections: max,
                tls: None,
                handshake_timeout: timeout,
                proof,
                metrics: ListenerMetrics::new(&t, "otlp", "http"),
            },
            t,
        )
    }

    async fn listen(s: ListenerSettings) -> (SocketAddr, mpsc::Receiver<Conn>, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let (rx, _) = spawn_accept_loop(listener, s, stop.clone());
        (addr, rx, stop)
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_counted() {
        let (s, t) = settings(2, None, Proof::FirstRequest);
        let (addr, mut rx, stop) = listen(s).await;
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let first = rx.recv().await.unwrap();
        let _second = rx.recv().await.unwrap();
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        // The third is closed by the server: the read ends (EOF or reset), nothing served.
        let mut byte = [0u8; 1];
        let n = c3.read(&mut byte).await.unwrap_or(0);
        assert_eq!(n, 0);
        let labels = [("receiver", "otlp"), ("transport", "http")];
        assert_eq!(
            t.counter_value("weft_receiver_connections_refused", &labels),
            1
        );
        // Closing one frees its slot for the next connection.
        drop(first);
        let _c4 = TcpStream::connect(addr).await.unwrap();
        let fourth = rx.recv().await;
        assert!(fourth.is_some());
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_unproven_connection_fails_its_reads_at_the_deadline() {
        let (s, _t) = settings(0, Some(Duration::from_secs(5)), Proof::FirstRequest);
        let (addr, mut rx, stop) = listen(s).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut conn = rx.recv().await.unwrap();
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET / HT");
        // Nothing more arrives: the next read fails once the deadline passed.
        let e = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_proven_connection_has_no_deadline() {
        let (s, _t) = settings(0, Some(Duration::from_secs(5)), Proof::FirstRequest);
        let (addr, mut rx, stop) = listen(s).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut conn = rx.recv().await.unwrap();
        conn.proof_handle().store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"late").await.unwrap();
        let mut buf = [0u8; 8];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"late");
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn the_http2_preface_proves_a_grpc_connection() {
        let (s, _t) = settings(0, Some(Duration::from_secs(5)), Proof::Http2Preface);
        let (addr, mut rx, stop) = listen(s).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut conn = rx.recv().await.unwrap();
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        client.write_all(&hello).await.unwrap();
        let mut buf = vec![0u8; hello.len()];
        conn.read_exact(&mut buf).await.unwrap();
        assert!(conn.proof_handle().load(Ordering::Acquire));
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        assert_eq!(conn.read(&mut one).await.unwrap(), 1);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_plain_grpc_connection_reads_ahead_and_hands_over_every_byte_in_order() {
        let (s, _t) = settings(0, None, Proof::Http2Preface);
        let (addr, mut rx, stop) = listen(s).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut conn = rx.recv().await.unwrap();
        assert!(conn.ahead.is_some());
        // More than the read-ahead buffer holds, in one write, then the end of the stream.
        let sent: Vec<u8> = (0..3 * READ_AHEAD + 123).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                client.write_all(&sent).await.unwrap();
                client.shutdown().await.unwrap();
                client
            })
        };
        // Asked for less than the buffer (as h2's codec asks), then for more than it (read
        // straight into the caller's buffer once the read-ahead is drained).
        let mut got = Vec::new();
        let mut small = [0u8; 8192 + 9];
        let mut large = vec![0u8; 2 * READ_AHEAD];
        loop {
            let buf: &mut [u8] = if got.len() < READ_AHEAD {
                &mut small
            } else {
                &mut large
            };
            let n = conn.read(buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the bytes arrived out of order or changed");
        drop(writer.await.unwrap());
        stop.cancel();
    }

    #[tokio::test]
    async fn stopping_closes_the_listening_socket() {
        let (s, _t) = settings(0, None, Proof::FirstRequest);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let (_rx, handle) = spawn_accept_loop(listener, s, stop.clone());
        stop.cancel();
        handle.await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn idle_deadlines() {
        let a = Arc::new(Activity::default());
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        assert_eq!(a.idle_deadline(t0, d), Some(t0 + d));
        let first = a.begin();
        let second = a.begin();
        assert_eq!(a.idle_deadline(t0, d), None);
        drop(first);
        assert_eq!(a.idle_deadline(t0, d), None);
        drop(second);
        assert!(a.idle_deadline(t0, d).unwrap() >= t0 + d);
    }
}
