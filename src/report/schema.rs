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
