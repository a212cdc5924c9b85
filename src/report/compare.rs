//! `report compare`: the current run against a baseline, per stack / check / phase, for rollout
//! regressions. Only the good variant of each check is compared (a negative control is meant to
//! fail; its numbers say nothing about the stack), plus each check's combined outcome.

use super::schema::RunReport;
use super::text;
use crate::checks::{CheckResult, Outcome, Phase};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Bumped whenever a field of the `--json` output changes meaning or disappears.
pub const COMPARISON_SCHEMA_VERSION: u32 = 1;

/// When a change counts. A latency or duration change must exceed both its relative and its
/// absolute threshold: 0.3 -> 0.6 ms is +100% but nobody's rollout got worse. The defaults aim
/// at what a rollout regression looks like (failed requests, stalls of tens of ms and more),
/// not at run-to-run noise on a shared CI machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// More failed requests than this over the baseline is a regression (fewer: an improvement).
    pub failed_requests: u64,
    pub latency_pct: f64,
    pub latency_ms: f64,
    /// Achieved request rate, relative change.
    pub rate_pct: f64,
    /// rollout_s and time_to_scale_s.
    pub duration_pct: f64,
    pub duration_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { failed_requests: 0, latency_pct: 50.0, latency_ms: 25.0, rate_pct: 5.0, duration_pct: 25.0, duration_s: 2.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Regressed,
    Improved,
    Same,
    /// Present on one side only, or skipped: listed, never counted as same.
    NotCompared,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Regressed => "REGRESSED",
            Status::Improved => "improved",
            Status::Same => "same",
            Status::NotCompared => "not compared",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub stack: String,
    pub check: String,
    /// None for check-level rows (outcome, rollout_s, time_to_scale_s).
    pub phase: Option<String>,
    /// outcome | failed_requests | latency_p99_ms | latency_p999_ms | achieved_rps | rollout_s | time_to_scale_s
    pub measure: String,
    pub baseline: Option<Value>,
    pub current: Option<Value>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub schema_version: u32,
    pub baseline: String,
    pub current: String,
    pub thresholds: Thresholds,
    pub rows: Vec<Row>,
    /// Checks or phases present on one side only (with `--only-common`), and similar remarks.
    pub notes: Vec<String>,
    pub regressed: usize,
    pub improved: usize,
    pub same: usize,
}

/// Why two reports cannot be compared; the message names what differs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot compare: {0}")]
pub struct Incomparable(pub String);

fn key(r: &CheckResult) -> (String, String) {
    (r.stack.clone(), r.check.clone())
}

pub fn compare(
    baseline: &RunReport,
    current: &RunReport,
    names: (&str, &str),
    t: &Thresholds,
    only_common: bool,
) -> Result<Comparison, Incomparable> {
    if baseline.schema_version != current.schema_version {
        return Err(Incomparable(format!(
            "the baseline {} has report schema version {}, the current {} has {}",
            names.0, baseline.schema_version, names.1, current.schema_version
        )));
    }
    let base_keys: Vec<_> = baseline.results.iter().map(key).collect();
    let cur_keys: Vec<_> = current.results.iter().map(key).collect();
    let only_base: Vec<String> = base_keys.iter().filter(|k| !cur_keys.contains(k)).map(|(s, c)| format!("{s}/{c}")).collect();
    let only_cur: Vec<String> = cur_keys.iter().filter(|k| !base_keys.contains(k)).map(|(s, c)| format!("{s}/{c}")).collect();
    let mut notes = Vec::new();
    if !only_base.is_empty() || !only_cur.is_empty() {
        let mut what = String::new();
        if !only_base.is_empty() {
            let _ = write!(what, "only in the baseline: {}", only_base.join(", "));
        }
        if !only_cur.is_empty() {
            let _ = write!(what, "{}only in the current run: {}", if what.is_empty() { "" } else { "; " }, only_cur.join(", "));
        }
        let common = base_keys.iter().filter(|k| cur_keys.contains(k)).count();
        if !only_common || common == 0 {
            return Err(Incomparable(format!(
                "the two reports ran different checks ({what}){}",
                if common == 0 { String::new() } else { format!("; {common} checks are in both: pass --only-common to compare those") }
            )));
        }
        notes.push(format!("not compared, {what}"));
    }

    let mut rows = Vec::new();
    for cur in &current.results {
        let Some(base) = baseline.results.iter().find(|b| key(b) == key(cur)) else { continue };
        compare_check(base, cur, t, &mut rows, &mut notes)?;
    }
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    Ok(Comparison {
        schema_version: COMPARISON_SCHEMA_VERSION,
        baseline: names.0.to_string(),
        current: names.1.to_string(),
        thresholds: *t,
        regressed: count(Status::Regressed),
        improved: count(Status::Improved),
        same: count(Status::Same),
        rows,
        notes,
    })
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Skipped => "skipped",
    }
}

fn compare_check(base: &CheckResult, cur: &CheckResult, t: &Thresholds, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), Incomparable> {
    let row = |phase: Option<&str>, measure: &str, b: Option<Value>, c: Option<Value>, status: Status| Row {
        stack: cur.stack.clone(),
        check: cur.check.clone(),
        phase: phase.map(str::to_string),
        measure: measure.to_string(),
        baseline: b,
        current: c,
        status,
    };
    let (bo, co) = (base.outcome().0, cur.outcome().0);
    let status = match (bo, co) {
        (b, c) if b == c => Status::Same,
        (_, Outcome::Fail) => Status::Regressed,
        (Outcome::Fail, Outcome::Pass) => Status::Improved,
        // A check that stopped running lost its coverage: never let that pass quietly.
        (Outcome::Pass, Outcome::Skipped) => Status::Regressed,
        (Outcome::Skipped, Outcome::Pass) => Status::Improved,
        _ => Status::NotCompared,
    };
    rows.push(row(None, "outcome", Some(Value::Text(outcome_word(bo).into())), Some(Value::Text(outcome_word(co).into())), status));

    for m in ["rollout_s", "time_to_scale_s"] {
        match (base.good.metrics.get(m), cur.good.metrics.get(m)) {
            (Some(&b), Some(&c)) => rows.push(row(None, m, Some(Value::Number(b)), Some(Value::Number(c)), higher_is_worse(b, c, t.duration_pct, t.duration_s))),
            (None, None) => {}
            (b, c) => rows.push(row(None, m, b.map(|v| Value::Number(*v)), c.map(|v| Value::Number(*v)), Status::NotCompared)),
        }
    }

    for cp in &cur.good.phases {
        let Some(bp) = base.good.phases.iter().find(|p| p.name == cp.name) else {
            notes.push(format!("{}/{}: phase \"{}\" is only in the current run", cur.stack, cur.check, cp.name));
            continue;
        };
        compare_phase(bp, cp, t, &mut |measure, b, c, s| rows.push(row(Some(&cp.name), measure, b, c, s)))
            .map_err(|e| Incomparable(format!("{}/{} phase \"{}\": {}", cur.stack, cur.check, cp.name, e)))?;
    }
    for bp in base.good.phases.iter().filter(|b| !cur.good.phases.iter().any(|c| c.name == b.name)) {
        notes.push(format!("{}/{}: phase \"{}\" is only in the baseline", cur.stack, cur.check, bp.name));
    }
    Ok(())
}

/// Receives one compared measure: name, baseline, current, verdict.
type Push<'a> = &'a mut dyn FnMut(&str, Option<Value>, Option<Value>, Status);

fn compare_phase(b: &Phase, c: &Phase, t: &Thresholds, push: Push) -> Result<(), String> {
    let (bs, cs) = match (&b.traffic, &c.traffic) {
        (Some(b), Some(c)) => (b, c),
        (None, None) => return Ok(()),
        (b, c) => {
            let n = |s: Option<&crate::traffic::Summary>| s.map(|s| Value::Number(s.failed as f64));
            push("failed_requests", n(b.as_ref()), n(c.as_ref()), Status::NotCompared);
            return Ok(());
        }
    };
    if bs.schema_version != cs.schema_version {
        return Err(format!("traffic summary schema version {} in the baseline, {} in the current run", bs.schema_version, cs.schema_version));
    }
    let num = |x: f64| Some(Value::Number(x));
    let (fb, fc) = (bs.failed, cs.failed);
    let failed = if fc > fb + t.failed_requests {
        Status::Regressed
    } else if fb > fc + t.failed_requests {
        Status::Improved
    } else {
        Status::Same
    };
    push("failed_requests", num(fb as f64), num(fc as f64), failed);
    push("latency_p99_ms", num(bs.latency_ms.p99), num(cs.latency_ms.p99), higher_is_worse(bs.latency_ms.p99, cs.latency_ms.p99, t.latency_pct, t.latency_ms));
    push("latency_p999_ms", num(bs.latency_ms.p999), num(cs.latency_ms.p999), higher_is_worse(bs.latency_ms.p999, cs.latency_ms.p999, t.latency_pct, t.latency_ms));
    let (rb, rc) = (bs.achieved_rps, cs.achieved_rps);
    let band = rb * t.rate_pct / 100.0;
    let rate = if rc < rb - band {
        Status::Regressed
    } else if rc > rb + band {
        Status::Improved
    } else {
        Status::Same
    };
    push("achieved_rps", num(rb), num(rc), rate);
    Ok(())
}

fn higher_is_worse(b: f64, c: f64, pct: f64, abs: f64) -> Status {
    let d = c - b;
    let limit = (b.abs() * pct / 100.0).max(abs);
    if d > limit {
        Status::Regressed
    } else if -d > limit {
        Status::Improved
    } else {
        Status::Same
    }
}

fn show(measure: &str, v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::Text(s)) => s.clone(),
        Some(Value::Number(x)) => match measure {
            "failed_requests" => format!("{x:.0}"),
            "achieved_rps" => format!("{x:.1}/s"),
            m if m.ends_with("_ms") => text::ms(*x),
            m if m.ends_with("_s") => format!("{x:.1} s"),
            _ => text::num(*x),
        },
    }
}

fn change(r: &Row) -> String {
    match (&r.baseline, &r.current) {
        (Some(Value::Number(b)), Some(Value::Number(c))) => {
            let d = c - b;
            let abs = match r.measure.as_str() {
                "failed_requests" => format!("{d:+.0}"),
                "achieved_rps" => format!("{d:+.1}/s"),
                m if m.ends_with("_ms") => format!("{d:+.2} ms"),
                _ => format!("{d:+.1} s"),
            };
            if *b != 0.0 { format!("{abs} ({:+.0}%)", d / b * 100.0) } else { abs }
        }
        _ => String::new(),
    }
}

impl Comparison {
    /// The human table, one row per measure, then the notes and the tally.
    pub fn table(&self) -> String {
        let header = ["stack", "check", "phase", "measure", "baseline", "current", "change", "verdict"].map(String::from);
        let mut lines: Vec<[String; 8]> = vec![header];
        for r in &self.rows {
            lines.push([
                r.stack.clone(),
                r.check.clone(),
                r.phase.clone().unwrap_or_else(|| "-".into()),
                r.measure.clone(),
                show(&r.measure, &r.baseline),
                show(&r.measure, &r.current),
                change(r),
                r.status.word().into(),
            ]);
        }
        let mut widths = [0usize; 8];
        for l in &lines {
            for (w, c) in widths.iter_mut().zip(l) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut o = format!("baseline {}\ncurrent  {}\n\n", self.baseline, self.current);
        for l in &lines {
            let cells: Vec<String> = l.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(o, "{}", cells.join("  ").trim_end());
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        let _ = writeln!(o, "\n{} regressed, {} improved, {} same", self.regressed, self.improved, self.same);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Verdict;

    fn report(results: Vec<CheckResult>) -> RunReport {
        RunReport::new(0, 1, None, results)
    }

    fn check(name: &str, v: Verdict) -> CheckResult {
        CheckResult { stack: "s".into(), check: name.into(), good: v, negative: None }
    }

    #[test]
    fn durations_and_outcomes_decide_by_their_thresholds() {
        let t = Thresholds::default();
        let b = report(vec![check("rollout", Verdict::pass("ok").with_metric("rollout_s", 20.0)), check("hpa", Verdict::pass("ok").with_metric("time_to_scale_s", 60.0))]);
        let c = report(vec![check("rollout", Verdict::pass("ok").with_metric("rollout_s", 21.0)), check("hpa", Verdict::fail("slow").with_metric("time_to_scale_s", 90.0))]);
        let cmp = compare(&b, &c, ("b", "c"), &t, false).unwrap();
        let status = |check: &str, m: &str| cmp.rows.iter().find(|r| r.check == check && r.measure == m).unwrap().status;
        assert_eq!(status("rollout", "rollout_s"), Status::Same, "+1 s is under both thresholds");
        assert_eq!(status("rollout", "outcome"), Status::Same);
        assert_eq!(status("hpa", "time_to_scale_s"), Status::Regressed);
        assert_eq!(status("hpa", "outcome"), Status::Regressed);
        assert_eq!(cmp.regressed, 2);
        let back = compare(&c, &b, ("c", "b"), &t, false).unwrap();
        assert_eq!(back.improved, 2);
        assert_eq!(back.regressed, 0);
    }

    #[test]
    fn different_checks_are_refused_unless_asked_for_the_common_ones() {
        let t = Thresholds::default();
        let b = report(vec![check("a", Verdict::pass("ok")), check("b", Verdict::pass("ok"))]);
        let c = report(vec![check("a", Verdict::pass("ok")), check("c", Verdict::pass("ok"))]);
        let err = compare(&b, &c, ("b.json", "c.json"), &t, false).unwrap_err().to_string();
        assert!(err.contains("only in the baseline: s/b") && err.contains("only in the current run: s/c") && err.contains("--only-common"), "{err}");
        let cmp = compare(&b, &c, ("b.json", "c.json"), &t, true).unwrap();
        assert_eq!(cmp.rows.len(), 1);
        assert_eq!(cmp.notes.len(), 1);
        let none = report(vec![check("z", Verdict::pass("ok"))]);
        assert!(compare(&b, &none, ("b", "n"), &t, true).is_err(), "nothing in common is never comparable");
        let mut other = b.clone();
        other.schema_version = 9;
        let err = compare(&b, &other, ("b.json", "o.json"), &t, false).unwrap_err().to_string();
        assert!(err.contains("schema version 1") && err.contains("has 9"), "{err}");
    }

    #[test]
    fn a_check_that_stops_running_is_a_regression() {
        let t = Thresholds::default();
        let b = report(vec![check("a", Verdict::pass("ok"))]);
        let c = report(vec![check("a", Verdict::skipped("no metrics API"))]);
        assert_eq!(compare(&b, &c, ("b", "c"), &t, false).unwrap().regressed, 1);
    }
}
