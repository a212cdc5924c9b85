//! `report compare`: the current run against a baseline, per stack / check / phase, for rollout
//! regressions. Only the good variant of each check is compared (a negative control is meant to
//! fail; its numbers say nothing about the stack), plus each check's combined outcome.

use super::schema::RunReport;
use super::text;
use crate::checks::{CheckResult, Outcome, Phase};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Bumped whenever a field of the `--json` output changes meaning or disappears.
/// 2: one latency floor per percentile (`latency_p99_ms`, `latency_p999_ms` instead of
/// `latency_ms`), `closed_rate_pct`, and a row's `reason`.
pub const COMPARISON_SCHEMA_VERSION: u32 = 2;

/// When a change counts. A latency or duration change must exceed both its relative and its
/// absolute threshold: 0.3 -> 0.6 ms is +100% but nobody's rollout got worse. The defaults aim
/// at what a rollout regression looks like, not at run-to-run noise on a shared CI machine:
/// failed requests; tail latency that grows by a SYN retransmit, a proxy waiting on a Pod that
/// is gone, a cold replacement (hundreds of ms and more). Two identical 3 s runs through nginx on
/// a 2-core machine under a load average of 6 differ by up to ~80 ms at p99 and ~100 ms at p99.9
/// (p99.9 of a few thousand requests is a handful of descheduled ones), hence the floors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// More failed requests than this over the baseline is a regression (fewer: an improvement).
    pub failed_requests: u64,
    /// p99 and p99.9 latency, relative change ...
    pub latency_pct: f64,
    /// ... and the absolute change of p99 that must also be exceeded ...
    pub latency_p99_ms: f64,
    /// ... and of p99.9.
    pub latency_p999_ms: f64,
    /// Open model, when both runs missed their planned rate: relative change of the achieved rate.
    /// (When either held it, `rate_held` decides: the schedule is what an open-model phase promises.)
    pub rate_pct: f64,
    /// Closed model (`--rate max`): relative change of the achieved throughput, or None to leave
    /// it uncompared. It measures the machine as much as the stack, so it is opt-in.
    pub closed_rate_pct: Option<f64>,
    /// rollout_s, undo_s and time_to_scale_s.
    pub duration_pct: f64,
    pub duration_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failed_requests: 0,
            latency_pct: 50.0,
            latency_p99_ms: 100.0,
            latency_p999_ms: 250.0,
            rate_pct: 5.0,
            closed_rate_pct: None,
            duration_pct: 25.0,
            duration_s: 2.0,
        }
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
    /// None for check-level rows (outcome, rollout_s, undo_s, time_to_scale_s).
    pub phase: Option<String>,
    /// outcome | failed_requests | latency_p99_ms | latency_p999_ms | achieved_rps | rollout_s | undo_s | time_to_scale_s
    pub measure: String,
    pub baseline: Option<Value>,
    pub current: Option<Value>,
    pub status: Status,
    /// Why a row is not compared, or what decided it when the numbers alone do not say (the
    /// planned rate held in one run and not the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

    if let Some(n) = cluster_note(baseline, current) {
        notes.push(n);
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

/// Runs on different clusters are still compared (a nightly job's cluster gets upgraded), but
/// the reader should know that a change may be the cluster's.
fn cluster_note(baseline: &RunReport, current: &RunReport) -> Option<String> {
    let show = |c: &Option<super::schema::ClusterSummary>| match c {
        Some(c) => format!("{} Kubernetes {} with {} nodes", c.provider, c.version, c.nodes),
        None => "no cluster".into(),
    };
    let (b, c) = (show(&baseline.cluster), show(&current.cluster));
    (b != c).then(|| format!("the runs were on different clusters (baseline: {b}; current: {c}): a change may be the cluster's"))
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Skipped => "skipped",
    }
}

fn compare_check(base: &CheckResult, cur: &CheckResult, t: &Thresholds, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), Incomparable> {
    let row = |phase: Option<&str>, m: Measure| Row {
        stack: cur.stack.clone(),
        check: cur.check.clone(),
        phase: phase.map(str::to_string),
        measure: m.measure.to_string(),
        baseline: m.baseline,
        current: m.current,
        status: m.status,
        reason: m.reason,
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
    let reason = (status == Status::NotCompared).then(|| "a skipped check and a failed one say nothing about each other".to_string());
    rows.push(row(None, Measure { reason, ..Measure::new("outcome", Some(Value::Text(outcome_word(bo).into())), Some(Value::Text(outcome_word(co).into())), status) }));

    // undo_s: rollout-undo's rolling update back to v1 (its update to v2 is its rollout_s).
    for m in ["rollout_s", "undo_s", "time_to_scale_s"] {
        match (base.good.metrics.get(m), cur.good.metrics.get(m)) {
            (Some(&b), Some(&c)) => rows.push(row(None, Measure::new(m, num(b), num(c), higher_is_worse(b, c, t.duration_pct, t.duration_s)))),
            (None, None) => {}
            (b, c) => rows.push(row(None, Measure::new(m, b.and_then(|v| num(*v)), c.and_then(|v| num(*v)), Status::NotCompared).because(one_side(b.is_some())))),
        }
    }

    for cp in &cur.good.phases {
        let Some(bp) = base.good.phases.iter().find(|p| p.name == cp.name) else {
            notes.push(format!("{}/{}: phase \"{}\" is only in the current run", cur.stack, cur.check, cp.name));
            continue;
        };
        let measures = compare_phase(bp, cp, t).map_err(|e| Incomparable(format!("{}/{} phase \"{}\": {}", cur.stack, cur.check, cp.name, e)))?;
        rows.extend(measures.into_iter().map(|m| row(Some(&cp.name), m)));
    }
    for bp in base.good.phases.iter().filter(|b| !cur.good.phases.iter().any(|c| c.name == b.name)) {
        notes.push(format!("{}/{}: phase \"{}\" is only in the baseline", cur.stack, cur.check, bp.name));
    }
    Ok(())
}

fn num(x: f64) -> Option<Value> {
    Some(Value::Number(x))
}

fn one_side(in_baseline: bool) -> String {
    if in_baseline { "only the baseline has it" } else { "only the current run has it" }.into()
}

/// One compared measure, before it is placed under its stack, check and phase.
struct Measure {
    measure: &'static str,
    baseline: Option<Value>,
    current: Option<Value>,
    status: Status,
    reason: Option<String>,
}

impl Measure {
    fn new(measure: &'static str, baseline: Option<Value>, current: Option<Value>, status: Status) -> Measure {
        Measure { measure, baseline, current, status, reason: None }
    }

    fn because(self, reason: impl Into<String>) -> Measure {
        Measure { reason: Some(reason.into()), ..self }
    }
}

fn compare_phase(b: &Phase, c: &Phase, t: &Thresholds) -> Result<Vec<Measure>, String> {
    let (bs, cs) = match (&b.traffic, &c.traffic) {
        (Some(b), Some(c)) => (b, c),
        (None, None) => return Ok(vec![]),
        (b, c) => {
            let n = |s: Option<&crate::traffic::Summary>| s.and_then(|s| num(s.failed as f64));
            return Ok(vec![Measure::new("failed_requests", n(b.as_ref()), n(c.as_ref()), Status::NotCompared).because(format!("traffic: {}", one_side(b.is_some())))]);
        }
    };
    if bs.schema_version != cs.schema_version {
        return Err(format!(
            "traffic summary schema version {} in the baseline, {} in the current run; re-run the baseline with this seaworthy",
            bs.schema_version, cs.schema_version
        ));
    }
    let (fb, fc) = (bs.failed, cs.failed);
    let failed = if fc > fb + t.failed_requests {
        Status::Regressed
    } else if fb > fc + t.failed_requests {
        Status::Improved
    } else {
        Status::Same
    };
    let mut out = vec![Measure::new("failed_requests", num(fb as f64), num(fc as f64), failed)];
    let (lb, lc) = (&bs.latency_ms, &cs.latency_ms);
    let p99 = Measure::new("latency_p99_ms", num(lb.p99), num(lc.p99), higher_is_worse(lb.p99, lc.p99, t.latency_pct, t.latency_p99_ms));
    let p999 = Measure::new("latency_p999_ms", num(lb.p999), num(lc.p999), higher_is_worse(lb.p999, lc.p999, t.latency_pct, t.latency_p999_ms));
    if bs.mode != cs.mode {
        // Open-model latency counts the wait behind the schedule, closed-model latency cannot:
        // the same stack gives different numbers, so neither latency nor rate says anything.
        let why = format!("load model {} in the baseline, {} in the current run", bs.mode, cs.mode);
        for mut m in [p99, p999, Measure::new("achieved_rps", num(bs.achieved_rps), num(cs.achieved_rps), Status::NotCompared)] {
            m.status = Status::NotCompared;
            out.push(m.because(why.clone()));
        }
        return Ok(out);
    }
    out.extend([p99, p999, compare_rate(bs, cs, t)]);
    Ok(out)
}

/// An open-model phase promises a schedule: whether it was held decides, and the achieved rate
/// only counts when both runs missed it. A closed-model phase's rate is the throughput the
/// machine allowed, compared only when asked for (`closed_rate_pct`).
fn compare_rate(bs: &crate::traffic::Summary, cs: &crate::traffic::Summary, t: &Thresholds) -> Measure {
    let (rb, rc) = (bs.achieved_rps, cs.achieved_rps);
    let m = |status| Measure::new("achieved_rps", num(rb), num(rc), status);
    let relative = |pct: f64| {
        let band = rb * pct / 100.0;
        if rc < rb - band {
            Status::Regressed
        } else if rc > rb + band {
            Status::Improved
        } else {
            Status::Same
        }
    };
    if bs.mode == "closed" {
        return match t.closed_rate_pct {
            Some(pct) => m(relative(pct)),
            None => m(Status::NotCompared).because("closed model (--rate max): the rate is the machine's throughput, not a schedule; pass --closed-rate-pct to compare it"),
        };
    }
    let (pb, pc) = (bs.planned_rps, cs.planned_rps);
    if (pb - pc).abs() > pb.max(pc) * 0.01 {
        return m(Status::NotCompared).because(format!("planned {pb:.1}/s in the baseline, {pc:.1}/s in the current run"));
    }
    match (bs.rate_held, cs.rate_held) {
        (Some(true), Some(false)) => m(Status::Regressed).because(format!("the planned {pc:.1}/s was held in the baseline, not in the current run")),
        (Some(false), Some(true)) => m(Status::Improved).because(format!("the planned {pc:.1}/s is held now, it was not in the baseline")),
        (Some(false), Some(false)) => m(relative(t.rate_pct)).because(format!("neither run held the planned {pc:.1}/s")),
        _ => m(Status::Same),
    }
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
                match &r.reason {
                    Some(why) => format!("{} ({why})", r.status.word()),
                    None => r.status.word().into(),
                },
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
    fn a_slower_rollout_undo_is_judged_by_the_duration_thresholds() {
        let t = Thresholds::default();
        let undo = |undo_s: f64| report(vec![check("rollout-undo", Verdict::pass("ok").with_metric("rollout_s", 13.0).with_metric("undo_s", undo_s))]);
        let row = |b: f64, c: &RunReport, t: &Thresholds| {
            let cmp = compare(&undo(b), c, ("b", "c"), t, false).unwrap();
            assert_eq!(cmp.rows.iter().find(|r| r.measure == "rollout_s").unwrap().status, Status::Same, "only the undo changed");
            cmp.rows.into_iter().find(|r| r.measure == "undo_s").unwrap_or_else(|| panic!("no undo_s row"))
        };
        let status = |b: f64, c: f64| row(b, &undo(c), &t).status;
        assert_eq!(status(13.0, 30.0), Status::Regressed, "+17 s, +131%");
        assert_eq!(status(13.0, 16.0), Status::Same, "+3 s but +23%");
        assert_eq!(status(4.0, 5.9), Status::Same, "+48% but +1.9 s");
        assert_eq!(status(13.0, 16.5), Status::Regressed, "+3.5 s, +27%");
        assert_eq!(status(30.0, 13.0), Status::Improved);
        let loose = Thresholds { duration_pct: 200.0, duration_s: 20.0, ..t };
        assert_eq!(row(13.0, &undo(30.0), &loose).status, Status::Same, "--duration-pct and --duration-s apply to undo_s");
        // An undo that did not complete has no undo_s: that is not a same.
        let unfinished = report(vec![check("rollout-undo", Verdict::fail("the rollout undo did not complete").with_metric("rollout_s", 13.0))]);
        let r = row(13.0, &unfinished, &t);
        assert_eq!((r.status, r.reason.as_deref()), (Status::NotCompared, Some("only the baseline has it")));
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

    /// A load summary as the generator writes it, with the fields the comparison reads set.
    fn traffic(mode: &str, planned_rps: f64, achieved_rps: f64, failed: u64, p99: f64, p999: f64) -> crate::traffic::Summary {
        let pct = |p99: f64, p999: f64| serde_json::json!({"count": 600, "p50": 1.0, "p90": 2.0, "p99": p99, "p999": p999, "max": p999, "mean": 1.5});
        let open = mode == "open";
        serde_json::from_value(serde_json::json!({
            "schema_version": crate::traffic::SCHEMA_VERSION, "url": "http://127.0.0.1:1/", "mode": mode,
            "schedule": if open { serde_json::json!([[0.0, planned_rps], [3.0, planned_rps]]) } else { serde_json::Value::Null },
            "duration_s": 3.0, "elapsed_s": 3.0, "planned": 600, "sent": 600, "completed": 600, "ok": 600 - failed, "failed": failed,
            "retried": 0, "connections_opened": 4, "planned_rps": planned_rps, "achieved_rps": achieved_rps,
            "rate_held": if open { serde_json::json!((achieved_rps - planned_rps).abs() <= planned_rps * 0.01) } else { serde_json::Value::Null },
            "status_codes": {}, "failures": {}, "latency_ms": pct(p99, p999), "service_time_ms": pct(p99, p999), "send_lateness_ms": pct(0.1, 0.2),
            "bucket_s": 1.0, "timeline": [], "backends": [], "versions": [], "record_bytes": 16
        }))
        .unwrap()
    }

    fn with_traffic(s: crate::traffic::Summary) -> RunReport {
        let phase = Phase { name: "load".into(), started_ms: 0, ended_ms: 3000, traffic: Some(s), events: vec![], failure_clusters: vec![] };
        report(vec![check("zero-5xx", Verdict::pass("ok").with_phase(phase))])
    }

    fn row(b: crate::traffic::Summary, c: crate::traffic::Summary, t: &Thresholds, measure: &str) -> Row {
        let cmp = compare(&with_traffic(b), &with_traffic(c), ("b", "c"), t, false).unwrap();
        cmp.rows.into_iter().find(|r| r.measure == measure).unwrap_or_else(|| panic!("no {measure} row"))
    }

    #[test]
    fn latency_must_grow_past_both_its_relative_and_its_absolute_threshold() {
        let t = Thresholds::default();
        let p99 = |b: f64, c: f64| row(traffic("open", 200.0, 200.0, 0, b, 1.0), traffic("open", 200.0, 200.0, 0, c, 1.0), &t, "latency_p99_ms").status;
        assert_eq!(p99(5.0, 80.0), Status::Same, "+1500% but +75 ms: scheduling noise, not a rollout");
        assert_eq!(p99(5.0, 120.0), Status::Regressed);
        assert_eq!(p99(300.0, 420.0), Status::Same, "+120 ms but +40%");
        assert_eq!(p99(300.0, 460.0), Status::Regressed);
        assert_eq!(p99(460.0, 300.0), Status::Same, "-35%: improvements mirror the thresholds");
        assert_eq!(p99(460.0, 200.0), Status::Improved);
        let p999 = |b: f64, c: f64| row(traffic("open", 200.0, 200.0, 0, 1.0, b), traffic("open", 200.0, 200.0, 0, 1.0, c), &t, "latency_p999_ms").status;
        assert_eq!(p999(10.0, 200.0), Status::Same, "p99.9 has the wider floor");
        assert_eq!(p999(10.0, 1010.0), Status::Regressed, "a SYN retransmit");
    }

    #[test]
    fn an_open_model_rate_is_judged_by_its_schedule() {
        let t = Thresholds::default();
        let open = |planned: f64, achieved: f64| traffic("open", planned, achieved, 0, 1.0, 2.0);
        let rate = |pb: f64, ab: f64, pc: f64, ac: f64| row(open(pb, ab), open(pc, ac), &t, "achieved_rps");
        assert_eq!(rate(200.0, 200.0, 200.0, 199.5).status, Status::Same, "both held");
        let lost = rate(200.0, 200.0, 200.0, 190.0);
        assert_eq!(lost.status, Status::Regressed, "{lost:?}");
        assert!(lost.reason.as_deref().unwrap().contains("held in the baseline, not in the current run"), "{lost:?}");
        assert_eq!(rate(200.0, 190.0, 200.0, 200.0).status, Status::Improved);
        assert_eq!(rate(200.0, 150.0, 200.0, 148.0).status, Status::Same, "both missed it by as much");
        assert_eq!(rate(200.0, 150.0, 200.0, 120.0).status, Status::Regressed, "both missed it, the current by 20% more");
        let other = rate(200.0, 200.0, 400.0, 400.0);
        assert_eq!(other.status, Status::NotCompared);
        assert!(other.reason.as_deref().unwrap().contains("planned 200.0/s in the baseline, 400.0/s"), "{other:?}");
    }

    #[test]
    fn a_closed_model_throughput_is_compared_only_when_asked_for() {
        let (b, c) = (traffic("closed", 900.0, 900.0, 0, 1.0, 2.0), traffic("closed", 600.0, 600.0, 0, 1.0, 2.0));
        let r = row(b.clone(), c.clone(), &Thresholds::default(), "achieved_rps");
        assert_eq!(r.status, Status::NotCompared, "-33% throughput on a shared machine is no regression by default");
        assert!(r.reason.as_deref().unwrap().contains("--closed-rate-pct"), "{r:?}");
        let cmp = compare(&with_traffic(b.clone()), &with_traffic(c.clone()), ("b", "c"), &Thresholds::default(), false).unwrap();
        assert_eq!((cmp.regressed, cmp.same), (0, 4), "not compared is never counted as same");
        let t = |pct| Thresholds { closed_rate_pct: Some(pct), ..Thresholds::default() };
        assert_eq!(row(b.clone(), c.clone(), &t(25.0), "achieved_rps").status, Status::Regressed);
        assert_eq!(row(b, c, &t(50.0), "achieved_rps").status, Status::Same);
    }

    #[test]
    fn a_changed_load_model_leaves_latency_and_rate_uncompared() {
        let b = traffic("open", 200.0, 200.0, 0, 5.0, 9.0);
        let c = traffic("closed", 3000.0, 3000.0, 3, 400.0, 900.0);
        let cmp = compare(&with_traffic(b), &with_traffic(c), ("b", "c"), &Thresholds::default(), false).unwrap();
        for m in ["latency_p99_ms", "latency_p999_ms", "achieved_rps"] {
            let r = cmp.rows.iter().find(|r| r.measure == m).unwrap();
            assert_eq!(r.status, Status::NotCompared, "{r:?}");
            assert!(r.reason.as_deref().unwrap().contains("load model open in the baseline, closed in the current run"), "{r:?}");
        }
        assert_eq!(cmp.rows.iter().find(|r| r.measure == "failed_requests").unwrap().status, Status::Regressed, "failures are failures in either model");
        assert!(cmp.table().contains("not compared (load model open"), "{}", cmp.table());
    }

    #[test]
    fn incomparable_traffic_and_clusters_are_named() {
        let t = Thresholds::default();
        let b = with_traffic(traffic("open", 200.0, 200.0, 0, 1.0, 2.0));
        let mut c = b.clone();
        c.results[0].good.phases[0].traffic.as_mut().unwrap().schema_version = 7;
        let err = compare(&b, &c, ("b", "c"), &t, false).unwrap_err().to_string();
        assert!(err.contains("s/zero-5xx phase \"load\"") && err.contains("traffic summary schema version 1 in the baseline, 7 in the current run"), "{err}");
        c.results[0].good.phases[0].traffic = None;
        let r = compare(&b, &c, ("b", "c"), &t, false).unwrap().rows.into_iter().find(|r| r.measure == "failed_requests").unwrap();
        assert_eq!((r.status, r.reason.as_deref()), (Status::NotCompared, Some("traffic: only the baseline has it")));
        let mut k = b.clone();
        k.cluster = Some(crate::report::ClusterSummary {
            provider: "kind".into(),
            context: "kind-x".into(),
            version: "v1.24.17".into(),
            nodes: 3,
            schedulable_nodes: 2,
            metrics_api: true,
            ingress_classes: vec![],
            default_storage_class: None,
        });
        let notes = compare(&b, &k, ("b", "c"), &t, false).unwrap().notes;
        assert_eq!(notes, vec!["the runs were on different clusters (baseline: no cluster; current: kind Kubernetes v1.24.17 with 3 nodes): a change may be the cluster's".to_string()]);
        assert!(compare(&k, &k, ("b", "c"), &t, false).unwrap().notes.is_empty());
    }
}
