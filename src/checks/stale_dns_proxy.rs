//! `stale-dns-proxy` (shared/STACKS.md): traffic through the nginx proxy in front of the
//! StatefulSet while the StatefulSet is updated, so that every Pod comes back with a new IP, and
//! for a while after.
//!
//! With `resolver` and a variable upstream nginx asks DNS again and follows the new IPs: no
//! request fails and the new Pods answer. The seed's first config (`proxy_pass http://flask-svc`)
//! resolved the name once at startup: once the old Pods are gone it has nowhere to send, and the
//! failures after the update are what the negative control must show.
//!
//! The update under load is `rollout-zero-5xx`'s; only the judgement differs.

use super::context::CheckContext;
use super::rollout_zero_5xx::{ImageUpdate, UpdateRun, Workload, failure_story, load, totals, update_under_load, version_problems};
use super::timeline::succeeded;
use super::verdict::Verdict;
use anyhow::Result;
use std::time::Duration;

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::StaleDnsProxy = ctx.params_as()?;
    let proxy = p.proxy.clone();
    // The proxy must be a workload of the stack: a typo would otherwise test nothing in particular.
    Workload::find(&ctx.stack, &proxy)?;
    let workload = Workload::find(&ctx.stack, &p.workload)?;
    let update = ImageUpdate::new(&ctx.stack, &workload, &p.image, &p.from, &p.to, &p.containers())?;
    let loads = vec![("through the proxy".to_string(), load(ctx, p.path.as_deref(), p.rps)?)];
    let lead = Duration::from_secs_f64(p.lead_s);
    let tail = Duration::from_secs_f64(p.tail_s);
    let run = update_under_load(ctx, &workload, &update, loads, lead, tail).await?;
    Ok(judge_stale_dns(&run, &proxy))
}

/// The verdict on traffic through `proxy` while the backends' Pods were replaced.
pub(super) fn judge_stale_dns(run: &UpdateRun, proxy: &str) -> Verdict {
    let (total, failed) = totals(run);
    let what = format!("{}'s Pods were replaced with new IPs ({} -> {})", run.workload, run.from, run.to);
    let mut problems = Vec::new();
    if let Some(e) = &run.error {
        problems.push(format!("the update of {} did not complete: {e}", run.workload));
    }
    if total == 0 {
        problems.push("no request was sent".to_string());
    }
    // After the controller said done (StatefulSet: every old Pod already deleted), only the new IPs
    // exist: a proxy that still fails then is holding on to addresses it resolved earlier.
    let settled = run.marks.old_gone_ms.or(run.marks.done_ms);
    let (mut after, mut failed_after, mut new_after) = (0, 0, 0);
    if let Some(settled) = settled {
        for t in &run.traffic {
            for r in t.records.iter().filter(|r| t.sent_ms(r) >= settled) {
                after += 1;
                if !succeeded(r) {
                    failed_after += 1;
                } else if t.version(r) == Some(run.to.as_str()) {
                    new_after += 1;
                }
            }
        }
    }
    if failed > 0 {
        let mut line = format!("through proxy {proxy}, {failed} of {total} requests failed during and after the update: {what}");
        if settled.is_some() {
            line.push_str(&format!(
                "; {failed_after} of the {after} sent after the update had completed failed and {new_after} reached a new ({}) Pod",
                run.to
            ));
            if failed_after > 0 {
                line.push_str(": the proxy kept sending to the old Pod IPs");
            }
        }
        line.push_str(&format!(": {}", failure_story(run)));
        problems.push(line);
    }
    if run.error.is_none() {
        problems.extend(version_problems(run).0);
    }
    let v = if problems.is_empty() {
        Verdict::pass(format!(
            "through proxy {proxy}, none of {total} requests failed during and after the update: {what}; the {after} sent after the update all reached the new Pods ({})",
            run.to
        ))
    } else {
        Verdict::fail(problems.join("; "))
    };
    let mut v = v.with_metric("failed", failed as f64);
    if let Some(done) = run.marks.done_ms {
        v = v.with_metric("rollout_s", done.saturating_sub(run.marks.update_ms) as f64 / 1000.0);
    }
    run.phases.iter().cloned().fold(v, Verdict::with_phase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome as Verdicts;
    use crate::checks::rollout_zero_5xx::tests::{T0, entry, rec};
    use crate::checks::rollout_zero_5xx::{Marks, Traffic};
    use crate::observe::Source;
    use crate::traffic::{FailureKind, Outcome};

    /// A recorded StatefulSet update behind nginx at 20 req/s: flask-sts-1 terminating at 8 s,
    /// gone at 12 s, its replacement ready at 14 s; flask-sts-0 likewise at 16, 20 and 22 s; the
    /// controller done at 22 s, traffic until 42 s. Backend names come back with the new Pods
    /// (a StatefulSet keeps them); only the version tells old from new. `stale`: nginx keeps the
    /// startup IPs, so each old Pod's share fails once it is gone, and everything after.
    fn update(stale: bool) -> UpdateRun {
        let backends = vec![String::new(), "flask-sts-0".into(), "flask-sts-1".into()];
        let versions = vec![String::new(), "v1".into(), "v2".into()];
        let mut records = Vec::new();
        for t in (0..42_000u64).step_by(50) {
            let i = (t / 50 % 2) as u16; // round robin over the two Pods
            let gone_at = if i == 1 { 12_000 } else { 20_000 }; // old Pod's container exits
            let back_at = if i == 1 { 14_000 } else { 22_000 }; // new Pod ready
            let r = match (stale, t >= gone_at) {
                (true, true) => rec(t, if t % 200 == 0 { Outcome::Failure(FailureKind::Timeout) } else { Outcome::Status(502) }, 0, 0),
                // Following DNS: a replaced Pod's share goes to the other one until it is back.
                (false, true) if t < back_at => rec(t, Outcome::Status(200), 2 - i, if i == 1 { 1 } else { 2 }),
                (false, true) => rec(t, Outcome::Status(200), 1 + i, 2),
                _ => rec(t, Outcome::Status(200), 1 + i, 1),
            };
            records.push(r);
        }
        UpdateRun {
            workload: "StatefulSet/flask-sts".into(),
            from: "v1".into(),
            to: "v2".into(),
            traffic: vec![Traffic { name: "through the proxy".into(), started_ms: T0, records, backends, versions }],
            phases: vec![],
            marks: Marks { update_ms: T0 + 5_000, done_ms: Some(T0 + 22_000), old_gone_ms: Some(T0 + 22_000), stopped_ms: T0 + 42_000 },
            error: None,
            events: vec![
                entry(T0 + 5_000, Source::Action, "StatefulSet/flask-sts", "set image flask=localhost/seaworthy/flask-sts-app:v2-abc"),
                entry(T0 + 8_000, Source::Pod, "Pod/flask-sts-1", "terminating (grace 30s)"),
                entry(T0 + 8_100, Source::EndpointSlice, "EndpointSlice/flask-svc-x7k2p", "flask-sts-1 terminating, still serving"),
                entry(T0 + 12_500, Source::Pod, "Pod/flask-sts-1", "deleted (uid 1)"),
                entry(T0 + 13_000, Source::Pod, "Pod/flask-sts-1", "created on kind-worker"),
                entry(T0 + 14_000, Source::Pod, "Pod/flask-sts-1", "ready"),
                entry(T0 + 16_000, Source::Pod, "Pod/flask-sts-0", "terminating (grace 30s)"),
                entry(T0 + 20_500, Source::Pod, "Pod/flask-sts-0", "deleted (uid 0)"),
                entry(T0 + 22_000, Source::Pod, "Pod/flask-sts-0", "ready"),
            ],
        }
    }

    #[test]
    fn a_proxy_that_follows_dns_loses_nothing() {
        let v = judge_stale_dns(&update(false), "flask-nginx");
        assert_eq!(v.outcome, Verdicts::Pass, "{}", v.reason);
        assert!(v.reason.contains("none of 840 requests failed") && v.reason.contains("the 400 sent after the update all reached the new Pods (v2)"), "{}", v.reason);
        assert_eq!(v.metrics["rollout_s"], 17.0);
        assert_eq!(v.metrics["failed"], 0.0);
    }

    #[test]
    fn a_proxy_with_the_startup_ips_fails_after_the_update_and_says_so() {
        let v = judge_stale_dns(&update(true), "flask-nginx");
        assert_eq!(v.outcome, Verdicts::Fail);
        let r = &v.reason;
        assert!(r.starts_with("through proxy flask-nginx, 520 of 840 requests failed during and after the update: StatefulSet/flask-sts's Pods were replaced"), "{r}");
        assert!(r.contains("400 of the 400 sent after the update had completed failed and 0 reached a new (v2) Pod: the proxy kept sending to the old Pod IPs"), "{r}");
        // One cluster from 12 s (flask-sts-1's share) on, placed next to flask-sts-1 terminating.
        assert!(r.contains("520 failures (502 x410, timeout x110) at 12.1-"), "{r}");
        assert!(r.contains("Pod/flask-sts-1 was terminating from 8.0s"), "{r}");
        assert!(r.contains("no request was answered after the last v1 Pod was gone"), "{r}");
        assert_eq!(v.metrics["failed"], 520.0);
    }
}
