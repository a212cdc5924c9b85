//! `insufficient-resources` (shared/STACKS.md): a Pod that requests more CPU than any node has
//! must be reported with the scheduler's own reason ("Insufficient cpu"), fast, and not as a
//! rollout that timed out.
//!
//! Which variant is what. The subject of this check is not the good stack but the edit the seed
//! made by accident: the `too-much-cpu` variant of sms-web (its web container asks for 1000 CPUs),
//! named by the check's `variant` param. The good stack is the *baseline*: the runner applies it
//! without waiting (`needs_ready_stack`), the check waits for it to roll out, then changes the
//! running Deployment's resources to the variant's — what a user does with `kubectl set
//! resources` or by applying the edited manifest — and watches that rollout with the same
//! fail-fast wait every check uses. So one run holds both sides:
//! - the unchanged stack must roll out (if the harness called every Pod unschedulable, or the
//!   cluster cannot even hold the good stack, this fails, and then "Insufficient cpu" afterwards
//!   would prove nothing);
//! - the changed one must be refused by the scheduler, and the wait must end on that diagnosis
//!   within `fail_within_s`, far inside the rollout deadline, with the reason in the verdict.
//!
//! That is also why stack.toml gives this check no `negative`: a negative control must make the
//! check fail, and for this check that is the good stack — which the baseline already runs, with
//! its verdict required to be the opposite. The resources come from the variant itself, so the
//! edit exists once (and `fixtures lint` validates it). If a runner applies the variant directly,
//! the check sees it (`ctx.stack.variant`) and only waits.

use super::actions::workload_selector;
use super::http_probe::probe_phase;
use super::{CheckContext, Verdict};
use crate::observe::now_ms;
use crate::stack::Stack;
use crate::wait::watch::{self as waits, WaitError};
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ResourceRequirements;
use std::time::{Duration, Instant};

/// The containers of `workload` whose resources differ between the good stack and `subject`,
/// with the subject's resources: what the check sets on the running workload.
pub fn resource_changes(good: &Stack, subject: &Stack, workload: &str) -> Result<Vec<(String, ResourceRequirements)>> {
    let before = good.pod_spec(workload).with_context(|| format!("stack {} has no workload {workload:?}", good.name()))?;
    let after = subject.pod_spec(workload).with_context(|| format!("the variant has no workload {workload:?}"))?;
    let mut changes = Vec::new();
    for c in &after.containers {
        let old = before.containers.iter().find(|o| o.name == c.name).and_then(|o| o.resources.clone()).unwrap_or_default();
        let new = c.resources.clone().unwrap_or_default();
        if old != new {
            changes.push((c.name.clone(), new));
        }
    }
    if changes.is_empty() {
        bail!("variant {:?} does not change the resources of {workload}: nothing for the scheduler to refuse", subject.variant.as_deref().unwrap_or("?"));
    }
    Ok(changes)
}

/// The variant must make the edit the check's params name: `cpu` as request and limit of
/// `container` (a variant that fails for another reason would test something else).
pub fn check_edit(changes: &[(String, ResourceRequirements)], container: &str, cpu: &str) -> Result<()> {
    let (_, r) = changes.iter().find(|(c, _)| c == container).with_context(|| format!("the variant does not change container {container}'s resources"))?;
    let get = |m: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| m.as_ref().and_then(|m| m.get("cpu")).map(|q| q.0.clone());
    let (req, lim) = (get(&r.requests), get(&r.limits));
    if req.as_deref() != Some(cpu) || lim.as_deref() != Some(cpu) {
        bail!("the variant sets {container}'s cpu to request {req:?} / limit {lim:?}, the check's params say {cpu:?} for both");
    }
    Ok(())
}

/// What the run saw, for the judgement.
#[derive(Debug)]
pub struct Observed {
    /// The unchanged stack's rollout: `Ok`, or why it did not finish. `None`: not run (the
    /// variant was applied directly).
    pub baseline: Option<Result<(), String>>,
    /// The wait on the changed workload, and how long after the change it ended.
    pub subject: Result<(), WaitError>,
    pub elapsed: Duration,
}

/// Expectations from stack.toml.
#[derive(Debug, Clone)]
pub struct Expect {
    pub reason: String,
    /// A diagnosis later than this is not "fast".
    pub fail_within: Duration,
    /// The rollout deadline of the wait.
    pub deadline: Duration,
    /// What was changed, for the messages (e.g. "sms-web cpu 1000").
    pub change: String,
}

pub fn judge(obs: &Observed, want: &Expect) -> Verdict {
    let secs = obs.elapsed.as_secs_f64();
    if let Some(Err(e)) = &obs.baseline {
        return Verdict::fail(format!(
            "the unchanged stack did not roll out ({e}); without a schedulable baseline a refusal after the change ({}) would prove nothing",
            want.change
        ));
    }
    let v = match &obs.subject {
        Ok(()) => Verdict::fail(format!(
            "the rollout with {} completed in {secs:.1}s: the cluster had room for it, so the scheduler never refused a Pod",
            want.change
        )),
        Err(WaitError::Timeout { last, .. }) => Verdict::fail(format!(
            "the rollout with {} was not reported as unschedulable: it ran into the {}s deadline (last state: {last})",
            want.change,
            want.deadline.as_secs()
        )),
        Err(WaitError::Failed { reason, .. }) if !reason.contains(&want.reason) => Verdict::fail(format!(
            "the rollout with {} failed after {secs:.1}s, but not with {:?}: {reason}",
            want.change, want.reason
        )),
        Err(WaitError::Failed { reason, .. }) if obs.elapsed > want.fail_within => Verdict::fail(format!(
            "the scheduler's reason came only {secs:.1}s after the change (allowed {}s of the {}s deadline): {reason}",
            want.fail_within.as_secs(),
            want.deadline.as_secs()
        )),
        Err(WaitError::Failed { reason, .. }) => {
            let baseline = match obs.baseline {
                Some(_) => "the unchanged stack rolled out; ",
                None => "",
            };
            Verdict::pass(format!(
                "{baseline}with {} the run failed fast, {secs:.1}s after the change (deadline {}s), with the scheduler's reason: {reason}",
                want.change,
                want.deadline.as_secs()
            ))
        }
    };
    v.with_metric("fail_fast_s", secs)
}

fn describe_change(workload: &str, changes: &[(String, ResourceRequirements)]) -> String {
    changes
        .iter()
        .map(|(c, r)| {
            let cpu = r.requests.as_ref().and_then(|m| m.get("cpu")).map(|q| q.0.clone()).unwrap_or_else(|| "-".into());
            format!("{workload}/{c} requesting cpu {cpu}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::InsufficientResources = ctx.params_as()?;
    let (workload, variant, expect_reason) = (p.workload.clone(), p.variant.clone(), p.expect_reason.clone());
    let fail_within = Duration::from_secs_f64(p.fail_within_s);
    let deadline = ctx.timeouts.rollout;
    if fail_within >= deadline {
        bail!("fail_within_s ({}s) must be well below the rollout deadline ({}s)", fail_within.as_secs(), deadline.as_secs());
    }
    let (kind, _) = workload_selector(&ctx.stack, &workload)?;
    let applied_directly = ctx.stack.variant.as_deref() == Some(variant.as_str());
    let mut phases = Vec::new();

    let (baseline, change) = if applied_directly {
        let good = Stack::find(ctx.stack.name())?;
        (None, describe_change(&workload, &resource_changes(&good, &ctx.stack, &workload)?))
    } else {
        let subject = ctx.stack.variant(&variant)?;
        let changes = resource_changes(&ctx.stack, &subject, &workload)?;
        check_edit(&changes, &p.container, &p.cpu)?;
        let started = now_ms();
        let baseline = ctx.wait_stack_ready().await.map_err(|e| format!("{e:#}"));
        phases.push(probe_phase(&ctx.log, "unchanged stack rolls out", started));
        if baseline.is_ok() {
            for (container, resources) in &changes {
                ctx.actions.set_resources(kind, &workload, container, resources).await?;
            }
        }
        (Some(baseline), describe_change(&workload, &changes))
    };

    let want = Expect { reason: expect_reason, fail_within, deadline, change };
    if let Some(Err(_)) = &baseline {
        let obs = Observed { baseline, subject: Ok(()), elapsed: Duration::ZERO };
        let mut v = judge(&obs, &want);
        v.metrics.clear();
        v.phases = phases;
        return Ok(v);
    }

    let started = now_ms();
    let t0 = Instant::now();
    let subject = match kind {
        "Deployment" => waits::deployment_rollout(&ctx.client, &ctx.ns, &workload, deadline).await.map(drop),
        _ => waits::statefulset_rollout(&ctx.client, &ctx.ns, &workload, deadline).await.map(drop),
    };
    let elapsed = t0.elapsed();
    phases.push(probe_phase(&ctx.log, &format!("{} rolls out", want.change), started));
    let mut v = judge(&Observed { baseline, subject, elapsed }, &want);
    v.phases = phases;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::wait::Progress;
    use crate::wait::watch::{Cache, Snapshot, judge_deployment};
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::{Event, Pod};
    use kube::runtime::watcher;

    use crate::samples::value as sample;

    fn fill<K: kube::Resource + Clone>(cache: &mut Cache<K>, objects: Vec<K>) {
        cache.apply(watcher::Event::Init);
        for o in objects {
            cache.apply(watcher::Event::InitApply(o));
        }
        cache.apply(watcher::Event::InitDone);
    }

    /// The fail-fast wait's verdict on recorded objects: a Deployment midway through a rollout
    /// whose new ReplicaSet's Pod the scheduler refused (the captured unschedulable Pod, made a
    /// member of that ReplicaSet — derived), with or without the scheduler's event.
    fn wait_outcome(condition_message: bool, events: bool) -> Result<(), WaitError> {
        let mut s = Snapshot::default();
        let d: Deployment = serde_json::from_value(sample("deployment-rollout-midway-observed.json")).unwrap();
        fill(&mut s.deployments, vec![d]);
        let rss: Vec<ReplicaSet> = serde_json::from_value(sample("replicasets-after-rollout.json")["items"].clone()).unwrap();
        let rs_uid = rss.iter().find(|r| r.metadata.name.as_deref() == Some("web-57d8bfc944")).unwrap().metadata.uid.clone().unwrap();
        fill(&mut s.replica_sets, rss);
        let mut pod = sample("pod-unschedulable.json");
        pod["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-57d8bfc944", "uid": rs_uid, "controller": true
        }]);
        if !condition_message {
            pod["status"]["conditions"][0].as_object_mut().unwrap().remove("message");
        }
        fill(&mut s.pods, vec![serde_json::from_value::<Pod>(pod).unwrap()]);
        let ev: Vec<Event> = if events { serde_json::from_value(sample("events-failedscheduling.json")["items"].clone()).unwrap() } else { vec![] };
        fill(&mut s.events, ev);
        match judge_deployment(&s, "web") {
            Progress::Failed(reason) => Err(WaitError::Failed { what: "deployment samples/web rollout".into(), reason }),
            Progress::Done => Ok(()),
            Progress::Waiting(last) => Err(WaitError::Timeout { what: "deployment samples/web rollout".into(), after: Duration::from_secs(240), last }),
        }
    }

    fn expect() -> Expect {
        Expect {
            reason: "Insufficient cpu".into(),
            fail_within: Duration::from_secs(60),
            deadline: Duration::from_secs(240),
            change: "sms-web/sms-web requesting cpu 1k".into(),
        }
    }

    #[test]
    fn the_scheduler_reason_within_seconds_passes() {
        let obs = Observed { baseline: Some(Ok(())), subject: wait_outcome(true, true), elapsed: Duration::from_millis(3_200) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("3.2s after the change (deadline 240s)"), "{}", v.reason);
        assert!(v.reason.contains("Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."), "{}", v.reason);
        assert!(v.reason.starts_with("the unchanged stack rolled out"), "{}", v.reason);
        assert_eq!(v.metrics["fail_fast_s"], 3.2);
    }

    #[test]
    fn the_reason_comes_from_the_failedscheduling_event_when_the_condition_has_none() {
        let obs = Observed { baseline: Some(Ok(())), subject: wait_outcome(false, true), elapsed: Duration::from_secs(2) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("Insufficient cpu"), "{}", v.reason);
        // Without the event nor the message the diagnosis is there, but not the reason: caught.
        let obs = Observed { baseline: Some(Ok(())), subject: wait_outcome(false, false), elapsed: Duration::from_secs(2) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("but not with \"Insufficient cpu\""), "{}", v.reason);
    }

    #[test]
    fn a_timeout_is_not_a_report_of_the_cause() {
        let obs = Observed {
            baseline: Some(Ok(())),
            subject: Err(WaitError::Timeout { what: "deployment x/sms-web rollout".into(), after: Duration::from_secs(240), last: "1 of 6 updated replicas are available".into() }),
            elapsed: Duration::from_secs(240),
        };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("ran into the 240s deadline") && v.reason.contains("1 of 6 updated"), "{}", v.reason);
        // The right reason, but late, is not "fast" either.
        let obs = Observed { baseline: Some(Ok(())), subject: wait_outcome(true, true), elapsed: Duration::from_secs(200) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("only 200.0s after the change"), "{}", v.reason);
    }

    #[test]
    fn the_good_stack_is_the_control() {
        // Applied with its own resources, the same wait finds the rollout complete: the verdict
        // is the opposite of the variant's.
        let obs = Observed { baseline: Some(Ok(())), subject: Ok(()), elapsed: Duration::from_secs(30) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("completed in 30.0s"), "{}", v.reason);
        // A baseline refused by the scheduler (a cluster too small for the stack) is no proof.
        let obs = Observed { baseline: Some(wait_outcome(true, true).map_err(|e| e.to_string())), subject: Ok(()), elapsed: Duration::ZERO };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("the unchanged stack did not roll out (deployment samples/web rollout: pod unschedulable"), "{}", v.reason);
    }

    #[test]
    fn another_diagnosis_is_not_this_one() {
        let mut s = Snapshot::default();
        fill(&mut s.pods, vec![serde_json::from_value::<Pod>(sample("pod-imagepullbackoff.json")).unwrap()]);
        let d = crate::wait::pods::diagnose(&s.pods.objects()[0], &[]).unwrap().to_string();
        let obs = Observed { baseline: Some(Ok(())), subject: Err(WaitError::Failed { what: "rollout".into(), reason: d }), elapsed: Duration::from_secs(12) };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("ImagePullBackOff"), "{}", v.reason);
    }

    #[test]
    fn the_sms_web_variant_changes_only_the_web_containers_cpu() {
        let good = Stack::find("sms-web").unwrap();
        let spec = good.spec.checks.iter().find(|c| c.name == "insufficient-resources").expect("sms-web declares the check");
        assert!(spec.negative.is_none(), "the baseline inside the check is the control");
        let variant = spec.params["variant"].as_str().unwrap();
        let workload = spec.params["workload"].as_str().unwrap();
        let subject = good.variant(variant).unwrap();
        let changes = resource_changes(&good, &subject, workload).unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        let (container, r) = &changes[0];
        assert_eq!(container, "sms-web");
        let cpu = |m: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| m.as_ref().unwrap()["cpu"].0.clone();
        assert_eq!((cpu(&r.requests), cpu(&r.limits)), ("1000".to_string(), "1000".to_string()));
        assert_eq!(r.requests.as_ref().unwrap()["memory"].0, "200Mi", "memory stays the stack's");
        assert_eq!(describe_change(workload, &changes), "sms-web/sms-web requesting cpu 1000");
        let param = |k: &str| spec.params[k].as_str().unwrap();
        check_edit(&changes, param("container"), param("cpu")).unwrap();
        let e = check_edit(&changes, param("container"), "64").unwrap_err().to_string();
        assert!(e.contains("the check's params say \"64\""), "{e}");
        assert!(check_edit(&changes, "sms-celery", param("cpu")).is_err());
        // The good stack against itself changes nothing: no check without an edit.
        assert!(resource_changes(&good, &good, workload).is_err());
    }
}
