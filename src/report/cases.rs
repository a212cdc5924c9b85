//! The suites' cluster cases as one run report. Each case of `cargo test` saves its verdict as a
//! file under `SEAWORTHY_RESULTS`; `seaworthy report merge` makes the run report of the whole
//! `cargo test` from those files, so that the nightly's JSON, JUnit, HTML and tomorrow's baseline
//! come from the very cases `cargo test` ran, not from a second run of the same checks.

use crate::checks::{CheckResult, Verdict};
use crate::report::{ClusterSummary, RunReport};
use crate::stack::Stack;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable naming the folder the suites' cluster cases write their results to.
pub const RESULTS_ENV: &str = "SEAWORTHY_RESULTS";

/// One cluster case: a check on the good stack, or on one of its negative controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub stack: String,
    pub check: String,
    /// The negative-control variant; None for the good stack.
    pub variant: Option<String>,
    pub verdict: Verdict,
    /// Wall clock, ms since the Unix epoch.
    pub started_ms: u64,
    pub ended_ms: u64,
    pub cluster: Option<ClusterSummary>,
}

impl CaseResult {
    /// One file per case: a case run again (a retry, a second `cargo test`) replaces its result.
    fn file_name(&self) -> String {
        match &self.variant {
            None => format!("{}.{}.good.json", self.stack, self.check),
            Some(v) => format!("{}.{}.negative.{v}.json", self.stack, self.check),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(self.file_name());
        let text = serde_json::to_string_pretty(self).expect("a case result always serializes");
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The run report of every case saved in `dir`, against what `stacks` declare: a declared check or
/// negative control with no saved case is reported skipped ("its case did not run"), so a
/// filtered or crashed `cargo test` cannot pass for a complete one.
pub fn merge(dir: &Path, stacks: &[Stack]) -> Result<RunReport> {
    let mut cases = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}: give the folder the suites wrote with {RESULTS_ENV}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let case: CaseResult = serde_path_to_error::deserialize(de).map_err(|e| anyhow::anyhow!("{}: field {}: {}", path.display(), e.path(), e.inner()))?;
        cases.push(case);
    }
    if cases.is_empty() {
        bail!("{} holds no case results: did the suites run with a cluster and {RESULTS_ENV} set?", dir.display());
    }
    for c in &cases {
        if !stacks.iter().any(|s| s.name() == c.stack && s.spec.checks.iter().any(|k| k.name == c.check)) {
            bail!("{}: stack {:?} declares no check {:?} (results of another seaworthy?)", dir.join(c.file_name()).display(), c.stack, c.check);
        }
    }

    let not_run = |what: &str| Verdict::skipped(format!("{what}: its case did not run (no result in {})", dir.display()));
    let mut results = Vec::new();
    for stack in stacks {
        for spec in &stack.spec.checks {
            let of = |variant: Option<&str>| cases.iter().find(|c| c.stack == stack.name() && c.check == spec.name && c.variant.as_deref() == variant);
            let good = of(None).map(|c| c.verdict.clone()).unwrap_or_else(|| not_run("the good stack"));
            let negative = spec.negative.as_ref().map(|v| (v.clone(), of(Some(v)).map(|c| c.verdict.clone()).unwrap_or_else(|| not_run(&format!("negative control {v}")))));
            results.push(CheckResult { stack: stack.name().to_string(), check: spec.name.clone(), good, negative });
        }
    }
    let started = cases.iter().map(|c| c.started_ms).min().unwrap_or(0);
    let ended = cases.iter().map(|c| c.ended_ms).max().unwrap_or(started);
    let cluster = cases.iter().find_map(|c| c.cluster.clone());
    Ok(RunReport::new(started, ended, cluster, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    fn case(stack: &str, check: &str, variant: Option<&str>, verdict: Verdict, at: u64) -> CaseResult {
        CaseResult { stack: stack.into(), check: check.into(), variant: variant.map(String::from), verdict, started_ms: at, ended_ms: at + 10, cluster: None }
    }

    fn caught() -> Verdict {
        Verdict::fail("5 requests failed")
    }

    #[test]
    fn cases_merge_into_one_result_per_check_and_missing_ones_are_skips() {
        let dir = tempfile::tempdir().unwrap();
        let phpdemo = Stack::find("phpdemo").unwrap();
        case("phpdemo", "config-override", None, Verdict::pass("served"), 100).save(dir.path()).unwrap();
        case("phpdemo", "config-override", Some("no-configmap"), caught(), 200).save(dir.path()).unwrap();
        case("phpdemo", "rollout-zero-5xx", None, Verdict::pass("0 failed"), 300).save(dir.path()).unwrap();
        let r = merge(dir.path(), std::slice::from_ref(&phpdemo)).unwrap();

        let declared: Vec<&str> = phpdemo.spec.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(r.results.iter().map(|c| c.check.as_str()).collect::<Vec<_>>(), declared);
        assert_eq!((r.started_ms, r.ended_ms), (100, 310));
        let by = |name: &str| r.results.iter().find(|c| c.check == name).unwrap().outcome();
        let negative_of = |name: &str| phpdemo.spec.checks.iter().find(|c| c.name == name).unwrap().negative.clone().unwrap();
        assert_eq!(negative_of("config-override"), "no-configmap", "the test's variant name must be the stack's");
        assert_eq!(by("config-override").0, Outcome::Pass, "{}", by("config-override").1);
        // The good stack passed but its negative control never ran: not proven, so not a pass.
        let (o, why) = by("rollout-zero-5xx");
        assert_eq!(o, Outcome::Skipped, "{why}");
        assert!(why.contains(&negative_of("rollout-zero-5xx")) && why.contains("did not run"), "{why}");
        assert_eq!(by("rollout-undo").0, Outcome::Skipped);
        assert_eq!(crate::run::exit_code(&r), 1);
    }

    #[test]
    fn a_rerun_case_replaces_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let counter = Stack::find("counter").unwrap();
        case("counter", "persistence", None, Verdict::fail("lost"), 1).save(dir.path()).unwrap();
        case("counter", "persistence", None, Verdict::pass("kept"), 2).save(dir.path()).unwrap();
        let r = merge(dir.path(), &[counter]).unwrap();
        let p = r.results.iter().find(|c| c.check == "persistence").unwrap();
        assert_eq!(p.good.reason, "kept");
    }

    #[test]
    fn a_bad_or_foreign_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let counter = Stack::find("counter").unwrap();
        assert!(format!("{:#}", merge(dir.path(), std::slice::from_ref(&counter)).unwrap_err()).contains("holds no case results"));
        case("counter", "no-such-check", None, Verdict::pass("?"), 1).save(dir.path()).unwrap();
        let err = format!("{:#}", merge(dir.path(), std::slice::from_ref(&counter)).unwrap_err());
        assert!(err.contains("counter.no-such-check.good.json") && err.contains("declares no check"), "{err}");
        std::fs::write(dir.path().join("counter.no-such-check.good.json"), r#"{"stack":"counter","check":"persistence","variant":null,"verdict":{"outcome":"maybe"}}"#).unwrap();
        let err = format!("{:#}", merge(dir.path(), &[counter]).unwrap_err());
        assert!(err.contains("counter.no-such-check.good.json") && err.contains("verdict"), "{err}");
    }
}
