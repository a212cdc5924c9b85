//! What a check concludes, with the evidence to believe it. These types are the run result's
//! core; the reports (JSON, JUnit, HTML) are views of them.

use crate::observe::Entry;
use crate::traffic::Summary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Could not run here (no metrics API, no cluster, ...): never counted as a pass.
    Skipped,
}

/// Whose failure a Fail is. A check that cannot be carried out (the apply failed, the stack never
/// got ready, an exec or a wait failed) has said nothing about the stack: counting that as a
/// caught negative control would let a broken harness pass every control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The check judged the stack and found it wanting.
    #[default]
    Check,
    /// The harness could not carry the check out.
    Harness,
    /// On a negative control: the check failed, but not the way the control exists to show.
    WrongReason,
}

impl FailureKind {
    fn is_check(&self) -> bool {
        *self == FailureKind::Check
    }
}

/// A failed request placed in time and next to what the cluster was doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureCluster {
    /// Wall clock (ms since the epoch) of the first failure: the same clock as the events'.
    pub at_ms: u64,
    /// Seconds after the phase's traffic started.
    pub from_s: f64,
    pub to_s: f64,
    pub count: u64,
    /// Failure kinds and HTTP statuses -> count.
    pub kinds: BTreeMap<String, u64>,
    /// The backend that answered (for HTTP errors) or was last seen before the failures.
    pub backend: Option<String>,
    /// The Kubernetes events within a few seconds of the failures.
    pub nearby: Vec<Entry>,
}

/// One stretch of traffic and cluster activity (e.g. "rollout v1 -> v2").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// Wall-clock start of the phase's traffic, ms since the epoch: joins traffic and events.
    pub started_ms: u64,
    pub ended_ms: u64,
    pub traffic: Option<Summary>,
    pub events: Vec<Entry>,
    pub failure_clusters: Vec<FailureCluster>,
}

/// The verdict on one variant (the good stack, or a negative control) of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// One or two sentences a person can act on.
    pub reason: String,
    pub phases: Vec<Phase>,
    /// Numbers `report compare` tracks: rollout_s, time_to_scale_s, unavailable_max, ...
    pub metrics: BTreeMap<String, f64>,
    /// Where the evidence was saved (events, Pod descriptions, logs), on failure.
    pub evidence: Option<PathBuf>,
    /// For a Fail: the check's judgement, or not (absent in the JSON when it is the check's).
    #[serde(default, skip_serializing_if = "FailureKind::is_check")]
    pub failure: FailureKind,
}

impl Verdict {
    pub fn pass(reason: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Pass, reason: reason.into(), phases: vec![], metrics: BTreeMap::new(), evidence: None, failure: FailureKind::Check }
    }

    pub fn fail(reason: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Fail, reason: reason.into(), phases: vec![], metrics: BTreeMap::new(), evidence: None, failure: FailureKind::Check }
    }

    pub fn skipped(reason: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Skipped, reason: reason.into(), phases: vec![], metrics: BTreeMap::new(), evidence: None, failure: FailureKind::Check }
    }

    /// A failure of the harness, not of the stack: the reason says so in every view of it.
    pub fn harness_error(reason: impl Into<String>) -> Verdict {
        Verdict { failure: FailureKind::Harness, ..Verdict::fail(format!("harness error: {}", reason.into())) }
    }

    /// On a negative control: the check failed the stack for the reason the control exists to show.
    pub fn caught(&self) -> bool {
        self.outcome == Outcome::Fail && self.failure == FailureKind::Check
    }

    pub fn with_phase(mut self, phase: Phase) -> Verdict {
        self.phases.push(phase);
        self
    }

    pub fn with_metric(mut self, name: &str, value: f64) -> Verdict {
        self.metrics.insert(name.to_string(), value);
        self
    }
}

/// A check on a stack: the good variant's verdict and, where STACKS.md gives one, the negative
/// control's. The check passes only if the good variant passes and the broken one is caught.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub stack: String,
    pub check: String,
    pub good: Verdict,
    /// The negative-control variant's name and the check's verdict on it (which must be Fail).
    pub negative: Option<(String, Verdict)>,
}

impl CheckResult {
    /// The combined outcome and why.
    pub fn outcome(&self) -> (Outcome, String) {
        match (&self.good.outcome, &self.negative) {
            (Outcome::Skipped, _) => (Outcome::Skipped, self.good.reason.clone()),
            (Outcome::Fail, _) => (Outcome::Fail, self.good.reason.clone()),
            (Outcome::Pass, None) => (Outcome::Pass, self.good.reason.clone()),
            (Outcome::Pass, Some((variant, v))) => match (v.outcome, v.failure) {
                (Outcome::Fail, FailureKind::Check) => (Outcome::Pass, format!("{}; negative control {variant} caught: {}", self.good.reason, v.reason)),
                (Outcome::Fail, FailureKind::Harness) => {
                    (Outcome::Fail, format!("negative control {variant} could not be judged, so the check is unproven: {}", v.reason))
                }
                (Outcome::Fail, FailureKind::WrongReason) => (Outcome::Fail, format!("negative control {variant} was not caught: {}", v.reason)),
                (Outcome::Pass, _) => (
                    Outcome::Fail,
                    format!("harness failure: negative control {variant} passed, so this check cannot tell a broken stack ({})", v.reason),
                ),
                (Outcome::Skipped, _) => (Outcome::Skipped, format!("negative control {variant} skipped: {}", v.reason)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_control_that_passes_fails_the_check() {
        let r = CheckResult { stack: "s".into(), check: "c".into(), good: Verdict::pass("ok"), negative: Some(("broken".into(), Verdict::pass("also ok"))) };
        let (outcome, reason) = r.outcome();
        assert_eq!(outcome, Outcome::Fail);
        assert!(reason.starts_with("harness failure"), "{reason}");
        let r = CheckResult { negative: Some(("broken".into(), Verdict::fail("3 failed requests"))), ..r };
        assert_eq!(r.outcome().0, Outcome::Pass);
        let r = CheckResult { good: Verdict::skipped("no metrics API"), ..r };
        assert_eq!(r.outcome().0, Outcome::Skipped);
    }

    #[test]
    fn a_negative_control_that_fails_for_another_reason_is_not_caught() {
        let good = Verdict::pass("ok");
        let timeout = Verdict::harness_error("wordpress did not roll out within 300s");
        assert!(!timeout.caught());
        let r = CheckResult { stack: "s".into(), check: "c".into(), good, negative: Some(("broken".into(), timeout)) };
        let (outcome, reason) = r.outcome();
        assert_eq!(outcome, Outcome::Fail);
        assert!(reason.contains("could not be judged") && reason.contains("harness error: wordpress did not roll out"), "{reason}");
        let wrong = Verdict { failure: FailureKind::WrongReason, ..Verdict::fail("GET / answered 500") };
        let r = CheckResult { negative: Some(("broken".into(), wrong)), ..r };
        assert_eq!(r.outcome().0, Outcome::Fail);
    }

    #[test]
    fn the_failure_kind_is_in_the_json_only_when_it_is_not_the_checks() {
        let v = serde_json::to_value(Verdict::fail("lost")).unwrap();
        assert!(v.get("failure").is_none(), "{v}");
        let h = serde_json::to_value(Verdict::harness_error("apply failed")).unwrap();
        assert_eq!(h["failure"], "harness");
        let back: Verdict = serde_json::from_value(h).unwrap();
        assert_eq!(back.failure, FailureKind::Harness);
    }
}
