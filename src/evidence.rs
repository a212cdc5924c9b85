//! On any failure, what a person needs to understand it without the cluster: the namespace's
//! events (sorted), each Pod's status and a description, container logs (current and
//! previous), the workload objects as YAML, and the check's own timeline. Secrets are never
//! saved: only their names appear, in the objects that refer to them.

use crate::checks::Phase;
use crate::observe::Entry;
use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, LogParams};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Save the evidence of namespace `ns` under `dir`; returns the folder. Each part that cannot be
/// read is noted in `errors.txt` instead of aborting the rest.
pub async fn collect(client: &kube::Client, ns: &str, dir: &Path, timeline: &[Entry], phases: &[Phase]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut errors = String::new();

    let events = Api::<Event>::namespaced(client.clone(), ns).list(&ListParams::default()).await;
    match events {
        Ok(list) => std::fs::write(dir.join("events.txt"), events_text(&list.items))?,
        Err(e) => writeln!(errors, "events: {e}")?,
    }
    std::fs::write(dir.join("timeline.txt"), timeline_text(timeline, phases))?;

    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            let events = Api::<Event>::namespaced(client.clone(), ns).list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
            for pod in &list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let pod_dir = dir.join("pods").join(&name);
                std::fs::create_dir_all(&pod_dir)?;
                std::fs::write(pod_dir.join("pod.yaml"), serde_yaml::to_string(pod)?)?;
                std::fs::write(pod_dir.join("describe.txt"), describe_pod(pod, &events))?;
                for (container, previous) in containers(pod).into_iter().flat_map(|c| [(c.clone(), false), (c, true)]) {
                    let lp = LogParams { container: Some(container.clone()), previous, tail_lines: Some(2000), ..Default::default() };
                    match pods.logs(&name, &lp).await {
                        Ok(text) => std::fs::write(pod_dir.join(format!("{container}{}.log", if previous { ".previous" } else { "" })), text)?,
                        // "previous terminated container not found" is the common, harmless case.
                        Err(e) if previous => tracing::debug!(pod = name, container, "no previous log: {e}"),
                        Err(e) => writeln!(errors, "logs {name}/{container}: {e}")?,
                    }
                }
            }
        }
        Err(e) => writeln!(errors, "pods: {e}")?,
    }

    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects)?;
    macro_rules! save {
        ($($kind:ty => $file:literal),*) => {$(
            match Api::<$kind>::namespaced(client.clone(), ns).list(&ListParams::default()).await {
                Ok(list) => std::fs::write(objects.join($file), serde_yaml::to_string(&list.items)?)?,
                Err(e) => writeln!(errors, "{}: {e}", $file)?,
            }
        )*};
    }
    save!(Deployment => "deployments.yaml", StatefulSet => "statefulsets.yaml", ReplicaSet => "replicasets.yaml",
          Service => "services.yaml", EndpointSlice => "endpointslices.yaml", PersistentVolumeClaim => "pvcs.yaml",
          HorizontalPodAutoscaler => "hpas.yaml", PodDisruptionBudget => "pdbs.yaml");
    if !errors.is_empty() {
        std::fs::write(dir.join("errors.txt"), errors)?;
    }
    Ok(dir.to_path_buf())
}

fn containers(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()))
        .map(|c| c.name.clone())
        .collect()
}

fn event_key(e: &Event) -> String {
    crate::wait::events::event_time(e).map(|t| t.to_string()).unwrap_or_default()
}

/// Events oldest first, one a line, as `kubectl get events --sort-by=lastTimestamp` shows them.
pub fn events_text(events: &[Event]) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
    // By value: as text, "…:03.5Z" sorts after "…:03.535699Z" and a missing time before all.
    sorted.sort_by_key(|e| crate::wait::events::event_time(e));
    let mut out = String::new();
    for e in sorted {
        let (object, line) = crate::observe::event_line(e);
        let _ = writeln!(out, "{}  {object}  {line}", event_key(e));
    }
    out
}

pub fn timeline_text(entries: &[Entry], phases: &[Phase]) -> String {
    let mut lines: Vec<(u64, String)> = entries.iter().map(|e| (e.at_ms, format!("{:?}  {}  {}", e.source, e.object, e.message))).collect();
    lines.extend(phases.iter().flat_map(traffic_lines));
    // Stable: at the same millisecond the cluster's line stays before the traffic it explains.
    lines.sort_by_key(|(at, _)| *at);
    let mut out = String::new();
    for (at, line) in lines {
        let t = k8s_openapi::jiff::Timestamp::from_millisecond(at as i64).map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(out, "{t}  {line}");
    }
    out
}

/// A phase's traffic on the events' clock: its start and end, one line per second (sent, ok,
/// failed, p99), and each failure cluster where it began, so that a failure reads next to the
/// Kubernetes event that caused it.
fn traffic_lines(phase: &Phase) -> Vec<(u64, String)> {
    let Some(t) = &phase.traffic else {
        return vec![(phase.started_ms, format!("Phase  {}  started (no traffic)", phase.name)), (phase.ended_ms, format!("Phase  {}  ended", phase.name))];
    };
    let mut out = vec![(
        phase.started_ms,
        format!("Phase  {}  traffic started: {} load, {:.0} req/s planned, to {}", phase.name, t.mode, t.planned_rps, t.url),
    )];
    for b in &t.timeline {
        let p99 = b.p99_ms.map(|p| format!("{p:.1} ms")).unwrap_or_else(|| "-".into());
        out.push((
            phase.started_ms + (b.t_s * 1000.0) as u64,
            format!("Traffic  {}  +{:.0}s: sent {}, ok {}, failed {}, p99 {p99}", phase.name, b.t_s, b.sent, b.ok, b.failed),
        ));
    }
    for c in &phase.failure_clusters {
        let kinds: Vec<String> = c.kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let backend = c.backend.as_deref().map(|b| format!(", backend {b}")).unwrap_or_default();
        out.push((c.at_ms, format!("Failures  {}  {} failed ({}) at {:.1}-{:.1}s{backend}", phase.name, c.count, kinds.join(", "), c.from_s, c.to_s)));
    }
    out.push((
        phase.ended_ms,
        format!("Phase  {}  traffic ended: {} sent, {} ok, {} failed, p99 {:.1} ms", phase.name, t.sent, t.ok, t.failed, t.latency_ms.p99),
    ));
    out
}

/// The parts of `kubectl describe pod` that explain a failure: phase, node, conditions,
/// container states with their last termination, and the Pod's events.
pub fn describe_pod(pod: &Pod, events: &[Event]) -> String {
    let mut out = String::new();
    let status = pod.status.clone().unwrap_or_default();
    let _ = writeln!(out, "Name:    {}", pod.metadata.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "Node:    {}", pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("<none>"));
    let _ = writeln!(out, "Phase:   {}", status.phase.as_deref().unwrap_or(""));
    if let Some(ts) = &pod.metadata.deletion_timestamp {
        let _ = writeln!(out, "Terminating since {}", ts.0);
    }
    let _ = writeln!(out, "Conditions:");
    for c in status.conditions.iter().flatten() {
        let _ = writeln!(out, "  {:<16} {}  {} {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""));
    }
    let _ = writeln!(out, "Containers:");
    for cs in status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten()) {
        let state = cs.state.as_ref().map(|s| {
            if let Some(w) = &s.waiting {
                format!("Waiting ({}) {}", w.reason.as_deref().unwrap_or(""), w.message.as_deref().unwrap_or(""))
            } else if let Some(t) = &s.terminated {
                format!("Terminated ({}, exit {})", t.reason.as_deref().unwrap_or(""), t.exit_code)
            } else {
                "Running".to_string()
            }
        });
        let _ = writeln!(out, "  {:<16} ready={} restarts={} {}", cs.name, cs.ready, cs.restart_count, state.unwrap_or_default());
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let _ = writeln!(out, "  {:<16} last terminated: {} exit {} {}", "", t.reason.as_deref().unwrap_or(""), t.exit_code, t.message.as_deref().unwrap_or(""));
        }
    }
    let _ = writeln!(out, "Events:");
    let own: Vec<Event> = crate::wait::pods::events_of(pod, events).into_iter().cloned().collect();
    out.push_str(&events_text(&own));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unschedulable_pod_is_described_with_the_scheduler_reason() {
        let pod: Pod = crate::samples::load("pod-unschedulable.json");
        let events: Vec<Event> = crate::samples::load_list("events-failedscheduling.json");
        let text = describe_pod(&pod, &events);
        assert!(text.contains("PodScheduled") && text.contains("Unschedulable"), "{text}");
        assert!(text.contains("FailedScheduling") && text.contains("Insufficient cpu"), "{text}");
    }

    /// phpdemo's rollout-undo on the 2026-12-06 lab cluster (tests-data, from its run.json): the
    /// 502s must read in timeline.txt beside the EndpointSlice change that explains them, with
    /// the per-second traffic around them, all on one clock.
    #[test]
    fn the_timeline_puts_traffic_and_failures_beside_the_events() {
        let v: crate::checks::Verdict =
            serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests-data/verdict-phpdemo-rollout-undo-502.json")).unwrap()).unwrap();
        let phase = &v.phases[0];
        let text = timeline_text(&phase.events, &v.phases);
        let lines: Vec<&str> = text.lines().collect();
        let times: Vec<k8s_openapi::jiff::Timestamp> = lines.iter().map(|l| l.split("  ").next().unwrap().parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
        let buckets = phase.traffic.as_ref().unwrap().timeline.len();
        assert_eq!(lines.iter().filter(|l| l.contains("  Traffic  ")).count(), buckets, "one line per second of traffic");
        let failures = lines.iter().position(|l| l.contains("  Failures  ") && l.contains("6 failed (502 x6)")).expect(&text);
        assert!(lines[failures].contains("backend phpdemo-84ccfb5657-4twvv"), "{}", lines[failures]);
        let terminating = lines.iter().position(|l| l.contains("phpdemo-84ccfb5657-4twvv terminating, not serving")).expect(&text);
        assert!(terminating.abs_diff(failures) < 25, "the failures read near the EndpointSlice change:\n{}", lines[failures.min(terminating)..=failures.max(terminating)].join("\n"));
        let failed_in = |l: &&str| l.split("failed ").nth(1).and_then(|n| n.split(',').next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let failed: u64 = lines.iter().filter(|l| l.contains("  Traffic  ")).map(failed_in).sum();
        assert_eq!(failed, 6, "the seconds with failures show them:\n{text}");
        assert!(lines.first().unwrap().contains("Pod/") || lines.first().unwrap().contains("Phase"), "{text}");
        assert!(lines.iter().any(|l| l.contains("  Phase  ") && l.contains("traffic ended: 195 sent")), "{text}");
    }

    #[test]
    fn events_are_ordered_by_time_value_not_text() {
        let events: Vec<Event> = crate::samples::load_list("events-rollout.json");
        let text = events_text(&events);
        let times: Vec<k8s_openapi::jiff::Timestamp> = text.lines().map(|l| l.split("  ").next().unwrap().parse().unwrap()).collect();
        assert_eq!(times.len(), events.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
        // Derived: two of them with eventTimes of different fractional lengths (jiff prints
        // ".5", not ".500000"), where text order and time order disagree.
        let mut a = crate::samples::value("events-rollout.json")["items"][0].clone();
        let mut b = a.clone();
        a["eventTime"] = "2026-11-22T00:06:03.535699Z".into();
        b["eventTime"] = "2026-11-22T00:06:03.500000Z".into();
        b["metadata"]["name"] = "earlier".into();
        let text = events_text(&[crate::samples::from_value(a), crate::samples::from_value(b)]);
        assert!(text.starts_with("2026-11-22T00:06:03.5Z"), "{text}");
    }

    #[test]
    fn a_crashing_container_shows_its_last_exit() {
        let pod: Pod = crate::samples::load("pod-crashloopbackoff.json");
        let text = describe_pod(&pod, &[]);
        assert!(text.contains("CrashLoopBackOff") && text.contains("last terminated"), "{text}");
    }
}
