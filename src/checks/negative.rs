//! What catching a negative control looks like, per check. Any failure is not enough: a control
//! that dies on a rollout timeout, a crash loop or a failed exec has shown nothing about the
//! check, and a check that only ever "catches" its control that way cannot tell a broken stack.
//! So each check names the finding its control exists to produce (a metric of its verdict, or
//! the app's own error in its reason), and the control counts as caught only when it shows.

use super::verdict::{FailureKind, Outcome, Verdict};

#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// The verdict's metric is above `value`.
    MetricAbove { metric: &'static str, value: f64, means: String },
    /// The verdict's metric is above another of its metrics (e.g. the bound the check computed
    /// from the stack, such as the Pods a disruption budget lets go).
    MetricAboveMetric { metric: &'static str, other: &'static str, means: String },
    /// The verdict's metric is at most another of its metrics.
    MetricAtMostMetric { metric: &'static str, other: &'static str, means: String },
    /// The verdict's metric is at most `value`.
    MetricAtMost { metric: &'static str, value: f64, means: String },
    /// The verdict's reason quotes this text (e.g. the app's own error message).
    ReasonContains { text: String, means: String },
}

impl Expectation {
    pub fn means(&self) -> &str {
        match self {
            Expectation::MetricAbove { means, .. }
            | Expectation::MetricAboveMetric { means, .. }
            | Expectation::MetricAtMostMetric { means, .. }
            | Expectation::MetricAtMost { means, .. }
            | Expectation::ReasonContains { means, .. } => means,
        }
    }

    /// Whether a failing verdict shows this finding; why not, if it does not.
    pub fn shown_by(&self, v: &Verdict) -> Result<(), String> {
        let metric = |name: &str| v.metrics.get(name).copied().ok_or_else(|| format!("its verdict has no {name} metric"));
        match self {
            Expectation::MetricAbove { metric: m, value, .. } => {
                let x = metric(m)?;
                if x > *value { Ok(()) } else { Err(format!("{m} = {x}, not above {value}")) }
            }
            Expectation::MetricAboveMetric { metric: m, other, .. } => {
                let (x, y) = (metric(m)?, metric(other)?);
                if x > y { Ok(()) } else { Err(format!("{m} = {x}, not above {other} = {y}")) }
            }
            Expectation::MetricAtMostMetric { metric: m, other, .. } => {
                let (x, y) = (metric(m)?, metric(other)?);
                if x <= y { Ok(()) } else { Err(format!("{m} = {x}, above {other} = {y}")) }
            }
            Expectation::MetricAtMost { metric: m, value, .. } => {
                let x = metric(m)?;
                if x <= *value { Ok(()) } else { Err(format!("{m} = {x}, above {value}")) }
            }
            Expectation::ReasonContains { text, .. } => {
                if v.reason.contains(text.as_str()) { Ok(()) } else { Err(format!("its reason does not quote {text:?}")) }
            }
        }
    }
}

fn int_param(params: &toml::Table, key: &str, check: &str) -> Result<f64, String> {
    match params.get(key) {
        Some(toml::Value::Integer(i)) => Ok(*i as f64),
        _ => Err(format!("check {check} needs the integer param {key:?} in stack.toml to tell its negative control caught")),
    }
}

/// What `check`'s verdict on its negative control must show, from the check's params.
pub fn expectation(check: &str, params: &toml::Table) -> Result<Expectation, String> {
    let above = |metric: &'static str, means: &str| Ok(Expectation::MetricAbove { metric, value: 0.0, means: means.to_string() });
    match check {
        "config-override" => above("baked_in_served", "the image's baked-in config was served"),
        "endpoints-follow-readiness" => above("answered_after_unready", "the unready Pod kept answering requests"),
        "rollout-zero-5xx" => above("failed", "requests failed during the rollout"),
        "stale-dns-proxy" => above("failed", "requests failed after the Pod IPs changed"),
        "persistence" => above("data_lost", "the data written before the Pods were replaced was lost"),
        // The bound is the check's own: what the stack's PDB resolves to (minAvailable or
        // maxUnavailable, integer or percentage), which no param needs to repeat.
        "pdb-drain" => Ok(Expectation::MetricAboveMetric {
            metric: "unavailable_max",
            other: "allowed_unavailable",
            means: "more Pods were unavailable at once than the budget allows".into(),
        }),
        // `min` when stack.toml states it, else the live HPA's minReplicas the check reports.
        "hpa-scale" => match params.get("min") {
            Some(_) => Ok(Expectation::MetricAtMost {
                metric: "max_replicas",
                value: int_param(params, "min", check)?,
                means: "the HPA never scaled above its minimum".into(),
            }),
            None => Ok(Expectation::MetricAtMostMetric {
                metric: "max_replicas",
                other: "min_replicas",
                means: "the HPA never scaled above its minimum".into(),
            }),
        },
        "service-discovery" => match params.get("expect_error").and_then(|v| v.as_str()) {
            Some(text) => Ok(Expectation::ReasonContains { text: text.to_string(), means: format!("the app's own error ({text:?}) was reported") }),
            None => Err("check service-discovery needs `expect_error` (the app's error for an unreachable database) in stack.toml".into()),
        },
        other => Err(format!("check {other} has no negative control to catch")),
    }
}

/// The verdict on a negative control, with whether it was caught: a Fail of the check that does
/// not show the expected finding is marked [`FailureKind::WrongReason`]; a harness error stays one.
pub fn judge_negative(expect: &Expectation, mut v: Verdict) -> Verdict {
    if v.outcome != Outcome::Fail || v.failure != FailureKind::Check {
        return v;
    }
    if let Err(why) = expect.shown_by(&v) {
        v.failure = FailureKind::WrongReason;
        v.reason = format!("the check failed, but not because {} ({why}): {}", expect.means(), v.reason);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Stack;

    fn params(stack: &str, check: &str) -> toml::Table {
        Stack::find(stack).unwrap().spec.checks.iter().find(|c| c.name == check).unwrap().params.clone()
    }

    #[test]
    fn every_shipped_negative_control_says_what_catching_it_looks_like() {
        for name in ["counter", "flask-sts", "myblog", "phpdemo", "sms-web", "wordpress"] {
            let stack = Stack::find(name).unwrap();
            for c in stack.spec.checks.iter().filter(|c| c.negative.is_some()) {
                expectation(&c.name, &c.params).unwrap_or_else(|e| panic!("{name} {}: {e}", c.name));
            }
        }
    }

    #[test]
    fn service_discovery_is_caught_only_with_the_apps_error() {
        let e = expectation("service-discovery", &params("wordpress", "service-discovery")).unwrap();
        let right = Verdict::fail(
            "GET /wp-admin/install.php through the entry point answered 500 from wordpress-6b9f-q \"Error establishing a database connection\" (3 of 3 requests failed)",
        );
        assert!(judge_negative(&e, right).caught());
        // A crash loop fails the check too, and says nothing of the app's error.
        let wrong = judge_negative(&e, Verdict::fail("wordpress never became ready, so no page could be served: CrashLoopBackOff"));
        assert!(!wrong.caught());
        assert_eq!(wrong.failure, FailureKind::WrongReason);
        assert!(wrong.reason.contains("Error establishing a database connection"), "{}", wrong.reason);
    }

    #[test]
    fn a_harness_error_is_never_caught_and_stays_one() {
        let e = expectation("rollout-zero-5xx", &toml::Table::new()).unwrap();
        let v = judge_negative(&e, Verdict::harness_error("could not apply phpdemo/rollout-zero-5xx/abrupt-stop: port 30080 already allocated"));
        assert!(!v.caught());
        assert_eq!(v.failure, FailureKind::Harness);
    }

    #[test]
    fn metrics_decide_for_the_timing_checks() {
        let e = expectation("rollout-zero-5xx", &toml::Table::new()).unwrap();
        assert!(judge_negative(&e, Verdict::fail("12 requests failed").with_metric("failed", 12.0)).caught());
        // Failed, but every request succeeded: e.g. the rollout timed out.
        let timeout = judge_negative(&e, Verdict::fail("the rollout did not complete").with_metric("failed", 0.0));
        assert!(!timeout.caught(), "{}", timeout.reason);
        assert!(!judge_negative(&e, Verdict::fail("no metrics at all")).caught());
        // A pass stays a pass (reported as "not caught" by CheckResult).
        assert_eq!(judge_negative(&e, Verdict::pass("0 failed")).outcome, Outcome::Pass);

        let pdb = expectation("pdb-drain", &params("wordpress", "pdb-drain")).unwrap();
        let drained = |unavailable: f64, allowed: f64| Verdict::fail("x").with_metric("unavailable_max", unavailable).with_metric("allowed_unavailable", allowed);
        assert!(judge_negative(&pdb, drained(3.0, 1.0)).caught());
        assert!(!judge_negative(&pdb, drained(1.0, 1.0)).caught());
        // A budget of minAvailable 1 of 3 lets two go: two at once is within it.
        assert!(!judge_negative(&pdb, drained(2.0, 2.0)).caught());
        // No params needed: a stack of one's own with minAvailable has no max_unavailable.
        assert!(judge_negative(&expectation("pdb-drain", &toml::Table::new()).unwrap(), drained(3.0, 2.0)).caught());

        let hpa = expectation("hpa-scale", &params("wordpress", "hpa-scale")).unwrap();
        assert!(judge_negative(&hpa, Verdict::fail("did not scale").with_metric("max_replicas", 3.0)).caught());
        assert!(!judge_negative(&hpa, Verdict::fail("requests failed while scaling").with_metric("max_replicas", 5.0)).caught());
    }

    #[test]
    fn a_check_without_a_negative_control_has_no_expectation() {
        assert!(expectation("insufficient-resources", &toml::Table::new()).is_err());
        // Without `min`, the live HPA's minimum the verdict reports is the bound.
        let mut p = params("wordpress", "hpa-scale");
        p.remove("min");
        let hpa = expectation("hpa-scale", &p).unwrap();
        let scaled = |max: f64| Verdict::fail("x").with_metric("max_replicas", max).with_metric("min_replicas", 3.0);
        assert!(judge_negative(&hpa, scaled(3.0)).caught());
        assert!(!judge_negative(&hpa, scaled(5.0)).caught());
        p.insert("min".into(), "three".into());
        assert!(expectation("hpa-scale", &p).unwrap_err().contains("\"min\""));
    }
}
