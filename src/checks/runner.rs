//! One check on one stack: the good variant, then the negative control, each in a namespace of
//! its own that is applied, waited for, checked, evidenced on failure, and deleted.

use super::context::{CheckContext, Timeouts};
use super::verdict::{CheckResult, Outcome, Verdict};
use super::{actions::Actions, dispatch, lock_cluster, needs_ready_stack, negative};
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
    /// The run's progress line for the stack being checked, if output is a terminal.
    pub progress: Option<indicatif::ProgressBar>,
}

pub async fn run_check(cluster: &Cluster, stack: &Stack, check: &CheckSpec, run_id: &str, image_ref: ImageRefFn, opts: &RunOptions, cleanup: &Cleanup) -> CheckResult {
    let result = |good: Verdict, negative| CheckResult { stack: stack.name().to_string(), check: check.name.clone(), good, negative };
    // A kept namespace holds the stack's fixed NodePorts: every later apply of the stack would
    // fail on "provided port is already allocated", and be reported as this check's failure.
    if let Some(kept) = cleanup.kept_of(stack.name()) {
        let why = format!("not run: namespace {kept} of this stack was kept for inspection (--keep-on-failure) and holds its NodePorts");
        return result(Verdict::skipped(why.clone()), check.negative.clone().map(|n| (n, Verdict::skipped(why))));
    }
    let good = run_variant(cluster, stack.clone(), check, run_id, image_ref.clone(), opts, cleanup).await;
    let negative = match &check.negative {
        None => None,
        // A stack that fails its own check makes the control meaningless; do not spend the time.
        Some(name) if good.outcome != Outcome::Pass => Some((name.clone(), Verdict::skipped("not run: the good variant did not pass"))),
        Some(name) => {
            let verdict = match stack.variant(name) {
                Ok(variant) => run_variant(cluster, variant, check, run_id, image_ref, opts, cleanup).await,
                Err(e) => Verdict::harness_error(format!("negative control {name} does not render: {e}")),
            };
            Some((name.clone(), verdict))
        }
    };
    result(good, negative)
}

/// Run one variant: the good stack (`stack.variant` is None), or a negative control, whose
/// verdict then says whether it was caught (see [`negative::judge_negative`]).
pub async fn run_variant(cluster: &Cluster, stack: Stack, check: &CheckSpec, run_id: &str, image_ref: ImageRefFn, opts: &RunOptions, cleanup: &Cleanup) -> Verdict {
    let expect = match &stack.variant {
        None => None,
        Some(_) => match negative::expectation(&check.name, &check.params) {
            Ok(e) => Some(e),
            Err(e) => return Verdict::harness_error(e),
        },
    };
    let variant = stack.variant.clone().unwrap_or_else(|| "good".into());
    let stack_name = stack.name().to_string();
    let label = format!("{stack_name}/{}/{variant}", check.name);
    // Before anything is created: a stack this cluster cannot reach is a skip with nothing to undo.
    let (entry_url, host_header) = match cluster.entry_url(&stack.spec.entry) {
        Ok(v) => v,
        Err(e) => return Verdict::skipped(format!("{e:#}")),
    };
    let _cluster = lock_cluster(&check.name).await;
    let _room = super::capacity::reserve(&cluster.client, super::capacity::stack_peak(&stack), |why| match &opts.progress {
        Some(bar) if !bar.is_hidden() => bar.set_message(format!("{label}: {why}")),
        _ => eprintln!("{label}: {why}"),
    })
    .await;
    // One namespace per check and variant.
    let ns = crate::apply::render::namespace_name(&format!("{}-{}", stack.name(), check.name), stack.variant.as_deref(), run_id);
    if let Err(e) = cleanup.track(&ns) {
        return Verdict::skipped(format!("not run: {e:#}"));
    }
    let applied = {
        let f = image_ref.clone();
        crate::apply::apply(&cluster.client, &stack, &ns, run_id, &move |n: &str, v: &str| f(n, v)).await.map(|_| ns.clone())
    };
    let log = EventLog::default();
    let verdict = match applied {
        Err(e) => Verdict::harness_error(format!("could not apply {label}: {e:#}")),
        Ok(ns) => {
            let observer = Observer::start(&cluster.client, &ns, log.clone());
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
                cleanup: cleanup.clone(),
            };
            let result = async {
                if needs_ready_stack(&check.name) {
                    ctx.wait_stack_ready().await?;
                    ctx.wait_entry_answering(opts.progress.as_ref()).await?;
                }
                dispatch(&check.name, &ctx).await
            }
            .await;
            drop(observer);
            // An error is the harness's (a wait that timed out, an exec or an API call that
            // failed): the check never got to judge the stack.
            result.unwrap_or_else(|e| Verdict::harness_error(format!("{e:#}")))
        }
    };
    let mut verdict = match &expect {
        Some(expect) => negative::judge_negative(expect, verdict),
        None => verdict,
    };
    let unexpected = unexpected(&verdict, expect.is_some());
    if unexpected {
        let dir = opts.artifacts.join(&ns);
        match crate::evidence::collect(&cluster.client, &ns, &dir, &log.entries(), &verdict.phases).await {
            Ok(dir) => {
                eprintln!("{label}: evidence saved in {}", dir.display());
                verdict.evidence = Some(dir);
            }
            Err(e) => eprintln!("{label}: could not save evidence: {e:#}"),
        }
    }
    if unexpected && opts.keep_on_failure {
        cleanup.keep(&stack_name, &ns);
    } else if let Err(e) = cleanup.delete(&ns).await {
        eprintln!("{label}: cleanup of {ns}: {e:#}");
    }
    verdict
}

/// What deserves evidence and, under `--keep-on-failure`, a kept namespace: a good stack that
/// failed, or a negative control that was not caught. A caught control failed as it should; its
/// namespace is of no interest, and would hold the stack's NodePorts for nothing.
pub fn unexpected(v: &Verdict, negative_control: bool) -> bool {
    match v.outcome {
        Outcome::Skipped => false,
        _ if negative_control => !v.caught(),
        Outcome::Fail => true,
        Outcome::Pass => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::FailureKind;

    #[test]
    fn only_unexpected_outcomes_are_kept() {
        assert!(unexpected(&Verdict::fail("3 failed"), false));
        assert!(!unexpected(&Verdict::pass("ok"), false));
        assert!(!unexpected(&Verdict::skipped("no metrics API"), false));
        // A caught control is what should happen.
        assert!(!unexpected(&Verdict::fail("3 failed").with_metric("failed", 3.0), true));
        assert!(unexpected(&Verdict::pass("0 failed"), true));
        assert!(unexpected(&Verdict::harness_error("apply failed"), true));
        assert!(unexpected(&Verdict { failure: FailureKind::WrongReason, ..Verdict::fail("timeout") }, true));
    }
}
