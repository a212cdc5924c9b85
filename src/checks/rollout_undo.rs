//! `rollout-undo` (shared/STACKS.md): v1 -> v2 -> `kubectl rollout undo`. The served version
//! follows v1, v2, v1, and the undo brings back the v1 ReplicaSet itself (re-labelled as the
//! newest revision) rather than a new one, keeping no more ReplicaSets than
//! revisionHistoryLimit allows.

use super::actions::{serving_pods, workload_selector};
use super::http_probe::{Answer, EntryPoint, probe_phase};
use super::{CheckContext, Phase, Verdict};
use crate::observe::now_ms;
use crate::wait::rollout::{new_replica_set, owned_replica_sets};
use crate::wait::watch as waits;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The API server's default for spec.revisionHistoryLimit.
const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The answers while one version should be served.
#[derive(Debug, Clone)]
pub struct Stage {
    pub label: String,
    pub expect: String,
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone)]
pub struct Observed {
    /// v1, v2, v1 after the undo (fewer if the run stopped early).
    pub stages: Vec<Stage>,
    /// The ReplicaSet that served v1 before anything changed.
    pub v1_replica_set: String,
    /// The Deployment and the namespace's ReplicaSets after the undo.
    pub deployment: Deployment,
    pub replica_sets: Vec<ReplicaSet>,
}

fn revision(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

fn judge_stage(s: &Stage) -> Result<String, String> {
    if s.answers.is_empty() {
        return Err(format!("{}: no request was sent", s.label));
    }
    let wrong: Vec<&Answer> = s.answers.iter().filter(|a| !a.is_2xx() || a.version.as_deref() != Some(&s.expect)).collect();
    if let Some(first) = wrong.first() {
        let what = match (&first.version, first.is_2xx()) {
            (Some(v), true) => format!("version {v} from {}", first.backend.as_deref().unwrap_or("an unnamed backend")),
            (None, true) => "a response without X-Seaworthy-Version".to_string(),
            _ => first.describe(),
        };
        return Err(format!("{}: {} of {} responses were not {} (first: {what})", s.label, wrong.len(), s.answers.len(), s.expect));
    }
    Ok(format!("{} ({}/{})", s.expect, s.answers.len(), s.answers.len()))
}

fn judge_history(obs: &Observed) -> Result<String, String> {
    let d = &obs.deployment;
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let owned = owned_replica_sets(d, &obs.replica_sets);
    let limit = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(DEFAULT_HISTORY_LIMIT);
    let listed = || owned.iter().map(|rs| format!("{} (revision {})", rs.metadata.name.as_deref().unwrap_or("?"), revision(rs).map_or("?".into(), |r| r.to_string()))).collect::<Vec<_>>().join(", ");
    if owned.len() as i64 > limit as i64 + 1 {
        return Err(format!("Deployment {name} keeps {} ReplicaSets, more than revisionHistoryLimit {limit} + the current one: {}", owned.len(), listed()));
    }
    let Some(v1) = owned.iter().find(|rs| rs.metadata.name.as_deref() == Some(&obs.v1_replica_set)) else {
        return Err(format!("the v1 ReplicaSet {} is gone after the undo; the Deployment has {}", obs.v1_replica_set, listed()));
    };
    let newest = owned.iter().filter_map(|rs| revision(rs)).max();
    let v1_rev = revision(v1);
    if v1_rev.is_none() || v1_rev != newest || owned.iter().filter(|rs| revision(rs) == newest).count() != 1 {
        return Err(format!(
            "the undo did not make the v1 ReplicaSet {} the newest revision: {}",
            obs.v1_replica_set,
            listed()
        ));
    }
    let v1_rev = v1_rev.expect("checked");
    let current = new_replica_set(d, &obs.replica_sets).and_then(|rs| rs.metadata.name.clone());
    if current.as_deref() != Some(obs.v1_replica_set.as_str()) {
        return Err(format!("the Deployment's template after the undo is not the v1 ReplicaSet {}'s (current: {})", obs.v1_replica_set, current.as_deref().unwrap_or("none")));
    }
    let d_rev: Option<i64> = d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok());
    if d_rev != Some(v1_rev) {
        return Err(format!("Deployment {name} is at revision {}, but its v1 ReplicaSet {} is revision {v1_rev}", d_rev.map_or("?".into(), |r| r.to_string()), obs.v1_replica_set));
    }
    let history = v1.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_HISTORY)).map(|h| format!(", formerly revision {h}")).unwrap_or_default();
    Ok(format!(
        "ReplicaSet {} came back as revision {v1_rev}{history}; {} ReplicaSets kept (revisionHistoryLimit {limit})",
        obs.v1_replica_set,
        owned.len()
    ))
}

pub fn judge(obs: &Observed) -> Verdict {
    let mut served = Vec::new();
    for s in &obs.stages {
        match judge_stage(s) {
            Ok(line) => served.push(line),
            Err(r) => return Verdict::fail(r),
        }
    }
    if obs.stages.len() < 3 {
        return Verdict::fail(format!("only {} of the 3 stages (v1, v2, v1 after the undo) were observed", obs.stages.len()));
    }
    match judge_history(obs) {
        Ok(history) => Verdict::pass(format!("served {}; {history}", served.join(", then "))),
        Err(r) => Verdict::fail(r),
    }
}

struct Target<'a> {
    ctx: &'a CheckContext,
    deployment: String,
    selector: String,
    entry: EntryPoint,
    path: String,
}

impl Target<'_> {
    async fn sample(&self, label: &str, expect: &str) -> (Stage, Phase) {
        let t = now_ms();
        let backends = serving_pods(&self.ctx.actions.pods(&self.selector).await.unwrap_or_default());
        // Only the answer that ended the settling counts (see EntryPoint::settle).
        let mut answers: Vec<Answer> = self.entry.settle(&self.path, Duration::from_secs(30)).await.pop().into_iter().collect();
        answers.extend(self.entry.sample_backends(&self.path, &backends, 10, 10 * backends.len().max(2)).await);
        (Stage { label: label.into(), expect: expect.into(), answers }, probe_phase(&self.ctx.log, label, t))
    }

    /// Wait until the rollout started by `change` is complete and the Pods it replaced are gone
    /// (a Pod in preStop still answers).
    async fn roll(&self, change: impl std::future::Future<Output = Result<()>>) -> Result<f64> {
        let old = self.ctx.actions.pods(&self.selector).await?;
        let started = Instant::now();
        change.await?;
        waits::deployment_rollout(&self.ctx.client, &self.ctx.ns, &self.deployment, self.ctx.timeouts.rollout).await?;
        for p in &old {
            if let (Some(name), Some(uid)) = (&p.metadata.name, &p.metadata.uid) {
                waits::pod_gone(&self.ctx.client, &self.ctx.ns, name, uid, self.ctx.timeouts.rollout).await?;
            }
        }
        Ok(started.elapsed().as_secs_f64())
    }

    async fn current(&self) -> Result<(Deployment, Vec<ReplicaSet>)> {
        let d = Api::<Deployment>::namespaced(self.ctx.client.clone(), &self.ctx.ns).get(&self.deployment).await?;
        let rss = Api::<ReplicaSet>::namespaced(self.ctx.client.clone(), &self.ctx.ns).list(&ListParams::default()).await?.items;
        Ok((d, rss))
    }
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let deployment = ctx.param_str("deployment")?;
    let container = ctx.param_str("container")?;
    let image = ctx.param_str("image")?;
    let versions: Vec<String> = ctx
        .params
        .get("versions")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let [from, to] = versions.as_slice() else {
        bail!("stack {}: check param `versions` must be [from, to]", ctx.stack.name());
    };
    let spec = ctx.stack.pod_spec(&deployment).with_context(|| format!("stack {} has no workload {deployment}", ctx.stack.name()))?;
    let init = spec.init_containers.iter().flatten().any(|c| c.name == container);
    if !init && !spec.containers.iter().any(|c| c.name == container) {
        bail!("Deployment {deployment} has no container {container}");
    }
    let (_, selector) = workload_selector(&ctx.stack, &deployment)?;
    let path = ctx.params.get("path").and_then(|v| v.as_str()).unwrap_or(&ctx.stack.spec.entry.path).to_string();
    let t = Target { ctx, deployment: deployment.clone(), selector, entry: EntryPoint::of(ctx)?, path };

    let (d, rss) = t.current().await?;
    let v1_replica_set = new_replica_set(&d, &rss).and_then(|rs| rs.metadata.name.clone()).with_context(|| format!("Deployment {deployment} has no ReplicaSet for its template"))?;
    let mut stages = Vec::new();
    let mut phases = Vec::new();
    let finish = |stages: Vec<Stage>, phases: Vec<Phase>, d: Deployment, rss: Vec<ReplicaSet>| {
        let mut v = judge(&Observed { stages, v1_replica_set: v1_replica_set.clone(), deployment: d, replica_sets: rss });
        v.phases = phases;
        v
    };

    let (stage, phase) = t.sample(&format!("before the change ({from})"), from).await;
    let ok = judge_stage(&stage).is_ok();
    stages.push(stage);
    phases.push(phase);
    if !ok {
        return Ok(finish(stages, phases, d, rss));
    }

    let to_ref = (ctx.image_ref)(&image, to)?;
    let to_s = t.roll(ctx.actions.set_image("Deployment", &deployment, &container, init, &to_ref)).await?;
    let (stage, phase) = t.sample(&format!("after set image {container}={image}:{to}"), to).await;
    let ok = judge_stage(&stage).is_ok();
    stages.push(stage);
    phases.push(phase);
    if !ok {
        let (d, rss) = t.current().await?;
        return Ok(finish(stages, phases, d, rss));
    }

    let undo_s = t.roll(ctx.actions.rollout_undo(&deployment)).await?;
    let (stage, phase) = t.sample(&format!("after rollout undo ({from} again)"), from).await;
    stages.push(stage);
    phases.push(phase);
    let (d, rss) = t.current().await?;
    Ok(finish(stages, phases, d, rss).with_metric("rollout_s", to_s).with_metric("undo_s", undo_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::samples::{load, load_list};

    fn answers(version: &str, backends: &[&str]) -> Vec<Answer> {
        (0..10).map(|i| Answer { version: Some(version.into()), ..Answer::response(200, Some(backends[i % backends.len()]), "ok") }).collect()
    }

    fn stages() -> Vec<Stage> {
        vec![
            Stage { label: "before the change (v1)".into(), expect: "v1".into(), answers: answers("v1", &["web-7d79bd4fb7-a", "web-7d79bd4fb7-b"]) },
            Stage { label: "after set image web=web:v2".into(), expect: "v2".into(), answers: answers("v2", &["web-57d8bfc944-a", "web-57d8bfc944-b"]) },
            Stage { label: "after rollout undo (v1 again)".into(), expect: "v1".into(), answers: answers("v1", &["web-7d79bd4fb7-c", "web-7d79bd4fb7-d"]) },
        ]
    }

    /// The captured v1 -> v2 rollout of `web` (revision 1 = web-7d79bd4fb7, revision 2 =
    /// web-57d8bfc944), turned into the state after `rollout undo` as the deployment controller
    /// leaves it: the v1 ReplicaSet's revision annotation becomes 3 with revision-history "1", it
    /// is scaled back up and the v2 one down, and the Deployment carries the v1 template again at
    /// revision 3. Changed in code: those annotations, replicas and the Deployment's template.
    fn after_undo() -> (Deployment, Vec<ReplicaSet>) {
        let mut d: Deployment = load("deployment-rollout-complete.json");
        let mut rss: Vec<ReplicaSet> = load_list("replicasets-after-rollout.json");
        for rs in &mut rss {
            let ann = rs.metadata.annotations.get_or_insert_default();
            if rs.metadata.name.as_deref() == Some("web-7d79bd4fb7") {
                ann.insert(REVISION.into(), "3".into());
                ann.insert(REVISION_HISTORY.into(), "1".into());
                rs.spec.as_mut().unwrap().replicas = Some(3);
                let mut template = rs.spec.as_ref().unwrap().template.clone().unwrap();
                template.metadata.as_mut().unwrap().labels.as_mut().unwrap().remove("pod-template-hash");
                d.spec.as_mut().unwrap().template = template;
            } else {
                rs.spec.as_mut().unwrap().replicas = Some(0);
            }
        }
        d.metadata.annotations.get_or_insert_default().insert(REVISION.into(), "3".into());
        (d, rss)
    }

    fn observed() -> Observed {
        let (deployment, replica_sets) = after_undo();
        Observed { stages: stages(), v1_replica_set: "web-7d79bd4fb7".into(), deployment, replica_sets }
    }

    #[test]
    fn v1_v2_v1_with_the_old_replica_set_brought_back_passes() {
        let v = judge(&observed());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert_eq!(
            v.reason,
            "served v1 (10/10), then v2 (10/10), then v1 (10/10); ReplicaSet web-7d79bd4fb7 came back as revision 3, formerly revision 1; 2 ReplicaSets kept (revisionHistoryLimit 10)"
        );
    }

    #[test]
    fn a_version_that_does_not_follow_is_reported_with_its_backend() {
        let mut obs = observed();
        obs.stages[2].answers[4] = Answer { version: Some("v2".into()), ..Answer::response(200, Some("web-57d8bfc944-b"), "ok") };
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reason, "after rollout undo (v1 again): 1 of 10 responses were not v1 (first: version v2 from web-57d8bfc944-b)");
        obs.stages[1].answers[0] = Answer::response(503, None, "no healthy upstream");
        assert_eq!(judge(&obs).reason, "after set image web=web:v2: 1 of 10 responses were not v2 (first: 503 \"no healthy upstream\")");
        obs.stages.truncate(1);
        assert!(judge(&obs).reason.starts_with("only 1 of the 3 stages"));
    }

    /// The captured state before any undo: the v1 ReplicaSet is still revision 1, the Deployment
    /// at revision 2 on the v2 template.
    #[test]
    fn an_undo_that_did_not_bring_v1_back_fails() {
        let mut obs = observed();
        obs.deployment = load("deployment-rollout-complete.json");
        obs.replica_sets = load_list("replicasets-after-rollout.json");
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reason, "the undo did not make the v1 ReplicaSet web-7d79bd4fb7 the newest revision: web-57d8bfc944 (revision 2), web-7d79bd4fb7 (revision 1)");
    }

    /// An "undo" that created a third ReplicaSet (a copy of v1's template under a new hash)
    /// instead of reusing web-7d79bd4fb7; derived from the captured list by cloning the v1
    /// ReplicaSet under a new name and UID at revision 3.
    #[test]
    fn a_new_replica_set_instead_of_the_old_one_fails() {
        let mut obs = observed();
        obs.replica_sets = load_list("replicasets-after-rollout.json");
        let mut copy = obs.replica_sets.iter().find(|rs| rs.metadata.name.as_deref() == Some("web-7d79bd4fb7")).unwrap().clone();
        copy.metadata.name = Some("web-6f5d4c3b2a".into());
        copy.metadata.uid = Some("00000000-0000-4000-8000-000000000003".into());
        copy.metadata.annotations.as_mut().unwrap().insert(REVISION.into(), "3".into());
        obs.replica_sets.push(copy);
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("the undo did not make the v1 ReplicaSet web-7d79bd4fb7 the newest revision: "), "{}", v.reason);
        assert!(v.reason.contains("web-6f5d4c3b2a (revision 3)"), "{}", v.reason);
    }

    #[test]
    fn more_replica_sets_than_the_history_limit_allows_fail() {
        let mut obs = observed();
        obs.deployment.spec.as_mut().unwrap().revision_history_limit = Some(0);
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("Deployment web keeps 2 ReplicaSets, more than revisionHistoryLimit 0 + the current one"), "{}", v.reason);
        // A ReplicaSet of another Deployment in the namespace is not counted.
        let mut obs = observed();
        let mut other = obs.replica_sets[0].clone();
        other.metadata.name = Some("other-1".into());
        other.metadata.owner_references.as_mut().unwrap()[0].uid = "another-uid".into();
        obs.replica_sets.push(other);
        obs.deployment.spec.as_mut().unwrap().revision_history_limit = Some(1);
        assert_eq!(judge(&obs).outcome, Outcome::Pass);
    }

    #[test]
    fn the_fixtures_name_a_container_and_two_versions_of_its_image() {
        for name in ["phpdemo", "myblog"] {
            let stack = crate::stack::Stack::find(name).unwrap();
            let check = stack.spec.checks.iter().find(|c| c.name == "rollout-undo").unwrap();
            let p = &check.params;
            let spec = stack.pod_spec(p["deployment"].as_str().unwrap()).unwrap();
            let container = p["container"].as_str().unwrap();
            let image = spec.init_containers.iter().flatten().chain(&spec.containers).find(|c| c.name == container).unwrap().image.clone().unwrap();
            let versions: Vec<&str> = p["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(image, format!("{}:{}", p["image"].as_str().unwrap(), versions[0]), "{name}");
            let declared = stack.spec.images.iter().find(|i| i.name == p["image"].as_str().unwrap()).unwrap();
            assert!(versions.iter().all(|v| declared.versions.iter().any(|d| d == v)), "{name}");
            let limit = stack.deployment(p["deployment"].as_str().unwrap()).unwrap().spec.as_ref().unwrap().revision_history_limit;
            assert!(limit.unwrap_or(DEFAULT_HISTORY_LIMIT) >= 1, "{name}: an undo needs the previous ReplicaSet kept");
        }
    }
}
