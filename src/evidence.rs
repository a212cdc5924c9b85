//! On any failure, what a person needs to understand it without the cluster: the namespace's
//! events (sorted), each Pod's status and a description, container logs (current and
//! previous), the workload objects as YAML, and the check's own timeline. Secrets are never
//! saved: only their names appear, in the objects that refer to them.

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
pub async fn collect(client: &kube::Client, ns: &str, dir: &Path, timeline: &[Entry]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut errors = String::new();

    let events = Api::<Event>::namespaced(client.clone(), ns).list(&ListParams::default()).await;
    match events {
        Ok(list) => std::fs::write(dir.join("events.txt"), events_text(&list.items))?,
        Err(e) => writeln!(errors, "events: {e}")?,
    }
    std::fs::write(dir.join("timeline.txt"), timeline_text(timeline))?;

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

pub fn timeline_text(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let t = k8s_openapi::jiff::Timestamp::from_millisecond(e.at_ms as i64).map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(out, "{t}  {:?}  {}  {}", e.source, e.object, e.message);
    }
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
