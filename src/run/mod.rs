//! `seaworthy run`: stacks and their checks on one cluster, from images to report.
//!
//! Order of work: every stack is validated (a bad one changes nothing in the cluster), the images
//! are built and loaded, then stacks run in parallel (`--jobs`), each stack's checks one after
//! another (their negative controls reuse the stack's fixed NodePorts).

use crate::checks::runner::{ImageRefFn, RunOptions, run_check};
use crate::checks::{CheckResult, Outcome};
use crate::cleanup::Cleanup;
use crate::cluster::{Cluster, Provider};
use crate::images::{self, Builder, Loader};
use crate::observe::now_ms;
use crate::report::{ClusterSummary, RunReport};
use crate::stack::Stack;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Plan {
    pub stacks: Vec<Stack>,
    /// Only these checks (all of each stack's when empty).
    pub checks: Vec<String>,
}

pub struct Settings {
    pub run: RunOptions,
    pub jobs: usize,
    /// `--load-images-with CMD`: pipe each image archive to CMD (any cluster).
    pub load_images_with: Option<String>,
    pub base: String,
}

/// The checks of `plan` that will run, per stack, failing on a check name no stack declares.
pub fn selected(plan: &Plan) -> Result<Vec<(Stack, Vec<crate::stack::spec::CheckSpec>)>> {
    for name in &plan.checks {
        if !plan.stacks.iter().any(|s| s.spec.checks.iter().any(|c| &c.name == name)) {
            let stacks: Vec<&str> = plan.stacks.iter().map(|s| s.name()).collect();
            bail!("no stack among [{}] declares check {name:?}", stacks.join(", "));
        }
    }
    Ok(plan
        .stacks
        .iter()
        .map(|s| {
            let checks = s.spec.checks.iter().filter(|c| plan.checks.is_empty() || plan.checks.contains(&c.name)).cloned().collect();
            (s.clone(), checks)
        })
        .filter(|(_, checks): &(Stack, Vec<_>)| !checks.is_empty())
        .collect())
}

/// How images reach this cluster's nodes.
pub fn loader_for(cluster: &Cluster, custom: Option<&str>) -> Result<Loader> {
    if let Some(cmd) = custom {
        return Ok(Loader::Command(cmd.to_string()));
    }
    match cluster.provider {
        Provider::Kind => Ok(Loader::Kind { cluster: crate::cluster::cluster_name(&cluster.context, "kind-").to_string() }),
        Provider::K3d => Ok(Loader::K3d { cluster: crate::cluster::cluster_name(&cluster.context, "k3d-").to_string() }),
        Provider::K3s => match cluster.k3s_container_id() {
            Some(container) => Ok(Loader::K3sContainer { engine: "docker".into(), container }),
            None => bail!("the k3s container is gone"),
        },
        Provider::Existing => bail!(
            "seaworthy cannot load images into context {} by itself: pass --load-images-with 'CMD' (each image archive is piped to CMD, \
             e.g. 'microk8s ctr image import -', 'ctr -n k8s.io images import -', 'minikube image load -')",
            cluster.context
        ),
    }
}

/// Build every image the selected stacks (and their variants) use, save the archives, and load
/// them into the cluster.
pub fn prepare_images(stacks: &[Stack], loader: &Loader, base: &str, artifacts: &PathBuf) -> Result<()> {
    let builder = Builder::detect()?;
    let dir = artifacts.join("images");
    for stack in stacks {
        for (b, _) in images::build::build_stack(builder, stack, base, false, |b, done| {
            if done.is_none() {
                eprintln!("image {}: building {}", stack.name(), b.tag);
            }
        })? {
            let (archive, _) = images::archive::save(builder, &b, &dir).with_context(|| format!("saving {}", b.tag))?;
            loader.load(&archive, &b.tag)?;
        }
    }
    Ok(())
}

pub async fn execute(cluster: &Cluster, plan: &Plan, settings: &Settings) -> Result<RunReport> {
    let started_ms = now_ms();
    let work = selected(plan)?;
    let stacks: Vec<Stack> = work.iter().map(|(s, _)| s.clone()).collect();
    let loader = loader_for(cluster, settings.load_images_with.as_deref())?;
    {
        let (stacks, base, artifacts) = (stacks.clone(), settings.base.clone(), settings.run.artifacts.clone());
        tokio::task::spawn_blocking(move || prepare_images(&stacks, &loader, &base, &artifacts)).await??;
    }

    let run_id = crate::apply::new_run_id();
    let cleanup = Cleanup::new(cluster.client.clone(), &run_id);
    let _signals = cleanup.on_signals();
    let _panic = cleanup.panic_guard();
    eprintln!("run {run_id} on {} (Kubernetes {})", cluster.context, cluster.info.version);

    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<10} {wide_msg}").expect("static template");
    let results: Vec<Vec<CheckResult>> = futures::stream::iter(work.into_iter().map(|(stack, checks)| {
        let bar = progress.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(stack.name().to_string()));
        bar.enable_steady_tick(Duration::from_millis(200));
        let (run_id, cleanup, opts, base) = (run_id.clone(), cleanup.clone(), settings.run.clone(), settings.base.clone());
        async move {
            let image_ref: ImageRefFn = {
                let stack = stack.clone();
                Arc::new(move |name: &str, version: &str| images::image_ref_with_base(&stack, name, version, &base))
            };
            let mut out = Vec::new();
            for check in &checks {
                bar.set_message(format!("{} ...", check.name));
                let result = run_check(cluster, &stack, check, &run_id, image_ref.clone(), &opts, &cleanup).await;
                let (outcome, reason) = result.outcome();
                bar.println(format!("{:<10} {:<28} {:<7} {}", stack.name(), check.name, outcome_word(outcome), first_line(&reason)));
                out.push(result);
            }
            bar.finish_and_clear();
            out
        }
    }))
    .buffer_unordered(settings.jobs.max(1))
    .collect()
    .await;
    cleanup.all().await;
    let mut results: Vec<CheckResult> = results.into_iter().flatten().collect();
    results.sort_by(|a, b| (&a.stack, &a.check).cmp(&(&b.stack, &b.check)));
    Ok(RunReport::new(started_ms, now_ms(), Some(ClusterSummary::of(cluster)), results))
}

pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Skipped => "skipped",
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The results table printed at the end of a run.
pub fn table(report: &RunReport) -> String {
    let mut out = format!("{:<10} {:<28} {:<7} {}\n", "STACK", "CHECK", "RESULT", "WHY");
    for r in &report.results {
        let (outcome, reason) = r.outcome();
        out.push_str(&format!("{:<10} {:<28} {:<7} {}\n", r.stack, r.check, outcome_word(outcome), first_line(&reason)));
    }
    out
}

/// Exit code of a run: 0 only if every check passed (a skip is not a pass).
pub fn exit_code(report: &RunReport) -> i32 {
    if !report.results.is_empty() && report.results.iter().all(|r| r.outcome().0 == Outcome::Pass) { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_selected_by_name_and_unknown_names_refused() {
        let plan = Plan { stacks: vec![Stack::find("phpdemo").unwrap(), Stack::find("counter").unwrap()], checks: vec!["persistence".into()] };
        let work = selected(&plan).unwrap();
        assert_eq!(work.len(), 1, "phpdemo declares no persistence check");
        assert_eq!(work[0].0.name(), "counter");
        let plan = Plan { checks: vec!["hpa-scale".into()], ..plan };
        assert!(selected(&plan).unwrap_err().to_string().contains("no stack among [phpdemo, counter] declares check \"hpa-scale\""));
    }

    #[test]
    fn a_run_of_only_skips_is_not_a_pass() {
        use crate::checks::Verdict;
        let r = CheckResult { stack: "s".into(), check: "c".into(), good: Verdict::skipped("no metrics"), negative: None };
        let report = RunReport::new(0, 1, None, vec![r]);
        assert_eq!(exit_code(&report), 1);
        assert_eq!(exit_code(&RunReport::new(0, 1, None, vec![])), 1, "nothing run is not a pass");
    }
}
