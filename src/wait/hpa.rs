//! HorizontalPodAutoscaler (autoscaling/v2) judgements.
//!
//! The HPA controller explains itself in three conditions: AbleToScale (can it read/write the
//! scale subresource, or is it in a stabilization window), ScalingActive (can it compute a
//! replica count from the metrics at all) and ScalingLimited (is the wanted count clamped by
//! min/max). A wait that only watches `currentReplicas` would time out silently on an HPA that
//! has no metrics; these functions say why.

use std::fmt;

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
};

use super::{Progress, name_of};

/// ScalingActive=False messages that will not change without a change to the objects: the
/// target's Pods lack the resource request the metric is a percentage of.
const PERMANENT_METRIC_FAILURES: &[&str] = &["missing request for"];

/// ScalingActive=False reasons that stop scaling until someone changes the target.
const PERMANENT_INACTIVE_REASONS: &[&str] = &[
    "ScalingDisabled",
    "InvalidSelector",
    "InvalidMetricSourceType",
];

fn condition<'a>(
    hpa: &'a HorizontalPodAutoscaler,
    type_: &str,
) -> Option<&'a HorizontalPodAutoscalerCondition> {
    hpa.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

fn describe(c: &HorizontalPodAutoscalerCondition) -> String {
    let mut s = format!("{}={}", c.type_, c.status);
    match (
        c.reason.as_deref(),
        c.message.as_deref().filter(|m| !m.is_empty()),
    ) {
        (Some(r), Some(m)) => s.push_str(&format!(" ({r}: {m})")),
        (Some(r), None) => s.push_str(&format!(" ({r})")),
        (None, Some(m)) => s.push_str(&format!(" ({m})")),
        (None, None) => {}
    }
    s
}

/// The HPA's state in one line: replicas, bounds and its three conditions.
pub fn explain(hpa: &HorizontalPodAutoscaler) -> String {
    let name = name_of(&hpa.metadata);
    let (min, max) = bounds(hpa);
    let status = hpa.status.clone().unwrap_or_default();
    let mut parts = vec![format!(
        "hpa {name}: current {} / desired {} replicas (min {min}, max {max})",
        status.current_replicas.unwrap_or(0),
        status.desired_replicas
    )];
    for t in ["AbleToScale", "ScalingActive", "ScalingLimited"] {
        if let Some(c) = condition(hpa, t) {
            parts.push(describe(c));
        }
    }
    if status.current_metrics.as_ref().is_none_or(Vec::is_empty) {
        parts.push("no current metrics".to_string());
    }
    parts.join("; ")
}

fn bounds(hpa: &HorizontalPodAutoscaler) -> (i32, i32) {
    let spec = hpa.spec.clone().unwrap_or_default();
    (spec.min_replicas.unwrap_or(1), spec.max_replicas)
}

/// Is the HPA unable to compute a replica count in a way that will not fix itself? Returns the
/// condition text. A FailedGetResourceMetric right after creation ("no metrics returned") is
/// normal while metrics-server has not scraped the new Pods yet, so only known-permanent causes
/// count.
pub fn metrics_failure(hpa: &HorizontalPodAutoscaler) -> Option<String> {
    let c = condition(hpa, "ScalingActive").filter(|c| c.status == "False")?;
    let reason = c.reason.as_deref().unwrap_or("");
    let message = c.message.as_deref().unwrap_or("");
    let permanent = PERMANENT_INACTIVE_REASONS.contains(&reason)
        || PERMANENT_METRIC_FAILURES
            .iter()
            .any(|m| message.contains(m));
    permanent.then(|| describe(c))
}

/// What replica count to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaTarget {
    AtLeast(i32),
    AtMost(i32),
    Exactly(i32),
}

impl ReplicaTarget {
    fn holds(self, n: i32) -> bool {
        match self {
            ReplicaTarget::AtLeast(w) => n >= w,
            ReplicaTarget::AtMost(w) => n <= w,
            ReplicaTarget::Exactly(w) => n == w,
        }
    }
}

impl fmt::Display for ReplicaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaTarget::AtLeast(w) => write!(f, "at least {w}"),
            ReplicaTarget::AtMost(w) => write!(f, "at most {w}"),
            ReplicaTarget::Exactly(w) => write!(f, "exactly {w}"),
        }
    }
}

/// Has the HPA's `status.currentReplicas` reached the target? Fails at once when the target lies
/// outside minReplicas..maxReplicas (the HPA will clamp, ScalingLimited) or when the HPA cannot
/// compute a replica count for a permanent reason (e.g. no cpu request on the target's Pods).
pub fn hpa_replicas(hpa: &HorizontalPodAutoscaler, target: ReplicaTarget) -> Progress {
    let (min, max) = bounds(hpa);
    let unreachable = match target {
        ReplicaTarget::AtLeast(w) => w > max,
        ReplicaTarget::AtMost(w) => w < min,
        ReplicaTarget::Exactly(w) => w > max || w < min,
    };
    if unreachable {
        return Progress::Failed(format!(
            "{target} replicas is outside min {min} / max {max}: {}",
            explain(hpa)
        ));
    }
    let current = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    if target.holds(current) {
        return Progress::Done;
    }
    if let Some(why) = metrics_failure(hpa) {
        return Progress::Failed(format!(
            "hpa {} cannot scale: {why}",
            name_of(&hpa.metadata)
        ));
    }
    Progress::Waiting(format!("want {target} replicas: {}", explain(hpa)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, value};

    #[test]
    fn scaled_hpa_reaches_three_and_explains_scaling_limited() {
        let hpa: HorizontalPodAutoscaler = load("hpa-scaling.json");
        assert_eq!(
            hpa_replicas(&hpa, ReplicaTarget::AtLeast(3)),
            Progress::Done
        );
        assert_eq!(
            hpa_replicas(&hpa, ReplicaTarget::Exactly(3)),
            Progress::Done
        );
        let e = explain(&hpa);
        assert!(
            e.contains("current 3 / desired 3 replicas (min 1, max 3)"),
            "{e}"
        );
        assert!(e.contains("ScalingLimited=True (TooManyReplicas: the desired replica count is more than the maximum replica count)"), "{e}");
        assert!(!e.contains("no current metrics"), "{e}");
        // Asking for more than maxReplicas can never pass.
        let p = hpa_replicas(&hpa, ReplicaTarget::AtLeast(4));
        assert!(
            p.is_failed() && p.reason().contains("outside min 1 / max 3"),
            "{p}"
        );
        // Waiting to scale back down names the limiting condition.
        let p = hpa_replicas(&hpa, ReplicaTarget::AtMost(1));
        assert!(
            p.is_waiting() && p.reason().contains("TooManyReplicas"),
            "{p}"
        );
    }

    #[test]
    fn hpa_without_cpu_request_fails_fast_with_the_controller_message() {
        let hpa: HorizontalPodAutoscaler = load("hpa-no-metrics.json");
        let e = explain(&hpa);
        assert!(e.contains("current 1 / desired 0 replicas"), "{e}");
        assert!(e.contains("no current metrics"), "{e}");
        let p = hpa_replicas(&hpa, ReplicaTarget::AtLeast(2));
        assert!(p.is_failed(), "{p}");
        assert!(p.reason().contains("ScalingActive=False (FailedGetResourceMetric: the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu)"), "{p}");
        // Its one replica already satisfies "at most 1".
        assert_eq!(hpa_replicas(&hpa, ReplicaTarget::AtMost(1)), Progress::Done);
    }

    #[test]
    fn metrics_not_yet_available_keeps_waiting() {
        // Derived: the same condition with the message metrics-server gives before its first
        // scrape of new Pods, which clears up by itself.
        let mut v = value("hpa-no-metrics.json");
        v["status"]["conditions"][1]["message"] = "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API".into();
        let hpa: HorizontalPodAutoscaler = from_value(v);
        assert_eq!(metrics_failure(&hpa), None);
        assert!(hpa_replicas(&hpa, ReplicaTarget::AtLeast(2)).is_waiting());
    }
}
