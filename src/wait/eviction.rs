//! Eviction outcomes (POST pods/<name>/eviction) and the PodDisruptionBudget state behind them.
//!
//! The API server answers an allowed eviction with **201** and a v1 `Status` (not an Eviction),
//! and one a PodDisruptionBudget forbids with **429** TooManyRequests and a `DisruptionBudget`
//! cause. API Priority and Fairness also answers 429 TooManyRequests when it sheds load, without
//! that cause: that one says nothing about the budget and is worth retrying.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::Status;
use kube::core::response::StatusSummary;

use super::{Progress, name_of};

/// What came of one eviction request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionOutcome {
    /// Accepted: the Pod now has a deletionTimestamp and terminates gracefully.
    Evicted,
    /// Refused because it would violate a PodDisruptionBudget.
    BlockedByBudget {
        /// The API server's message ("Cannot evict pod as it would violate the pod's disruption budget.").
        message: String,
        /// The budget's own words ("The disruption budget web needs 2 healthy pods and has 2 currently").
        cause: String,
    },
    /// Throttled or otherwise asked to come back later, not because of a budget.
    RetryLater {
        message: String,
        retry_after_seconds: Option<u32>,
    },
    /// 404: the Pod is already gone.
    PodGone,
    /// Anything else (403, 500 "more than one PodDisruptionBudget", ...).
    Rejected {
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer from the API server (connection, TLS, ...).
    NoResponse(String),
}

/// Classify the Status an eviction POST returned, whatever its HTTP code.
pub fn classify_eviction(status: &Status) -> EvictionOutcome {
    let code = status.code;
    let success = matches!(status.status, Some(StatusSummary::Success));
    if (200..300).contains(&code) || (code == 0 && success) {
        return EvictionOutcome::Evicted;
    }
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or(&[]);
    if code == 429 {
        if let Some(c) = causes.iter().find(|c| c.reason == "DisruptionBudget") {
            return EvictionOutcome::BlockedByBudget {
                message: status.message.clone(),
                cause: c.message.clone(),
            };
        }
        let retry = status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0);
        return EvictionOutcome::RetryLater {
            message: status.message.clone(),
            retry_after_seconds: retry,
        };
    }
    if code == 404 {
        return EvictionOutcome::PodGone;
    }
    EvictionOutcome::Rejected {
        code,
        reason: status.reason.clone(),
        message: status.message.clone(),
    }
}

/// Classify what `Api::<Pod>::evict` returned: the Status on success, `Error::Api(Status)` for any
/// non-2xx answer.
pub fn classify_eviction_result(result: &Result<Status, kube::Error>) -> EvictionOutcome {
    match result {
        Ok(status) => classify_eviction(status),
        Err(kube::Error::Api(status)) => classify_eviction(status),
        Err(e) => EvictionOutcome::NoResponse(e.to_string()),
    }
}

/// Does the PodDisruptionBudget allow one more voluntary disruption right now? Only once its
/// status describes the current spec (`observedGeneration >= generation`).
pub fn pdb_allows_disruption(pdb: &PodDisruptionBudget) -> Progress {
    let name = name_of(&pdb.metadata);
    let Some(status) = pdb.status.as_ref() else {
        return Progress::Waiting(format!("pdb {name} has no status yet"));
    };
    let generation = pdb.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if generation > observed {
        return Progress::Waiting(format!(
            "pdb {name}: generation {generation} not observed yet (observed {observed})"
        ));
    }
    if status.disruptions_allowed > 0 {
        return Progress::Done;
    }
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| format!(", DisruptionAllowed={} ({})", c.status, c.reason))
        .unwrap_or_default();
    Progress::Waiting(format!(
        "pdb {name}: 0 disruptions allowed ({} healthy of {} expected, {} required{condition})",
        status.current_healthy, status.expected_pods, status.desired_healthy
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, value};

    #[test]
    fn allowed_eviction_is_a_201_status() {
        let s: Status = load("eviction-allowed-response.json");
        assert_eq!(s.code, 201);
        assert_eq!(classify_eviction(&s), EvictionOutcome::Evicted);
        assert_eq!(classify_eviction_result(&Ok(s)), EvictionOutcome::Evicted);
    }

    #[test]
    fn blocked_eviction_names_the_budget() {
        let s: Status = load("eviction-blocked-429.json");
        let want = EvictionOutcome::BlockedByBudget {
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
        };
        assert_eq!(classify_eviction(&s), want);
        // As kube's client hands it over: the body parsed into Error::Api.
        assert_eq!(
            classify_eviction_result(&Err(kube::Error::Api(Box::new(s)))),
            want
        );
    }

    #[test]
    fn throttling_429_without_budget_cause_is_retry_later() {
        // Derived: the blocked body without its DisruptionBudget cause, as API Priority and
        // Fairness answers when it sheds load.
        let mut v = value("eviction-blocked-429.json");
        v["details"] = serde_json::json!({"retryAfterSeconds": 1});
        v["message"] = "Too many requests, please try again later.".into();
        let s: Status = from_value(v);
        assert_eq!(
            classify_eviction(&s),
            EvictionOutcome::RetryLater {
                message: "Too many requests, please try again later.".into(),
                retry_after_seconds: Some(1)
            }
        );
    }

    #[test]
    fn pdb_before_and_after_eviction() {
        let before: PodDisruptionBudget = load("pdb.json");
        assert_eq!(pdb_allows_disruption(&before), Progress::Done);
        let after: PodDisruptionBudget = load("pdb-after-eviction.json");
        assert_eq!(
            pdb_allows_disruption(&after),
            Progress::Waiting("pdb web: 0 disruptions allowed (2 healthy of 3 expected, 2 required, DisruptionAllowed=False (InsufficientPods))".into())
        );
        // Derived: a spec change the disruption controller has not seen yet.
        let mut v = value("pdb.json");
        v["metadata"]["generation"] = 2.into();
        assert!(
            pdb_allows_disruption(&from_value(v))
                .reason()
                .contains("not observed yet")
        );
    }
}
