//! Numbers computed from the records: counts, rates, percentiles, timeline, backends.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::engine::{ConnectionPolicy, Mode, Report};
use super::record::{Outcome, Record};

/// Bumped whenever a field changes meaning or disappears (adding fields keeps the version).
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `--json` writes; also what the checks read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub url: String,
    /// "open" (planned instants) or "closed" (`--rate max`).
    pub mode: String,
    /// Open model: the schedule as `[seconds, req/s]` breakpoints (a constant rate has two).
    pub schedule: Option<Vec<[f64; 2]>>,
    /// From the start until the generator stopped starting requests (schedule end or stop).
    pub duration_s: f64,
    /// From the start until the last request ended.
    pub elapsed_s: f64,
    /// Requests whose planned time came (closed model: that a loop began).
    pub planned: u64,
    /// Requests the generator started (the rest timed out waiting for a free in-flight slot).
    pub sent: u64,
    /// Requests answered with a full HTTP response (any status).
    pub completed: u64,
    /// Responses below 400.
    pub ok: u64,
    /// Everything else: 4xx/5xx responses and requests without a response.
    pub failed: u64,
    /// Requests sent a second time because their reused connection turned out closed before they
    /// were written (never one that reached the server: that one is a failure).
    pub retried: u64,
    pub connections_opened: u64,
    /// Requests per connection (the last carries `Connection: close`); null = unlimited, 1 = no
    /// keep-alive. Absent in summaries written before it existed.
    #[serde(default)]
    pub max_requests_per_connection: Option<u32>,
    /// A connection this old serves its next request as its last; null = no limit.
    #[serde(default)]
    pub connection_max_age_s: Option<f64>,
    /// A connection idle this long is closed instead of reused; null = no limit.
    #[serde(default)]
    pub connection_max_idle_s: Option<f64>,
    /// planned / duration_s.
    pub planned_rps: f64,
    /// sent / the time it took to send them (at least duration_s).
    pub achieved_rps: f64,
    /// Open model: whether achieved_rps is within 1% of planned_rps.
    pub rate_held: Option<bool>,
    /// HTTP status -> count.
    pub status_codes: BTreeMap<String, u64>,
    /// Failure kind (connect_refused, connect_error, reset, timeout, protocol_error, io_error) -> count.
    pub failures: BTreeMap<String, u64>,
    /// From the planned send time to the end of the response (coordinated omission corrected),
    /// over completed requests.
    pub latency_ms: Percentiles,
    /// From the actual start of the request to the end of the response (uncorrected).
    pub service_time_ms: Percentiles,
    /// How late requests were started behind their plan, over all requests.
    pub send_lateness_ms: Percentiles,
    pub bucket_s: f64,
    /// By the time each request was started.
    pub timeline: Vec<Bucket>,
    /// Per value of the backend header (responses without it are not listed).
    pub backends: Vec<Seen>,
    /// Per value of the version header.
    pub versions: Vec<Seen>,
    /// Size of one in-memory request record.
    pub record_bytes: usize,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, seconds after the start.
    pub t_s: f64,
    /// Open model: requests the schedule planned in this bucket.
    pub planned: Option<u64>,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Corrected latency of the completed requests started in this bucket.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Seen {
    pub name: String,
    pub count: u64,
    pub ok: u64,
    pub failed: u64,
    /// When the first and the last request that this name answered were sent, seconds after the
    /// start (the timeline's axis; a request answered by it was necessarily sent before it died).
    pub first_seen_s: f64,
    pub last_seen_s: f64,
}

fn hist() -> Histogram<u64> {
    // Microseconds up to an hour at 3 significant digits: ~190 KB each, whatever the request count.
    Histogram::new_with_max(3_600_000_000, 3).expect("valid histogram bounds")
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Summary {
    pub fn from_report(rep: &Report, bucket: Duration) -> Summary {
        let bucket_ns = bucket.as_nanos().max(1_000_000) as u64;
        let (mut lat, mut svc, mut late) = (hist(), hist(), hist());
        let mut status_codes: BTreeMap<String, u64> = BTreeMap::new();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        let (mut sent, mut completed, mut ok) = (0u64, 0u64, 0u64);
        let (mut last_end, mut last_start) = (0u64, 0u64);
        let mut backends: Vec<Option<Seen>> = vec![None; rep.backends.len()];
        let mut versions: Vec<Option<Seen>> = vec![None; rep.versions.len()];
        let mut timeline: Vec<Bucket> = Vec::new();
        let bucket_of = |r: &Record| (r.started_ns() / bucket_ns) as usize;
        let mut per_bucket_done: Vec<usize> = Vec::new();

        for r in rep.records.iter() {
            let outcome = r.outcome();
            let is_ok = outcome.is_ok();
            last_end = last_end.max(r.ended_ns());
            late.saturating_record(r.lateness_us() as u64);
            if r.is_sent() {
                sent += 1;
                last_start = last_start.max(r.started_ns());
            }
            match outcome {
                Outcome::Status(s) => {
                    completed += 1;
                    *status_codes.entry(s.to_string()).or_default() += 1;
                    lat.saturating_record(r.latency_us as u64);
                    svc.saturating_record(r.service_us as u64);
                }
                Outcome::Failure(k) => *failures.entry(k.name().to_string()).or_default() += 1,
            }
            ok += is_ok as u64;
            let b = bucket_of(r);
            if timeline.len() <= b {
                timeline.resize_with(b + 1, Bucket::empty);
                per_bucket_done.resize(b + 1, 0);
            }
            let tb = &mut timeline[b];
            tb.sent += r.is_sent() as u64;
            tb.ok += is_ok as u64;
            tb.failed += !is_ok as u64;
            per_bucket_done[b] += matches!(outcome, Outcome::Status(_)) as usize;
            for (table, idx, names) in [(&mut backends, r.backend, &rep.backends), (&mut versions, r.version, &rep.versions)] {
                if idx == 0 {
                    continue;
                }
                let end = secs(r.started_ns());
                let seen = table[idx as usize].get_or_insert_with(|| Seen {
                    name: names[idx as usize].clone(),
                    count: 0,
                    ok: 0,
                    failed: 0,
                    first_seen_s: end,
                    last_seen_s: end,
                });
                seen.count += 1;
                seen.ok += is_ok as u64;
                seen.failed += !is_ok as u64;
                seen.first_seen_s = seen.first_seen_s.min(end);
                seen.last_seen_s = seen.last_seen_s.max(end);
            }
        }

        // Exact per-bucket percentiles: lay the latencies out bucket by bucket (a counting sort,
        // 4 bytes per request, freed at once), then sort each bucket's slice.
        let mut starts = Vec::with_capacity(per_bucket_done.len() + 1);
        let mut acc = 0usize;
        for n in &per_bucket_done {
            starts.push(acc);
            acc += n;
        }
        starts.push(acc);
        let mut fill = starts.clone();
        let mut lats = vec![0u32; acc];
        for r in rep.records.iter().filter(|r| matches!(r.outcome(), Outcome::Status(_))) {
            let b = bucket_of(r);
            lats[fill[b]] = r.latency_us;
            fill[b] += 1;
        }
        for (b, tb) in timeline.iter_mut().enumerate() {
            tb.t_s = secs(b as u64 * bucket_ns);
            let s = &mut lats[starts[b]..starts[b + 1]];
            if s.is_empty() {
                continue;
            }
            s.sort_unstable();
            let q = |p: f64| s[((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1] as f64 / 1000.0;
            tb.p50_ms = Some(q(0.5));
            tb.p99_ms = Some(q(0.99));
            tb.max_ms = Some(*s.last().unwrap() as f64 / 1000.0);
        }
        drop(lats);

        let (mode, schedule) = match &rep.mode {
            Mode::Open(s) => ("open", Some(s)),
            Mode::Closed { .. } => ("closed", None),
        };
        if let Some(s) = schedule {
            let mut planned_buckets = vec![0u64; timeline.len()];
            for off in s.offsets().take(rep.planned as usize) {
                let b = (off / bucket_ns) as usize;
                if planned_buckets.len() <= b {
                    planned_buckets.resize(b + 1, 0);
                }
                planned_buckets[b] += 1;
            }
            if timeline.len() < planned_buckets.len() {
                timeline.resize_with(planned_buckets.len(), Bucket::empty);
                for (b, tb) in timeline.iter_mut().enumerate() {
                    tb.t_s = secs(b as u64 * bucket_ns);
                }
            }
            for (b, tb) in timeline.iter_mut().enumerate() {
                tb.planned = Some(planned_buckets.get(b).copied().unwrap_or(0));
            }
        }

        let window_ns = rep.window.as_nanos() as u64;
        let duration_s = secs(window_ns);
        let span = secs(window_ns.max(last_start)).max(1e-9);
        let planned_rps = if duration_s > 0.0 { rep.planned as f64 / duration_s } else { 0.0 };
        let achieved_rps = sent as f64 / span;
        let total = rep.records.len() as u64;
        Summary {
            schema_version: SCHEMA_VERSION,
            url: rep.url.clone(),
            mode: mode.into(),
            schedule: schedule.map(|s| s.points().iter().map(|&(t, r)| [t, r]).collect()),
            duration_s,
            elapsed_s: secs(last_end.max(window_ns)),
            planned: rep.planned,
            sent,
            completed,
            ok,
            failed: total - ok,
            retried: rep.retried,
            connections_opened: rep.connections_opened,
            max_requests_per_connection: rep.connection_policy.max_requests,
            connection_max_age_s: rep.connection_policy.max_age.map(|a| a.as_secs_f64()),
            connection_max_idle_s: rep.connection_policy.max_idle.map(|a| a.as_secs_f64()),
            planned_rps,
            achieved_rps,
            rate_held: schedule.map(|_| achieved_rps >= 0.99 * planned_rps),
            status_codes,
            failures,
            latency_ms: percentiles(&lat),
            service_time_ms: percentiles(&svc),
            send_lateness_ms: percentiles(&late),
            bucket_s: secs(bucket_ns),
            timeline,
            backends: backends.into_iter().flatten().collect(),
            versions: versions.into_iter().flatten().collect(),
            record_bytes: std::mem::size_of::<Record>(),
        }
    }

    pub fn backend(&self, name: &str) -> Option<&Seen> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// The human summary printed at the end of `seaworthy load`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let what = match &self.schedule {
            Some(s) if s.iter().all(|p| p[1] == s[0][1]) => format!("{} req/s for {:.1}s", fmt_num(s[0][1]), s.last().unwrap()[0]),
            Some(s) => format!(
                "ramp {}",
                s.iter().map(|p| format!("{}s:{}", fmt_num(p[0]), fmt_num(p[1]))).collect::<Vec<_>>().join(",")
            ),
            None => format!("closed model, as fast as possible for {:.1}s", self.duration_s),
        };
        let _ = writeln!(o, "{} — {what}", self.url);
        let _ = writeln!(
            o,
            "  requests   planned {}  sent {}  completed {}  ok {}  failed {}  (retried {}, connections opened {})",
            self.planned, self.sent, self.completed, self.ok, self.failed, self.retried, self.connections_opened
        );
        let _ = writeln!(
            o,
            "  connections {}",
            ConnectionPolicy::describe(self.max_requests_per_connection, self.connection_max_age_s, self.connection_max_idle_s)
        );
        let _ = writeln!(
            o,
            "  rate       achieved {:.1} req/s{}   send lateness p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.achieved_rps,
            if self.mode == "open" { format!(" of {:.1} planned", self.planned_rps) } else { String::new() },
            self.send_lateness_ms.p50,
            self.send_lateness_ms.p99,
            self.send_lateness_ms.max
        );
        let map = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("  ")
            }
        };
        let _ = writeln!(o, "  statuses   {}", map(&self.status_codes));
        let _ = writeln!(o, "  failures   {}", map(&self.failures));
        let p = |p: &Percentiles| {
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
                p.p50, p.p90, p.p99, p.p999, p.max
            )
        };
        let _ = writeln!(o, "  latency    {}   (from the planned send time)", p(&self.latency_ms));
        let _ = writeln!(o, "  service    {}   (from the actual send, uncorrected)", p(&self.service_time_ms));
        for (label, list) in [("backends", &self.backends), ("versions", &self.versions)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(o, "  {label:<10} {}", list
                .iter()
                .map(|s| format!("{}: {} ({} failed, seen {:.2}s..{:.2}s)", s.name, s.count, s.failed, s.first_seen_s, s.last_seen_s))
                .collect::<Vec<_>>()
                .join("  "));
        }
        if !self.timeline.is_empty() {
            let _ = writeln!(o, "  timeline   {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}", "t(s)", "planned", "sent", "ok", "failed", "p99 ms");
            let rows = &self.timeline;
            let show: Vec<usize> = if rows.len() <= 40 {
                (0..rows.len()).collect()
            } else {
                // Long runs: the first and last rows, and every row with a failure.
                (0..rows.len()).filter(|&i| i < 10 || i >= rows.len() - 10 || rows[i].failed > 0).collect()
            };
            let mut prev = None;
            for i in show {
                if prev.is_some_and(|p| p + 1 != i) {
                    let _ = writeln!(o, "             {:>8}", "...");
                }
                prev = Some(i);
                let b = &rows[i];
                let _ = writeln!(
                    o,
                    "             {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>10}",
                    b.t_s,
                    b.planned.map_or("-".into(), |p| p.to_string()),
                    b.sent,
                    b.ok,
                    b.failed,
                    b.p99_ms.map_or("-".into(), |v| format!("{v:.3}"))
                );
            }
        }
        o
    }
}

impl Bucket {
    fn empty() -> Bucket {
        Bucket { t_s: 0.0, planned: None, sent: 0, ok: 0, failed: 0, p50_ms: None, p99_ms: None, max_ms: None }
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x}") }
}
