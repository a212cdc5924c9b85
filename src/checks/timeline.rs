//! Failed requests grouped in time and placed next to the cluster's events: the evidence that
//! says *which* Pod failed *when*, and what Kubernetes was doing to it.

use super::verdict::FailureCluster;
use crate::observe::Entry;
use crate::traffic::{Outcome, Record};
use std::collections::BTreeMap;

/// Failures closer than this belong to one cluster.
const GAP_NS: u64 = 1_000_000_000;
/// Events this long before a cluster and after it count as "next to" it.
const BEFORE_MS: u64 = 5_000;
const AFTER_MS: u64 = 1_000;

/// What the checks count as a successful request: a 2xx answer. STACKS.md counts any non-2xx as
/// a failed request (rollout-zero-5xx: "0 failed requests (non-2xx, resets, timeouts)"), and a
/// redirect is not the page the check asked for. The load generator's own `is_ok` (below 400)
/// is for free-standing load runs; the checks judge on this.
pub fn succeeded(r: &Record) -> bool {
    matches!(r.outcome(), Outcome::Status(s) if (200..300).contains(&s))
}

fn outcome_name(r: &Record) -> String {
    match r.outcome() {
        Outcome::Status(code) => code.to_string(),
        Outcome::Failure(kind) => kind.name().to_string(),
    }
}

/// Group the failed requests of a load that started at `start_ms` (wall clock) into clusters.
/// `backends` is the load's interned backend table (index 0 = no header).
pub fn failure_clusters(records: &[Record], backends: &[String], start_ms: u64, events: &[Entry]) -> Vec<FailureCluster> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.planned_ns);
    let name = |i: u16| backends.get(i as usize).filter(|_| i != 0).cloned();

    let mut groups: Vec<Vec<&Record>> = Vec::new();
    for r in sorted.iter().copied().filter(|r| !succeeded(r)) {
        match groups.last_mut() {
            Some(g) if r.planned_ns - g.last().unwrap().planned_ns <= GAP_NS => g.push(r),
            _ => groups.push(vec![r]),
        }
    }

    groups
        .into_iter()
        .map(|g| {
            let from_ns = g.first().unwrap().planned_ns;
            let to_ns = g.last().unwrap().planned_ns;
            let mut kinds = BTreeMap::new();
            let mut answered: BTreeMap<String, u64> = BTreeMap::new();
            for r in &g {
                *kinds.entry(outcome_name(r)).or_insert(0) += 1;
                if let Some(b) = name(r.backend) {
                    *answered.entry(b).or_insert(0) += 1;
                }
            }
            // An error page names its backend; a refused or reset connection does not, and then
            // the suspect is the backend that went silent: last answered before the failures and
            // never after them.
            let backend = answered.into_iter().max_by_key(|(_, n)| *n).map(|(b, _)| b).or_else(|| {
                let mut last_ok: BTreeMap<u16, u64> = BTreeMap::new();
                for r in sorted.iter().filter(|r| succeeded(r) && r.backend != 0) {
                    last_ok.insert(r.backend, r.planned_ns);
                }
                last_ok
                    .into_iter()
                    .filter(|(_, t)| *t <= from_ns)
                    .max_by_key(|(_, t)| *t)
                    .and_then(|(b, _)| name(b))
            });
            let from_ms = start_ms + from_ns / 1_000_000;
            let to_ms = start_ms + to_ns / 1_000_000;
            let nearby = events.iter().filter(|e| e.at_ms + BEFORE_MS >= from_ms && e.at_ms <= to_ms + AFTER_MS).cloned().collect();
            FailureCluster {
                at_ms: from_ms,
                from_s: from_ns as f64 / 1e9,
                to_s: to_ns as f64 / 1e9,
                count: g.len() as u64,
                kinds,
                backend,
                nearby,
            }
        })
        .collect()
}

/// The event a failure cluster is placed next to, and its offset in seconds from the cluster's
/// start (negative = before). One rule for every view (a verdict's reason, the JUnit message,
/// the HTML timeline): among the events near the cluster, what Kubernetes reported wins over what
/// seaworthy itself did (the Pod going terminating explains a 502 better than "patched image"),
/// and among those the one closest in time.
pub fn next_to(c: &FailureCluster) -> Option<(&Entry, f64)> {
    let dt = |e: &Entry| (e.at_ms as f64 - c.at_ms as f64) / 1000.0;
    c.nearby
        .iter()
        .map(|e| (e, dt(e)))
        .min_by(|(a, da), (b, db)| {
            let own = |e: &Entry| e.source == crate::observe::Source::Action;
            own(a).cmp(&own(b)).then(da.abs().total_cmp(&db.abs()))
        })
}

/// How an event sits relative to a failure: `0.3 s before`, `1.0 s after`.
pub fn offset(event_minus_failure_s: f64) -> String {
    let d = event_minus_failure_s;
    if d.abs() < 0.05 { "at the same time".into() } else if d < 0.0 { format!("{:.1} s before", -d) } else { format!("{d:.1} s after") }
}

/// One line per cluster, for a verdict's reason: `12 failures (502 x12) at 4.1-4.6s, backend
/// web-1, next to: Pod/web-1 terminating (0.2 s before)`.
pub fn describe(clusters: &[FailureCluster]) -> String {
    clusters
        .iter()
        .map(|c| {
            let kinds: Vec<String> = c.kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            let backend = c.backend.as_deref().map(|b| format!(", backend {b}")).unwrap_or_default();
            let next = match next_to(c) {
                Some((e, d)) => format!(", next to: {} {} ({})", e.object, e.message, offset(d)),
                None => String::new(),
            };
            format!("{} failures ({}) at {:.1}-{:.1}s{backend}{next}", c.count, kinds.join(", "), c.from_s, c.to_s)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Source;

    fn rec(t_ms: u64, outcome: u16, backend: u16) -> Record {
        Record { planned_ns: t_ms * 1_000_000, latency_us: 1000, service_us: 900, outcome, backend, version: 0, flags: 0 }
    }

    fn code(o: Outcome) -> u16 {
        o.code()
    }

    /// A recorded rollout: two backends answer, web-a is terminated at 4.9 s, requests routed
    /// to it fail (connection refused, then 502s from a proxy) until its endpoint is removed.
    #[test]
    fn failures_land_on_the_terminating_pod() {
        let backends = vec![String::new(), "web-a".into(), "web-b".into()];
        let ok = code(Outcome::Status(200));
        let refused = code(Outcome::Failure(crate::traffic::FailureKind::ConnectRefused));
        let bad_gateway = code(Outcome::Status(502));
        let mut records = Vec::new();
        for t in (0..10_000).step_by(100) {
            let r = match t {
                5_000..=5_400 if t % 200 == 0 => rec(t, refused, 0),
                5_000..=5_400 => rec(t, bad_gateway, 0),
                _ if t < 5_000 => rec(t, ok, if t % 200 == 0 { 1 } else { 2 }),
                _ => rec(t, ok, 2),
            };
            records.push(r);
        }
        let start_ms = 1_700_000_000_000;
        let events = vec![
            Entry { at_ms: start_ms - 2_000, source: Source::Pod, object: "Pod/web-c".into(), message: "created".into() },
            Entry { at_ms: start_ms + 4_900, source: Source::Pod, object: "Pod/web-a".into(), message: "terminating (grace 30s)".into() },
            Entry { at_ms: start_ms + 9_000, source: Source::Pod, object: "Pod/web-a".into(), message: "deleted".into() },
        ];
        let clusters = failure_clusters(&records, &backends, start_ms, &events);
        assert_eq!(clusters.len(), 1, "{clusters:?}");
        let c = &clusters[0];
        assert_eq!(c.count, 5);
        assert_eq!(c.kinds.get("connect_refused"), Some(&3));
        assert_eq!(c.kinds.get("502"), Some(&2));
        assert_eq!(c.backend.as_deref(), Some("web-a"), "the backend that went silent");
        assert_eq!(c.nearby.len(), 1);
        assert_eq!(c.nearby[0].object, "Pod/web-a");
        let text = describe(&clusters);
        assert!(text.contains("5 failures") && text.contains("backend web-a") && text.contains("next to: Pod/web-a terminating (grace 30s) (0.1 s before)"), "{text}");
    }

    #[test]
    fn separate_bursts_are_separate_clusters_and_a_clean_run_has_none() {
        let ok = code(Outcome::Status(200));
        let err = code(Outcome::Status(503));
        let records = vec![rec(0, ok, 1), rec(100, err, 1), rec(200, err, 1), rec(5_000, err, 2), rec(5_100, ok, 1)];
        let backends = vec![String::new(), "a".into(), "b".into()];
        let clusters = failure_clusters(&records, &backends, 0, &[]);
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0].backend.as_deref(), Some("a"), "an error page names its backend");
        assert_eq!(clusters[1].backend.as_deref(), Some("b"));
        assert!(failure_clusters(&[rec(0, ok, 1)], &backends, 0, &[]).is_empty());
    }
}
