//! One check on one stack: the good variant, then the negative control, each in a namespace of
//! its own that is applied, waited for, checked, evidenced on failure, and deleted.

use super::context::{CheckContext, Timeouts};
use super::verdict::{CheckResult, Outcome, Verdict};
use super::{actions::Actions, dispatch, needs_ready_stack};
use crate::cleanup::Cleanup;
use crate::cluster::Cluster;
use crate::observe::{EventLog, Observer};
use crate::stack::Stack;
use crate::stack::spec::CheckSpec;
use std::path::PathBuf;
use std::sync::Arc;

pub type ImageRefFn = Arc<dyn Fn(&str, &str) -> anyhow::Result<String> + Send + Sync>;

#[derive(Clone)]
pub struct RunOptions {
    pub artifacts: PathBuf,
    pub keep_on_failure: bool,
    pub timeouts: Timeouts,
}

pub async fn run_check(cluster: &Cluster, stack: &Stack, check: &CheckSpec, run_id: &str, image_ref: ImageRefFn, opts: &RunOptions, cleanup: &Cleanup) -> CheckResult {
    let good = run_variant(cluster, stack.clone(), check, run_id, image_ref.clone(), opts, cleanup).await;
    let negative = match &check.negative {
        None => None,
        // A stack that fails its own check makes the control meaningless; do not spend the time.
        Some(name) if good.outcome != Outcome::Pass => Some((name.clone(), Verdict::skipped("not run: the good variant did not pass"))),
        Some(name) => {
            let verdict = match stack.variant(name) {
                Ok(variant) => run_variant(cluster, variant, check, run_id, image_ref, opts, cleanup).await,
                Err(e) => Verdict::fail(format!("negative control {name} does not render: {e}")),
            };
            Some((name.clone(), verdict))
        }
    };
    CheckResult { stack: stack.name().to_string(), check: check.name.clone(), good, negative }
}

pub async fn run_variant(cluster: &Cluster, stack: Stack, check: &CheckSpec, run_id: &str, image_ref: ImageRefFn, opts: &RunOptions, cleanup: &Cleanup) -> Verdict {
    let variant = stack.variant.clone().unwrap_or_else(|| "good".into());
    let label = format!("{}/{}/{variant}", stack.name(), check.name);
    // One namespace per check and variant: a kept one (--keep-on-failure) never blocks the next.
    let ns = crate::apply::render::namespace_name(&format!("{}-{}", stack.name(), check.name), stack.variant.as_deref(), run_id);
    cleanup.track(&ns);
    let applied = {
        let f = image_ref.clone();
        crate::apply::apply(&cluster.client, &stack, &ns, run_id, &move |n: &str, v: &str| f(n, v)).await.map(|_| ns.clone())
    };
    let log = EventLog::default();
    let mut verdict = match applied {
        Err(e) => Verdict::fail(format!("could not apply {label}: {e:#}")),
        Ok(ns) => {
            let observer = Observer::start(&cluster.client, &ns, log.clone());
            let (entry_url, host_header) = match cluster.entry_url(&stack.spec.entry) {
                Ok(v) => v,
                Err(e) => return Verdict::skipped(format!("{e:#}")),
            };
            let ctx = CheckContext {
                client: cluster.client.clone(),
                info: cluster.info.clone(),
                params: check.params.clone(),
                actions: Actions { client: cluster.client.clone(), ns: ns.clone(), log: log.clone() },
                log: log.clone(),
                entry_url,
                host_header,
                image_ref: Box::new(move |n: &str, v: &str| image_ref(n, v)),
                timeouts: opts.timeouts,
                ns: ns.clone(),
                stack,
            };
            let result = async {
                if needs_ready_stack(&check.name) {
                    ctx.wait_stack_ready().await?;
                }
                dispatch(&check.name, &ctx).await
            }
            .await;
            drop(observer);
            result.unwrap_or_else(|e| Verdict::fail(format!("{e:#}")))
        }
    };
    if verdict.outcome == Outcome::Fail {
        let dir = opts.artifacts.join(&ns);
        match crate::evidence::collect(&cluster.client, &ns, &dir, &log.entries()).await {
            Ok(dir) => {
                eprintln!("{label}: evidence saved in {}", dir.display());
                verdict.evidence = Some(dir);
            }
            Err(e) => eprintln!("{label}: could not save evidence: {e:#}"),
        }
    }
    if verdict.outcome == Outcome::Fail && opts.keep_on_failure {
        cleanup.keep(&ns);
    } else if let Err(e) = cleanup.delete(&ns).await {
        eprintln!("{label}: cleanup of {ns}: {e:#}");
    }
    verdict
}
