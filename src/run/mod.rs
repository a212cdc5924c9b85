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
use std::path::{Path, PathBuf};
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
    /// `--image-archives DIR`: keep the archives there; else a temporary folder.
    pub image_archives: Option<PathBuf>,
}

/// Where image archives are saved before they are loaded: the folder the user asked to keep
/// them in, or a temporary one removed on drop. Never the artifacts folder: CI uploads that,
/// and the archives of one full run were 3.2 GB (shared/lab-runs/2026-12-06).
pub enum ArchiveDir {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl ArchiveDir {
    pub fn new(keep: Option<&Path>) -> Result<ArchiveDir> {
        Ok(match keep {
            Some(dir) => ArchiveDir::Kept(dir.to_path_buf()),
            None => ArchiveDir::Temporary(tempfile::Builder::new().prefix("seaworthy-images-").tempdir().context("creating a temporary folder for the image archives")?),
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            ArchiveDir::Kept(p) => p,
            ArchiveDir::Temporary(t) => t.path(),
        }
    }
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

/// How images reach this cluster's nodes, refusing a cluster seaworthy cannot load into by itself.
pub fn loader_for(cluster: &Cluster, custom: Option<&str>) -> Result<Loader> {
    match image_loader(cluster, custom)? {
        Some(loader) => Ok(loader),
        None => bail!(
            "seaworthy cannot load images into context {} by itself: pass --load-images-with 'CMD' (each image archive is piped to CMD, \
             e.g. 'microk8s ctr image import -', 'ctr -n k8s.io images import -', 'minikube image load -')",
            cluster.context
        ),
    }
}

/// How images reach this cluster's nodes; `None` for a cluster seaworthy cannot load into by
/// itself (then the images must already be pullable there, which [`pull_check`] verifies).
pub fn image_loader(cluster: &Cluster, custom: Option<&str>) -> Result<Option<Loader>> {
    if let Some(cmd) = custom {
        return Ok(Some(Loader::Command(cmd.to_string())));
    }
    match cluster.provider {
        Provider::Kind => Ok(Some(Loader::Kind { cluster: crate::cluster::cluster_name(&cluster.context, "kind-").to_string() })),
        Provider::K3d => Ok(Some(Loader::K3d { cluster: crate::cluster::cluster_name(&cluster.context, "k3d-").to_string() })),
        Provider::K3s => match cluster.k3s_container_id() {
            Some(container) => Ok(Some(Loader::K3sContainer { engine: "docker".into(), container })),
            None => bail!("the k3s container is gone"),
        },
        Provider::Existing => Ok(None),
    }
}

/// Label of the pull-check Pods, so the wait watches only them.
const PULL_CHECK_LABEL: &str = "seaworthy.dev/pull-check";
/// How long the nodes may take to pull every image.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// The Pod that proves `image` can be pulled: `IfNotPresent` (an image already on the node
/// counts, as it will for the stacks), never restarted, a command that ends at once.
pub fn pull_pod(ns: &str, name: &str, image: &str, run_id: &str) -> serde_json::Value {
    use crate::apply::render::{MANAGED_BY, RUN_LABEL};
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {MANAGED_BY.0: MANAGED_BY.1, RUN_LABEL: run_id, PULL_CHECK_LABEL: "true"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "pull", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["true"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
            }]
        }
    })
}

/// Has the Pod's image been pulled? Once a container has run or failed to start, or reports an
/// imageID, the image was there; ErrImagePull/ImagePullBackOff (or any other stuck state the
/// pod diagnosis knows, such as Unschedulable) fails; anything else is still waiting.
pub fn image_pulled(pod: &k8s_openapi::api::core::v1::Pod, events: &[k8s_openapi::api::core::v1::Event]) -> crate::wait::Progress {
    use crate::wait::Progress;
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let pulled = statuses.into_iter().flatten().any(|c| {
        let started = c.state.as_ref().is_some_and(|s| s.running.is_some() || s.terminated.is_some());
        started || !c.image_id.is_empty()
    });
    if pulled {
        return Progress::Done;
    }
    match crate::wait::pods::diagnose(pod, events) {
        Some(d) => Progress::Failed(d.to_string()),
        None => Progress::Waiting(format!("pod {} not started yet", pod.metadata.name.as_deref().unwrap_or("?"))),
    }
}

/// Check that the cluster can pull every image (one labelled namespace, one Pod per image), and
/// name the ones it cannot. The namespace is deleted whatever happens.
pub async fn pull_check(cluster: &Cluster, images: &[String], cleanup: &Cleanup) -> Result<()> {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, PostParams};
    let client = &cluster.client;
    let run_id = cleanup.run_id().to_string();
    let ns = format!("sw-pullcheck-{run_id}");
    cleanup.track(&ns)?;
    let pp = PostParams { field_manager: Some(crate::apply::FIELD_MANAGER.into()), ..Default::default() };
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {crate::apply::render::MANAGED_BY.0: crate::apply::render::MANAGED_BY.1, crate::apply::render::RUN_LABEL: run_id}}
    }))?;
    let result = async {
        Api::<Namespace>::all(client.clone()).create(&pp, &namespace).await.with_context(|| format!("creating namespace {ns}"))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let names: Vec<(String, &String)> = images.iter().enumerate().map(|(i, image)| (format!("pull-{i}"), image)).collect();
        for (name, image) in &names {
            pods.create(&pp, &serde_json::from_value(pull_pod(&ns, name, image, &run_id))?).await.with_context(|| format!("creating pod {ns}/{name}"))?;
        }
        let outcome = crate::wait::watch::Waiter::new(client, &ns)
            .pods(kube::runtime::watcher::Config::default().labels(PULL_CHECK_LABEL))
            .events(kube::runtime::watcher::Config::default().fields("involvedObject.kind=Pod"))
            .until(&format!("pulling {} images", names.len()), PULL_TIMEOUT, |s| {
                let events = s.events.objects();
                let waiting: Vec<String> = names
                    .iter()
                    .filter_map(|(name, _)| match s.pods.get(name) {
                        None => Some(format!("pod {name} not seen yet")),
                        Some(p) => match image_pulled(p, &events) {
                            crate::wait::Progress::Waiting(r) => Some(r),
                            _ => None,
                        },
                    })
                    .collect();
                if waiting.is_empty() { crate::wait::Progress::Done } else { crate::wait::Progress::Waiting(waiting.join("; ")) }
            })
            .await;
        let snapshot = outcome.map_err(|e| anyhow::anyhow!("{e}; pass --load-images-with 'CMD' to load the images into context {}", cluster.context))?;
        let events = snapshot.events.objects();
        let failed: Vec<String> = names
            .iter()
            .filter_map(|(name, image)| match snapshot.pods.get(name).map(|p| image_pulled(p, &events)) {
                Some(crate::wait::Progress::Failed(why)) => Some(format!("{image} ({why})")),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            bail!(
                "context {} cannot pull {} of {} images: {}. Load them with --load-images-with 'CMD' (each image archive is piped to CMD, \
                 e.g. 'microk8s ctr image import -', 'ctr -n k8s.io images import -', 'minikube image load -')",
                cluster.context,
                failed.len(),
                images.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }
    .await;
    let deleted = cleanup.delete(&ns).await;
    result.and(deleted)
}

/// Build every image the selected stacks (and their variants) use, save the archives, and load
/// them into the cluster.
pub fn prepare_images(stacks: &[Stack], loader: &Loader, base: &str, archives: &ArchiveDir) -> Result<()> {
    let builder = Builder::detect()?;
    let dir = archives.path();
    for stack in stacks {
        for (b, _) in images::build::build_stack(builder, stack, base, false, |b, done| {
            if done.is_none() {
                eprintln!("image {}: building {}", stack.name(), b.tag);
            }
        })? {
            let (archive, _) = images::archive::save(builder, &b, dir).with_context(|| format!("saving {}", b.tag))?;
            loader.load(&archive, &b.tag)?;
        }
    }
    Ok(())
}

pub async fn execute(cluster: &Cluster, plan: &Plan, settings: &Settings) -> Result<RunReport> {
    let started_ms = now_ms();
    let work = selected(plan)?;
    let stacks: Vec<Stack> = work.iter().map(|(s, _)| s.clone()).collect();
    let run_id = crate::apply::new_run_id();
    let cleanup = Cleanup::new(cluster.client.clone(), &run_id);
    let _signals = cleanup.on_signals();
    let _panic = cleanup.panic_guard();
    match image_loader(cluster, settings.load_images_with.as_deref())? {
        Some(loader) => {
            let (stacks, base) = (stacks.clone(), settings.base.clone());
            let archives = ArchiveDir::new(settings.image_archives.as_deref())?;
            tokio::task::spawn_blocking(move || prepare_images(&stacks, &loader, &base, &archives)).await??;
        }
        None => {
            let mut refs = Vec::new();
            for stack in &stacks {
                refs.extend(images::planned(stack, &settings.base)?.into_iter().map(|b| b.tag));
            }
            refs.sort();
            refs.dedup();
            eprintln!("seaworthy cannot load images into {} by itself: checking that its nodes can pull the {} images", cluster.context, refs.len());
            pull_check(cluster, &refs, &cleanup).await?;
        }
    }
    eprintln!("run {run_id} on {} (Kubernetes {})", cluster.context, cluster.info.version);

    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<10} {wide_msg}").expect("static template");
    let results: Vec<Vec<CheckResult>> = futures::stream::iter(work.into_iter().map(|(stack, checks)| {
        let bar = progress.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(stack.name().to_string()));
        bar.enable_steady_tick(Duration::from_millis(200));
        let (run_id, cleanup, mut opts, base) = (run_id.clone(), cleanup.clone(), settings.run.clone(), settings.base.clone());
        opts.progress = Some(bar.clone());
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
                let line = format!("{:<10} {:<28} {:<7} {}", stack.name(), check.name, outcome_word(outcome), first_line(&reason));
                // A hidden bar (output is not a terminal: CI, a log file) prints nothing, and a
                // 25-minute run would say nothing until its table.
                if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) }
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

    /// The lab run of 2026-12-06 left 3.2 GB of image archives in --artifacts, which CI uploads.
    #[test]
    fn image_archives_stay_out_of_the_artifacts_unless_kept() {
        let artifacts = tempfile::tempdir().unwrap();
        let temp = ArchiveDir::new(None).unwrap();
        let path = temp.path().to_path_buf();
        assert!(path.is_dir() && !path.starts_with(artifacts.path()));
        std::fs::write(path.join("x.tar"), b"archive").unwrap();
        drop(temp);
        assert!(!path.exists(), "a temporary archive folder is removed once the images are loaded");
        let kept = artifacts.path().join("kept");
        assert_eq!(ArchiveDir::new(Some(&kept)).unwrap().path(), kept);
    }

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
    fn pulled_or_not_on_real_pods() {
        use crate::wait::Progress;
        let backoff: k8s_openapi::api::core::v1::Pod = crate::samples::load("pod-imagepullbackoff.json");
        let p = image_pulled(&backoff, &[]);
        assert!(matches!(&p, Progress::Failed(m) if m.contains("ImagePullBackOff") && m.contains("localhost/does-not-exist:1")), "{p:?}");
        // A Pod whose container has run: the image was there.
        assert_eq!(image_pulled(&crate::samples::load("pod-crashloopbackoff.json"), &[]), Progress::Done);
        // Derived: the back-off Pod before the kubelet reported anything (no container status).
        let mut v = crate::samples::value("pod-imagepullbackoff.json");
        v["status"].as_object_mut().unwrap().remove("containerStatuses");
        assert!(image_pulled(&crate::samples::from_value(v), &[]).is_waiting());
        // Unschedulable is not a pull result, but it will not settle by itself either.
        let unschedulable: k8s_openapi::api::core::v1::Pod = crate::samples::load("pod-unschedulable.json");
        let events: Vec<k8s_openapi::api::core::v1::Event> = crate::samples::load_list("events-failedscheduling.json");
        assert!(image_pulled(&unschedulable, &events).is_failed());
    }

    #[test]
    fn the_pull_pod_is_labelled_and_never_pulls_a_present_image_again() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pull_pod("sw-pullcheck-abc123", "pull-0", "localhost/seaworthy/x:v1-0123456789ab", "abc123")).unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
        let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sw-pullcheck-abc123", "labels": pod.metadata.labels.clone().unwrap()}
        }))
        .unwrap();
        assert!(crate::apply::is_ours(&ns, Some("abc123")), "the run's cleanup and `down --runs` may delete it");
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
