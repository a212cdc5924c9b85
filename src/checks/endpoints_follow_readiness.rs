//! `endpoints-follow-readiness` (shared/STACKS.md): while traffic runs, one Pod is made to fail
//! its readiness probe (the fixtures' `/tmp/seaworthy-unready` file, created by exec) and later
//! restored.
//!
//! Passes when the Pod leaves the Service's EndpointSlice (ready=false) within periodSeconds x
//! failureThreshold of its probe plus some slack, no request sent after that (and after the time
//! the proxies need to follow) is answered by it, no request fails once it is out, and it is back
//! and answering after the file is removed. The negative control has no readiness probe: the
//! broken Pod stays a ready endpoint and keeps answering, and the verdict names it.
//!
//! The answering Pod is the response's X-Seaworthy-Backend; the moment the EndpointSlice changed
//! is the Observer's timeline.

use super::context::CheckContext;
use super::rollout_zero_5xx::{Traffic, Workload};
use super::timeline::{describe, failure_clusters, succeeded};
use super::verdict::Verdict;
use crate::observe::{Entry, Source, now_ms};
use crate::traffic::{Outcome, Record, Schedule};
use crate::wait::endpoints::{SERVICE_NAME_LABEL, pod_endpoint_ready};
use crate::wait::pods::pod_ready;
use crate::wait::watch::{self as waits, WaitError, Waiter};
use anyhow::{Result, anyhow};
use k8s_openapi::api::core::v1::{Pod, Probe};
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::time::Duration;

/// The fixtures' convention (fixtures/README.md) when the container's env does not move it.
const DEFAULT_UNREADY_FILE: &str = "/tmp/seaworthy-unready";

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::EndpointsFollowReadiness = ctx.params_as()?;
    let workload = Workload::find(&ctx.stack, &p.workload)?;
    let container = p.container.clone();
    let service = p.service.clone().unwrap_or_else(|| ctx.stack.spec.entry.service.clone());
    if ctx.stack.service(&service).is_none() {
        return Err(anyhow!("stack {}: no Service {service:?}", ctx.stack.name()));
    }
    let probe = ProbeTiming::of(ctx.stack.container(&workload.name, &container)?.readiness_probe.as_ref());
    let file = unready_file(ctx, p.file.as_deref(), &workload, &container)?;
    let slack_ms = (p.slack_s * 1000.0) as u64;
    let grace_ms = (p.propagation_s * 1000.0) as u64;
    let lead = Duration::from_secs_f64(p.lead_s);
    let hold = Duration::from_secs_f64(p.hold_s());
    let after = Duration::from_secs_f64(p.after_s());

    let mut candidates: Vec<Pod> = ctx.actions.pods(&workload.selector).await?.into_iter().filter(|p| pod_ready(p).is_done()).collect();
    candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if candidates.len() < 2 {
        return Ok(Verdict::fail(format!(
            "{} has {} ready Pod(s): with fewer than 2, taking one out of Service {service} leaves nothing to answer",
            workload.label(),
            candidates.len()
        )));
    }
    let pod = candidates.remove(0);
    let name = pod.metadata.name.clone().unwrap_or_default();

    let longest = lead + hold + after + Duration::from_millis(probe.leave_within_ms(slack_ms) + probe.return_within_ms(slack_ms)) + Duration::from_secs(120);
    let cfg = ctx.load_config(p.path.as_deref(), Schedule::constant(p.rps, longest)?);
    let running = ctx.start_load("readiness flip", cfg).await?;
    tokio::time::sleep(lead).await;

    let flipped_ms = now_ms();
    ctx.actions.exec(&name, &container, &["touch", &file]).await?;
    let left = waits::pod_endpoint_not_ready(&ctx.client, &ctx.ns, &service, &pod, Duration::from_millis(probe.leave_within_ms(slack_ms))).await;
    let left_seen_ms = left.is_ok().then(now_ms);
    // Long enough for requests to show whether anything still sends to it.
    tokio::time::sleep(hold).await;

    let restored_ms = now_ms();
    ctx.actions.exec(&name, &container, &["rm", "-f", &file]).await?;
    let back = endpoint_ready(ctx, &service, &pod, Duration::from_millis(probe.return_within_ms(slack_ms))).await;
    let back_seen_ms = back.is_ok().then(now_ms);
    tokio::time::sleep(after).await;

    let started_ms = running.started_ms;
    let (phase, report) = ctx.finish_phase(running, true).await;
    let observed = ReadinessRun {
        pod: name,
        service,
        container,
        file,
        probe,
        traffic: Traffic::new("readiness flip", started_ms, &report),
        flipped_ms,
        restored_ms,
        stopped_ms: now_ms(),
        grace_ms,
        slack_ms,
        left_seen_ms,
        back_seen_ms,
        events: ctx.log.entries(),
    };
    Ok(judge_readiness(&observed).with_phase(phase))
}

/// `file` param, else the container's SEAWORTHY_UNREADY_FILE, else the convention's path.
fn unready_file(ctx: &CheckContext, file: Option<&str>, workload: &Workload, container: &str) -> Result<String> {
    if let Some(f) = file {
        return Ok(f.to_string());
    }
    let env = ctx.stack.container_env(&workload.name, container)?;
    Ok(env.into_iter().find(|(k, _)| k == "SEAWORTHY_UNREADY_FILE").map(|(_, v)| v).unwrap_or_else(|| DEFAULT_UNREADY_FILE.to_string()))
}

/// Wait until the Pod is a ready endpoint of the Service again.
async fn endpoint_ready(ctx: &CheckContext, service: &str, pod: &Pod, timeout: Duration) -> Result<(), WaitError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone();
    Waiter::new(&ctx.client, &ctx.ns)
        .endpoint_slices(watcher::Config::default().labels(&format!("{SERVICE_NAME_LABEL}={service}")))
        .until(&format!("pod {}/{name} ready in service {service}", ctx.ns), timeout, |s| {
            pod_endpoint_ready(&s.endpoint_slices.objects(), service, &name, uid.as_deref())
        })
        .await
        .map(drop)
}

/// The readiness probe's timing, with the API's defaults for fields left out. Without a probe
/// the defaults still bound how long the check waits for a removal that will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProbeTiming {
    pub declared: bool,
    pub period_s: u64,
    pub failure_threshold: u64,
    pub success_threshold: u64,
    pub timeout_s: u64,
}

impl ProbeTiming {
    pub(super) fn of(probe: Option<&Probe>) -> ProbeTiming {
        let n = |v: Option<i32>, default: u64| v.filter(|v| *v > 0).map_or(default, |v| v as u64);
        ProbeTiming {
            declared: probe.is_some(),
            period_s: n(probe.and_then(|p| p.period_seconds), 10),
            failure_threshold: n(probe.and_then(|p| p.failure_threshold), 3),
            success_threshold: n(probe.and_then(|p| p.success_threshold), 1),
            timeout_s: n(probe.and_then(|p| p.timeout_seconds), 1),
        }
    }

    /// failureThreshold failed probes, one per period, plus the slack for the kubelet's status
    /// update, the EndpointSlice controller and the watch.
    pub(super) fn leave_within_ms(&self, slack_ms: u64) -> u64 {
        self.period_s * self.failure_threshold * 1000 + slack_ms
    }

    pub(super) fn return_within_ms(&self, slack_ms: u64) -> u64 {
        (self.period_s * self.success_threshold + self.timeout_s) * 1000 + slack_ms
    }

    fn explain(&self, slack_ms: u64) -> String {
        format!(
            "periodSeconds {} x failureThreshold {} + {}s slack",
            self.period_s,
            self.failure_threshold,
            slack_ms as f64 / 1000.0
        )
    }
}

/// Everything the readiness flip recorded (wall-clock ms).
#[derive(Debug, Clone)]
pub(super) struct ReadinessRun {
    pub pod: String,
    pub service: String,
    pub container: String,
    pub file: String,
    pub probe: ProbeTiming,
    pub traffic: Traffic,
    /// Just before the file was created.
    pub flipped_ms: u64,
    /// Just before it was removed.
    pub restored_ms: u64,
    pub stopped_ms: u64,
    /// How long after the EndpointSlice change a request may still reach the Pod: the time the
    /// proxies (kube-proxy, the ingress controller, DNS caches) need to follow it.
    pub grace_ms: u64,
    pub slack_ms: u64,
    /// When the waits saw the Pod not ready / ready again; the timeline's own entries come first.
    pub left_seen_ms: Option<u64>,
    pub back_seen_ms: Option<u64>,
    pub events: Vec<Entry>,
}

/// What an Observer line says about the Pod in the Service's EndpointSlices: Some(true) ready,
/// Some(false) out of rotation, None not about it.
fn slice_state(e: &Entry, service: &str, pod: &str) -> Option<bool> {
    // Slices are named after their Service by the controller (generateName `<service>-`).
    if e.source != Source::EndpointSlice || !e.object.starts_with(&format!("EndpointSlice/{service}-")) {
        return None;
    }
    let rest = e.message.strip_prefix(pod)?.strip_prefix(' ')?;
    match rest {
        "ready" | "added (ready)" => Some(true),
        "not ready" | "removed" | "added (not ready)" => Some(false),
        r if r.contains("terminating") => Some(false),
        _ => None,
    }
}

fn statuses<'a>(records: impl Iterator<Item = &'a Record>) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        let k = match r.outcome() {
            Outcome::Status(s) => s.to_string(),
            Outcome::Failure(f) => f.name().to_string(),
        };
        *by.entry(k).or_default() += 1;
    }
    by.iter().map(|(k, n)| format!("{k} x{n}")).collect::<Vec<_>>().join(", ")
}

pub(super) fn judge_readiness(run: &ReadinessRun) -> Verdict {
    let t = &run.traffic;
    let s = |ms: u64| ms.saturating_sub(run.flipped_ms) as f64 / 1000.0;
    let by_pod = |r: &&Record| t.backend(r) == Some(run.pod.as_str());
    let sent_in = |from: u64, to: u64| move |r: &&Record| (from..to).contains(&t.sent_ms(r));
    let pod = format!("Pod {}", run.pod);
    let mut problems = Vec::new();
    // Requests the Pod answered when it should have been out of rotation: the negative
    // control's finding.
    let answered_after_unready;

    let before = t.records.iter().filter(by_pod).filter(sent_in(0, run.flipped_ms)).count();
    if before == 0 {
        problems.push(format!(
            "{pod} answered none of the requests before it was made unready: the traffic does not reach it, so its removal would prove nothing"
        ));
    }

    let deadline_ms = run.probe.leave_within_ms(run.slack_ms);
    let left_ms = run
        .events
        .iter()
        .find(|e| e.at_ms >= run.flipped_ms && slice_state(e, &run.service, &run.pod) == Some(false))
        .map(|e| e.at_ms)
        .or(run.left_seen_ms);
    let back_ms = left_ms.and_then(|left| {
        run.events
            .iter()
            .find(|e| e.at_ms >= left.max(run.restored_ms) && slice_state(e, &run.service, &run.pod) == Some(true))
            .map(|e| e.at_ms)
            .or(run.back_seen_ms)
    });
    let no_probe = if run.probe.declared { String::new() } else { format!("; container {} has no readinessProbe", run.container) };
    let broken = format!("its readiness check was made to fail ({} created in container {}{no_probe})", run.file, run.container);

    match left_ms {
        Some(left) if left - run.flipped_ms <= deadline_ms => {
            // Out of rotation: nothing sent once the proxies have followed may reach it.
            let until = back_ms.unwrap_or(run.stopped_ms);
            let late: Vec<&Record> = t.records.iter().filter(by_pod).filter(sent_in(left + run.grace_ms, until)).collect();
            answered_after_unready = late.len();
            if let Some(first) = late.first() {
                problems.push(format!(
                    "{pod} left Service {}'s endpoints {:.1}s after {broken}, but still answered {} requests sent more than {:.1}s after that ({}), the first at {:.1}s",
                    run.service,
                    s(left),
                    late.len(),
                    run.grace_ms as f64 / 1000.0,
                    statuses(late.iter().copied()),
                    s(t.sent_ms(first))
                ));
            }
            let failed: Vec<Record> = t.records.iter().filter(|r| !succeeded(r)).filter(sent_in(left + run.grace_ms, run.stopped_ms)).copied().collect();
            if !failed.is_empty() {
                let clusters = failure_clusters(&failed, &t.backends, t.started_ms, &run.events);
                problems.push(format!("{} requests failed after {pod} was out of rotation: {}", failed.len(), describe(&clusters)));
            }
        }
        _ => {
            let kept: Vec<&Record> = t.records.iter().filter(by_pod).filter(sent_in(run.flipped_ms + deadline_ms, run.restored_ms)).collect();
            answered_after_unready = kept.len();
            let held = match left_ms {
                Some(left) => format!("for {:.1}s", s(left)),
                None => format!("for the whole {:.1}s until the file was removed", s(run.restored_ms)),
            };
            let allows = if run.probe.declared { "its probe allows" } else { "a probe with the API's defaults would allow" };
            problems.push(format!(
                "{pod} stayed a ready endpoint of Service {} {held} after {broken}, longer than the {:.1}s {allows} ({}); it kept answering: {} requests sent after that{}",
                run.service,
                deadline_ms as f64 / 1000.0,
                run.probe.explain(run.slack_ms),
                kept.len(),
                if kept.is_empty() { String::new() } else { format!(" ({})", statuses(kept.iter().copied())) }
            ));
        }
    }

    let mut answered_again = 0;
    if let Some(left) = left_ms {
        match back_ms {
            None => problems.push(format!(
                "{pod} did not come back as a ready endpoint of Service {} within {:.1}s after {} was removed",
                run.service,
                run.probe.return_within_ms(run.slack_ms) as f64 / 1000.0,
                run.file
            )),
            Some(back) => {
                let after: Vec<&Record> = t.records.iter().filter(sent_in(back + run.grace_ms, run.stopped_ms)).collect();
                answered_again = after.iter().filter(|r| by_pod(r)).count();
                if answered_again == 0 {
                    problems.push(format!(
                        "{pod} was a ready endpoint again {:.1}s after {} was removed, but answered none of the {} requests sent after that",
                        (back - run.restored_ms.max(left)) as f64 / 1000.0,
                        run.file,
                        after.len()
                    ));
                }
            }
        }
    }

    let verdict = if problems.is_empty() {
        let (left, back) = (left_ms.unwrap_or(run.flipped_ms), back_ms.unwrap_or(run.restored_ms));
        Verdict::pass(format!(
            "{pod} left Service {}'s endpoints {:.1}s after {broken}, within the {:.1}s allowed ({}); it answered no request sent more than {:.1}s after that, and was back {:.1}s after {} was removed, answering {answered_again} requests again",
            run.service,
            s(left),
            deadline_ms as f64 / 1000.0,
            run.probe.explain(run.slack_ms),
            run.grace_ms as f64 / 1000.0,
            back.saturating_sub(run.restored_ms) as f64 / 1000.0,
            run.file
        ))
    } else {
        Verdict::fail(problems.join("; "))
    };
    let verdict = verdict.with_metric("answered_after_unready", answered_after_unready as f64);
    match left_ms {
        Some(left) => verdict.with_metric("endpoint_removed_s", s(left)),
        None => verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome as Verdicts;
    use crate::checks::rollout_zero_5xx::tests::{T0, entry, rec};
    use crate::observe::slice_changes;
    use crate::samples::load;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    const BROKEN: &str = "web-57d8bfc944-zxbcc";

    /// The Observer's lines for the captured slices: zxbcc going not ready, and coming back.
    fn slice_lines() -> (Entry, Entry) {
        let all: EndpointSlice = load("endpointslice-all-ready.json");
        let one: EndpointSlice = load("endpointslice-one-not-ready.json");
        let object = format!("EndpointSlice/{}", all.metadata.name.clone().unwrap());
        let out = slice_changes(Some(&all), &one);
        let back = slice_changes(Some(&one), &all);
        assert_eq!(out, vec![format!("{BROKEN} not ready")], "the sample is the one this test is about");
        (entry(0, Source::EndpointSlice, &object, &out[0]), entry(0, Source::EndpointSlice, &object, &back[0]))
    }

    fn probe(declared: bool) -> ProbeTiming {
        if declared {
            ProbeTiming { declared, period_s: 5, failure_threshold: 2, success_threshold: 1, timeout_s: 3 }
        } else {
            ProbeTiming::of(None)
        }
    }

    /// 20 req/s round robin over the captured slice's three Pods for `stop` ms; the file created
    /// at 5 s and removed at `restore`. `broken_until(t)`: whether the Pod is still sent traffic
    /// (and answers 503, as myblog does on its probe path) at t; `out`/`back`: the slice changes.
    fn flip(declared: bool, out: Option<u64>, back: Option<u64>, restore: u64, stop: u64, reached: impl Fn(u64) -> bool) -> ReadinessRun {
        let backends = vec![String::new(), BROKEN.into(), "web-57d8bfc944-t4s7f".into(), "web-57d8bfc944-4cl4s".into()];
        let mut records = Vec::new();
        for t in (0..stop).step_by(50) {
            let i = (t / 50 % 3) as u16;
            let r = if i == 0 && !reached(t) {
                // Its share goes to the others.
                rec(t, Outcome::Status(200), 2, 1)
            } else if i == 0 && (5_000..restore).contains(&t) {
                rec(t, Outcome::Status(503), 1, 1)
            } else {
                rec(t, Outcome::Status(200), 1 + i, 1)
            };
            records.push(r);
        }
        let (gone, ready) = slice_lines();
        let mut events = vec![entry(T0 + 5_050, Source::Action, &format!("Pod/{BROKEN}"), "exec myblog: touch /tmp/seaworthy-unready")];
        events.extend(out.map(|at| Entry { at_ms: T0 + at, ..gone }));
        events.push(entry(T0 + restore + 50, Source::Action, &format!("Pod/{BROKEN}"), "exec myblog: rm -f /tmp/seaworthy-unready"));
        events.extend(back.map(|at| Entry { at_ms: T0 + at, ..ready }));
        ReadinessRun {
            pod: BROKEN.into(),
            service: "web".into(),
            container: "myblog".into(),
            file: DEFAULT_UNREADY_FILE.into(),
            probe: probe(declared),
            traffic: Traffic { name: "readiness flip".into(), started_ms: T0, records, backends, versions: vec![String::new(), "v1".into()] },
            flipped_ms: T0 + 5_000,
            restored_ms: T0 + restore,
            stopped_ms: T0 + stop,
            grace_ms: 1_000,
            slack_ms: 5_000,
            left_seen_ms: out.map(|at| T0 + at + 20),
            back_seen_ms: back.map(|at| T0 + at + 20),
            events,
        }
    }

    #[test]
    fn a_pod_that_fails_readiness_leaves_and_comes_back() {
        // Out at 12 s; the last request reaching it is in flight at 12.5 s; back at 28 s.
        let run = flip(true, Some(12_000), Some(28_000), 25_000, 40_000, |t| !(12_500..28_200).contains(&t));
        let v = judge_readiness(&run);
        assert_eq!(v.outcome, Verdicts::Pass, "{}", v.reason);
        assert_eq!(v.metrics["endpoint_removed_s"], 7.0);
        assert!(
            v.reason.starts_with(&format!(
                "Pod {BROKEN} left Service web's endpoints 7.0s after its readiness check was made to fail (/tmp/seaworthy-unready created in container myblog), within the 15.0s allowed (periodSeconds 5 x failureThreshold 2 + 5s slack)"
            )),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("back 3.0s after /tmp/seaworthy-unready was removed, answering 73 requests again"), "{}", v.reason);
    }

    #[test]
    fn without_a_readiness_probe_the_broken_pod_stays_and_keeps_answering() {
        let run = flip(false, None, None, 45_000, 55_000, |_| true);
        let v = judge_readiness(&run);
        assert_eq!(v.outcome, Verdicts::Fail);
        assert!(!v.metrics.contains_key("endpoint_removed_s"));
        let r = &v.reason;
        assert!(
            r.starts_with(&format!(
                "Pod {BROKEN} stayed a ready endpoint of Service web for the whole 40.0s until the file was removed after its readiness check was made to fail (/tmp/seaworthy-unready created in container myblog; container myblog has no readinessProbe), longer than the 35.0s a probe with the API's defaults would allow (periodSeconds 10 x failureThreshold 3 + 5s slack)"
            )),
            "{r}"
        );
        assert!(r.ends_with("it kept answering: 33 requests sent after that (503 x33)"), "{r}");
        assert_eq!(v.metrics["answered_after_unready"], 33.0);
    }

    #[test]
    fn a_pod_still_answering_after_it_left_fails() {
        // The slice says not ready at 12 s, yet requests keep reaching it until 20 s.
        let run = flip(true, Some(12_000), Some(28_000), 25_000, 40_000, |t| !(20_000..28_200).contains(&t));
        let v = judge_readiness(&run);
        assert_eq!(v.outcome, Verdicts::Fail);
        assert!(
            v.reason.starts_with(&format!(
                "Pod {BROKEN} left Service web's endpoints 7.0s after its readiness check was made to fail (/tmp/seaworthy-unready created in container myblog), but still answered 47 requests sent more than 1.0s after that (503 x47), the first at 8.1s"
            )),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("47 requests failed after Pod web-57d8bfc944-zxbcc was out of rotation: 47 failures (503 x47) at 13.1-19.9s, backend web-57d8bfc944-zxbcc"), "{}", v.reason);
    }

    #[test]
    fn a_pod_that_never_comes_back_fails() {
        let run = flip(true, Some(12_000), None, 25_000, 40_000, |t| t < 12_500);
        let v = judge_readiness(&run);
        assert_eq!(v.outcome, Verdicts::Fail);
        assert_eq!(v.reason, format!("Pod {BROKEN} did not come back as a ready endpoint of Service web within 13.0s after /tmp/seaworthy-unready was removed"));
    }

    #[test]
    fn leaving_too_late_fails_even_if_it_leaves() {
        let run = flip(true, Some(30_000), Some(36_000), 33_000, 45_000, |t| !(30_500..36_200).contains(&t));
        let v = judge_readiness(&run);
        assert_eq!(v.outcome, Verdicts::Fail);
        assert!(v.reason.starts_with(&format!("Pod {BROKEN} stayed a ready endpoint of Service web for 25.0s after")), "{}", v.reason);
        assert_eq!(v.metrics["endpoint_removed_s"], 25.0);
    }

    #[test]
    fn slice_lines_are_matched_per_service_and_pod() {
        let (gone, ready) = slice_lines();
        assert_eq!(slice_state(&gone, "web", BROKEN), Some(false));
        assert_eq!(slice_state(&ready, "web", BROKEN), Some(true));
        assert_eq!(slice_state(&gone, "db", BROKEN), None, "another Service's slice");
        assert_eq!(slice_state(&gone, "web", "web-57d8bfc944-zxbc"), None, "a name that is a prefix of another");
        let term = entry(0, Source::EndpointSlice, "EndpointSlice/web-xcz22", &format!("{BROKEN} terminating, still serving"));
        assert_eq!(slice_state(&term, "web", BROKEN), Some(false));
    }

    #[test]
    fn probe_timing_comes_from_the_fixtures_manifests() {
        let flask = crate::stack::Stack::find("flask-sts").unwrap();
        let p = ProbeTiming::of(flask.container("flask-sts", "flask").unwrap().readiness_probe.as_ref());
        assert_eq!((p.declared, p.period_s, p.failure_threshold, p.leave_within_ms(5_000)), (true, 5, 2, 15_000));
        let blog = crate::stack::Stack::find("myblog").unwrap();
        let p = ProbeTiming::of(blog.container("myblog", "myblog").unwrap().readiness_probe.as_ref());
        assert_eq!((p.period_s, p.failure_threshold, p.leave_within_ms(5_000)), (15, 3, 50_000), "failureThreshold defaults to 3");
        let broken = blog.variant("no-readiness-probe").unwrap();
        assert!(!ProbeTiming::of(broken.container("myblog", "myblog").unwrap().readiness_probe.as_ref()).declared);
        // Both stacks name a Service that exists and a workload with at least two replicas.
        for (stack, check) in [(&flask, "endpoints-follow-readiness"), (&blog, "endpoints-follow-readiness")] {
            let params = &stack.spec.checks.iter().find(|c| c.name == check).unwrap().params;
            let service = params.get("service").and_then(|v| v.as_str()).unwrap_or(&stack.spec.entry.service);
            assert!(stack.service(service).is_some(), "{service}");
            let name = params.get("workload").or(params.get("deployment")).and_then(|v| v.as_str()).unwrap();
            Workload::find(stack, name).unwrap();
        }
    }
}
