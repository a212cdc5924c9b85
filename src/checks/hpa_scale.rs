//! `hpa-scale` (shared/STACKS.md): under a built-in load that drives the Pods' CPU past the HPA's
//! target, replicas rise from min toward max within a deadline while every request succeeds;
//! after the load they fall back to min within the (shortened) scale-down window plus slack. The
//! negative control (an HPA on a metric nothing serves) must not scale and is reported with the
//! HPA's own conditions.
//!
//! Sizing (wordpress): a WordPress page costs php-fpm about 15 ms of CPU (Debian's package with
//! opcache, measured on this project's 2-core machine: 50 requests of `/`). The Pod requests 300m
//! (nginx 100m + php-fpm 200m, requests = limits) and the HPA targets 20% of it, 60m: 13 req/s
//! over the three Pods is the threshold (20% plus the controller's 10% tolerance), and php-fpm's
//! 200m limit is reached at about 13 req/s per Pod, 40 over three. The load ramps to `rate`
//! (24 req/s: 41% of the request per Pod, a desired count above max) so that the HPA has a clear
//! reason to scale while the Pods keep a margin below their CPU limit. That is why the failure
//! budget is 0: new Pods get traffic only once ready, and nothing in the load saturates the old
//! ones, so a failed request is a finding, not noise.
//!
//! What counts as scaled: `status.currentReplicas` (the Deployment's Pod count) reaching
//! `scale_to` (default min + 1: "toward max"). How far it got is the `max_replicas` metric, and the
//! reason says how many Pods actually answered, since on a small node the extra Pods may stay
//! Pending: the HPA did its part, the node had no room.

use super::http_probe::{Body, EntryPoint, probe_phase};
use super::timeline::describe;
use super::{CheckContext, Phase, Verdict};
use crate::observe::{Entry, Source, now_ms};
use crate::traffic::Schedule;
use crate::wait::hpa::{ReplicaTarget, explain};
use crate::wait::watch::{self as waits, WaitError};
use anyhow::{Context, Result, bail};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use std::time::Duration;

/// The HPA's replica count at one moment, as the Observer logged it (or a wait returned it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaSample {
    pub at_ms: u64,
    pub current: i32,
}

/// The HPA's `currentReplicas` over time from the Observer's lines (`observe::hpa_changes`):
/// `replicas 3 (desired 3)` on first sight, then `current replicas 3 -> 5`.
pub fn replica_samples(entries: &[Entry], hpa: &str) -> Vec<ReplicaSample> {
    let object = format!("HorizontalPodAutoscaler/{hpa}");
    entries
        .iter()
        .filter(|e| e.source == Source::Hpa && e.object == object)
        .filter_map(|e| {
            let current = if let Some(rest) = e.message.strip_prefix("current replicas ") {
                rest.rsplit(" -> ").next()?.trim().parse().ok()?
            } else if let Some(rest) = e.message.strip_prefix("replicas ") {
                rest.split_whitespace().next()?.parse().ok()?
            } else {
                return None;
            };
            Some(ReplicaSample { at_ms: e.at_ms, current })
        })
        .collect()
}

/// What the load did, from its phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub sent: u64,
    pub failed: u64,
    /// Pods that answered at least one request successfully.
    pub backends: usize,
    /// The failures, clustered and placed next to the events (timeline::describe).
    pub failures: String,
}

impl Traffic {
    pub fn of(phase: &Phase) -> Traffic {
        let Some(s) = &phase.traffic else { return Traffic::default() };
        // The summary counts answers below 400 as ok; a check counts only 2xx (timeline::succeeded).
        let not_2xx_below_400: u64 = s.status_codes.iter().filter(|(c, _)| c.parse::<u16>().is_ok_and(|c| c < 200 || (300..400).contains(&c))).map(|(_, n)| n).sum();
        Traffic {
            sent: s.sent,
            failed: s.failed + not_2xx_below_400,
            backends: s.backends.iter().filter(|b| b.ok > 0).count(),
            failures: describe(&phase.failure_clusters),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub hpa: String,
    pub min: i32,
    pub max: i32,
    pub scale_to: i32,
    pub scale_up_within: Duration,
    /// The HPA's scale-down stabilization window plus slack.
    pub scale_down_within: Duration,
    pub peak_rate: f64,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub samples: Vec<ReplicaSample>,
    pub load_started_ms: u64,
    pub load_ended_ms: u64,
    /// When the run stopped watching (after the scale-down, or when it gave up).
    pub watch_ended_ms: u64,
    /// Whether the run waited for the scale-down at all (not after a failed scale-up).
    pub cooled_down: bool,
    pub traffic: Traffic,
    /// The HPA as last read: its conditions explain a missing scale.
    pub hpa: Option<HorizontalPodAutoscaler>,
}

/// `cpu 41% of requests (target 20%)`, from the HPA's status and spec.
pub fn utilization(hpa: &HorizontalPodAutoscaler) -> Option<String> {
    let current = hpa.status.as_ref()?.current_metrics.as_ref()?.iter().find_map(|m| m.resource.as_ref()).and_then(|r| {
        let pct = r.current.average_utilization?;
        Some((r.name.clone(), pct))
    });
    let target = hpa.spec.as_ref()?.metrics.iter().flatten().find_map(|m| m.resource.as_ref()).and_then(|r| r.target.average_utilization);
    let (name, pct) = current?;
    Some(match target {
        Some(t) => format!("{name} {pct}% of requests (target {t}%)"),
        None => format!("{name} {pct}% of requests"),
    })
}

fn hpa_state(obs: &Observed) -> String {
    match &obs.hpa {
        None => "the HPA could not be read".into(),
        Some(h) => match utilization(h) {
            Some(u) => format!("{}; {u}", explain(h)),
            None => explain(h),
        },
    }
}

pub fn judge(obs: &Observed, want: &Expect) -> Verdict {
    let secs = |ms: u64| ms as f64 / 1000.0;
    // The count when the load started (the last one seen before) and every one while watched.
    let at_start = obs.samples.iter().rfind(|s| s.at_ms < obs.load_started_ms);
    let max_seen = at_start.into_iter().chain(obs.samples.iter().filter(|s| s.at_ms >= obs.load_started_ms && s.at_ms <= obs.watch_ended_ms)).map(|s| s.current).max();
    let up = obs.samples.iter().filter(|s| s.at_ms >= obs.load_started_ms).find(|s| s.current >= want.scale_to);
    // Without load an HPA has no reason to scale: that says nothing about it, nor about a
    // negative control that "did not scale".
    if obs.traffic.sent == 0 {
        return Verdict::harness_error(format!("the load sent no request to drive hpa {}, so its scaling was not tested", want.hpa));
    }
    let mut v = match up {
        Some(up) if up.at_ms - obs.load_started_ms <= want.scale_up_within.as_millis() as u64 => None,
        Some(up) => Some(Verdict::fail(format!(
            "hpa {} reached {} replicas only {:.0}s after the load started (allowed {}s): {}",
            want.hpa,
            up.current,
            secs(up.at_ms - obs.load_started_ms),
            want.scale_up_within.as_secs(),
            hpa_state(obs)
        ))),
        None => Some(Verdict::fail(format!(
            "hpa {} did not scale from {} to {} within {}s of load up to {} req/s: {}",
            want.hpa,
            want.min,
            want.scale_to,
            want.scale_up_within.as_secs(),
            want.peak_rate,
            hpa_state(obs)
        ))),
    };
    if v.is_none() && obs.traffic.failed > 0 {
        v = Some(Verdict::fail(format!(
            "{} of {} requests failed while the HPA scaled (budget 0): {}",
            obs.traffic.failed, obs.traffic.sent, obs.traffic.failures
        )));
    }
    let down = up.and_then(|up| {
        obs.samples.iter().filter(|s| s.at_ms >= obs.load_ended_ms.max(up.at_ms)).find(|s| s.current <= want.min).map(|s| s.at_ms.saturating_sub(obs.load_ended_ms))
    });
    if v.is_none() {
        v = Some(match down {
            Some(d) if d <= want.scale_down_within.as_millis() as u64 => {
                let up = up.expect("scaled");
                Verdict::pass(format!(
                    "hpa {} scaled {} -> {} replicas {:.0}s after the load started (ramp to {} req/s; at most {} of max {}, {} Pods answered), \
                     0 of {} requests failed; back to {} replicas {:.0}s after the load stopped (allowed {}s)",
                    want.hpa,
                    want.min,
                    up.current,
                    secs(up.at_ms - obs.load_started_ms),
                    want.peak_rate,
                    max_seen.unwrap_or(up.current),
                    want.max,
                    obs.traffic.backends,
                    obs.traffic.sent,
                    want.min,
                    secs(d),
                    want.scale_down_within.as_secs()
                ))
            }
            Some(d) => Verdict::fail(format!(
                "hpa {} came back to {} replicas only {:.0}s after the load stopped (allowed {}s: the scale-down window plus slack)",
                want.hpa,
                want.min,
                secs(d),
                want.scale_down_within.as_secs()
            )),
            None if !obs.cooled_down => Verdict::fail("the run ended before the scale-down was watched"),
            None => Verdict::fail(format!(
                "hpa {} did not come back to {} replicas within {}s after the load stopped: {}",
                want.hpa,
                want.min,
                want.scale_down_within.as_secs(),
                hpa_state(obs)
            )),
        });
    }
    // The bound of the negative control, from the live HPA: no param needs to repeat it.
    let mut v = v.expect("decided").with_metric("min_replicas", want.min as f64);
    if let Some(up) = up {
        v = v.with_metric("time_to_scale_s", secs(up.at_ms - obs.load_started_ms));
    }
    if let Some(m) = max_seen {
        v = v.with_metric("max_replicas", m as f64);
    }
    if let Some(d) = down {
        v = v.with_metric("time_to_scale_down_s", secs(d));
    }
    v
}

/// WordPress answers every page with a redirect to its installer until installed: the load must
/// hit the real page, so the check installs it first (idempotent: "Already Installed" after).
async fn setup(ctx: &CheckContext, setup: Option<&super::params::FormPost>) -> Result<()> {
    let Some(setup) = setup else { return Ok(()) };
    let (path, form) = (setup.path.as_str(), setup.form.clone());
    let entry = EntryPoint::of(ctx)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = entry.send(reqwest::Method::POST, path, &[], Body::Form(form.clone()), None).await;
        if answer.is_2xx() {
            ctx.log.push(Source::Action, "entry", format!("POST {path}: {}", answer.status.unwrap_or(0)));
            return Ok(());
        }
        // A Pod that just became ready can still be missing behind the NodePort for a moment.
        if !answer.is_transient() || tokio::time::Instant::now() >= deadline {
            bail!("setup POST {path} answered {}", answer.describe());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    if !ctx.info.metrics_api {
        return Ok(Verdict::skipped("the cluster serves no metrics.k8s.io API (no metrics-server): an HPA on CPU cannot scale here"));
    }
    let p: super::params::HpaScale = ctx.params_as()?;
    let name = p.hpa.clone();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let hpa = hpas.get(&name).await.with_context(|| format!("reading hpa {name}"))?;
    let spec = hpa.spec.clone().unwrap_or_default();
    let (min, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
    for (key, live, given) in [("min", min, p.min), ("max", max, p.max)] {
        if let Some(p) = given
            && p != live
        {
            bail!("stack.toml says {key} = {p}, hpa {name} has {live}");
        }
    }
    let window = spec.behavior.as_ref().and_then(|b| b.scale_down.as_ref()).and_then(|r| r.stabilization_window_seconds).unwrap_or(300);
    let scale_to = p.scale_to.unwrap_or(min + 1);
    let rate = p.rate;
    let ramp = Duration::from_secs_f64(p.ramp_s);
    let duration = Duration::from_secs_f64(p.duration_s);
    let want = Expect {
        hpa: name.clone(),
        min,
        max,
        scale_to,
        scale_up_within: Duration::from_secs_f64(p.scale_up_within_s),
        scale_down_within: Duration::from_secs(window as u64) + Duration::from_secs_f64(p.scale_down_slack_s),
        peak_rate: rate,
    };
    if want.scale_up_within > duration || ramp >= duration || scale_to <= min || scale_to > max {
        bail!("hpa-scale params: need scale_up_within_s <= duration_s, ramp_s < duration_s and min < scale_to <= max");
    }

    setup(ctx, p.setup.as_ref()).await?;
    let path = p.path.as_deref();
    let schedule = Schedule::ramp(&[(Duration::ZERO, rate / 6.0), (ramp, rate), (duration, rate)])?;
    let running = ctx.start_load(&format!("ramp to {rate} req/s"), ctx.load_config(path, schedule)).await?;
    let load_started_ms = running.started_ms;
    let mut extra = Vec::new();
    let up = waits::hpa_replicas(&ctx.client, &ctx.ns, &name, ReplicaTarget::AtLeast(scale_to), want.scale_up_within).await;
    let scaled = up.is_ok();
    if let Ok(h) = &up {
        extra.push(ReplicaSample { at_ms: now_ms(), current: h.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0) });
    }
    // Scaled: the load runs its course, so the new Pods serve; not scaled: nothing left to see.
    let (load_phase, _) = ctx.finish_phase(running, !scaled).await;
    let load_ended_ms = load_phase.ended_ms;
    let mut phases = vec![load_phase];
    let mut last = up.ok();
    let cool_started = now_ms();
    if scaled {
        match waits::hpa_replicas(&ctx.client, &ctx.ns, &name, ReplicaTarget::Exactly(min), want.scale_down_within).await {
            Ok(h) => {
                extra.push(ReplicaSample { at_ms: now_ms(), current: h.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0) });
                last = Some(h);
            }
            Err(WaitError::Timeout { .. } | WaitError::Failed { .. }) => last = None,
        }
        phases.push(probe_phase(&ctx.log, "cool-down", cool_started));
    }
    let watch_ended_ms = now_ms();
    if last.is_none() {
        last = hpas.get(&name).await.ok();
    }
    let mut samples = replica_samples(&ctx.log.entries(), &name);
    samples.extend(extra);
    samples.sort_by_key(|s| s.at_ms);
    let obs = Observed { samples, load_started_ms, load_ended_ms, watch_ended_ms, cooled_down: scaled, traffic: Traffic::of(&phases[0]), hpa: last };
    let mut v = judge(&obs, &want);
    v.phases = phases;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::observe::hpa_changes;
    use crate::traffic::{FailureKind, Outcome as Req, Record};

    use crate::samples::value as sample;

    /// The captured HPA `busy` (min 1, max 3) at `current` replicas — derived by setting
    /// current/desired; the settled capture itself is the 3/3 state.
    fn busy_at(current: i32) -> HorizontalPodAutoscaler {
        let mut v = sample("hpa-scaling.json");
        v["status"]["currentReplicas"] = current.into();
        v["status"]["desiredReplicas"] = current.into();
        serde_json::from_value(v).unwrap()
    }

    const T0: u64 = 1_795_000_000_000;

    /// The Observer's log of a scale-up and back, produced by the Observer's own differ from
    /// the sequence of HPA states, so the parser reads exactly what the Observer writes.
    fn timeline(states: &[(u64, i32)]) -> Vec<Entry> {
        let mut entries = vec![Entry { at_ms: T0 - 60_000, source: Source::Pod, object: "Pod/busy-1".into(), message: "ready".into() }];
        let mut prev: Option<HorizontalPodAutoscaler> = None;
        for &(at, current) in states {
            let h = busy_at(current);
            for line in hpa_changes(prev.as_ref(), &h) {
                entries.push(Entry { at_ms: at, source: Source::Hpa, object: "HorizontalPodAutoscaler/busy".into(), message: line });
            }
            prev = Some(h);
        }
        entries
    }

    fn expect() -> Expect {
        Expect {
            hpa: "busy".into(),
            min: 1,
            max: 3,
            scale_to: 2,
            scale_up_within: Duration::from_secs(150),
            scale_down_within: Duration::from_secs(120),
            peak_rate: 24.0,
        }
    }

    fn clean_traffic() -> Traffic {
        Traffic { sent: 3_600, failed: 0, backends: 3, failures: String::new() }
    }

    fn observed(states: &[(u64, i32)], traffic: Traffic, hpa: HorizontalPodAutoscaler) -> Observed {
        Observed {
            samples: replica_samples(&timeline(states), "busy"),
            load_started_ms: T0,
            load_ended_ms: T0 + 180_000,
            watch_ended_ms: T0 + 300_000,
            cooled_down: true,
            traffic,
            hpa: Some(hpa),
        }
    }

    #[test]
    fn samples_are_read_from_the_observer_lines() {
        let s = replica_samples(&timeline(&[(T0 - 30_000, 1), (T0 + 45_000, 3), (T0 + 240_000, 1)]), "busy");
        assert_eq!(
            s,
            vec![
                ReplicaSample { at_ms: T0 - 30_000, current: 1 },
                ReplicaSample { at_ms: T0 + 45_000, current: 3 },
                ReplicaSample { at_ms: T0 + 240_000, current: 1 }
            ]
        );
        assert!(replica_samples(&timeline(&[(T0, 1)]), "other").is_empty());
    }

    #[test]
    fn scale_up_under_load_and_back_passes() {
        let obs = observed(&[(T0 - 30_000, 1), (T0 + 45_000, 2), (T0 + 62_000, 3), (T0 + 240_000, 1)], clean_traffic(), busy_at(1));
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("scaled 1 -> 2 replicas 45s after the load started"), "{}", v.reason);
        assert!(v.reason.contains("at most 3 of max 3, 3 Pods answered"), "{}", v.reason);
        assert!(v.reason.contains("back to 1 replicas 60s after the load stopped (allowed 120s)"), "{}", v.reason);
        assert_eq!(v.metrics["time_to_scale_s"], 45.0);
        assert_eq!(v.metrics["max_replicas"], 3.0);
        assert_eq!(v.metrics["time_to_scale_down_s"], 60.0);
    }

    /// A phase of 20 requests: 200s, and the given statuses at the end.
    fn phase_with(statuses: &[u16]) -> Phase {
        use crate::traffic::{Mode, RecordLog, Report, Schedule};
        let mut records = RecordLog::default();
        let codes = std::iter::repeat_n(200, 20 - statuses.len()).chain(statuses.iter().copied());
        for (i, code) in codes.enumerate() {
            records.push(Record { planned_ns: i as u64 * 50_000_000, latency_us: 3_000, service_us: 2_500, outcome: Req::Status(code).code(), backend: 1, version: 0, flags: 1 });
        }
        let report = Report {
            url: "http://127.0.0.1:30012/".into(),
            mode: Mode::Open(Schedule::constant(20.0, Duration::from_secs(1)).unwrap()),
            connections_limit: 8,
            max_in_flight: 1024,
            timeout: Duration::from_secs(5),
            started: std::time::Instant::now(),
            window: Duration::from_secs(1),
            planned: 20,
            connections_opened: 8,
            retried: 0,
            connection_policy: Default::default(),
            backends: vec![String::new(), "wordpress-1".into()],
            versions: vec![String::new()],
            records,
        };
        Phase { name: "load".into(), started_ms: T0, ended_ms: T0 + 1_000, traffic: Some(report.summary(Duration::from_secs(1))), events: vec![], failure_clusters: vec![] }
    }

    #[test]
    fn only_2xx_answers_count_as_succeeding() {
        assert_eq!(Traffic::of(&phase_with(&[])).failed, 0);
        // A redirect (an uninstalled WordPress sends every page to its installer) is not the page.
        let t = Traffic::of(&phase_with(&[302, 302, 503]));
        assert_eq!((t.sent, t.failed), (20, 3));
    }

    #[test]
    fn no_load_is_a_harness_error_not_an_hpa_that_never_scaled() {
        // A load that sent nothing, on the negative control: the HPA "did not scale" for want of load.
        let obs = observed(&[(T0 - 30_000, 1), (T0 + 240_000, 1)], Traffic::default(), busy_at(1));
        let v = judge(&obs, &expect());
        assert_eq!((v.outcome, v.failure), (Outcome::Fail, crate::checks::FailureKind::Harness), "{}", v.reason);
        assert!(v.reason.contains("the load sent no request"), "{}", v.reason);
        let mut params = toml::Table::new();
        params.insert("min".into(), toml::Value::Integer(1));
        let e = crate::checks::negative::expectation("hpa-scale", &params).unwrap();
        assert!(!crate::checks::negative::judge_negative(&e, v).caught());
        // Scaled up and back, but nothing was sent: not a pass either.
        let obs = observed(&[(T0 - 30_000, 1), (T0 + 45_000, 2), (T0 + 240_000, 1)], Traffic::default(), busy_at(1));
        assert_eq!(judge(&obs, &expect()).outcome, Outcome::Fail);
    }

    #[test]
    fn an_hpa_that_cannot_get_its_metric_is_reported_with_its_conditions() {
        // The captured HPA whose target has no cpu request: no scale, ScalingActive=False.
        let nocpu: HorizontalPodAutoscaler = serde_json::from_value(sample("hpa-no-metrics.json")).unwrap();
        let mut obs = observed(&[(T0 - 30_000, 1)], clean_traffic(), nocpu);
        obs.cooled_down = false;
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("hpa busy did not scale from 1 to 2 within 150s of load up to 24 req/s"), "{}", v.reason);
        assert!(
            v.reason.contains("ScalingActive=False (FailedGetResourceMetric: the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu)"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("no current metrics"), "{}", v.reason);
        assert!(!v.metrics.contains_key("time_to_scale_s"));
        assert_eq!(v.metrics["max_replicas"], 1.0);

        // The wordpress control: a Pods metric no adapter serves. Derived from the same capture,
        // the condition as the HPA controller words it (FailedGetPodsMetric).
        let mut h = sample("hpa-no-metrics.json");
        h["spec"]["metrics"] = serde_json::json!([{"type": "Pods", "pods": {"metric": {"name": "wordpress_requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]);
        h["status"]["conditions"][1]["reason"] = "FailedGetPodsMetric".into();
        h["status"]["conditions"][1]["message"] = "the HPA was unable to compute the replica count: unable to get metric wordpress_requests_per_second: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered".into();
        obs.hpa = Some(serde_json::from_value(h).unwrap());
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("ScalingActive=False (FailedGetPodsMetric: the HPA was unable to compute the replica count: unable to get metric wordpress_requests_per_second"), "{}", v.reason);
    }

    #[test]
    fn too_little_load_says_how_far_below_target_the_cpu_stayed() {
        let mut h = sample("hpa-scaling.json");
        h["status"]["currentReplicas"] = 1.into();
        h["status"]["desiredReplicas"] = 1.into();
        h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] = 14.into();
        let obs = observed(&[(T0 - 30_000, 1)], clean_traffic(), serde_json::from_value(h).unwrap());
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.ends_with("cpu 14% of requests (target 20%)"), "{}", v.reason);
    }

    #[test]
    fn late_scale_up_failed_requests_and_no_scale_down_fail() {
        let late = observed(&[(T0 - 30_000, 1), (T0 + 170_000, 2), (T0 + 240_000, 1)], clean_traffic(), busy_at(1));
        let v = judge(&late, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("reached 2 replicas only 170s after the load started (allowed 150s)"), "{}", v.reason);

        // Requests that failed during the scale-up, clustered as the phase records them.
        let ok = Req::Status(200).code();
        let timeout = Req::Failure(FailureKind::Timeout).code();
        let records: Vec<Record> = (0..200u64)
            .map(|i| Record { planned_ns: i * 100_000_000, latency_us: 20_000, service_us: 20_000, outcome: if (100..103).contains(&i) { timeout } else { ok }, backend: 1, version: 0, flags: 1 })
            .collect();
        let clusters = crate::checks::timeline::failure_clusters(&records, &[String::new(), "busy-1".into()], T0, &timeline(&[(T0 + 9_000, 2)]));
        let traffic = Traffic { sent: 200, failed: 3, backends: 1, failures: describe(&clusters) };
        let failing = observed(&[(T0 - 30_000, 1), (T0 + 45_000, 2), (T0 + 240_000, 1)], traffic, busy_at(1));
        let v = judge(&failing, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("3 of 200 requests failed while the HPA scaled (budget 0): 3 failures (timeout x3) at 10.0-10.2s"), "{}", v.reason);

        let stuck = observed(&[(T0 - 30_000, 1), (T0 + 45_000, 3)], clean_traffic(), busy_at(3));
        let v = judge(&stuck, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("did not come back to 1 replicas within 120s") && v.reason.contains("ScalingLimited=True"), "{}", v.reason);
        assert!(!v.metrics.contains_key("time_to_scale_down_s"));

        let slow = observed(&[(T0 - 30_000, 1), (T0 + 45_000, 3), (T0 + 330_000, 1)], clean_traffic(), busy_at(1));
        let v = judge(&slow, &expect());
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.reason);
        assert!(v.reason.contains("only 150s after the load stopped"), "{}", v.reason);
    }
}
