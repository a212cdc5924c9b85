//! `config-override` (shared/STACKS.md): the ConfigMap's config.php is what the app serves, never
//! the one baked into the image; after the ConfigMap changes and a `rollout restart`, every Pod
//! serves the new one, and the restart costs no request.

use super::actions::{serving_pods, workload_selector};
use super::http_probe::{Answer, EntryPoint, SAMPLE_WITHIN, probe_phase};
use super::timeline::describe;
use super::{CheckContext, FailureCluster, Verdict};
use crate::observe::now_ms;
use crate::traffic::{Schedule, Summary};
use crate::wait::watch as waits;
use anyhow::Result;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Load before the restart and after the rollout, so that both edges are inside the phase.
const MARGIN: Duration = Duration::from_secs(3);

/// What the check wants, from `[checks.params]`.
#[derive(Debug, Clone)]
pub struct Want {
    pub path: String,
    /// The ConfigMap's config as the app prints it.
    pub expect: String,
    /// The image's own config: seeing it means the ConfigMap was not used.
    pub baked_in: String,
    pub expect_after_change: String,
}

/// What a run saw, stage by stage; a stage not reached is `None`.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The serving Pods before the change, and the answers from them.
    pub before_backends: Vec<String>,
    pub before: Vec<Answer>,
    /// The load across the restart: its summary and its failures placed next to events.
    pub restart: Option<(Summary, Vec<FailureCluster>)>,
    pub after_backends: Vec<String>,
    pub after: Vec<Answer>,
}

/// Every answer is 2xx with exactly `expect`, and every serving backend answered.
fn judge_served(answers: &[Answer], backends: &[String], expect: &str, baked_in: &str, when: &str) -> Result<String, String> {
    if answers.is_empty() {
        return Err(format!("{when}: no request was sent"));
    }
    for a in answers {
        let body = a.body.trim();
        if a.is_2xx() && body == expect {
            continue;
        }
        let from = a.backend.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        return Err(if a.is_2xx() && body == baked_in.trim() {
            format!("{when}: the image's baked-in config is served{from}: {body} (the ConfigMap's is {expect})")
        } else if a.is_2xx() {
            format!("{when}: served{from}: {body}, not the ConfigMap's {expect}")
        } else {
            format!("{when}: {}", a.describe())
        });
    }
    let silent: Vec<&str> = backends.iter().filter(|b| !answers.iter().any(|a| a.backend.as_ref() == Some(*b))).map(String::as_str).collect();
    if !silent.is_empty() {
        return Err(format!(
            "{when}: {} never answered in {} requests, so what it serves is unknown (answered: {})",
            silent.join(", "),
            answers.len(),
            heard(answers).join(", ")
        ));
    }
    Ok(format!("{} ({} requests)", heard(answers).join(", "), answers.len()))
}

fn heard(answers: &[Answer]) -> Vec<String> {
    let mut b: Vec<String> = answers.iter().filter_map(|a| a.backend.clone()).collect();
    b.sort();
    b.dedup();
    b
}

/// Non-2xx answers and requests without an answer during the restart, by kind.
fn judge_restart(summary: &Summary, clusters: &[FailureCluster]) -> Result<String, String> {
    let mut bad: BTreeMap<String, u64> = summary.failures.clone();
    for (code, n) in &summary.status_codes {
        if !code.starts_with('2') {
            *bad.entry(code.clone()).or_default() += n;
        }
    }
    let total: u64 = bad.values().sum();
    if total > 0 {
        let kinds: Vec<String> = bad.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let placed = describe(clusters);
        let placed = if placed.is_empty() { String::new() } else { format!(": {placed}") };
        return Err(format!("{total} of {} requests during the rollout restart were not 2xx ({}){placed}", summary.planned, kinds.join(", ")));
    }
    if summary.completed == 0 {
        return Err("no request was answered during the rollout restart".into());
    }
    Ok(format!("{} requests during the restart, all 2xx", summary.completed))
}

fn judge_before(obs: &Observed, want: &Want) -> Result<String, String> {
    judge_served(&obs.before, &obs.before_backends, &want.expect, &want.baked_in, &format!("GET {} before the change", want.path))
}

/// The verdict on what a run saw, with `baked_in_served`: the answers that carried the image's
/// own config (what the negative control must show).
pub fn judge(obs: &Observed, want: &Want) -> Verdict {
    let baked_in = obs.before.iter().chain(&obs.after).filter(|a| a.is_2xx() && a.body.trim() == want.baked_in.trim()).count();
    judge_stages(obs, want).with_metric("baked_in_served", baked_in as f64)
}

/// Stages judged in order; the first that fails decides.
fn judge_stages(obs: &Observed, want: &Want) -> Verdict {
    let before = match judge_before(obs, want) {
        Ok(s) => s,
        Err(r) => return Verdict::fail(r),
    };
    let Some((summary, clusters)) = &obs.restart else {
        return Verdict::fail("the rollout restart was not observed");
    };
    let restart = match judge_restart(summary, clusters) {
        Ok(s) => s,
        Err(r) => return Verdict::fail(r),
    };
    let after = match judge_served(&obs.after, &obs.after_backends, &want.expect_after_change, &want.baked_in, &format!("GET {} after the change and restart", want.path)) {
        Ok(s) => s,
        Err(r) => return Verdict::fail(r),
    };
    Verdict::pass(format!(
        "the ConfigMap's config {} was served by {before}; {restart}; then every new Pod served {}: {after}",
        want.expect, want.expect_after_change
    ))
}

fn want(p: &super::params::ConfigOverride) -> Want {
    Want { path: p.path.clone(), expect: p.expect.clone(), baked_in: p.baked_in.clone(), expect_after_change: p.expect_after_change.clone() }
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::ConfigOverride = ctx.params_as()?;
    let want = want(&p);
    let (deployment, config_map) = (p.deployment.clone(), p.configmap.clone());
    let data: BTreeMap<String, String> = p.change.data.clone();
    let (_, selector) = workload_selector(&ctx.stack, &deployment)?;
    let entry = EntryPoint::of(ctx)?;
    let mut obs = Observed::default();
    let mut phases = Vec::new();

    let t = now_ms();
    let old_pods = ctx.actions.pods(&selector).await?;
    obs.before_backends = serving_pods(&old_pods);
    // Only the answer that ended the settling counts: 503s from a proxy that has not seen the
    // new endpoints yet say nothing about the config.
    let mut answers: Vec<Answer> = entry.settle(&want.path, Duration::from_secs(30)).await.pop().into_iter().collect();
    answers.extend(entry.sample_backends(&want.path, &obs.before_backends, 4, SAMPLE_WITHIN).await);
    obs.before = answers;
    phases.push(probe_phase(&ctx.log, "before the change", t));
    // The negative control ends here: the baked-in config, reported with the body seen.
    if judge_before(&obs, &want).is_err() {
        return Ok(with_phases(judge(&obs, &want), phases));
    }

    ctx.actions.patch_config_map(&config_map, &data).await?;
    let rps = p.rps;
    // Longer than any restart can take (the rollout and then every old Pod gone); stopped early.
    let cfg = ctx.load_config(Some(&want.path), Schedule::constant(rps, ctx.timeouts.rollout * 3 + MARGIN * 4)?);
    let running = ctx.start_load("rollout restart", cfg).await?;
    tokio::time::sleep(MARGIN).await;
    let restarted = Instant::now();
    let rollout = async {
        ctx.actions.rollout_restart("Deployment", &deployment).await?;
        waits::deployment_rollout(&ctx.client, &ctx.ns, &deployment, ctx.timeouts.rollout).await?;
        // Done by the Deployment's counts still leaves old Pods in preStop, serving; they must be
        // gone before "every Pod serves the new config" means anything.
        for p in &old_pods {
            if let (Some(name), Some(uid)) = (&p.metadata.name, &p.metadata.uid) {
                waits::pod_gone(&ctx.client, &ctx.ns, name, uid, ctx.timeouts.rollout).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    let rollout_s = restarted.elapsed().as_secs_f64();
    if rollout.is_ok() {
        tokio::time::sleep(MARGIN).await;
    }
    let (phase, _report) = ctx.finish_phase(running, true).await;
    obs.restart = Some((phase.traffic.clone().expect("a load phase has traffic"), phase.failure_clusters.clone()));
    phases.push(phase);
    if let Err(e) = rollout {
        return Ok(with_phases(Verdict::fail(format!("rollout restart of {deployment} did not complete: {e:#}")), phases));
    }

    let t = now_ms();
    obs.after_backends = serving_pods(&ctx.actions.pods(&selector).await?);
    obs.after = entry.sample_backends(&want.path, &obs.after_backends, 4, SAMPLE_WITHIN).await;
    phases.push(probe_phase(&ctx.log, "after the restart", t));
    Ok(with_phases(judge(&obs, &want), phases).with_metric("rollout_s", rollout_s))
}

fn with_phases(mut v: Verdict, phases: Vec<super::Phase>) -> Verdict {
    v.phases.extend(phases);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::timeline::failure_clusters;
    use crate::observe::{Entry, Source};
    use crate::stack::Stack;
    use crate::traffic::{FailureKind, Mode, Outcome as Out, Record, RecordLog, Report};

    fn want() -> Want {
        let stack = Stack::find("phpdemo").unwrap();
        let check = stack.spec.checks.iter().find(|c| c.name == "config-override").unwrap();
        let s = |k: &str| check.params[k].as_str().unwrap().to_string();
        Want { path: s("path"), expect: s("expect"), baked_in: s("baked_in"), expect_after_change: s("expect_after_change") }
    }

    /// api.php's answer: json_encode($config) and no newline.
    fn answer(backend: &str, body: &str) -> Answer {
        Answer { version: Some("v1".into()), ..Answer::response(200, Some(backend), body) }
    }

    fn rec(t_ms: u64, outcome: Out, backend: u16) -> Record {
        Record { planned_ns: t_ms * 1_000_000, latency_us: 3_000, service_us: 2_500, outcome: outcome.code(), backend, version: 1, flags: 1 }
    }

    /// A load of 20 req/s over 30 s across a restart that replaced phpdemo-a-1/-a-2 by -b-1/-b-2,
    /// with `broken` (ms -> outcome) overriding some requests.
    fn restart_load(broken: &[(u64, Out)]) -> (Summary, Vec<FailureCluster>) {
        let backends = vec![String::new(), "phpdemo-a-1".into(), "phpdemo-a-2".into(), "phpdemo-b-1".into(), "phpdemo-b-2".into()];
        let mut records = RecordLog::default();
        for t in (0..30_000).step_by(50) {
            let backend = if t < 15_000 { 1 + (t / 50 % 2) as u16 } else { 3 + (t / 50 % 2) as u16 };
            let outcome = broken.iter().find(|(bt, _)| *bt == t).map(|(_, o)| *o).unwrap_or(Out::Status(200));
            records.push(rec(t, outcome, if outcome == Out::Status(200) { backend } else { 0 }));
        }
        let started_ms = 1_700_000_000_000;
        let report = Report {
            url: "http://127.0.0.1:30080/api.php".into(),
            mode: Mode::Open(Schedule::constant(20.0, Duration::from_secs(30)).unwrap()),
            connections_limit: 8,
            max_in_flight: 1024,
            timeout: Duration::from_secs(5),
            started: Instant::now(),
            window: Duration::from_secs(30),
            planned: records.len() as u64,
            connections_opened: 8,
            retried: 0,
            connection_policy: Default::default(),
            backends: backends.clone(),
            versions: vec![String::new(), "v1".into()],
            records,
        };
        let events = vec![
            Entry { at_ms: started_ms + 3_000, source: Source::Action, object: "Deployment/phpdemo".into(), message: "rollout restart".into() },
            Entry { at_ms: started_ms + 14_900, source: Source::Pod, object: "Pod/phpdemo-a-1".into(), message: "terminating (grace 35s)".into() },
        ];
        let summary = report.summary(Duration::from_secs(1));
        let clusters = failure_clusters(&report.records.to_vec(), &backends, started_ms, &events);
        (summary, clusters)
    }

    fn clean() -> Observed {
        let w = want();
        Observed {
            before_backends: vec!["phpdemo-a-1".into(), "phpdemo-a-2".into()],
            before: vec![answer("phpdemo-a-2", &w.expect), answer("phpdemo-a-1", &w.expect), answer("phpdemo-a-1", &w.expect), answer("phpdemo-a-2", &w.expect)],
            restart: Some(restart_load(&[])),
            after_backends: vec!["phpdemo-b-1".into(), "phpdemo-b-2".into()],
            after: vec![answer("phpdemo-b-1", &w.expect_after_change), answer("phpdemo-b-1", &w.expect_after_change), answer("phpdemo-b-2", &w.expect_after_change), answer("phpdemo-b-2", &w.expect_after_change)],
        }
    }

    #[test]
    fn the_configmap_served_before_and_after_a_clean_restart_passes() {
        let v = judge(&clean(), &want());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains(r#"{"host":"0.0.0.0","env":"prod"}"#) && v.reason.contains(r#"{"host":"0.0.0.0","env":"staging"}"#), "{}", v.reason);
        assert!(v.reason.contains("600 requests during the restart, all 2xx"), "{}", v.reason);
    }

    /// The no-configmap variant: php-fpm includes the code image's own config.php.
    #[test]
    fn the_baked_in_uat_config_is_caught_with_the_body_seen() {
        let w = want();
        let obs = Observed { before: vec![answer("phpdemo-a-1", &w.expect), answer("phpdemo-a-2", r#"{"host":"127.0.0.1","env":"uat"}"#)], restart: None, ..clean() };
        let v = judge(&obs, &w);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            r#"GET /api.php before the change: the image's baked-in config is served by phpdemo-a-2: {"host":"127.0.0.1","env":"uat"} (the ConfigMap's is {"host":"0.0.0.0","env":"prod"})"#
        );
        assert_eq!(v.metrics["baked_in_served"], 1.0);
        let expect = crate::checks::negative::expectation("config-override", &toml::Table::new()).unwrap();
        assert!(crate::checks::negative::judge_negative(&expect, v).caught());
        // A 503 before the change fails the check too, but is not the control's finding.
        let obs = Observed { before: vec![Answer::response(503, None, "no backend")], restart: None, ..clean() };
        let v = crate::checks::negative::judge_negative(&expect, judge(&obs, &w));
        assert!(!v.caught(), "{}", v.reason);
    }

    #[test]
    fn failures_during_the_restart_are_counted_and_placed() {
        let broken = [(15_000, Out::Failure(FailureKind::ConnectRefused)), (15_050, Out::Status(502)), (15_100, Out::Status(502))];
        let obs = Observed { restart: Some(restart_load(&broken)), ..clean() };
        let v = judge(&obs, &want());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("3 of 600 requests during the rollout restart were not 2xx (502 x2, connect_refused x1)"), "{}", v.reason);
        assert!(v.reason.contains("next to: Pod/phpdemo-a-1 terminating"), "{}", v.reason);
    }

    #[test]
    fn a_pod_left_with_the_old_config_or_never_heard_fails() {
        let w = want();
        let stale = Observed { after: vec![answer("phpdemo-b-1", &w.expect_after_change), answer("phpdemo-b-2", &w.expect)], ..clean() };
        let v = judge(&stale, &w);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains(r#"served by phpdemo-b-2: {"host":"0.0.0.0","env":"prod"}, not the ConfigMap's {"host":"0.0.0.0","env":"staging"}"#), "{}", v.reason);

        let unheard = Observed { after: vec![answer("phpdemo-b-1", &w.expect_after_change); 20], ..clean() };
        let v = judge(&unheard, &w);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("phpdemo-b-2 never answered in 20 requests"), "{}", v.reason);

        let error = Observed { before: vec![Answer::response(502, None, "<html><body><h1>502 Bad Gateway</h1></body></html>")], ..clean() };
        let v = judge(&error, &w);
        assert_eq!(v.reason, "GET /api.php before the change: 502 \"502 Bad Gateway\"");
    }

    #[test]
    fn the_change_is_the_seeds_new_config_and_database_php() {
        let stack = Stack::find("phpdemo").unwrap();
        let check = stack.spec.checks.iter().find(|c| c.name == "config-override").unwrap();
        let data = check.params["change"]["data"].as_table().unwrap();
        assert!(data["config.php"].as_str().unwrap().contains(r#""env" => "staging""#));
        assert!(data.contains_key("database.php"));
        // The ConfigMap key the Deployment mounts is the one the change replaces.
        assert!(stack.config_map("phpdemo-config").unwrap().data.as_ref().unwrap().contains_key("config.php"));
    }
}
