//! The run report as saved JSON: one versioned document that the JUnit and HTML views, and
//! `report compare`, are re-made from. README.md ("Report JSON") documents every field.

use crate::checks::{CheckResult, Outcome};
use crate::cluster::ClusterInfo;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped whenever a field changes meaning or disappears (adding a field keeps the version, and
/// readers ignore fields they do not know).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    /// The seaworthy that wrote it (`CARGO_PKG_VERSION`).
    pub seaworthy_version: String,
    /// Wall clock, ms since the Unix epoch.
    pub started_ms: u64,
    pub ended_ms: u64,
    /// None when the run had no cluster (local proofs, or every check skipped before connecting).
    pub cluster: Option<ClusterSummary>,
    /// The stacks the run covered, in run order (a stack whose checks were all skipped is still listed).
    pub stacks: Vec<String>,
    pub results: Vec<CheckResult>,
}

/// What the report needs to say about the cluster: enough to tell two runs apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// existing | kind | k3d | k3s
    pub provider: String,
    pub context: String,
    /// Kubernetes git version, e.g. `v1.24.17`.
    pub version: String,
    pub nodes: usize,
    pub schedulable_nodes: usize,
    pub metrics_api: bool,
    pub ingress_classes: Vec<String>,
    pub default_storage_class: Option<String>,
}

impl ClusterSummary {
    pub fn new(provider: &str, context: &str, info: &ClusterInfo) -> ClusterSummary {
        ClusterSummary {
            provider: provider.to_string(),
            context: context.to_string(),
            version: info.version.clone(),
            nodes: info.nodes.len(),
            schedulable_nodes: info.schedulable_nodes(),
            metrics_api: info.metrics_api,
            ingress_classes: info.ingress_classes.clone(),
            default_storage_class: info.default_storage_class.clone(),
        }
    }

    pub fn of(cluster: &crate::cluster::Cluster) -> ClusterSummary {
        use clap::ValueEnum;
        let provider = cluster.provider.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        ClusterSummary::new(&provider, &cluster.context, &cluster.info)
    }
}

/// What a JSON document read as a report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Load,
    Neither,
}

impl Kind {
    pub fn of(value: &serde_json::Value) -> Kind {
        let has = |k: &str| value.get(k).is_some();
        if has("results") || has("seaworthy_version") {
            Kind::Run
        } else if has("url") && has("latency_ms") && has("timeline") {
            Kind::Load
        } else if has("schema_version") && !has("url") {
            // An old or damaged run report: from_json says which field is wrong.
            Kind::Run
        } else {
            Kind::Neither
        }
    }
}

/// Pass / fail / skipped counts over checks (the combined outcome of each [`CheckResult`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub skipped: usize,
}

impl RunReport {
    pub fn new(started_ms: u64, ended_ms: u64, cluster: Option<ClusterSummary>, results: Vec<CheckResult>) -> RunReport {
        let mut stacks: Vec<String> = Vec::new();
        for r in &results {
            if !stacks.contains(&r.stack) {
                stacks.push(r.stack.clone());
            }
        }
        RunReport {
            schema_version: SCHEMA_VERSION,
            seaworthy_version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms,
            ended_ms,
            cluster,
            stacks,
            results,
        }
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in &self.results {
            match r.outcome().0 {
                Outcome::Pass => t.pass += 1,
                Outcome::Fail => t.fail += 1,
                Outcome::Skipped => t.skipped += 1,
            }
        }
        t
    }

    /// Stacks in report order: those listed in `stacks`, then any that only results name.
    pub fn stack_names(&self) -> Vec<String> {
        let mut names = self.stacks.clone();
        for r in &self.results {
            if !names.contains(&r.stack) {
                names.push(r.stack.clone());
            }
        }
        names
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a run report always serializes")
    }

    /// Parse a report, refusing another schema version with a message that says which.
    pub fn from_json(text: &str) -> Result<RunReport> {
        let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            None => bail!("not a seaworthy run report: it has no numeric \"schema_version\""),
            Some(v) if v != SCHEMA_VERSION as u64 => bail!(
                "run report schema version {v}, but this seaworthy ({}) reads version {SCHEMA_VERSION}; \
                 re-render it with the seaworthy that wrote it",
                env!("CARGO_PKG_VERSION")
            ),
            Some(_) => {}
        }
        serde_path_to_error::deserialize(value).map_err(|e| anyhow::anyhow!("run report field {}: {}", e.path(), e.inner()))
    }

    pub fn load(path: &Path) -> Result<RunReport> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| path.display().to_string())
    }

    /// A run report, or a `seaworthy load --json` summary as a run of one phase; anything else
    /// is refused saying what it is not.
    pub fn load_any(path: &Path) -> Result<RunReport> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // The summary has no wall clock of its own; the file was written when the load ended.
        let written_ms = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::from_json_any(&text, written_ms).with_context(|| path.display().to_string())
    }

    /// [`Self::from_json`], or a load summary ended at `ended_ms` made into a run of one phase.
    pub fn from_json_any(text: &str, ended_ms: u64) -> Result<RunReport> {
        let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        match Kind::of(&value) {
            Kind::Run => Self::from_json(text),
            Kind::Load => Self::from_load_summary(value, ended_ms),
            Kind::Neither => bail!(
                "neither a seaworthy run report (`seaworthy run --json`: schema_version, seaworthy_version, results) \
                 nor a load summary (`seaworthy load --json`: schema_version, url, latency_ms, timeline)"
            ),
        }
    }

    /// A load summary as a run of one check, `load` / `load URL`, with one phase named `load`: so
    /// that `compare` matches two load runs against different URLs (the reason names the URL).
    /// It passes when no request failed (the load generator's own rule: an answer below 400).
    fn from_load_summary(value: serde_json::Value, ended_ms: u64) -> Result<RunReport> {
        let v = value.get("schema_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if v != crate::traffic::SCHEMA_VERSION as u64 {
            bail!("load summary schema version {v}, but this seaworthy reads load summaries of version {}", crate::traffic::SCHEMA_VERSION);
        }
        let s: crate::traffic::Summary =
            serde_path_to_error::deserialize(value).map_err(|e| anyhow::anyhow!("load summary field {}: {}", e.path(), e.inner()))?;
        let started_ms = ended_ms.saturating_sub((s.elapsed_s * 1000.0) as u64);
        let codes: Vec<String> = s.status_codes.iter().filter(|(c, _)| c.parse::<u16>().map_or(true, |c| c >= 400)).map(|(c, n)| format!("{c} x{n}")).collect();
        let kinds: Vec<String> = codes.into_iter().chain(s.failures.iter().map(|(k, n)| format!("{k} x{n}"))).collect();
        let what = format!("{} requests to {} ({} model, {:.1} req/s achieved)", s.sent, s.url, s.mode, s.achieved_rps);
        let mut verdict = if s.sent == 0 {
            crate::checks::Verdict::harness_error(format!("the load sent no request to {}", s.url))
        } else if s.failed == 0 {
            crate::checks::Verdict::pass(format!("{what}: none failed; p99 {:.1} ms", s.latency_ms.p99))
        } else {
            crate::checks::Verdict::fail(format!("{} of {what} failed: {}", s.failed, kinds.join(", ")))
        };
        verdict = verdict.with_metric("failed", s.failed as f64);
        let phase = crate::checks::Phase { name: "load".into(), started_ms, ended_ms, traffic: Some(s), events: vec![], failure_clusters: vec![] };
        verdict = verdict.with_phase(phase);
        Ok(RunReport::new(started_ms, ended_ms, None, vec![CheckResult { stack: "load".into(), check: "load".into(), good: verdict, negative: None }]))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json() + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Verdict;

    #[test]
    fn another_schema_version_is_refused_by_name() {
        let r = RunReport::new(1, 2, None, vec![CheckResult { stack: "s".into(), check: "c".into(), good: Verdict::pass("ok"), negative: None }]);
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(RunReport::from_json(&v.to_string()).unwrap(), r);
        v["schema_version"] = 2.into();
        let err = format!("{:#}", RunReport::from_json(&v.to_string()).unwrap_err());
        assert!(err.contains("schema version 2") && err.contains("reads version 1"), "{err}");
        v["schema_version"] = 1.into();
        v["results"][0]["good"]["outcome"] = "maybe".into();
        let err = format!("{:#}", RunReport::from_json(&v.to_string()).unwrap_err());
        assert!(err.contains("results[0].good.outcome"), "{err}");
        assert!(RunReport::from_json("{}").is_err());
    }
}
