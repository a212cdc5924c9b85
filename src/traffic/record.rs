//! One compact record per request, and the interned tables its indices point into.

use std::sync::{Mutex, RwLock};

/// What happened to one request. Stored as a `u16` in [`Record::outcome`]: HTTP statuses keep their
/// number (100..=999), transport failures use small codes below 100 that no status can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Status(u16),
    Failure(FailureKind),
}

/// Why a request got no HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum FailureKind {
    /// TCP connect answered with RST: nothing listens on the port.
    ConnectRefused = 1,
    /// Any other connect error (unreachable, no route, out of local ports, ...).
    ConnectError = 2,
    /// The connection was reset or closed before the full response arrived.
    Reset = 3,
    /// No full response within `--timeout` (connect included).
    Timeout = 4,
    /// The peer answered with something that is not valid HTTP/1.x.
    ProtocolError = 5,
    /// Any other I/O error.
    IoError = 6,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::ConnectRefused,
        FailureKind::ConnectError,
        FailureKind::Reset,
        FailureKind::Timeout,
        FailureKind::ProtocolError,
        FailureKind::IoError,
    ];

    /// The key used in summaries and JSON.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::ConnectRefused => "connect_refused",
            FailureKind::ConnectError => "connect_error",
            FailureKind::Reset => "reset",
            FailureKind::Timeout => "timeout",
            FailureKind::ProtocolError => "protocol_error",
            FailureKind::IoError => "io_error",
        }
    }

    fn from_code(code: u16) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| *k as u16 == code)
    }
}

impl Outcome {
    pub fn code(self) -> u16 {
        match self {
            Outcome::Status(s) => s,
            Outcome::Failure(k) => k as u16,
        }
    }

    pub fn from_code(code: u16) -> Outcome {
        match FailureKind::from_code(code) {
            Some(k) => Outcome::Failure(k),
            None => Outcome::Status(code),
        }
    }

    /// A request succeeded when it got a complete response below 400. Everything else (4xx, 5xx,
    /// no response at all) is a failure: a load against a stack that answers 404 proves nothing.
    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Status(s) if s < 400)
    }
}

/// Flag bits of [`Record::flags`].
pub mod flags {
    /// The request was written to a connection (it got one, and the connect succeeded).
    pub const SENT: u8 = 1;
    /// The request found its reused keep-alive connection closed before a byte of it was written
    /// (hyper handed it back unsent), and was sent on a fresh connection instead. A request that
    /// was written is never sent again, whatever happened to it.
    pub const RETRIED: u8 = 2;
    /// The request paid for opening a new connection.
    pub const NEW_CONNECTION: u8 = 4;
}

/// One request. Times are offsets from the load's start instant (the planned time of request 0).
///
/// The corrected latency runs from the *planned* send time, so a generator or server that falls
/// behind shows up in it (no coordinated omission); the service time runs from the moment the
/// generator actually started on the request. Their difference is how late the request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    /// Planned send time, nanoseconds after the start.
    pub planned_ns: u64,
    /// Planned send time to the end of the response body (or of the failure), microseconds.
    pub latency_us: u32,
    /// Actual start of the attempt to the same end, microseconds.
    pub service_us: u32,
    /// [`Outcome::code`].
    pub outcome: u16,
    /// Index into the backend table (values of the backend header); 0 = no header.
    pub backend: u16,
    /// Index into the version table; 0 = no header.
    pub version: u16,
    /// [`flags`] bits.
    pub flags: u8,
}

const _: () = assert!(std::mem::size_of::<Record>() <= 32, "a request record must fit in 32 bytes");

impl Record {
    pub fn outcome(&self) -> Outcome {
        Outcome::from_code(self.outcome)
    }

    pub fn is_ok(&self) -> bool {
        self.outcome().is_ok()
    }

    pub fn is_sent(&self) -> bool {
        self.flags & flags::SENT != 0
    }

    /// How late the attempt started behind its planned time, microseconds.
    pub fn lateness_us(&self) -> u32 {
        self.latency_us.saturating_sub(self.service_us)
    }

    /// When the attempt started, nanoseconds after the start.
    pub fn started_ns(&self) -> u64 {
        self.planned_ns + self.lateness_us() as u64 * 1_000
    }

    /// When the response (or the failure) ended, nanoseconds after the start.
    pub fn ended_ns(&self) -> u64 {
        self.planned_ns + self.latency_us as u64 * 1_000
    }
}

/// Grows in fixed chunks so that a million records never need a copy (and never twice the memory)
/// while the log grows.
#[derive(Default)]
pub struct RecordLog {
    chunks: Vec<Vec<Record>>,
    len: usize,
}

const CHUNK: usize = 16 * 1024;

impl RecordLog {
    pub fn push(&mut self, r: Record) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < c.capacity() => c.push(r),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(r);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    pub fn extend_from_slice(&mut self, rs: &[Record]) {
        for r in rs {
            self.push(*r);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Record> + '_ {
        self.chunks.iter().flatten()
    }

    pub fn to_vec(&self) -> Vec<Record> {
        let mut v = Vec::with_capacity(self.len);
        for c in &self.chunks {
            v.extend_from_slice(c);
        }
        v
    }

    /// Bytes held by the records (allocated capacity included).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<Record>()).sum()
    }
}

/// Header values seen in responses, each stored once; records carry the index. Index 0 means the
/// header was absent. Past `u16::MAX - 1` distinct values everything new maps to the last index,
/// named `(other)`, so a misbehaving header cannot grow memory without bound.
pub struct Interner {
    names: RwLock<Vec<String>>,
    insert: Mutex<()>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner { names: RwLock::new(vec![String::new()]), insert: Mutex::new(()) }
    }
}

impl Interner {
    pub fn intern(&self, value: &[u8]) -> u16 {
        // Few distinct values (the Pods behind a Service), so a scan under a read lock beats hashing.
        if let Some(i) = Self::find(&self.names.read().unwrap(), value) {
            return i;
        }
        let _one_writer = self.insert.lock().unwrap();
        if let Some(i) = Self::find(&self.names.read().unwrap(), value) {
            return i;
        }
        let mut names = self.names.write().unwrap();
        if names.len() >= u16::MAX as usize {
            return u16::MAX - 1;
        }
        let name = if names.len() == u16::MAX as usize - 1 {
            "(other)".to_string()
        } else {
            String::from_utf8_lossy(value).into_owned()
        };
        names.push(name);
        (names.len() - 1) as u16
    }

    fn find(names: &[String], value: &[u8]) -> Option<u16> {
        names.iter().skip(1).position(|n| n.as_bytes() == value).map(|i| (i + 1) as u16)
    }

    /// All names, index 0 being the empty "absent" entry.
    pub fn names(&self) -> Vec<String> {
        self.names.read().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_codes_round_trip() {
        for k in FailureKind::ALL {
            assert_eq!(Outcome::from_code(Outcome::Failure(k).code()), Outcome::Failure(k));
        }
        for s in [100u16, 200, 302, 404, 502, 599] {
            assert_eq!(Outcome::from_code(s), Outcome::Status(s));
        }
        assert!(Outcome::Status(204).is_ok());
        assert!(!Outcome::Status(502).is_ok());
        assert!(!Outcome::Failure(FailureKind::Timeout).is_ok());
    }

    #[test]
    fn record_is_small() {
        assert_eq!(std::mem::size_of::<Record>(), 24);
    }

    #[test]
    fn derived_times() {
        let r = Record {
            planned_ns: 5_000_000,
            latency_us: 3_000,
            service_us: 1_000,
            outcome: 200,
            backend: 0,
            version: 0,
            flags: flags::SENT,
        };
        assert_eq!(r.lateness_us(), 2_000);
        assert_eq!(r.started_ns(), 7_000_000);
        assert_eq!(r.ended_ns(), 8_000_000);
    }

    #[test]
    fn interner_dedups() {
        let i = Interner::default();
        assert_eq!(i.intern(b"a"), 1);
        assert_eq!(i.intern(b"b"), 2);
        assert_eq!(i.intern(b"a"), 1);
        assert_eq!(i.names(), vec!["", "a", "b"]);
    }

    #[test]
    fn log_spans_chunks() {
        let mut log = RecordLog::default();
        let r = Record { planned_ns: 0, latency_us: 0, service_us: 0, outcome: 200, backend: 0, version: 0, flags: 0 };
        for i in 0..(CHUNK * 2 + 3) {
            log.push(Record { planned_ns: i as u64, ..r });
        }
        assert_eq!(log.len(), CHUNK * 2 + 3);
        assert_eq!(log.iter().map(|r| r.planned_ns).sum::<u64>(), (0..(CHUNK * 2 + 3) as u64).sum::<u64>());
        assert_eq!(log.chunks.len(), 3);
    }
}
