//! JUnit XML for CI viewers: one testsuite per stack, one testcase per check and variant (the
//! good stack, and the negative control, which passes when the check *caught* it).
//!
//! The output stays inside Jenkins' junit-10 schema (the strictest of the common readers; the
//! xunit plugin validates against it): no testcase properties, no timestamps on the root.

use super::schema::RunReport;
use super::text;
use crate::checks::{CheckResult, Outcome, Verdict};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write as _;
use std::time::Duration;

pub fn junit(report: &RunReport) -> Report {
    let mut out = Report::new("seaworthy");
    let mut total_ms = 0u64;
    for stack in report.stack_names() {
        let mut suite = TestSuite::new(stack.as_str());
        suite.add_property(Property::new("seaworthy_version", report.seaworthy_version.as_str()));
        if let Some(c) = &report.cluster {
            suite.add_property(Property::new("cluster_provider", c.provider.as_str()));
            suite.add_property(Property::new("cluster_context", c.context.as_str()));
            suite.add_property(Property::new("kubernetes_version", c.version.as_str()));
            suite.add_property(Property::new("nodes", c.nodes.to_string()));
        }
        let mut suite_ms = 0u64;
        for r in report.results.iter().filter(|r| r.stack == stack) {
            suite.add_test_case(case(r, &r.good));
            suite_ms += phases_ms(&r.good);
            if let Some((variant, v)) = &r.negative {
                suite.add_test_case(case_negative(r, variant, v));
                suite_ms += phases_ms(v);
            }
        }
        suite.set_time(Duration::from_millis(suite_ms));
        total_ms += suite_ms;
        out.add_test_suite(suite);
    }
    out.set_time(Duration::from_millis(total_ms));
    out
}

/// The XML text. quick-junit writes a `skipped` count on `<testsuites>`, which junit-10 does not
/// declare (so Jenkins' xunit plugin rejects the file); the per-suite counts carry it instead.
pub fn junit_xml(report: &RunReport) -> anyhow::Result<String> {
    let xml = junit(report).to_string()?;
    Ok(drop_root_skipped(&xml))
}

fn drop_root_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else { return xml.to_string() };
    let end = start + xml[start..].find('>').unwrap_or(0);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else { return xml.to_string() };
    let close = at + " skipped=\"".len() + tag[at + " skipped=\"".len()..].find('"').unwrap_or(0) + 1;
    format!("{}{}{}", &xml[..start + at], &tag[close..], &xml[end..])
}

fn phases_ms(v: &Verdict) -> u64 {
    v.phases.iter().map(|p| p.ended_ms.saturating_sub(p.started_ms)).sum()
}

/// What a person reading the CI page wants under the verdict: the numbers and the evidence.
fn details(v: &Verdict) -> String {
    let mut o = String::new();
    if !v.metrics.is_empty() {
        let m: Vec<String> = v.metrics.iter().map(|(k, x)| format!("{k}={}", text::num(*x))).collect();
        let _ = writeln!(o, "metrics: {}", m.join(" "));
    }
    for p in &v.phases {
        let _ = writeln!(o, "phase {}: {}", p.name, text::phase_line(p));
        for c in &p.failure_clusters {
            let _ = writeln!(o, "  {}", text::cluster_line(c));
        }
    }
    if let Some(e) = &v.evidence {
        let _ = writeln!(o, "evidence: {}", e.display());
    }
    o
}

fn case(r: &CheckResult, v: &Verdict) -> TestCase {
    let status = match v.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Skipped => skipped(&v.reason),
        Outcome::Fail => failure(&v.reason, "check failed", v),
    };
    let out = (v.outcome == Outcome::Pass).then(|| format!("passed: {}\n{}", v.reason, details(v)));
    finish(TestCase::new(r.check.as_str(), status), r, v, out)
}

fn case_negative(r: &CheckResult, variant: &str, v: &Verdict) -> TestCase {
    let status = match v.outcome {
        // The check said the broken stack is broken, for the reason the control exists to show.
        Outcome::Fail if v.caught() => TestCaseStatus::success(),
        Outcome::Fail => failure(&format!("negative control {variant} was not caught: {}", v.reason), "negative control not caught", v),
        Outcome::Skipped => skipped(&v.reason),
        Outcome::Pass => failure(
            &format!("negative control {variant} was not caught: the check passed a broken stack ({})", v.reason),
            "negative control not caught",
            v,
        ),
    };
    let out = v.caught().then(|| format!("caught: {}\n{}", v.reason, details(v)));
    let name = format!("{} [negative control: {variant}]", r.check);
    finish(TestCase::new(name.as_str(), status), r, v, out)
}

fn skipped(reason: &str) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(reason);
    s
}

fn failure(message: &str, ty: &str, v: &Verdict) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_message(message);
    s.set_type(ty);
    s.set_description(format!("{message}\n{}", details(v)));
    s
}

fn finish(mut case: TestCase, r: &CheckResult, v: &Verdict, out: Option<String>) -> TestCase {
    case.set_classname(r.stack.as_str());
    case.set_time(Duration::from_millis(phases_ms(v)));
    let mut out = out.unwrap_or_default();
    // GitLab and the Jenkins attachments plugin turn this line into a link to the evidence.
    if let Some(e) = &v.evidence {
        let _ = writeln!(out, "[[ATTACHMENT|{}]]", e.display());
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_root_skipped_count_goes() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites name=\"s\" tests=\"2\" skipped=\"1\" failures=\"0\" errors=\"0\">\n<testsuite name=\"a\" tests=\"2\" skipped=\"1\"/>";
        assert_eq!(
            drop_root_skipped(xml),
            "<?xml version=\"1.0\"?>\n<testsuites name=\"s\" tests=\"2\" failures=\"0\" errors=\"0\">\n<testsuite name=\"a\" tests=\"2\" skipped=\"1\"/>"
        );
    }
}
