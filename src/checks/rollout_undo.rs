//! `rollout-undo` (shared/STACKS.md): v1 -> v2 -> `kubectl rollout undo`. The served version
//! follows v1, v2, v1, and the undo brings back the v1 ReplicaSet itself (re-labelled as the
//! newest revision) rather than a new one, keeping no more ReplicaSets than
//! revisionHistoryLimit allows.
//!
//! One constant-rate load runs across the whole sequence, so the versions are judged on every
//! response on one time axis (not on a few probes per stage), and a request that fails during the
//! update or the undo is on the report's timeline next to the Pod that was changing.

use super::context::CheckContext;
use super::rollout_zero_5xx::{ImageUpdate, Traffic, Workload, terminating_pod};
use super::timeline::{describe, succeeded};
use super::verdict::{Phase, Verdict};
use crate::observe::{Entry, now_ms};
use crate::stack::Stack;
use crate::traffic::{LoadConfig, Schedule};
use crate::wait::rollout::{new_replica_set, owned_replica_sets};
use crate::wait::watch as waits;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::Duration;

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The API server's default for spec.revisionHistoryLimit.
const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// One of the two rolling updates (set image, then the undo), wall-clock ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The change was made.
    pub at_ms: u64,
    /// The controller reported the rollout complete.
    pub done_ms: Option<u64>,
    /// Every Pod that existed before the change was gone (deleted, not just terminating).
    pub gone_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub rollout: Step,
    /// Absent when the update to v2 did not complete.
    pub undo: Option<Step>,
    /// The load was stopped.
    pub stopped_ms: u64,
}

/// The load's phase on the report's timeline: `v1 -> v2 -> rollout undo`.
fn phase_name(from: &str, to: &str) -> String {
    format!("{from} -> {to} -> rollout undo")
}

/// What the load and the cluster recorded across v1 -> v2 -> undo.
#[derive(Debug, Clone)]
pub struct UndoRun {
    pub workload: String,
    pub from: String,
    pub to: String,
    pub traffic: Traffic,
    pub phases: Vec<Phase>,
    pub marks: Marks,
    /// Why a step did not complete, if one did not.
    pub error: Option<String>,
    /// The namespace's timeline (Observer + actions).
    pub events: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub run: UndoRun,
    /// The ReplicaSet that served v1 before anything changed.
    pub v1_replica_set: String,
    /// The Deployment and the namespace's ReplicaSets after the undo.
    pub deployment: Deployment,
    pub replica_sets: Vec<ReplicaSet>,
    /// A failed request fails the check (see [`promises_zero_5xx`]).
    pub zero_failures: bool,
}

/// Whether a failed request during the update or the undo fails this check, not only shows in it.
///
/// STACKS.md's criteria for rollout-undo are the versions and the revision history; zero failed
/// requests is rollout-zero-5xx's promise, and only the stacks that declare that check make it
/// (phpdemo: preStop, graceful php-fpm/nginx stop, maxUnavailable 0, with an abrupt-stop negative
/// control). An undo is the same rolling update run backwards, through the same termination path,
/// so on those stacks a failure during it breaks that promise and must fail here as it would
/// there: rollout-zero-5xx alone would never see it. myblog declares no such check (no preStop;
/// gunicorn stops accepting on SIGTERM while the Pod may still be in the endpoints), so there the
/// failures are evidence in the reason, the timeline and the metrics, not the verdict.
pub fn promises_zero_5xx(stack: &Stack) -> bool {
    stack.spec.checks.iter().any(|c| c.name == "rollout-zero-5xx")
}

fn revision(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// A stretch of the run and the versions that may answer in it.
struct Window<'a> {
    label: String,
    expect: Vec<&'a str>,
    /// One version serves alone: at least one response must show it.
    steady: bool,
    from_ms: u64,
    to_ms: u64,
}

/// v1 until the image changes, v1 or v2 while it rolls, v2 alone once the last v1 Pod is gone,
/// v1 or v2 during the undo, v1 alone once the last v2 Pod is gone. "Gone" rather than "rollout
/// complete": a Pod in its preStop still answers after the controller reports done. A step that
/// did not complete leaves its rolling window open to the end of the run.
fn windows(run: &UndoRun) -> Vec<Window<'_>> {
    let (v1, v2, m) = (run.from.as_str(), run.to.as_str(), &run.marks);
    let open = |end: Option<u64>| end.unwrap_or(u64::MAX);
    let mut w = vec![
        Window { label: format!("before the change ({v1})"), expect: vec![v1], steady: true, from_ms: 0, to_ms: m.rollout.at_ms },
        Window { label: format!("while {v2} rolled out"), expect: vec![v1, v2], steady: false, from_ms: m.rollout.at_ms, to_ms: open(m.rollout.gone_ms) },
    ];
    let Some(v1_gone) = m.rollout.gone_ms else { return w };
    w.push(Window { label: format!("after the last {v1} Pod was gone ({v2})"), expect: vec![v2], steady: true, from_ms: v1_gone, to_ms: open(m.undo.map(|u| u.at_ms)) });
    let Some(undo) = m.undo else { return w };
    w.push(Window { label: "during the rollout undo".into(), expect: vec![v1, v2], steady: false, from_ms: undo.at_ms, to_ms: open(undo.gone_ms) });
    let Some(v2_gone) = undo.gone_ms else { return w };
    w.push(Window { label: format!("after the undo, once the last {v2} Pod was gone ({v1} again)"), expect: vec![v1], steady: true, from_ms: v2_gone, to_ms: u64::MAX });
    w
}

/// Every successful response judged by its X-Seaworthy-Version against the window it was sent
/// in. Ok: the served versions in order, `v1 (n responses)`; Err: what was out of order.
fn judge_versions(run: &UndoRun) -> Result<Vec<String>, Vec<String>> {
    let t = &run.traffic;
    if !t.records.iter().any(|r| t.version(r).is_some()) {
        return Err(vec!["no response named its version (X-Seaworthy-Version), so v1 and v2 cannot be told apart".into()]);
    }
    let (mut served, mut problems) = (Vec::new(), Vec::new());
    for w in windows(run) {
        let answered: Vec<_> = t.records.iter().filter(|r| succeeded(r) && (w.from_ms..w.to_ms).contains(&t.sent_ms(r))).collect();
        if w.steady && answered.is_empty() {
            problems.push(format!("{}: no request was answered", w.label));
            continue;
        }
        let mut wrong: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in &answered {
            if !t.version(r).is_some_and(|v| w.expect.contains(&v)) {
                let key = (t.version(r).unwrap_or("no version").to_string(), t.backend(r).unwrap_or("an unnamed backend").to_string());
                *wrong.entry(key).or_default() += 1;
            }
        }
        if wrong.is_empty() {
            if w.steady {
                served.push(format!("{} ({} responses)", w.expect[0], answered.len()));
            }
        } else {
            let n: usize = wrong.values().sum();
            let what: Vec<String> = wrong.iter().map(|((v, b), k)| format!("{v} from {b} x{k}")).collect();
            problems.push(format!("{}: {n} of {} responses were not {}: {}", w.label, answered.len(), w.expect.join(" or "), what.join(", ")));
        }
    }
    if problems.is_empty() { Ok(served) } else { Err(problems) }
}

/// Each failure cluster, which of the two rolling updates it fell in, and the Pod that was
/// terminating next to it.
fn failure_story(run: &UndoRun) -> String {
    let t = &run.traffic;
    let undo_ms = run.marks.undo.map(|u| u.at_ms).unwrap_or(u64::MAX);
    t.clusters(&run.events)
        .iter()
        .map(|c| {
            let during = if c.at_ms >= undo_ms {
                "during the rollout undo".to_string()
            } else if c.at_ms >= run.marks.rollout.at_ms {
                format!("during the rollout {} -> {}", run.from, run.to)
            } else {
                format!("before the change ({})", run.from)
            };
            let pod = match terminating_pod(c, t, &run.events) {
                Some(e) => format!(" ({} was terminating from {:.1}s)", e.object, t.rel_s(e.at_ms)),
                None => " (no Pod was terminating then)".into(),
            };
            format!("{during}: {}{pod}", describe(std::slice::from_ref(c)))
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let run = &obs.run;
    let t = &run.traffic;
    let sent = t.records.len();
    let failed = t.records.iter().filter(|r| !succeeded(r)).count();
    let mut problems: Vec<String> = run.error.iter().cloned().collect();
    if sent == 0 {
        problems.push("no request was sent".into());
    }
    let failures = (failed > 0).then(|| format!("{failed} of {sent} requests failed across {} of {}: {}", phase_name(&run.from, &run.to), run.workload, failure_story(run)));
    if obs.zero_failures && let Some(f) = &failures {
        problems.push(format!("{f} (the stack promises zero-5xx rollouts: it declares rollout-zero-5xx)"));
    }
    let served = match judge_versions(run) {
        Ok(served) => served,
        Err(p) => {
            problems.extend(p);
            vec![]
        }
    };
    // After a step that did not complete, the ReplicaSets are mid-way: the error says why.
    let history = if run.error.is_none() { Some(judge_history(obs)) } else { None };
    if let Some(Err(h)) = &history {
        problems.push(h.clone());
    }
    let verdict = match history {
        Some(Ok(history)) if problems.is_empty() => {
            let failures = match failures {
                Some(f) => format!("; {f} (evidence only: the stack does not declare rollout-zero-5xx)"),
                None => format!("; none of {sent} requests failed"),
            };
            Verdict::pass(format!("served {}, only {} or {} while rolling; {history}{failures}", served.join(", then "), run.from, run.to))
        }
        _ => Verdict::fail(problems.join("; ")),
    };
    let m = &run.marks;
    let took = |s: &Step| s.done_ms.map(|d| d.saturating_sub(s.at_ms) as f64 / 1000.0);
    let mut v = verdict.with_metric("sent", sent as f64).with_metric("failed", failed as f64);
    if let Some(s) = took(&m.rollout) {
        v = v.with_metric("rollout_s", s);
    }
    if let Some(s) = m.undo.as_ref().and_then(took) {
        v = v.with_metric("undo_s", s);
    }
    run.phases.iter().cloned().fold(v, Verdict::with_phase)
}

async fn current(ctx: &CheckContext, deployment: &str) -> Result<(Deployment, Vec<ReplicaSet>)> {
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), &ctx.ns).get(deployment).await?;
    let rss = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &ctx.ns).list(&ListParams::default()).await?.items;
    Ok((d, rss))
}

/// Make `change` and wait until its rollout is complete and every Pod it replaced is gone (a Pod
/// in preStop still answers). A step that fails is recorded, not returned, so that the traffic
/// so far is still judged and reported.
async fn step(ctx: &CheckContext, workload: &Workload, what: &str, change: impl Future<Output = Result<()>>) -> (Step, Option<String>) {
    let mut s = Step { at_ms: now_ms(), done_ms: None, gone_ms: None };
    let old = match ctx.actions.pods(&workload.selector).await {
        Ok(old) => old,
        Err(e) => return (s, Some(format!("{what}: listing the Pods before it failed: {e:#}"))),
    };
    s.at_ms = now_ms();
    if let Err(e) = change.await {
        return (s, Some(format!("{what} failed: {e:#}")));
    }
    if let Err(e) = workload.wait_rollout(ctx).await {
        return (s, Some(format!("{what} did not complete: {e}")));
    }
    s.done_ms = Some(now_ms());
    for p in &old {
        let (Some(name), Some(uid)) = (p.metadata.name.as_deref(), p.metadata.uid.as_deref()) else { continue };
        if let Err(e) = waits::pod_gone(&ctx.client, &ctx.ns, name, uid, ctx.timeouts.rollout).await {
            return (s, Some(format!("{what} did not complete: {e}")));
        }
    }
    s.gone_ms = Some(now_ms());
    (s, None)
}

/// The load runs from `hold` before the image change to `hold` after the undo's last v2 Pod is
/// gone, and v2 serves alone for `hold` in between, so each of v1, v2, v1 answers on its own.
async fn undo_under_load(ctx: &CheckContext, workload: &Workload, update: &ImageUpdate, cfg: LoadConfig, hold: Duration) -> Result<UndoRun> {
    let reference = (ctx.image_ref)(&update.image, &update.to)?;
    let images: Vec<(String, bool, String)> = update.containers.iter().map(|(c, init)| (c.clone(), *init, reference.clone())).collect();
    let name = phase_name(&update.from, &update.to);
    let running = ctx.start_load(&name, cfg).await?;
    tokio::time::sleep(hold).await;
    let what = format!("the rollout {} -> {} of {}", update.from, update.to, workload.label());
    let (rollout, mut error) = step(ctx, workload, &what, ctx.actions.set_images(workload.kind, &workload.name, &images)).await;
    let mut undo = None;
    if error.is_none() {
        tokio::time::sleep(hold).await;
        let (s, e) = step(ctx, workload, &format!("the rollout undo of {}", workload.label()), ctx.actions.rollout_undo(&workload.name)).await;
        undo = Some(s);
        error = e;
        if error.is_none() {
            tokio::time::sleep(hold).await;
        }
    }
    let stopped_ms = now_ms();
    let started_ms = running.started_ms;
    let (phase, report) = ctx.finish_phase(running, true).await;
    Ok(UndoRun {
        workload: workload.label(),
        from: update.from.clone(),
        to: update.to.clone(),
        traffic: Traffic::new(&name, started_ms, &report),
        phases: vec![phase],
        marks: Marks { rollout, undo, stopped_ms },
        error,
        events: ctx.log.entries(),
    })
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::RolloutUndo = ctx.params_as()?;
    let (deployment, container, image) = (p.deployment.clone(), p.container.clone(), p.image.clone());
    let [from, to] = &p.versions;
    let workload = Workload::find(&ctx.stack, &deployment)?;
    if workload.kind != "Deployment" {
        bail!("stack {}: rollout undo acts on a Deployment, and {deployment} is a {}", ctx.stack.name(), workload.kind);
    }
    // Checked against the manifest: the container must run image:from now.
    let update = ImageUpdate::new(&ctx.stack, &workload, &image, from, to, &[container])?;
    let (d, rss) = current(ctx, &deployment).await?;
    let v1_replica_set = new_replica_set(&d, &rss).and_then(|rs| rs.metadata.name.clone()).with_context(|| format!("Deployment {deployment} has no ReplicaSet for its template"))?;

    // Long enough for two rollouts and their Pods' grace periods; the check stops it.
    let longest = ctx.timeouts.rollout * 6 + Duration::from_secs(120);
    let cfg = ctx.load_config(p.path.as_deref(), Schedule::constant(p.rps, longest)?);
    let hold = Duration::from_secs_f64(p.hold_s);
    let run = undo_under_load(ctx, &workload, &update, cfg, hold).await?;
    let (d, rss) = current(ctx, &deployment).await?;
    Ok(judge(&Observed { run, v1_replica_set, deployment: d, replica_sets: rss, zero_failures: promises_zero_5xx(&ctx.stack) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::rollout_zero_5xx::tests::{T0, entry, rec, terminating_line};
    use crate::observe::Source;
    use crate::samples::{load, load_list};
    use crate::traffic::Outcome::Status;

    const V1: [&str; 3] = ["web-7d79bd4fb7-aaaaa", "web-7d79bd4fb7-bbbbb", "web-7d79bd4fb7-ccccc"];
    const V2: [&str; 3] = ["web-57d8bfc944-zxbcc", "web-57d8bfc944-t4s7f", "web-57d8bfc944-4cl4s"];
    const V1_AGAIN: [&str; 3] = ["web-7d79bd4fb7-ddddd", "web-7d79bd4fb7-eeeee", "web-7d79bd4fb7-fffff"];

    /// A recorded v1 -> v2 -> undo of a 3-replica Deployment at 10 req/s, round robin over the
    /// three Pods: image changed at 5 s, old Pod i replaced at 8 + 4i s, rollout done at 18 s,
    /// the last v1 Pod deleted at 20 s; undo at 30 s, v2 Pod i replaced at 33 + 4i s, done at
    /// 43 s, the last v2 Pod deleted at 45 s; load stopped at 50 s. `cut` makes the requests
    /// routed to v2 Pod 1 (t4s7f, the captured terminating Pod) answer 502 from the proxy for a
    /// second after its termination began at 36.9 s.
    fn undo_run(cut: bool) -> UndoRun {
        let backends: Vec<String> = std::iter::once("").chain(V1).chain(V2).chain(V1_AGAIN).map(String::from).collect();
        let versions = vec![String::new(), "v1".into(), "v2".into()];
        let mut records = Vec::new();
        for t in (0..50_000u64).step_by(100) {
            let i = (t / 100 % 3) as usize;
            let (backend, version) = if t < 8_000 + 4_000 * i as u64 {
                (1 + i, 1)
            } else if t < 33_000 + 4_000 * i as u64 {
                (4 + i, 2)
            } else {
                (7 + i, 1)
            };
            records.push(if cut && i == 1 && (37_000..38_000).contains(&t) {
                rec(t, Status(502), 0, 0)
            } else {
                rec(t, Status(200), backend as u16, version)
            });
        }
        let (term_object, term_line) = terminating_line();
        assert_eq!(term_object, format!("Pod/{}", V2[1]), "the captured Pod is v2 Pod 1");
        let events = vec![
            entry(T0 + 5_000, Source::Action, "Deployment/web", "set image web=localhost/seaworthy/web:v2-abc"),
            entry(T0 + 8_000, Source::Pod, &format!("Pod/{}", V1[0]), "terminating (grace 30s)"),
            entry(T0 + 30_000, Source::Action, "Deployment/web", "rollout undo to revision 1"),
            entry(T0 + 31_000, Source::Pod, &format!("Pod/{}", V1_AGAIN[0]), "created on kind-worker"),
            entry(T0 + 33_000, Source::Pod, &format!("Pod/{}", V2[0]), "terminating (grace 30s)"),
            entry(T0 + 36_000, Source::Pod, &format!("Pod/{}", V1_AGAIN[1]), "ready"),
            entry(T0 + 36_900, Source::Pod, &term_object, &term_line),
            entry(T0 + 37_100, Source::EndpointSlice, "EndpointSlice/web-xcz22", &format!("{} terminating, still serving", V2[1])),
            entry(T0 + 41_000, Source::Pod, &format!("Pod/{}", V2[2]), "terminating (grace 30s)"),
        ];
        let step = |at: u64, done: u64, gone: u64| Step { at_ms: T0 + at, done_ms: Some(T0 + done), gone_ms: Some(T0 + gone) };
        UndoRun {
            workload: "Deployment/web".into(),
            from: "v1".into(),
            to: "v2".into(),
            traffic: Traffic { name: phase_name("v1", "v2"), started_ms: T0, records, backends, versions },
            phases: vec![],
            marks: Marks { rollout: step(5_000, 18_000, 20_000), undo: Some(step(30_000, 43_000, 45_000)), stopped_ms: T0 + 50_000 },
            error: None,
            events,
        }
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
        Observed { run: undo_run(false), v1_replica_set: "web-7d79bd4fb7".into(), deployment, replica_sets, zero_failures: true }
    }

    #[test]
    fn a_clean_undo_under_load_passes_with_versions_history_and_counts() {
        let v = judge(&observed());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert_eq!(
            v.reason,
            "served v1 (50 responses), then v2 (100 responses), then v1 (50 responses), only v1 or v2 while rolling; \
             ReplicaSet web-7d79bd4fb7 came back as revision 3, formerly revision 1; 2 ReplicaSets kept (revisionHistoryLimit 10); \
             none of 500 requests failed"
        );
        assert_eq!((v.metrics["sent"], v.metrics["failed"]), (500.0, 0.0));
        assert_eq!((v.metrics["rollout_s"], v.metrics["undo_s"]), (13.0, 13.0));
    }

    /// phpdemo declares rollout-zero-5xx: 502s during the undo fail the check, each burst placed
    /// in the step it happened in and next to the v2 Pod that was terminating.
    #[test]
    fn bad_gateways_during_the_undo_are_placed_next_to_the_terminating_pod_and_fail_a_zero_5xx_stack() {
        let mut obs = observed();
        obs.run = undo_run(true);
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.reason);
        assert_eq!((v.metrics["sent"], v.metrics["failed"]), (500.0, 4.0));
        assert_eq!(
            v.reason,
            "4 of 500 requests failed across v1 -> v2 -> rollout undo of Deployment/web: during the rollout undo: \
             4 failures (502 x4) at 37.0-37.9s, backend web-57d8bfc944-t4s7f, next to: Pod/web-57d8bfc944-t4s7f terminating (grace 30s) (0.1 s before) \
             (Pod/web-57d8bfc944-t4s7f was terminating from 36.9s) (the stack promises zero-5xx rollouts: it declares rollout-zero-5xx)"
        );
        // myblog declares no zero-5xx rollout: the same failures are evidence in a pass.
        obs.zero_failures = false;
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.starts_with("served v1 (50 responses), then v2 (100 responses), then v1 (50 responses)"), "{}", v.reason);
        assert!(
            v.reason.ends_with(
                "; 4 of 500 requests failed across v1 -> v2 -> rollout undo of Deployment/web: during the rollout undo: 4 failures (502 x4) at 37.0-37.9s, \
                 backend web-57d8bfc944-t4s7f, next to: Pod/web-57d8bfc944-t4s7f terminating (grace 30s) (0.1 s before) \
                 (Pod/web-57d8bfc944-t4s7f was terminating from 36.9s) (evidence only: the stack does not declare rollout-zero-5xx)"
            ),
            "{}",
            v.reason
        );
        assert_eq!(v.metrics["failed"], 4.0);
    }

    #[test]
    fn versions_out_of_order_fail_with_the_window_and_the_backend() {
        let judged = |extra: crate::traffic::Record| {
            let mut obs = observed();
            obs.run.traffic.records.push(extra);
            let v = judge(&obs);
            assert_eq!(v.outcome, Outcome::Fail, "{}", v.reason);
            v.reason
        };
        // Pod indexes in the backend table: 1-3 the first v1 Pods, 4-6 the v2 ones, 7-9 v1 again.
        assert_eq!(judged(rec(2_050, Status(200), 5, 2)), "before the change (v1): 1 of 51 responses were not v1: v2 from web-57d8bfc944-t4s7f x1");
        assert_eq!(
            judged(rec(25_050, Status(200), 2, 1)),
            "after the last v1 Pod was gone (v2): 1 of 101 responses were not v2: v1 from web-7d79bd4fb7-bbbbb x1"
        );
        assert_eq!(
            judged(rec(46_050, Status(200), 5, 2)),
            "after the undo, once the last v2 Pod was gone (v1 again): 1 of 51 responses were not v1: v2 from web-57d8bfc944-t4s7f x1"
        );
        // While rolling, v1 and v2 may both answer, but nothing else.
        let mut obs = observed();
        obs.run.traffic.versions.push("v3".into());
        obs.run.traffic.records.push(rec(35_050, Status(200), 8, 3));
        assert_eq!(judge(&obs).reason, "during the rollout undo: 1 of 151 responses were not v1 or v2: v3 from web-7d79bd4fb7-eeeee x1");
    }

    #[test]
    fn a_stage_without_answers_or_versions_proves_nothing() {
        let mut obs = observed();
        obs.run.traffic.records.retain(|r| r.planned_ns < 45_000 * 1_000_000);
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reason, "after the undo, once the last v2 Pod was gone (v1 again): no request was answered");
        let mut obs = observed();
        obs.run.traffic.records.iter_mut().for_each(|r| r.version = 0);
        assert!(judge(&obs).reason.contains("X-Seaworthy-Version"));
    }

    /// An undo whose v2 Pods never went: the step's error is the reason, the history (mid-way)
    /// is not judged, and the traffic until then still counts.
    #[test]
    fn an_undo_that_does_not_complete_fails_with_the_wait_error() {
        let mut obs = observed();
        obs.run.error = Some("the rollout undo of Deployment/web did not complete: deployment ns/web rollout: not done after 240s".into());
        let undo = obs.run.marks.undo.as_mut().unwrap();
        (undo.done_ms, undo.gone_ms) = (None, None);
        let v = judge(&obs);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reason, "the rollout undo of Deployment/web did not complete: deployment ns/web rollout: not done after 240s");
        assert!(!v.metrics.contains_key("undo_s"));
        assert_eq!(v.metrics["rollout_s"], 13.0);
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
            let w = Workload::find(&stack, p["deployment"].as_str().unwrap()).unwrap();
            assert_eq!(w.kind, "Deployment", "{name}: rollout undo needs a Deployment");
            ImageUpdate::new(&stack, &w, p["image"].as_str().unwrap(), versions[0], versions[1], &[container.to_string()]).unwrap();
        }
        // phpdemo's rollouts are held to zero failed requests (preStop, graceful stop); myblog's are not.
        assert!(promises_zero_5xx(&crate::stack::Stack::find("phpdemo").unwrap()));
        assert!(!promises_zero_5xx(&crate::stack::Stack::find("myblog").unwrap()));
    }
}
