//! `rollout-zero-5xx` (shared/STACKS.md): constant-rate traffic through the stack's entry point
//! across a whole rolling update v1 -> v2, from a few seconds before the image changes to a few
//! seconds after the last old Pod is gone.
//!
//! Passes when no request failed (non-2xx/3xx, reset, timeout) and every request sent after the
//! last old Pod was gone was answered by the new version. The negative control (no preStop,
//! SIGTERM turned into SIGKILL) must show failures; each burst is reported next to the Pod that
//! was terminating when it happened.
//!
//! The update-under-load flow and the pieces it is judged with are shared with
//! `stale-dns-proxy`, which runs the same update behind a proxy.

use super::context::CheckContext;
use super::params::RolloutZero5xx;
use super::timeline::{describe, failure_clusters, succeeded};
use super::verdict::{FailureCluster, Phase, Verdict};
use crate::observe::{Entry, Source, now_ms};
use crate::stack::Stack;
use crate::traffic::{LoadConfig, Record, Report, Schedule};
use crate::wait::watch as waits;
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::time::Duration;

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: RolloutZero5xx = ctx.params_as()?;
    let workload = Workload::find(&ctx.stack, &p.workload)?;
    let update = ImageUpdate::new(&ctx.stack, &workload, &p.image, &p.from, &p.to, &p.containers())?;
    let mut loads = vec![("rollout".to_string(), load(ctx, p.path.as_deref(), p.rps)?)];
    // Requests that last a second are in flight whenever a Pod stops: a drained stop finishes
    // them, an abrupt one cuts them. Fast requests alone could slip between two kills.
    if let Some(path) = slow_path(ctx, &p) {
        loads.push(("rollout, slow requests".to_string(), load(ctx, Some(&path), p.slow_rps)?));
    }
    let lead = Duration::from_secs_f64(p.lead_s);
    let tail = Duration::from_secs_f64(p.tail_s);
    let run = update_under_load(ctx, &workload, &update, loads, lead, tail).await?;
    Ok(judge_rollout(&run))
}

/// `slow_path` (a path of its own) or `slow_query` (added to the entry path).
fn slow_path(ctx: &CheckContext, p: &RolloutZero5xx) -> Option<String> {
    if let Some(path) = &p.slow_path {
        return Some(path.clone());
    }
    let query = p.slow_query.as_deref()?;
    let base = &ctx.stack.spec.entry.path;
    Some(format!("{base}{}{query}", if base.contains('?') { '&' } else { '?' }))
}

/// A constant-rate load long enough for any rollout; the check stops it.
pub(super) fn load(ctx: &CheckContext, path: Option<&str>, rps: f64) -> Result<LoadConfig> {
    let longest = ctx.timeouts.rollout * 3 + Duration::from_secs(120);
    Ok(ctx.load_config(path, Schedule::constant(rps, longest)?))
}

/// The Deployment or StatefulSet a check acts on, as the stack declares it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Workload {
    pub kind: &'static str,
    pub name: String,
    /// Its Pods' label selector (`a=b,c=d`).
    pub selector: String,
}

impl Workload {
    pub(super) fn find(stack: &Stack, name: &str) -> Result<Workload> {
        let (kind, selector) = super::actions::workload_selector(stack, name)?;
        Ok(Workload { kind, name: name.to_string(), selector })
    }

    pub(super) fn label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// `kubectl rollout status`, failing fast on a new Pod that cannot start.
    pub(super) async fn wait_rollout(&self, ctx: &CheckContext) -> std::result::Result<(), String> {
        let r = match self.kind {
            "Deployment" => waits::deployment_rollout(&ctx.client, &ctx.ns, &self.name, ctx.timeouts.rollout).await.map(drop),
            _ => waits::statefulset_rollout(&ctx.client, &ctx.ns, &self.name, ctx.timeouts.rollout).await.map(drop),
        };
        r.map_err(|e| e.to_string())
    }
}

/// The image change of the update: `image` from version `from` to `to` in the named containers
/// (`containers = [...]` or `container = "..."`, init containers included).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ImageUpdate {
    pub image: String,
    pub from: String,
    pub to: String,
    /// (container, is an init container)
    pub containers: Vec<(String, bool)>,
}

impl ImageUpdate {
    /// Checked against the manifest: each container must run `image:from` now, or the update
    /// would not be the v1 -> v2 the verdict talks about.
    pub(super) fn new(stack: &Stack, workload: &Workload, image: &str, from: &str, to: &str, names: &[String]) -> Result<ImageUpdate> {
        let spec = stack.pod_spec(&workload.name).ok_or_else(|| anyhow!("stack {}: {} has no Pod template", stack.name(), workload.label()))?;
        let want = format!("{image}:{from}");
        let mut containers = Vec::new();
        for name in names {
            let (c, init) = match spec.init_containers.iter().flatten().find(|c| &c.name == name) {
                Some(c) => (c, true),
                None => match spec.containers.iter().find(|c| &c.name == name) {
                    Some(c) => (c, false),
                    None => bail!("stack {}: {} has no container {name:?}", stack.name(), workload.label()),
                },
            };
            if c.image.as_deref() != Some(want.as_str()) {
                bail!(
                    "stack {}: container {name} of {} runs {:?}, not {want:?}: the check's image/from params do not match the manifest",
                    stack.name(),
                    workload.label(),
                    c.image.as_deref().unwrap_or("")
                );
            }
            containers.push((name.clone(), init));
        }
        if containers.is_empty() {
            bail!("stack {}: the check names no container to update", stack.name());
        }
        Ok(ImageUpdate { image: image.to_string(), from: from.to_string(), to: to.to_string(), containers })
    }

    /// (container, init, image reference loaded into the cluster) for `set_images`.
    fn rendered(&self, ctx: &CheckContext) -> Result<Vec<(String, bool, String)>> {
        let reference = (ctx.image_ref)(&self.image, &self.to)?;
        Ok(self.containers.iter().map(|(c, init)| (c.clone(), *init, reference.clone())).collect())
    }
}

/// One load's requests on the wall clock, as the judgements need them.
#[derive(Debug, Clone)]
pub(super) struct Traffic {
    pub name: String,
    /// Wall-clock ms of the load's planned start (record offsets count from here).
    pub started_ms: u64,
    pub records: Vec<Record>,
    /// Interned header values; index 0 = header absent.
    pub backends: Vec<String>,
    pub versions: Vec<String>,
}

impl Traffic {
    pub(super) fn new(name: &str, started_ms: u64, report: &Report) -> Traffic {
        Traffic {
            name: name.to_string(),
            started_ms,
            records: report.records.to_vec(),
            backends: report.backends.clone(),
            versions: report.versions.clone(),
        }
    }

    /// When the request actually left, wall-clock ms.
    pub(super) fn sent_ms(&self, r: &Record) -> u64 {
        self.started_ms + r.started_ns() / 1_000_000
    }

    fn table(table: &[String], i: u16) -> Option<&str> {
        if i == 0 { None } else { table.get(i as usize).map(String::as_str) }
    }

    pub(super) fn backend(&self, r: &Record) -> Option<&str> {
        Self::table(&self.backends, r.backend)
    }

    pub(super) fn version(&self, r: &Record) -> Option<&str> {
        Self::table(&self.versions, r.version)
    }

    pub(super) fn clusters(&self, events: &[Entry]) -> Vec<FailureCluster> {
        failure_clusters(&self.records, &self.backends, self.started_ms, events)
    }

    /// Seconds on this load's axis (the one failure clusters use).
    pub(super) fn rel_s(&self, at_ms: u64) -> f64 {
        (at_ms as f64 - self.started_ms as f64) / 1000.0
    }
}

/// When things happened during an update under load (wall-clock ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marks {
    /// The image was changed.
    pub update_ms: u64,
    /// The controller reported the rollout complete.
    pub done_ms: Option<u64>,
    /// Every Pod that existed before the update was gone (deleted, not just terminating).
    pub old_gone_ms: Option<u64>,
    /// The loads were stopped.
    pub stopped_ms: u64,
}

/// Everything an update under load recorded.
#[derive(Debug, Clone)]
pub(super) struct UpdateRun {
    pub workload: String,
    pub from: String,
    pub to: String,
    pub traffic: Vec<Traffic>,
    pub phases: Vec<Phase>,
    pub marks: Marks,
    /// Why the update did not complete, if it did not.
    pub error: Option<String>,
    /// The namespace's timeline (Observer + actions).
    pub events: Vec<Entry>,
}

/// Start the loads, change the image after `lead`, wait for the rollout and for every old Pod to
/// be gone, keep the traffic going for `tail`, stop. A failed update is recorded, not returned
/// as an error, so that its traffic is still judged and reported.
pub(super) async fn update_under_load(
    ctx: &CheckContext,
    workload: &Workload,
    update: &ImageUpdate,
    loads: Vec<(String, LoadConfig)>,
    lead: Duration,
    tail: Duration,
) -> Result<UpdateRun> {
    let images = update.rendered(ctx)?;
    let old = ctx.actions.pods(&workload.selector).await?;
    if old.is_empty() {
        bail!("{} has no Pods ({}) to update", workload.label(), workload.selector);
    }
    let mut running = Vec::new();
    for (name, cfg) in loads {
        running.push(ctx.start_load(&name, cfg).await?);
    }
    tokio::time::sleep(lead).await;

    let update_ms = now_ms();
    let (mut done_ms, mut old_gone_ms, mut error) = (None, None, None);
    match ctx.actions.set_images(workload.kind, &workload.name, &images).await {
        Err(e) => error = Some(format!("set image failed: {e:#}")),
        Ok(()) => match workload.wait_rollout(ctx).await {
            Err(e) => error = Some(e),
            Ok(()) => {
                done_ms = Some(now_ms());
                // A Deployment reports complete while old Pods still serve from their preStop;
                // "after the rollout" starts when none of them can answer any more.
                for p in &old {
                    let (Some(name), Some(uid)) = (p.metadata.name.as_deref(), p.metadata.uid.as_deref()) else { continue };
                    if let Err(e) = waits::pod_gone(&ctx.client, &ctx.ns, name, uid, ctx.timeouts.rollout).await {
                        error = Some(e.to_string());
                        break;
                    }
                }
                if error.is_none() {
                    old_gone_ms = Some(now_ms());
                }
            }
        },
    }
    if error.is_none() {
        tokio::time::sleep(tail).await;
    }
    let stopped_ms = now_ms();

    let (mut traffic, mut phases) = (Vec::new(), Vec::new());
    for r in running {
        let (name, started_ms) = (r.name.clone(), r.started_ms);
        let (phase, report) = ctx.finish_phase(r, true).await;
        traffic.push(Traffic::new(&name, started_ms, &report));
        phases.push(phase);
    }
    Ok(UpdateRun {
        workload: workload.label(),
        from: update.from.clone(),
        to: update.to.clone(),
        traffic,
        phases,
        marks: Marks { update_ms, done_ms, old_gone_ms, stopped_ms },
        error,
        events: ctx.log.entries(),
    })
}

/// How far back a Pod's termination still explains a failure: an abrupt stop is felt at once,
/// but proxies that cache DNS keep sending to the dead Pod for a while.
const TERMINATION_REACH_MS: u64 = 60_000;

/// The Pod that was terminating when a failure cluster happened: the cluster's own backend if it
/// was terminating, else the Pod whose termination began last before the failures.
pub(super) fn terminating_pod<'a>(c: &FailureCluster, t: &Traffic, events: &'a [Entry]) -> Option<&'a Entry> {
    let from_ms = t.started_ms + (c.from_s * 1000.0) as u64;
    let to_ms = t.started_ms + (c.to_s * 1000.0) as u64;
    let terminating: Vec<&Entry> = events
        .iter()
        .filter(|e| e.source == Source::Pod && e.message.starts_with("terminating"))
        .filter(|e| e.at_ms <= to_ms + 1_000 && e.at_ms + TERMINATION_REACH_MS >= from_ms)
        .collect();
    let own = c.backend.as_ref().and_then(|b| terminating.iter().rev().find(|e| e.object == format!("Pod/{b}")));
    own.or_else(|| terminating.iter().rev().find(|e| e.at_ms <= to_ms)).or(terminating.first()).copied()
}

/// Each failure cluster of each load, with the Pod that was terminating next to it.
pub(super) fn failure_story(run: &UpdateRun) -> String {
    let several = run.traffic.len() > 1;
    let mut lines = Vec::new();
    for t in &run.traffic {
        for c in t.clusters(&run.events) {
            let mut line = describe(std::slice::from_ref(&c));
            match terminating_pod(&c, t, &run.events) {
                Some(e) => line.push_str(&format!(" ({} was terminating from {:.1}s)", e.object, t.rel_s(e.at_ms))),
                None => line.push_str(" (no Pod was terminating then)"),
            }
            if several {
                line = format!("[{}] {line}", t.name);
            }
            lines.push(line);
        }
    }
    lines.join("; ")
}

pub(super) fn totals(run: &UpdateRun) -> (usize, usize) {
    let total = run.traffic.iter().map(|t| t.records.len()).sum();
    let failed = run.traffic.iter().flat_map(|t| t.records.iter()).filter(|r| !succeeded(r)).count();
    (total, failed)
}

/// What the versions say: v1 answered before the update, and only v2 after the last old Pod was
/// gone. Returns (problems, successful responses after the old Pods were gone).
pub(super) fn version_problems(run: &UpdateRun) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let all = || run.traffic.iter().flat_map(|t| t.records.iter().map(move |r| (t, r)));
    if !all().any(|(t, r)| t.version(r).is_some()) {
        problems.push("no response named its version (X-Seaworthy-Version), so the old and the new version cannot be told apart".to_string());
        return (problems, 0);
    }
    let before = all().filter(|(t, r)| succeeded(r) && t.sent_ms(r) < run.marks.update_ms && t.version(r) == Some(run.from.as_str())).count();
    if before == 0 {
        problems.push(format!("no response before the update was {}: the update did not start from the version it names", run.from));
    }
    let Some(gone) = run.marks.old_gone_ms else {
        return (problems, 0);
    };
    let after: Vec<_> = all().filter(|(t, r)| succeeded(r) && t.sent_ms(r) >= gone).collect();
    if after.is_empty() {
        problems.push(format!("no request was answered after the last {} Pod was gone", run.from));
    }
    let mut stale: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (t, r) in &after {
        if t.version(r) != Some(run.to.as_str()) {
            let key = (t.version(r).unwrap_or("no version").to_string(), t.backend(r).unwrap_or("unnamed backend").to_string());
            *stale.entry(key).or_default() += 1;
        }
    }
    if !stale.is_empty() {
        let n: usize = stale.values().sum();
        let what: Vec<String> = stale.iter().map(|((v, b), k)| format!("{v} from {b} x{k}")).collect();
        problems.push(format!("{n} of {} responses after the last {} Pod was gone were not {}: {}", after.len(), run.from, run.to, what.join(", ")));
    }
    (problems, after.len())
}

fn metrics(v: Verdict, run: &UpdateRun, failed: usize) -> Verdict {
    let v = v.with_metric("failed", failed as f64);
    let v = match run.marks.done_ms {
        Some(done) => v.with_metric("rollout_s", done.saturating_sub(run.marks.update_ms) as f64 / 1000.0),
        None => v,
    };
    run.phases.iter().cloned().fold(v, Verdict::with_phase)
}

/// The verdict on a rollout under load.
pub(super) fn judge_rollout(run: &UpdateRun) -> Verdict {
    let (total, failed) = totals(run);
    let what = format!("the rollout {} -> {} of {}", run.from, run.to, run.workload);
    let mut problems = Vec::new();
    if let Some(e) = &run.error {
        problems.push(format!("{what} did not complete: {e}"));
    }
    if total == 0 {
        problems.push("no request was sent".to_string());
    }
    if failed > 0 {
        problems.push(format!("{failed} of {total} requests failed across {what}: {}", failure_story(run)));
    }
    let (version_issues, after) = if run.error.is_none() { version_problems(run) } else { (vec![], 0) };
    problems.extend(version_issues);
    let verdict = if problems.is_empty() {
        let took = run.marks.done_ms.unwrap_or(run.marks.update_ms).saturating_sub(run.marks.update_ms) as f64 / 1000.0;
        Verdict::pass(format!(
            "{total} requests across {what} ({took:.1}s): none failed, and all {after} sent after the last {} Pod was gone were answered by {}",
            run.from, run.to
        ))
    } else {
        Verdict::fail(problems.join("; "))
    };
    metrics(verdict, run, failed)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::observe::pod_changes;
    use crate::traffic::{FailureKind, Outcome, flags};
    use crate::samples::load;
    use k8s_openapi::api::core::v1::Pod;

    pub const T0: u64 = 1_700_000_000_000;

    pub fn rec(t_ms: u64, outcome: Outcome, backend: u16, version: u16) -> Record {
        Record { planned_ns: t_ms * 1_000_000, latency_us: 4_000, service_us: 4_000, outcome: outcome.code(), backend, version, flags: flags::SENT }
    }

    pub fn entry(at_ms: u64, source: Source, object: &str, message: &str) -> Entry {
        Entry { at_ms, source, object: object.into(), message: message.into() }
    }

    /// The line the Observer writes when the captured terminating Pod is first seen terminating.
    pub fn terminating_line() -> (String, String) {
        let pod: Pod = load("pod-terminating.json");
        let mut before = pod.clone();
        before.metadata.deletion_timestamp = None;
        before.metadata.deletion_grace_period_seconds = None;
        let line = pod_changes(Some(&before), &pod).into_iter().find(|l| l.starts_with("terminating")).expect("a terminating line");
        (format!("Pod/{}", pod.metadata.name.unwrap()), line)
    }

    const OLD: [&str; 3] = ["web-57d8bfc944-zxbcc", "web-57d8bfc944-t4s7f", "web-57d8bfc944-4cl4s"];

    /// A recorded rolling update of a 3-replica Deployment at 20 req/s: image changed at 5 s,
    /// one old Pod replaced every 6 s from 8 s on, the controller done at 26 s, the last old Pod
    /// deleted at 30 s, traffic stopped at 35 s. `cut` makes the Pod terminating at 14 s fail
    /// the requests routed to it for 0.8 s (what an abrupt stop does).
    fn rollout(cut: bool) -> UpdateRun {
        let backends: Vec<String> = std::iter::once(String::new())
            .chain(OLD.iter().map(|s| s.to_string()))
            .chain(["web-6f7c-aaaaa", "web-6f7c-bbbbb", "web-6f7c-ccccc"].map(String::from))
            .collect();
        let versions = vec![String::new(), "v1".into(), "v2".into()];
        let (term_object, term_line) = terminating_line();
        let mut records = Vec::new();
        for t in (0..35_000u64).step_by(50) {
            // Old Pod i stops taking traffic at 8 + 6i s; new Pod i serves from then on.
            let i = (t / 50 % 3) as usize;
            let replaced = t >= 8_000 + 6_000 * i as u64;
            let (backend, version) = if replaced { (4 + i as u16, 2) } else { (1 + i as u16, 1) };
            let r = if cut && i == 1 && (14_000..14_800).contains(&t) {
                let o = if t % 100 == 0 { Outcome::Failure(FailureKind::ConnectRefused) } else { Outcome::Status(502) };
                rec(t, o, 0, 0)
            } else {
                rec(t, Outcome::Status(200), backend, version)
            };
            records.push(r);
        }
        // Old Pod 1 (t4s7f, the captured one) is the one replaced at 14 s.
        let events = vec![
            entry(T0 + 5_000, Source::Action, "Deployment/web", "set image web=localhost/seaworthy/web:v2-abc"),
            entry(T0 + 7_000, Source::Pod, "Pod/web-6f7c-aaaaa", "created on kind-worker"),
            entry(T0 + 8_000, Source::Pod, &format!("Pod/{}", OLD[0]), "terminating (grace 30s)"),
            entry(T0 + 13_000, Source::Pod, "Pod/web-6f7c-bbbbb", "ready"),
            entry(T0 + 13_900, Source::Pod, &term_object, &term_line),
            entry(T0 + 14_100, Source::EndpointSlice, "EndpointSlice/web-xcz22", &format!("{} terminating, still serving", OLD[1])),
            entry(T0 + 20_000, Source::Pod, &format!("Pod/{}", OLD[2]), "terminating (grace 30s)"),
        ];
        UpdateRun {
            workload: "Deployment/web".into(),
            from: "v1".into(),
            to: "v2".into(),
            traffic: vec![Traffic { name: "rollout".into(), started_ms: T0, records, backends, versions }],
            phases: vec![],
            marks: Marks { update_ms: T0 + 5_000, done_ms: Some(T0 + 26_000), old_gone_ms: Some(T0 + 30_000), stopped_ms: T0 + 35_000 },
            error: None,
            events,
        }
    }

    #[test]
    fn a_drained_rollout_passes_with_its_duration() {
        let v = judge_rollout(&rollout(false));
        assert_eq!(v.outcome, crate::checks::Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("700 requests") && v.reason.contains("none failed") && v.reason.contains("answered by v2"), "{}", v.reason);
        assert_eq!(v.metrics["rollout_s"], 21.0);
        assert_eq!(v.metrics["failed"], 0.0);
    }

    #[test]
    fn an_abrupt_stop_is_counted_and_placed_next_to_the_terminating_pod() {
        let v = judge_rollout(&rollout(true));
        assert_eq!(v.outcome, crate::checks::Outcome::Fail);
        assert_eq!(v.metrics["failed"], 6.0);
        let r = &v.reason;
        assert!(r.starts_with("6 of 700 requests failed across the rollout v1 -> v2 of Deployment/web"), "{r}");
        assert!(r.contains("connect_refused x3") && r.contains("502 x3"), "{r}");
        assert!(r.contains("Pod/web-57d8bfc944-t4s7f was terminating from 13.9s"), "{r}");
        assert!(r.contains("next to: Pod/web-57d8bfc944-t4s7f terminating (grace 30s) (0.1 s before)"), "the event closest to the failures: {r}");
    }

    /// STACKS.md: "0 failed requests (non-2xx, resets, timeouts)": a redirect is not the page.
    #[test]
    fn a_redirect_during_the_rollout_is_a_failed_request() {
        let mut run = rollout(false);
        let r = run.traffic[0].records.iter_mut().find(|r| r.planned_ns == 14_000 * 1_000_000).unwrap();
        *r = rec(14_000, Outcome::Status(302), 2, 1);
        let v = judge_rollout(&run);
        assert_eq!(v.outcome, crate::checks::Outcome::Fail, "{}", v.reason);
        assert_eq!(v.metrics["failed"], 1.0);
        assert!(v.reason.starts_with("1 of 700 requests failed") && v.reason.contains("302 x1"), "{}", v.reason);
    }

    #[test]
    fn an_old_version_after_the_rollout_fails() {
        let mut run = rollout(false);
        // A v1 Pod still answering after every old Pod was reported gone.
        run.traffic[0].records.push(rec(31_000, Outcome::Status(200), 2, 1));
        let v = judge_rollout(&run);
        assert_eq!(v.outcome, crate::checks::Outcome::Fail);
        assert!(v.reason.contains("1 of 101 responses after the last v1 Pod was gone were not v2: v1 from web-57d8bfc944-t4s7f x1"), "{}", v.reason);
    }

    #[test]
    fn a_rollout_that_never_completes_fails_with_the_wait_error() {
        let mut run = rollout(false);
        run.error = Some("deployment ns/web rollout: not done after 240s; last state: 1 old replicas are pending termination".into());
        run.marks.done_ms = None;
        run.marks.old_gone_ms = None;
        let v = judge_rollout(&run);
        assert_eq!(v.outcome, crate::checks::Outcome::Fail);
        assert!(v.reason.starts_with("the rollout v1 -> v2 of Deployment/web did not complete: deployment ns/web rollout: not done"), "{}", v.reason);
        assert!(!v.metrics.contains_key("rollout_s"));
    }

    #[test]
    fn responses_without_versions_prove_nothing() {
        let mut run = rollout(false);
        for r in &mut run.traffic[0].records {
            r.version = 0;
        }
        let v = judge_rollout(&run);
        assert_eq!(v.outcome, crate::checks::Outcome::Fail);
        assert!(v.reason.contains("X-Seaworthy-Version"), "{}", v.reason);
    }

    #[test]
    fn the_fixtures_params_name_real_containers_at_the_from_version() {
        for stack in ["wordpress", "phpdemo", "flask-sts"] {
            let stack = Stack::find(stack).unwrap();
            let check = stack.spec.checks.iter().find(|c| c.name == "rollout-zero-5xx").expect("the check is declared");
            let p = &check.params;
            let s = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let name = s("workload").or(s("deployment")).expect("a workload");
            let w = Workload::find(&stack, &name).unwrap();
            let names: Vec<String> = match p.get("containers") {
                Some(toml::Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
                _ => vec![s("container").unwrap()],
            };
            let u = ImageUpdate::new(&stack, &w, &s("image").unwrap(), &s("from").unwrap(), &s("to").unwrap(), &names).unwrap();
            assert_ne!(u.from, u.to);
            // The negative control renders and the same update applies to it.
            let broken = stack.variant(check.negative.as_deref().unwrap()).unwrap();
            ImageUpdate::new(&broken, &Workload::find(&broken, &name).unwrap(), &u.image, &u.from, &u.to, &names).unwrap();
        }
        let php = Stack::find("phpdemo").unwrap();
        let w = Workload::find(&php, "phpdemo").unwrap();
        assert_eq!((w.kind, w.selector.as_str()), ("Deployment", "env=prod,project=phpdemo"));
        let u = ImageUpdate::new(&php, &w, "phpdemo-code", "v1", "v2", &["init-phpdemo-src".into()]).unwrap();
        assert_eq!(u.containers, vec![("init-phpdemo-src".to_string(), true)], "the code image is an init container");
        let e = ImageUpdate::new(&php, &w, "phpdemo-code", "v2", "v3", &["init-phpdemo-src".into()]).unwrap_err();
        assert!(e.to_string().contains("do not match the manifest"), "{e}");
    }
}
