//! What changed between two versions of an object, in words. Pure: unit-tested on real objects.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn scheduled(p: &Pod) -> bool {
    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
}

/// The changes worth a line on the timeline, from `old` (None: first sight) to `new`.
pub fn pod_changes(old: Option<&Pod>, new: &Pod) -> Vec<String> {
    let mut out = Vec::new();
    let node = new.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    match old {
        None => out.push(format!("created{}", if node.is_empty() { String::new() } else { format!(" on {node}") })),
        Some(old) => {
            if !scheduled(old) && scheduled(new) {
                out.push(format!("scheduled on {node}"));
            }
        }
    }
    let was_ready = old.is_some_and(pod_ready);
    let is_ready = pod_ready(new);
    if is_ready && !was_ready {
        out.push("ready".into());
    }
    if was_ready && !is_ready && new.metadata.deletion_timestamp.is_none() {
        out.push("not ready".into());
    }
    if new.metadata.deletion_timestamp.is_some() && old.is_none_or(|o| o.metadata.deletion_timestamp.is_none()) {
        let grace = new.metadata.deletion_grace_period_seconds.map(|g| format!(" (grace {g}s)")).unwrap_or_default();
        out.push(format!("terminating{grace}"));
    }
    let restarts = |p: &Pod| -> i32 {
        p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|cs| cs.iter().map(|c| c.restart_count).sum()).unwrap_or(0)
    };
    if let Some(old) = old
        && restarts(new) > restarts(old)
    {
        out.push(format!("container restarted ({} restarts)", restarts(new)));
    }
    out
}

pub fn pod_deleted(p: &Pod) -> String {
    format!("deleted (uid {})", p.metadata.uid.as_deref().unwrap_or("?"))
}

/// Per target Pod: (ready, serving, terminating) as the EndpointSlice says.
fn members(slice: &EndpointSlice) -> BTreeMap<String, (bool, bool, bool)> {
    slice
        .endpoints
        .iter()
        .map(|e| {
            let name = e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_else(|| e.addresses.join(","));
            let c = e.conditions.as_ref();
            // discovery.k8s.io/v1: a nil `ready` means ready; `serving` defaults to `ready`.
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            (name, (ready, serving, terminating))
        })
        .collect()
}

fn describe_member((ready, serving, terminating): (bool, bool, bool)) -> String {
    match (ready, serving, terminating) {
        (true, _, _) => "ready".into(),
        (false, true, true) => "terminating, still serving".into(),
        (false, false, true) => "terminating, not serving".into(),
        (false, _, false) => "not ready".into(),
    }
}

/// Membership changes of a Service's EndpointSlice: which Pod joined, left, or changed state.
pub fn slice_changes(old: Option<&EndpointSlice>, new: &EndpointSlice) -> Vec<String> {
    let before = old.map(members).unwrap_or_default();
    let after = members(new);
    let mut out = Vec::new();
    for (pod, state) in &after {
        match before.get(pod) {
            None => out.push(format!("{pod} added ({})", describe_member(*state))),
            Some(prev) if prev != state => out.push(format!("{pod} {}", describe_member(*state))),
            Some(_) => {}
        }
    }
    for pod in before.keys().filter(|p| !after.contains_key(*p)) {
        out.push(format!("{pod} removed"));
    }
    out
}

pub fn hpa_changes(old: Option<&HorizontalPodAutoscaler>, new: &HorizontalPodAutoscaler) -> Vec<String> {
    let replicas = |h: &HorizontalPodAutoscaler| h.status.as_ref().map(|s| (s.current_replicas.unwrap_or(0), s.desired_replicas)).unwrap_or((0, 0));
    let (cur, want) = replicas(new);
    match old.map(replicas) {
        None => vec![format!("replicas {cur} (desired {want})")],
        Some((c0, w0)) if (c0, w0) != (cur, want) => {
            let mut out = Vec::new();
            if w0 != want {
                out.push(format!("desired replicas {w0} -> {want}"));
            }
            if c0 != cur {
                out.push(format!("current replicas {c0} -> {cur}"));
            }
            out
        }
        Some(_) => vec![],
    }
}

/// An Event as one line: `Warning FailedScheduling: 0/1 nodes are available: ...`.
pub fn event_line(e: &Event) -> (String, String) {
    let object = format!("{}/{}", e.involved_object.kind.as_deref().unwrap_or("?"), e.involved_object.name.as_deref().unwrap_or("?"));
    let count = e.count.filter(|c| *c > 1).map(|c| format!(" (x{c})")).unwrap_or_default();
    let line = format!(
        "{} {}: {}{count}",
        e.type_.as_deref().unwrap_or("Normal"),
        e.reason.as_deref().unwrap_or(""),
        e.message.as_deref().unwrap_or("").trim()
    );
    (object, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::samples::load as sample;

    #[test]
    fn a_terminating_pod_is_a_line_once() {
        let pod: Pod = sample("pod-terminating.json");
        let mut before = pod.clone();
        before.metadata.deletion_timestamp = None;
        before.metadata.deletion_grace_period_seconds = None;
        let lines = pod_changes(Some(&before), &pod);
        assert!(lines.iter().any(|l| l.starts_with("terminating")), "{lines:?}");
        assert!(pod_changes(Some(&pod), &pod).is_empty(), "no change, no line");
        assert!(pod_changes(None, &pod)[0].starts_with("created"));
    }

    #[test]
    fn endpoint_slice_membership_follows_readiness_and_termination() {
        let all: EndpointSlice = sample("endpointslice-all-ready.json");
        let one: EndpointSlice = sample("endpointslice-one-not-ready.json");
        let lines = slice_changes(Some(&all), &one);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("not ready"), "{lines:?}");
        let back = slice_changes(Some(&one), &all);
        assert_eq!(back.len(), 1);
        assert!(back[0].ends_with(" ready"), "{back:?}");
        let term: EndpointSlice = sample("endpointslice-terminating.json");
        let lines = slice_changes(Some(&all), &term);
        assert!(lines.iter().any(|l| l.contains("terminating")), "{lines:?}");
        assert!(slice_changes(Some(&all), &all).is_empty());
    }

    #[test]
    fn hpa_replica_changes() {
        let scaling: HorizontalPodAutoscaler = sample("hpa-scaling.json");
        let mut before = scaling.clone();
        if let Some(s) = before.status.as_mut() {
            s.desired_replicas = 1;
            s.current_replicas = Some(1);
        }
        let lines = hpa_changes(Some(&before), &scaling);
        assert!(lines.iter().any(|l| l.starts_with("desired replicas 1 -> ")), "{lines:?}");
    }

    #[test]
    fn failed_scheduling_event_reads_as_the_scheduler_said() {
        let list: serde_json::Value = sample("events-failedscheduling.json");
        let first = list.get("items").and_then(|i| i.get(0)).cloned().unwrap_or(list);
        let event: Event = serde_json::from_value(first).unwrap();
        let (object, line) = event_line(&event);
        assert!(object.starts_with("Pod/"), "{object}");
        assert!(line.starts_with("Warning FailedScheduling: ") && line.contains("Insufficient cpu"), "{line}");
    }
}
