//! Everything one check needs on one running variant of a stack.

use super::actions::Actions;
use super::timeline::failure_clusters;
use super::verdict::Phase;
use crate::cluster::ClusterInfo;
use crate::observe::{EventLog, now_ms};
use crate::stack::{Resource, Stack};
use crate::traffic::{ConnectionPolicy, Load, LoadConfig, Report, Schedule};
use crate::wait::watch as waits;
use anyhow::{Context, Result, anyhow};
use std::time::{Duration, Instant};

pub struct CheckContext {
    pub client: kube::Client,
    pub info: ClusterInfo,
    /// The variant being checked (the good stack or a negative control).
    pub stack: Stack,
    pub ns: String,
    /// The check's `[checks.params]` from stack.toml.
    pub params: toml::Table,
    pub actions: Actions,
    pub log: EventLog,
    /// The stack's entry point from this machine, and the Host header for an Ingress.
    pub entry_url: String,
    pub host_header: Option<String>,
    /// `image:version` of the stack -> the reference loaded into the cluster.
    pub image_ref: Box<dyn Fn(&str, &str) -> Result<String> + Send + Sync>,
    pub timeouts: Timeouts,
    /// The run's cleanup: nodes are cordoned through it, so that they are uncordoned on Ctrl-C.
    pub cleanup: crate::cleanup::Cleanup,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A rollout of the whole stack (images may still be loading on first start).
    pub ready: Duration,
    /// One rolling update during a check.
    pub rollout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { ready: Duration::from_secs(300), rollout: Duration::from_secs(240) }
    }
}

/// A load running during a phase, with the wall-clock time of its planned start.
pub struct RunningLoad {
    pub load: Load,
    pub started_ms: u64,
    pub name: String,
}

impl CheckContext {
    /// The check's params as its typed struct ([`super::params`]); `fixtures lint` refuses the
    /// same mistakes before a run, so this fails only for a stack that was never linted.
    pub fn params_as<P: super::params::CheckParams>(&self) -> Result<P> {
        super::params::parse(&self.params).map_err(|e| anyhow!("{}/stack.toml: check {} params: {e}", self.stack.dir.display(), P::NAME))
    }

    /// Wait until every Deployment and StatefulSet of the stack has rolled out, failing fast on
    /// an unschedulable or crashing Pod.
    pub async fn wait_stack_ready(&self) -> Result<()> {
        for object in &self.stack.objects {
            let name = object.resource.name();
            match &object.resource {
                Resource::Deployment(_) => {
                    waits::deployment_rollout(&self.client, &self.ns, name, self.timeouts.ready).await?;
                }
                Resource::StatefulSet(_) => {
                    waits::statefulset_rollout(&self.client, &self.ns, name, self.timeouts.ready).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Wait until the stack answers through its entry point from this machine, every ready Pod
    /// of the entry Service heard (see [`super::reachable`]): a check's traffic must not start
    /// while kube-proxy has yet to program the Service. Progress goes to `bar` (the run's line
    /// for this stack) when there is one.
    pub async fn wait_entry_answering(&self, bar: Option<&indicatif::ProgressBar>) -> Result<()> {
        let entry = &self.stack.spec.entry;
        let selector = self
            .stack
            .service(&entry.service)
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty())
            .map(super::actions::selector_of);
        let expected = match selector {
            Some(sel) => super::actions::serving_pods(&self.actions.pods(&sel).await?),
            None => Vec::new(),
        };
        let probe = super::http_probe::EntryPoint::of(self)?;
        let started = Instant::now();
        let seen = super::reachable::until_answering(&probe, &entry.path, &expected, super::reachable::ENTRY_WITHIN, |seen| {
            if let Some(bar) = bar {
                bar.set_message(format!("waiting for {} to answer from outside ({:.0}s): {}", entry.path, started.elapsed().as_secs_f64(), seen.describe()));
            }
        })
        .await
        .map_err(|e| anyhow!(e))?;
        self.log.push(
            crate::observe::Source::Action,
            format!("Service/{}", entry.service),
            format!("answered through the entry point after {:.1}s: {}", started.elapsed().as_secs_f64(), seen.describe()),
        );
        Ok(())
    }

    /// A load config for the entry point (or `path` on it) with the Host header set.
    pub fn load_config(&self, path: Option<&str>, schedule: Schedule) -> LoadConfig {
        let url = match path {
            Some(p) => replace_path(&self.entry_url, p),
            None => self.entry_url.clone(),
        };
        let mut cfg = LoadConfig::open(&url, schedule);
        // Many clients, not one: a per-connection balancer (kube-proxy, IPVS) spreads only new
        // connections, so the checks' connections live at most 1 s or 32 requests. Retries stay
        // on: the engine resends only a request it provably never wrote, and counts it.
        cfg.connection = ConnectionPolicy::CHECKS;
        if let Some(host) = &self.host_header {
            cfg.headers.push(("Host".into(), host.clone()));
        }
        cfg
    }

    /// Start a load; its planned start is taken as the phase's wall-clock origin.
    pub async fn start_load(&self, name: &str, cfg: LoadConfig) -> Result<RunningLoad> {
        let (wall, mono) = (now_ms(), Instant::now());
        let load = Load::start(cfg).await.with_context(|| format!("starting load {name}"))?;
        let offset = load.start_instant().saturating_duration_since(mono).as_millis() as u64;
        Ok(RunningLoad { load, started_ms: wall + offset, name: name.into() })
    }

    /// Stop (or let finish) a load and turn it into a phase: summary, the events of its window,
    /// and its failures clustered next to them.
    pub async fn finish_phase(&self, running: RunningLoad, stop_now: bool) -> (Phase, Report) {
        let report = if stop_now { running.load.stop().await } else { running.load.finish().await };
        let summary = report.summary(Duration::from_secs(1));
        let ended_ms = running.started_ms + (summary.elapsed_s * 1000.0) as u64;
        let events = self.log.around(running.started_ms, ended_ms, 0, 0);
        let records: Vec<_> = report.records.iter().copied().collect();
        let clusters = failure_clusters(&records, &report.backends, running.started_ms, &self.log.entries());
        let phase = Phase { name: running.name, started_ms: running.started_ms, ended_ms, traffic: Some(summary), events, failure_clusters: clusters };
        (phase, report)
    }
}

fn replace_path(url: &str, path: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => format!("{}{path}", &url[..after_scheme + i]),
        None => format!("{url}{path}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_replaced_on_the_entry_url() {
        assert_eq!(super::replace_path("http://127.0.0.1:30080/api.php", "/index.php"), "http://127.0.0.1:30080/index.php");
        assert_eq!(super::replace_path("http://h:1", "/x"), "http://h:1/x");
    }
}
