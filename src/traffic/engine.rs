//! The generator: planned instants on a dedicated timer thread, requests on tokio over a pool of
//! keep-alive HTTP/1.1 connections (hyper), one [`Record`] per request.
//!
//! Two rules shape the connection handling, both learnt on a real cluster:
//! - Requests are spread over the open connections in turn (FIFO), and a connection lives a
//!   bounded number of requests or time ([`ConnectionPolicy`]): kube-proxy, IPVS and most L4
//!   balancers pick a backend per *connection*, so a load riding one long-lived connection
//!   reaches one Pod.
//! - A request is sent again only when hyper hands it back unwritten (the connection was seen
//!   closed before a byte of it left). A request cut after it was written (reset, EOF) is a
//!   failure, always: it is what a Pod killed mid-request looks like, and a retry would hide it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use super::record::{flags, FailureKind, Interner, Outcome, Record, RecordLog};
use super::schedule::Schedule;
use super::summary::Summary;

/// Open model (requests at planned instants whatever the server does) or closed model (each
/// connection sends its next request when the previous one is answered, as fast as it can).
#[derive(Clone, Debug)]
pub enum Mode {
    Open(Schedule),
    /// `connections` loops; ends after `duration` (or `max_requests`, or `stop`).
    Closed { duration: Option<Duration> },
}

/// How long one connection lives. Its last request carries `Connection: close`, so the server
/// closes it cleanly after answering, and the next request goes out on another connection, which
/// an L4 balancer places anew.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// Requests per connection; `None` = unlimited, `Some(1)` = no keep-alive.
    pub max_requests: Option<u32>,
    /// A connection at least this old when a request takes it serves that request as its last.
    pub max_age: Option<Duration>,
    /// A connection idle this long is closed instead of reused. A server closes idle connections
    /// on its own timer (gunicorn after 2 s, Node and Apache 5 s, nginx 75 s), and a request
    /// written just as it does is cut exactly like one whose Pod was killed: the two cannot be
    /// told apart afterwards, so the only way not to count the server's idle close as a failure
    /// is not to race it. Below the server's timeout, that race cannot happen.
    pub max_idle: Option<Duration>,
}

impl ConnectionPolicy {
    /// `seaworthy load`'s default, what wrk, wrk2, vegeta, Fortio and oha do: keep-alive
    /// connections that live as long as the server keeps them, so a benchmark measures the server
    /// and not connection setup.
    pub const KEEP_ALIVE: ConnectionPolicy = ConnectionPolicy { max_requests: None, max_age: None, max_idle: None };

    /// A new connection per request (`--no-keepalive`).
    pub const NO_KEEPALIVE: ConnectionPolicy = ConnectionPolicy { max_requests: Some(1), max_age: None, max_idle: None };

    /// The checks' policy: traffic like many clients, not one. A connection lives at most 1 s or
    /// 32 requests and is not reused after 1 s idle. The open-model pool replaces each connection
    /// that ends after a request, so a constant load keeps going round its 8 connections and opens
    /// a few new ones every second whatever its rate: at the checks' 2-20 req/s, one to three
    /// requests per connection. Behind a balancer that picks a backend per connection at random
    /// (kube-proxy's iptables mode), the chance to miss one of 3 backends over 20 connections is
    /// 3·(2/3)^20 ≈ 0.1%; with round robin (IPVS) none is missed. The request bound keeps that
    /// true at high rates, where 1 s is many requests; the idle bound stays below the shortest
    /// common server keep-alive timeout (gunicorn's 2 s).
    pub const CHECKS: ConnectionPolicy = ConnectionPolicy {
        max_requests: Some(32),
        max_age: Some(Duration::from_secs(1)),
        max_idle: Some(Duration::from_secs(1)),
    };

    pub fn keep_alive(&self) -> bool {
        self.max_requests != Some(1)
    }

    /// Whether a connection that was opened at `born` and has served `served` requests serves
    /// the next one as its last.
    fn last_request(&self, born: Instant, served: u32) -> bool {
        self.max_requests.is_some_and(|m| served + 1 >= m) || self.max_age.is_some_and(|a| born.elapsed() >= a)
    }

    /// One line for summaries, e.g. "keep-alive, at most 32 requests or 1s per connection, closed after 1s idle".
    pub fn describe(max_requests: Option<u32>, max_age_s: Option<f64>, max_idle_s: Option<f64>) -> String {
        let mut d = match (max_requests, max_age_s) {
            (Some(1), _) => return "no keep-alive (a new connection per request)".into(),
            (None, None) if max_idle_s.is_none() => return "keep-alive, connections live as long as the server keeps them".into(),
            (None, None) => "keep-alive".to_string(),
            (Some(n), None) => format!("keep-alive, at most {n} requests per connection"),
            (None, Some(a)) => format!("keep-alive, at most {a}s per connection"),
            (Some(n), Some(a)) => format!("keep-alive, at most {n} requests or {a}s per connection"),
        };
        if let Some(i) = max_idle_s {
            d += &format!(", closed after {i}s idle");
        }
        d
    }
}

/// What to load and how.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `http://host[:port]/path?query`; resolved once at start.
    pub url: String,
    pub mode: Mode,
    /// Open model: connections opened before the first request (a warm pool). Closed model: the
    /// number of concurrent loops, one connection each.
    pub connections: usize,
    /// Open model: the most requests outstanding at once, so the most connections the pool grows
    /// to. A request planned while all are busy waits (its wait shows in the corrected latency and
    /// the send lateness) and fails with a timeout if it cannot start within `timeout`.
    pub max_in_flight: usize,
    /// Per request, connect included.
    pub timeout: Duration,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Response header that names the backend (fixtures: the Pod name).
    pub backend_header: String,
    /// Response header that names the app version.
    pub version_header: String,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// How long a connection lives; see [`ConnectionPolicy`].
    pub connection: ConnectionPolicy,
    /// Send a request again, once, on a fresh connection when a reused connection turns out closed
    /// before the request was written (hyper gives the request back unsent: the server closed the
    /// idle connection, RFC 9112 §9.3.1). Never a request that was written, whatever happened to
    /// it after: that one is a failure. Every retry is counted (`retried`) and flagged on its
    /// record. Off: a request that found its connection closed is a failure (`reset`) too.
    pub retry_closed_idle: bool,
}

impl LoadConfig {
    /// Constant open-model rate.
    pub fn constant(url: &str, rps: f64, duration: Duration) -> anyhow::Result<LoadConfig> {
        Ok(LoadConfig::with_mode(url, Mode::Open(Schedule::constant(rps, duration)?)))
    }

    /// Open model with any schedule (e.g. a ramp).
    pub fn open(url: &str, schedule: Schedule) -> LoadConfig {
        LoadConfig::with_mode(url, Mode::Open(schedule))
    }

    /// Closed model with `connections` loops.
    pub fn closed(url: &str, connections: usize, duration: Option<Duration>) -> LoadConfig {
        LoadConfig { connections, ..LoadConfig::with_mode(url, Mode::Closed { duration }) }
    }

    fn with_mode(url: &str, mode: Mode) -> LoadConfig {
        LoadConfig {
            url: url.to_string(),
            mode,
            connections: 8,
            max_in_flight: 1024,
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
            backend_header: "X-Seaworthy-Backend".into(),
            version_header: "X-Seaworthy-Version".into(),
            max_requests: None,
            connection: ConnectionPolicy::KEEP_ALIVE,
            retry_closed_idle: true,
        }
    }

    /// Checks the settings (not the target's reachability); errors name the CLI flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.timeout.is_zero() {
            bail!("--timeout must be more than 0");
        }
        if let Mode::Open(_) = self.mode
            && self.max_in_flight < self.connections
        {
            bail!("--max-in-flight ({}) must be at least --connections ({})", self.max_in_flight, self.connections);
        }
        if let Mode::Closed { duration: None } = self.mode
            && self.max_requests.is_none()
        {
            bail!("a closed-model load needs a duration or a request count to end");
        }
        if self.max_requests == Some(0) {
            bail!("--requests must be at least 1");
        }
        if self.connection.max_requests == Some(0) {
            bail!("--max-requests-per-connection must be at least 1 (1 is --no-keepalive)");
        }
        if self.connection.max_age.is_some_and(|a| a.is_zero()) {
            bail!("--connection-max-age must be more than 0 (for a new connection per request, use --no-keepalive)");
        }
        if self.connection.max_idle.is_some_and(|a| a.is_zero()) {
            bail!("--connection-max-idle must be more than 0 (for a new connection per request, use --no-keepalive)");
        }
        Ok(())
    }
}

/// Where the requests go, resolved once.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: Uri,
    pub authority: String,
}

impl Target {
    /// Checks the URL's form without resolving it.
    pub fn check(url: &str) -> anyhow::Result<()> {
        Self::parse(url).map(|_| ())
    }

    fn parse(url: &str) -> anyhow::Result<(Uri, hyper::http::uri::Authority)> {
        let uri: Uri = url.parse().with_context(|| format!("`{url}` is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("`{url}`: only http:// URLs are supported (got {other}://)"),
            None => bail!("`{url}`: give a full URL, e.g. http://127.0.0.1:8080/"),
        }
        let authority = uri.authority().ok_or_else(|| anyhow!("`{url}` has no host"))?.clone();
        if authority.as_str().contains('@') {
            bail!("`{url}`: user info in the URL is not supported; use --header Authorization:...");
        }
        Ok((uri, authority))
    }

    pub async fn resolve(url: &str) -> anyhow::Result<Target> {
        let (uri, authority) = Self::parse(url)?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve host `{host}` of {url}"))?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| anyhow!("host `{host}` of {url} has no address"))?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        Ok(Target { addr, path: path.parse()?, authority: authority.as_str().to_string() })
    }
}

/// Live counters, readable while the load runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub planned: u64,
    pub completed: u64,
    pub ok: u64,
    pub failed: u64,
    pub in_flight: u64,
}

#[derive(Default)]
struct Counters {
    planned: AtomicU64,
    completed: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    connections: AtomicU64,
    retried: AtomicU64,
}

type HyperConn = hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Empty<Bytes>>;

/// Who polls hyper's connection future (the socket's reads and writes).
enum Driver {
    /// Its own task: the open model's pooled connections are shared between request tasks.
    Task(tokio::task::JoinHandle<()>),
    /// The request itself, polled together with it: a closed-model loop owns its connection,
    /// and saves two task wake-ups per request.
    Inline { conn: Pin<Box<HyperConn>>, done: bool },
}

/// One keep-alive connection. Dropping it closes the socket (the connection task is aborted), so
/// a stalled server cannot keep a task or a file descriptor alive.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    driver: Driver,
    born: Instant,
    /// When its last request ended (or it was opened).
    idle_since: Instant,
    /// Requests answered on it.
    served: u32,
    /// Its last request is done (policy, or the server said `Connection: close`).
    ending: bool,
    /// The open model's count of live pooled connections, which the pool keeps at its warm size.
    live: Option<Arc<AtomicUsize>>,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.sender.is_closed() || matches!(self.driver, Driver::Inline { done: true, .. })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Driver::Task(t) = &self.driver {
            t.abort();
        }
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Polls `fut` and the connection it needs until `fut` is done.
async fn drive<F: Future>(conn: &mut Pin<Box<HyperConn>>, done: &mut bool, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if *done {
            return Poll::Pending;
        }
        if conn.as_mut().poll(cx).is_ready() {
            *done = true;
        }
        // The connection wrote the request or handed over the response (or ended): go on
        // without a round trip through the scheduler.
        fut.as_mut().poll(cx)
    })
    .await
}

struct Shared {
    target: Target,
    headers: HeaderMap,
    backend_header: HeaderName,
    version_header: HeaderName,
    timeout: Duration,
    retry: bool,
    policy: ConnectionPolicy,
    /// Open model: connections the pool keeps open (the warm count).
    warm: usize,
    /// Open model: pooled connections open or being opened.
    live: Arc<AtomicUsize>,
    t0: Instant,
    log: Mutex<RecordLog>,
    backends: Interner,
    versions: Interner,
    /// Open model: idle connections, taken from the front and put back at the end, so requests
    /// go round the open connections in turn.
    idle: Mutex<VecDeque<Conn>>,
    limit: Semaphore,
    counters: Counters,
    stop: AtomicBool,
    /// Wakes the timer thread early on stop.
    wake: (Mutex<()>, Condvar),
    /// Offset (ns) at which no new request was started any more: set by stop or the schedule end.
    ended_ns: AtomicU64,
    /// Closed model: when the last loop ended.
    loops_ended_ns: AtomicU64,
}

struct Answer {
    status: u16,
    backend: u16,
    version: u16,
}

struct AttemptError {
    kind: FailureKind,
    /// Provably never written: hyper gave the request back, or the connection was closed before
    /// it was handed over. Only such a request may be sent again.
    unsent: bool,
}

impl Shared {
    fn offset_ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.t0).as_nanos() as u64
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn request(&self, last: bool) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = self.target.path.clone();
        *req.headers_mut() = self.headers.clone();
        if last {
            req.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        req
    }

    async fn connect(&self, inline: bool) -> Result<Conn, AttemptError> {
        let fail = |kind| AttemptError { kind, unsent: true };
        let stream = TcpStream::connect(self.target.addr).await.map_err(|e| {
            fail(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => FailureKind::ConnectRefused,
                std::io::ErrorKind::TimedOut => FailureKind::Timeout,
                _ => FailureKind::ConnectError,
            })
        })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| fail(FailureKind::IoError))?;
        let driver = if inline {
            Driver::Inline { conn: Box::pin(conn), done: false }
        } else {
            Driver::Task(tokio::spawn(async move {
                let _ = conn.await;
            }))
        };
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let live = (!inline).then(|| {
            self.live.fetch_add(1, Ordering::Relaxed);
            self.live.clone()
        });
        let now = Instant::now();
        Ok(Conn { sender, driver, born: now, idle_since: now, served: 0, ending: false, live })
    }

    /// Open model: the least recently used open connection. Those found closed (the server ended
    /// them while idle) or idle too long are dropped and not replaced: the load is too slow to
    /// keep that many connections busy, and the pool shrinks to what it uses.
    fn checkout_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(c) = idle.pop_front() {
            let stale = self.policy.max_idle.is_some_and(|m| c.idle_since.elapsed() >= m);
            if !stale && !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    /// Open model: back into the pool after a request, unless its life is over; then another
    /// takes its place.
    fn check_in(self: &Arc<Self>, mut c: Conn) {
        if c.ending || c.is_closed() {
            drop(c);
            self.replenish();
        } else {
            c.idle_since = Instant::now();
            self.idle.lock().unwrap().push_back(c);
        }
    }

    /// Open model: open a connection in the background for one that ended, while the pool is
    /// below its warm size, so that requests keep going round as many connections as at the start
    /// (and their ends spread over time) instead of riding the one a request last opened. A
    /// connect that fails is dropped: requests open their own when the pool is empty, and fail
    /// visibly if that fails.
    fn replenish(self: &Arc<Self>) {
        if self.stopping() || self.live.fetch_add(1, Ordering::Relaxed) >= self.warm {
            self.live.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let sh = self.clone();
        tokio::spawn(async move {
            let conn = tokio::time::timeout(sh.timeout, sh.connect(false)).await;
            // The reservation above: the connection counts itself from now.
            sh.live.fetch_sub(1, Ordering::Relaxed);
            if let Ok(Ok(c)) = conn
                && !sh.stopping()
            {
                sh.idle.lock().unwrap().push_back(c);
            }
        });
    }

    /// One request on `conn`; marks the connection `ending` when this was its last.
    async fn exchange(&self, conn: &mut Conn) -> Result<Answer, AttemptError> {
        let last = self.policy.last_request(conn.born, conn.served);
        let Conn { sender, driver, .. } = conn;
        let r = match driver {
            Driver::Task(_) => self.exchange_on(sender, last).await,
            Driver::Inline { conn, done } => drive(conn, done, self.exchange_on(sender, last)).await,
        };
        if let Ok((_, server_closes)) = &r {
            conn.served += 1;
            conn.ending = last || *server_closes;
        }
        r.map(|(a, _)| a)
    }

    /// The answer, and whether the server closes the connection after it.
    async fn exchange_on(&self, sender: &mut SendRequest<Empty<Bytes>>, last: bool) -> Result<(Answer, bool), AttemptError> {
        // Not ready = the connection ended before this request was handed over.
        sender.ready().await.map_err(|e| AttemptError { unsent: true, ..classify(&e) })?;
        let resp = match sender.try_send_request(self.request(last)).await {
            Ok(r) => r,
            // hyper hands the request back only when its connection task never took it from the
            // queue: not a byte of it was written. Once taken, an error comes without it.
            Err(mut e) => return Err(AttemptError { unsent: e.take_message().is_some(), ..classify(e.error()) }),
        };
        let status = resp.status().as_u16();
        let h = resp.headers();
        let backend = h.get(&self.backend_header).map_or(0, |v| self.backends.intern(v.as_bytes()));
        let version = h.get(&self.version_header).map_or(0, |v| self.versions.intern(v.as_bytes()));
        // hyper closes the connection after such an answer; knowing it here keeps the connection
        // out of the pool instead of handing the next request a closing one.
        let server_closes = h.get(CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
            || resp.version() < hyper::Version::HTTP_11;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(|e| classify(&e))?;
        }
        Ok((Answer { status, backend, version }, server_closes))
    }

    /// One request on `slot`'s connection (or a pooled or new one), with the one allowed retry.
    /// On success the connection is left in `slot` (the caller ends it if it is `ending`); on
    /// failure, or when the caller gives up waiting (a timeout drops this future), `slot` is
    /// empty: the connection in use is owned here, so one still carrying an unanswered request is
    /// closed at once instead of going back for reuse.
    async fn attempt(self: &Arc<Self>, slot: &mut Option<Conn>, fl: &mut u8, inline: bool) -> Result<Answer, FailureKind> {
        loop {
            // A retry goes out on a new connection: the server that closed one idle connection
            // (a reload, a graceful stop) is closing the others in the pool at the same moment.
            let pooled = if *fl & flags::RETRIED == 0 {
                slot.take().filter(|c| !c.is_closed() && !c.ending).or_else(|| if inline { None } else { self.checkout_idle() })
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => {
                    *fl |= flags::NEW_CONNECTION;
                    self.connect(inline).await.map_err(|e| e.kind)?
                }
            };
            match self.exchange(&mut conn).await {
                Ok(a) => {
                    *slot = Some(conn);
                    return Ok(a);
                }
                Err(e) => {
                    drop(conn);
                    // A fresh connection that ends before the request is written is a server
                    // refusing service, not an idle close: a failure.
                    if reused && e.unsent && self.retry && *fl & flags::RETRIED == 0 {
                        *fl |= flags::RETRIED;
                        self.counters.retried.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    return Err(e.kind);
                }
            }
        }
    }

    fn count(&self, outcome: Outcome) {
        self.counters.completed.fetch_add(matches!(outcome, Outcome::Status(_)) as u64, Ordering::Relaxed);
        if outcome.is_ok() {
            self.counters.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn make_record(
        &self,
        planned_ns: u64,
        started: Option<Instant>,
        end: Instant,
        result: Result<Answer, FailureKind>,
        fl: u8,
    ) -> Record {
        let end_ns = self.offset_ns(end);
        let latency_us = (end_ns.saturating_sub(planned_ns) / 1_000).min(u32::MAX as u64) as u32;
        let service_us = started.map_or(0, |s| end.saturating_duration_since(s).as_micros().min(u32::MAX as u128) as u32);
        let (outcome, backend, version) = match result {
            Ok(a) => (Outcome::Status(a.status), a.backend, a.version),
            Err(k) => (Outcome::Failure(k), 0, 0),
        };
        Record { planned_ns, latency_us, service_us, outcome: outcome.code(), backend, version, flags: fl }
    }
}

fn classify(e: &hyper::Error) -> AttemptError {
    let kind = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        FailureKind::ProtocolError
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        FailureKind::Reset
    } else {
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        let mut kind = FailureKind::IoError;
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                kind = match io.kind() {
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => FailureKind::Reset,
                    TimedOut => FailureKind::Timeout,
                    _ => FailureKind::IoError,
                };
                break;
            }
            src = s.source();
        }
        kind
    };
    AttemptError { kind, unsent: false }
}

async fn open_request(sh: Arc<Shared>, planned: Instant, planned_ns: u64, _done: mpsc::Sender<()>) {
    let mut fl = 0u8;
    let permit = tokio::time::timeout_at((planned.max(Instant::now()) + sh.timeout).into(), sh.limit.acquire()).await;
    let (started, result) = match permit {
        Ok(Ok(_permit)) => {
            let started = Instant::now();
            fl |= flags::SENT;
            sh.counters.in_flight.fetch_add(1, Ordering::Relaxed);
            let mut slot = None;
            let r = tokio::time::timeout_at((started + sh.timeout).into(), sh.attempt(&mut slot, &mut fl, false))
                .await
                .unwrap_or(Err(FailureKind::Timeout));
            match slot {
                Some(c) => sh.check_in(c),
                // Failed or timed out: its connection is closed.
                None => sh.replenish(),
            }
            sh.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
            (Some(started), r)
        }
        _ => (None, Err(FailureKind::Timeout)),
    };
    let rec = sh.make_record(planned_ns, started, Instant::now(), result, fl);
    sh.count(rec.outcome());
    sh.log.lock().unwrap().push(rec);
}

/// The open model's clock: a plain thread sleeping with a 1 ns timer slack, so requests leave
/// within microseconds of their plan (tokio's timer wheel has 1 ms ticks, which at 1,000 req/s
/// would shift whole requests across bucket boundaries).
fn timer_thread(sh: Arc<Shared>, schedule: Schedule, max: u64, rt: tokio::runtime::Handle, done: mpsc::Sender<()>) {
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let mut ended = false;
    'plan: for (n, off) in schedule.offsets().enumerate() {
        if n as u64 >= max {
            ended = true;
            break;
        }
        let at = sh.t0 + Duration::from_nanos(off);
        loop {
            if sh.stopping() {
                break 'plan;
            }
            let now = Instant::now();
            if now >= at {
                break;
            }
            let guard = sh.wake.0.lock().unwrap();
            if sh.stopping() {
                break 'plan;
            }
            drop(sh.wake.1.wait_timeout(guard, at - now).unwrap());
        }
        sh.counters.planned.fetch_add(1, Ordering::Relaxed);
        rt.spawn(open_request(sh.clone(), at, off, done.clone()));
    }
    let end = if sh.stopping() || ended {
        sh.offset_ns(Instant::now())
    } else {
        schedule.duration().as_nanos() as u64
    };
    sh.ended_ns.store(end, Ordering::Relaxed);
}

async fn closed_loop(sh: Arc<Shared>, deadline: Option<Instant>, max: u64, _done: mpsc::Sender<()>) {
    let mut slot: Option<Conn> = None;
    let mut batch = Vec::with_capacity(256);
    // Counted locally and published with each batch: shared counters bumped per request would
    // bounce one cache line between the cores at full speed.
    let (mut planned, mut ok, mut failed, mut completed) = (0u64, 0u64, 0u64, 0u64);
    let bounded = max != u64::MAX;
    // One timer for the loop, moved for each request: a `timeout_at` per request would set up
    // and tear down a timer entry each time, a few percent of the CPU at full speed.
    let deadline_timer = tokio::time::sleep(sh.timeout);
    tokio::pin!(deadline_timer);
    // One clock read per request: a response's end is the next request's start.
    let mut now = Instant::now();
    loop {
        if sh.stopping() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if bounded && sh.counters.planned.fetch_add(1, Ordering::Relaxed) >= max {
            sh.counters.planned.fetch_sub(1, Ordering::Relaxed);
            break;
        }
        planned += 1;
        let started = now;
        let planned_ns = sh.offset_ns(started);
        let mut fl = flags::SENT;
        deadline_timer.as_mut().reset((started + sh.timeout).into());
        let r = until(deadline_timer.as_mut(), sh.attempt(&mut slot, &mut fl, true)).await.unwrap_or(Err(FailureKind::Timeout));
        let connect_failed = matches!(r, Err(FailureKind::ConnectRefused | FailureKind::ConnectError));
        now = Instant::now();
        let rec = sh.make_record(planned_ns, Some(started), now, r, fl);
        completed += matches!(rec.outcome(), Outcome::Status(_)) as u64;
        ok += rec.is_ok() as u64;
        failed += !rec.is_ok() as u64;
        batch.push(rec);
        if batch.len() == batch.capacity() {
            sh.log.lock().unwrap().extend_from_slice(&batch);
            batch.clear();
            publish(&sh, bounded, [&mut planned, &mut completed, &mut ok, &mut failed]);
        }
        if connect_failed {
            // Nothing listens: do not spin through millions of refused connects.
            tokio::time::sleep(Duration::from_millis(10)).await;
            now = Instant::now();
        }
    }
    sh.log.lock().unwrap().extend_from_slice(&batch);
    publish(&sh, bounded, [&mut planned, &mut completed, &mut ok, &mut failed]);
    sh.loops_ended_ns.fetch_max(sh.offset_ns(Instant::now()), Ordering::Relaxed);
}

/// `fut`, or `None` once `timer` fires first.
async fn until<F: Future>(mut timer: Pin<&mut tokio::time::Sleep>, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => timer.as_mut().poll(cx).map(|()| None),
    })
    .await
}

fn publish(sh: &Shared, bounded: bool, [planned, completed, ok, failed]: [&mut u64; 4]) {
    let c = &sh.counters;
    if !bounded {
        c.planned.fetch_add(*planned, Ordering::Relaxed);
    }
    c.completed.fetch_add(*completed, Ordering::Relaxed);
    c.ok.fetch_add(*ok, Ordering::Relaxed);
    c.failed.fetch_add(*failed, Ordering::Relaxed);
    (*planned, *completed, *ok, *failed) = (0, 0, 0, 0);
}

/// A running load. Dropping it stops the schedule (requests already started finish in the
/// background); use [`Load::finish`] or [`Load::stop`] to get the [`Report`].
pub struct Load {
    sh: Arc<Shared>,
    cfg: LoadConfig,
    done: mpsc::Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    deadline: Option<Instant>,
}

impl Load {
    /// Resolves the URL, opens the warm connections (failing clearly if the target cannot be
    /// reached), and starts the schedule at once. Must be called inside a tokio runtime.
    pub async fn start(cfg: LoadConfig) -> anyhow::Result<Load> {
        cfg.validate()?;
        let target = Target::resolve(&cfg.url).await?;
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::HOST, HeaderValue::from_str(&target.authority)?);
        headers.insert(hyper::header::USER_AGENT, HeaderValue::from_static("seaworthy-load"));
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes()).with_context(|| format!("bad header name `{k}`"))?;
            let value = HeaderValue::from_str(v.trim()).with_context(|| format!("bad value for header `{k}`"))?;
            headers.insert(name, value);
        }
        let header_name = |h: &str| HeaderName::from_bytes(h.as_bytes()).with_context(|| format!("bad header name `{h}`"));
        let (warm, limit) = match cfg.mode {
            Mode::Open(_) => (cfg.connections, cfg.max_in_flight),
            Mode::Closed { .. } => (0, cfg.connections),
        };
        let sh = Arc::new(Shared {
            target,
            headers,
            backend_header: header_name(&cfg.backend_header)?,
            version_header: header_name(&cfg.version_header)?,
            timeout: cfg.timeout,
            retry: cfg.retry_closed_idle,
            policy: cfg.connection,
            warm,
            live: Arc::new(AtomicUsize::new(0)),
            t0: Instant::now(),
            log: Mutex::new(RecordLog::default()),
            backends: Interner::default(),
            versions: Interner::default(),
            idle: Mutex::new(VecDeque::new()),
            limit: Semaphore::new(limit),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            ended_ns: AtomicU64::new(u64::MAX),
            loops_ended_ns: AtomicU64::new(0),
        });
        // Reachability first, with a clear message, instead of a run full of connect failures.
        let first = tokio::time::timeout(cfg.timeout, sh.connect(false))
            .await
            .map_err(|_| AttemptError { kind: FailureKind::Timeout, unsent: true })
            .and_then(|r| r)
            .map_err(|e| {
                anyhow!("cannot reach {} ({}): {}", cfg.url, sh.target.addr, match e.kind {
                    FailureKind::ConnectRefused => "connection refused (nothing listens there)".to_string(),
                    FailureKind::Timeout => format!("no TCP connection within {:?}", cfg.timeout),
                    k => k.name().replace('_', " "),
                })
            })?;
        if matches!(cfg.mode, Mode::Closed { .. }) {
            // The probe is dropped: count only the connections the loops use.
            sh.counters.connections.fetch_sub(1, Ordering::Relaxed);
        }
        let mut warm_conns = vec![first];
        let rest = futures::future::join_all((1..warm).map(|_| sh.connect(false))).await;
        warm_conns.extend(rest.into_iter().flatten());
        if matches!(cfg.mode, Mode::Open(_)) {
            sh.idle.lock().unwrap().extend(warm_conns);
        }
        // The schedule starts now: t0 is the planned time of request 0.
        let t0 = Instant::now();
        let sh = {
            let mut s = Arc::into_inner(sh).expect("no other handle yet");
            s.t0 = t0;
            Arc::new(s)
        };
        let (done_tx, done_rx) = mpsc::channel(1);
        let max = cfg.max_requests.unwrap_or(u64::MAX);
        let (thread, deadline) = match &cfg.mode {
            Mode::Open(schedule) => {
                let (sh2, schedule, rt) = (sh.clone(), schedule.clone(), tokio::runtime::Handle::current());
                let th = std::thread::Builder::new()
                    .name("seaworthy-load-timer".into())
                    .spawn(move || timer_thread(sh2, schedule, max, rt, done_tx))?;
                (Some(th), Some(t0 + schedule_duration(&cfg.mode)))
            }
            Mode::Closed { duration } => {
                let deadline = duration.map(|d| t0 + d);
                // One single-threaded runtime per core, each with its share of the loops, as wrk
                // runs one event loop per thread: a connection's task and its loop then wake each
                // other on the same thread, without work stealing.
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(cfg.connections);
                for t in 0..threads {
                    let loops = cfg.connections / threads + usize::from(t < cfg.connections % threads);
                    let (sh, done) = (sh.clone(), done_tx.clone());
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    std::thread::Builder::new().name(format!("seaworthy-load-{t}")).spawn(move || {
                        // Not join_all: below 30 futures it polls every one on each wake-up.
                        let mut set: futures::stream::FuturesUnordered<_> =
                            (0..loops).map(|_| closed_loop(sh.clone(), deadline, max, done.clone())).collect();
                        rt.block_on(async { while futures::StreamExt::next(&mut set).await.is_some() {} });
                    })?;
                }
                (None, deadline)
            }
        };
        Ok(Load { sh, cfg, done: done_rx, thread, deadline })
    }

    /// A cheap handle to watch or stop the load from elsewhere (a signal handler, a progress line).
    pub fn handle(&self) -> LoadHandle {
        LoadHandle { sh: self.sh.clone() }
    }

    /// The planned time of request 0; record offsets count from here.
    pub fn start_instant(&self) -> Instant {
        self.sh.t0
    }

    /// Time since the start, on the records' time axis.
    pub fn elapsed(&self) -> Duration {
        self.sh.t0.elapsed()
    }

    /// When the schedule (or the closed model's duration) ends, if it has an end in time.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn config(&self) -> &LoadConfig {
        &self.cfg
    }

    pub fn progress(&self) -> Progress {
        progress(&self.sh)
    }

    /// The records of the requests finished so far (closed model: up to 255 per loop lag behind).
    pub fn records(&self) -> Vec<Record> {
        self.sh.log.lock().unwrap().to_vec()
    }

    /// A report of what has finished so far, while the load goes on.
    pub fn snapshot(&self) -> Report {
        let log = self.sh.log.lock().unwrap();
        let mut copy = RecordLog::default();
        for r in log.iter() {
            copy.push(*r);
        }
        drop(log);
        self.report(copy, self.sh.offset_ns(Instant::now()))
    }

    /// Stop planning new requests now; requests already started run to their end or timeout.
    pub fn request_stop(&self) {
        stop(&self.sh);
    }

    /// Stop now and wait for the requests already started.
    pub async fn stop(self) -> Report {
        self.request_stop();
        self.finish().await
    }

    /// Wait for the schedule to end (or a stop) and for every started request to finish.
    pub async fn finish(mut self) -> Report {
        let _ = self.done.recv().await;
        if let Some(th) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || th.join()).await;
        }
        let mut end = self.sh.ended_ns.load(Ordering::Relaxed);
        if end == u64::MAX {
            // Closed model: the loops ended at the deadline, the count or the stop.
            end = self.sh.loops_ended_ns.load(Ordering::Relaxed);
        }
        let log = std::mem::take(&mut *self.sh.log.lock().unwrap());
        // No replacement connection may land in the pool after it is emptied.
        stop(&self.sh);
        self.sh.idle.lock().unwrap().clear();
        self.report(log, end)
    }

    fn report(&self, records: RecordLog, window_ns: u64) -> Report {
        let c = &self.sh.counters;
        Report {
            url: self.cfg.url.clone(),
            mode: self.cfg.mode.clone(),
            connections_limit: self.cfg.connections,
            max_in_flight: self.cfg.max_in_flight,
            timeout: self.cfg.timeout,
            started: self.sh.t0,
            window: Duration::from_nanos(window_ns),
            planned: c.planned.load(Ordering::Relaxed),
            connections_opened: c.connections.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            connection_policy: self.cfg.connection,
            backends: self.sh.backends.names(),
            versions: self.sh.versions.names(),
            records,
        }
    }
}

fn progress(sh: &Shared) -> Progress {
    let c = &sh.counters;
    Progress {
        planned: c.planned.load(Ordering::Relaxed),
        completed: c.completed.load(Ordering::Relaxed),
        ok: c.ok.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
        in_flight: c.in_flight.load(Ordering::Relaxed),
    }
}

/// See [`Load::handle`].
#[derive(Clone)]
pub struct LoadHandle {
    sh: Arc<Shared>,
}

impl LoadHandle {
    pub fn progress(&self) -> Progress {
        progress(&self.sh)
    }

    pub fn elapsed(&self) -> Duration {
        self.sh.t0.elapsed()
    }

    /// Stop planning new requests; [`Load::finish`] then returns once those in flight ended.
    pub fn stop(&self) {
        stop(&self.sh);
    }
}

fn stop(sh: &Shared) {
    sh.stop.store(true, Ordering::Relaxed);
    let _g = sh.wake.0.lock().unwrap();
    sh.wake.1.notify_all();
}

fn schedule_duration(mode: &Mode) -> Duration {
    match mode {
        Mode::Open(s) => s.duration(),
        Mode::Closed { duration } => duration.unwrap_or(Duration::MAX),
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        stop(&self.sh);
    }
}

/// Everything a finished (or snapshotted) load recorded.
pub struct Report {
    pub url: String,
    pub mode: Mode,
    pub connections_limit: usize,
    pub max_in_flight: usize,
    pub timeout: Duration,
    /// The planned time of request 0.
    pub started: Instant,
    /// From the start to when the generator stopped starting requests (schedule end or stop).
    pub window: Duration,
    /// Requests whose planned time came (open model) or that a loop began (closed model).
    pub planned: u64,
    pub connections_opened: u64,
    pub retried: u64,
    pub connection_policy: ConnectionPolicy,
    /// Backend header values; records index into it, 0 = absent.
    pub backends: Vec<String>,
    pub versions: Vec<String>,
    pub records: RecordLog,
}

impl Report {
    /// An instant as an offset on the records' time axis (0 if before the start).
    pub fn offset(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.started)
    }

    pub fn backend_name(&self, idx: u16) -> Option<&str> {
        (idx != 0).then(|| self.backends.get(idx as usize).map(String::as_str)).flatten()
    }

    pub fn backend_index(&self, name: &str) -> Option<u16> {
        self.backends.iter().skip(1).position(|b| b == name).map(|i| (i + 1) as u16)
    }

    pub fn summary(&self, bucket: Duration) -> Summary {
        Summary::from_report(self, bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionPolicy;
    use std::time::{Duration, Instant};

    #[test]
    fn a_connection_life_ends_by_count_or_age() {
        let now = Instant::now();
        let old = now - Duration::from_secs(2);
        assert!(!ConnectionPolicy::KEEP_ALIVE.last_request(old, 1_000_000));
        assert!(ConnectionPolicy::NO_KEEPALIVE.last_request(now, 0));
        let checks = ConnectionPolicy::CHECKS;
        assert!(!checks.last_request(now, 0));
        assert!(!checks.last_request(now, 30));
        assert!(checks.last_request(now, 31), "the 32nd request is the last");
        assert!(checks.last_request(old, 0), "older than 1 s: the next request is the last");
        assert!(!ConnectionPolicy::NO_KEEPALIVE.keep_alive() && checks.keep_alive());
        assert_eq!(
            ConnectionPolicy::describe(Some(32), Some(1.0), Some(1.0)),
            "keep-alive, at most 32 requests or 1s per connection, closed after 1s idle"
        );
        assert_eq!(ConnectionPolicy::describe(None, None, None), "keep-alive, connections live as long as the server keeps them");
        assert_eq!(ConnectionPolicy::describe(Some(1), None, None), "no keep-alive (a new connection per request)");
    }
}
