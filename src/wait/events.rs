//! Finding the event that explains an object's state (core/v1 Events).
//!
//! Events come in two styles through core/v1: the old one (kubelet, controllers) with
//! `lastTimestamp`/`firstTimestamp`/`count`, and events.k8s.io/v1 ones (the scheduler's) with only
//! `eventTime` filled in. Ordering has to read both.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;

/// When the event last happened: `lastTimestamp`, else `eventTime` (events.k8s.io/v1 style, or
/// the last of a series), else `firstTimestamp`, else when the Event object was created.
pub fn event_time(e: &Event) -> Option<Timestamp> {
    let series_last = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0);
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(series_last)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Does the event concern this object? By UID when both sides have one (a Pod recreated under the
/// same name is a different object), else by kind and name.
pub fn is_about(e: &Event, kind: &str, name: &str, uid: Option<&str>) -> bool {
    let o = &e.involved_object;
    if o.kind.as_deref() != Some(kind) || o.name.as_deref() != Some(name) {
        return false;
    }
    match (uid, o.uid.as_deref()) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    }
}

/// The most recent event about the object, optionally only with the given reason.
pub fn latest_about<'a>(
    events: &'a [Event],
    kind: &str,
    name: &str,
    uid: Option<&str>,
    reason: Option<&str>,
) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| is_about(e, kind, name, uid))
        .filter(|e| reason.is_none_or(|r| e.reason.as_deref() == Some(r)))
        .max_by_key(|e| recency(e))
}

/// Orders events by time; ties (events within the same second) go to the higher
/// resourceVersion, i.e. the one written last.
fn recency(e: &Event) -> (Option<Timestamp>, Option<u64>) {
    let rv = e.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
    (event_time(e), rv)
}

/// The most recent Warning event about the object.
pub fn latest_warning_about<'a>(
    events: &'a [Event],
    kind: &str,
    name: &str,
    uid: Option<&str>,
) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && is_about(e, kind, name, uid))
        .max_by_key(|e| recency(e))
}

/// "Reason: message" for a timeout or failure message.
pub fn describe(e: &Event) -> String {
    format!(
        "{}: {}",
        e.reason.as_deref().unwrap_or("?"),
        e.message.as_deref().unwrap_or("").trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::load_list;

    #[test]
    fn scheduler_event_is_found_by_event_time_alone() {
        let events: Vec<Event> = load_list("events-failedscheduling.json");
        let e = &events[0];
        // events.k8s.io/v1 style: no lastTimestamp, no count.
        assert!(e.last_timestamp.is_none() && e.count.is_none());
        assert_eq!(
            event_time(e).unwrap().to_string(),
            "2026-11-22T00:08:04.523224Z"
        );
        let uid = Some("b4834e2b-7b36-4b21-90fe-c1684351c112");
        let found = latest_about(
            &events,
            "Pod",
            "unschedulable",
            uid,
            Some("FailedScheduling"),
        )
        .unwrap();
        assert_eq!(
            describe(found),
            "FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu."
        );
        // A pod recreated under the same name is another object.
        assert!(latest_about(&events, "Pod", "unschedulable", Some("other-uid"), None).is_none());
    }

    #[test]
    fn latest_event_is_chosen_by_time_not_list_order() {
        let mut events: Vec<Event> = load_list("events-rollout.json");
        events.reverse();
        let e = latest_about(
            &events,
            "Deployment",
            "web",
            None,
            Some("ScalingReplicaSet"),
        )
        .unwrap();
        assert_eq!(
            e.message.as_deref(),
            Some("Scaled down replica set web-7d79bd4fb7 to 0")
        );
        // Two ScalingReplicaSet events share 00:06:07; the one written later wins the tie.
        let upto: Vec<Event> = events
            .iter()
            .filter(|e| e.message.as_deref() != Some("Scaled down replica set web-7d79bd4fb7 to 0"))
            .cloned()
            .collect();
        let e = latest_about(&upto, "Deployment", "web", None, Some("ScalingReplicaSet")).unwrap();
        let rvs: Vec<&str> = upto
            .iter()
            .filter(|x| {
                x.reason.as_deref() == Some("ScalingReplicaSet") && event_time(x) == event_time(e)
            })
            .map(|x| x.metadata.resource_version.as_deref().unwrap())
            .collect();
        assert_eq!(rvs.len(), 2, "the sample has a same-second pair");
        let max = rvs.iter().map(|v| v.parse::<u64>().unwrap()).max().unwrap();
        assert_eq!(
            e.metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            max
        );
    }

    #[test]
    fn warnings_are_per_object() {
        let events: Vec<Event> = load_list("events-rollout.json");
        let w = latest_warning_about(&events, "Pod", "web-7d79bd4fb7-cnwcp", None).unwrap();
        assert_eq!(w.reason.as_deref(), Some("FailedKillPod"));
        // A pod of the new ReplicaSet had only Normal events.
        assert!(latest_warning_about(&events, "Pod", "web-57d8bfc944-t4s7f", None).is_none());
    }
}
