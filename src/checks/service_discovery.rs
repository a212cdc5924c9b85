//! `service-discovery` (shared/STACKS.md): the app reaches its database (or redis) by the
//! Service's DNS name, so the pages that need it answer through the entry point.
//!
//! The runner does not wait for this check's stack (see `needs_ready_stack`): an app that cannot
//! reach its database may never become ready (myblog's initContainer waits for it), and then the
//! finding is the app's own error from its log, not a rollout timeout. So the check waits for the
//! other workloads first, then gives the app `app_ready_s` to become ready.

use super::actions::{serving_pods, workload_selector};
use super::http_probe::{Answer, EntryPoint, SAMPLE_WITHIN, probe_phase};
use super::{CheckContext, Verdict};
use crate::observe::now_ms;
use crate::stack::Resource;
use crate::wait::watch as waits;
use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;

/// Log lines read from a container that holds its Pod up.
const LOG_TAIL: i64 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerLog {
    pub pod: String,
    pub container: String,
    pub log: String,
}

/// The app did not become ready: the wait's own message and the logs of what held it up.
#[derive(Debug, Clone, PartialEq)]
pub struct NotReady {
    pub wait_error: String,
    pub logs: Vec<ContainerLog>,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub app: String,
    pub path: String,
    pub not_ready: Option<NotReady>,
    /// Answers once the app was reached (the first is the one that ended the settling).
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone)]
pub struct Want {
    pub status: u16,
    /// Text the page shows only when the database answered (e.g. the counter's "visited").
    pub body: Option<String>,
}

/// The containers that keep a Pod from being ready: the first init container that has not
/// finished successfully (later ones have not run), else the app containers that are not ready.
pub fn blocking_containers(pod: &Pod) -> Vec<String> {
    let Some(status) = &pod.status else { return vec![] };
    let init_done = |s: &k8s_openapi::api::core::v1::ContainerStatus| s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_some_and(|t| t.exit_code == 0);
    let declared_init: Vec<String> = pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten()).map(|c| c.name.clone()).collect();
    for name in &declared_init {
        match status.init_container_statuses.iter().flatten().find(|s| &s.name == name) {
            Some(s) if init_done(s) => continue,
            _ => return vec![name.clone()],
        }
    }
    status.container_statuses.iter().flatten().filter(|s| !s.ready).map(|s| s.name.clone()).collect()
}

/// The last non-empty line of a log.
fn last_line(log: &str) -> Option<&str> {
    log.lines().map(str::trim).rfind(|l| !l.is_empty())
}

pub fn judge(obs: &Observed, want: &Want) -> Verdict {
    if let Some(nr) = &obs.not_ready {
        let said: Vec<(&ContainerLog, &str)> = nr.logs.iter().filter_map(|l| last_line(&l.log).map(|line| (l, line))).collect();
        let app_error = match said.first() {
            Some((l, line)) => {
                let same = said.iter().skip(1).filter(|(_, other)| other == line).count();
                let more = if same > 0 { format!(" (the same in {same} more Pod{})", if same == 1 { "" } else { "s" }) } else { String::new() };
                format!("; {} of {} says: {line}{more}", l.container, l.pod)
            }
            None => "; its containers logged nothing".into(),
        };
        return Verdict::fail(format!("{} never became ready, so no page could be served: {}{app_error}", obs.app, nr.wait_error));
    }
    if obs.answers.is_empty() {
        return Verdict::fail(format!("GET {}: no request was sent", obs.path));
    }
    let bad: Vec<&Answer> = obs
        .answers
        .iter()
        .filter(|a| a.status != Some(want.status) || want.body.as_ref().is_some_and(|b| !a.body.contains(b.as_str())))
        .collect();
    if let Some(first) = bad.first() {
        let missing = match &want.body {
            Some(b) if first.status == Some(want.status) => format!(" without {b:?}"),
            _ => String::new(),
        };
        return Verdict::fail(format!(
            "GET {} through the entry point answered {}{missing} ({} of {} requests failed; the app needs its database for this page)",
            obs.path,
            first.describe(),
            bad.len(),
            obs.answers.len()
        ));
    }
    let mut backends: Vec<&str> = obs.answers.iter().filter_map(|a| a.backend.as_deref()).collect();
    backends.sort();
    backends.dedup();
    Verdict::pass(format!(
        "GET {} answered {} {} times, from {}: {} reaches its database by the Service's name",
        obs.path,
        want.status,
        obs.answers.len(),
        if backends.is_empty() { "an unnamed backend".to_string() } else { backends.join(", ") },
        obs.app
    ))
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::ServiceDiscovery = ctx.params_as()?;
    let app = p.deployment.clone();
    let path = p.path.clone().unwrap_or_else(|| ctx.stack.spec.entry.path.clone());
    let want = Want { status: p.expect_status, body: p.expect_body.clone() };
    let app_ready = Duration::from_secs_f64(p.app_ready_s.unwrap_or(ctx.timeouts.ready.as_secs_f64()));
    let (_, selector) = workload_selector(&ctx.stack, &app)?;
    let t = now_ms();

    // What the app depends on first: it must be up before the app's failure means anything.
    for object in &ctx.stack.objects {
        let name = object.resource.name();
        match &object.resource {
            Resource::Deployment(_) if name != app => {
                waits::deployment_rollout(&ctx.client, &ctx.ns, name, ctx.timeouts.ready).await?;
            }
            Resource::StatefulSet(_) => {
                waits::statefulset_rollout(&ctx.client, &ctx.ns, name, ctx.timeouts.ready).await?;
            }
            _ => {}
        }
    }
    let mut obs = Observed { app: format!("Deployment {app}"), path: path.clone(), not_ready: None, answers: vec![] };
    if let Err(e) = waits::deployment_rollout(&ctx.client, &ctx.ns, &app, app_ready).await {
        let mut logs = Vec::new();
        for pod in ctx.actions.pods(&selector).await? {
            let Some(name) = pod.metadata.name.clone() else { continue };
            if crate::wait::pods::pod_ready(&pod).is_done() {
                continue;
            }
            let containers = match p.init_container.as_deref() {
                Some(c) => vec![c.to_string()],
                None => blocking_containers(&pod),
            };
            for c in containers {
                let log = ctx.actions.container_log(&name, &c, LOG_TAIL).await.unwrap_or_else(|e| format!("(log not readable: {e:#})"));
                logs.push(ContainerLog { pod: name.clone(), container: c, log });
            }
        }
        obs.not_ready = Some(NotReady { wait_error: e.to_string(), logs });
        return Ok(judge(&obs, &want).with_phase(probe_phase(&ctx.log, "wait for the app", t)));
    }

    let entry = EntryPoint::of(ctx)?;
    let last = entry.settle(&path, Duration::from_secs(30)).await.pop().unwrap_or_default();
    let reached = !last.is_transient();
    obs.answers.push(last);
    if reached {
        let backends = serving_pods(&ctx.actions.pods(&selector).await?);
        obs.answers.extend(entry.sample_backends(&path, &backends, 9, SAMPLE_WITHIN).await);
    }
    Ok(judge(&obs, &want).with_phase(probe_phase(&ctx.log, "pages that need the database", t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::stack::Stack;

    fn params(stack: &str) -> toml::Table {
        Stack::find(stack).unwrap().spec.checks.iter().find(|c| c.name == "service-discovery").unwrap().params.clone()
    }

    fn want(stack: &str) -> Want {
        let p = params(stack);
        Want { status: p.get("expect_status").and_then(|v| v.as_integer()).unwrap_or(200) as u16, body: p.get("expect_body").and_then(|v| v.as_str()).map(str::to_string) }
    }

    fn observed(app: &str, path: &str, answers: Vec<Answer>) -> Observed {
        Observed { app: format!("Deployment {app}"), path: path.into(), not_ready: None, answers }
    }

    /// The migrate initContainer's stderr with MYSQL_HOST=mysqldb (the wrong-mysql-host variant):
    /// `manage.py dbinit --wait 3` run with Debian's python3-django and python3-mysqldb, unmodified.
    const MIGRATE_WRONG_HOST: &str = "waiting for MySQL database 'myblog' at mysqldb:3306: (2005, \"Unknown server host 'mysqldb' (-2)\")\n\
waiting for MySQL database 'myblog' at mysqldb:3306: (2005, \"Unknown server host 'mysqldb' (-2)\")\n";

    #[test]
    fn myblog_stuck_in_its_init_container_is_reported_with_the_init_log() {
        let p = params("myblog");
        let init = p["init_container"].as_str().unwrap();
        let obs = Observed {
            not_ready: Some(NotReady {
                wait_error: "deployment ns/myblog rollout: not done after 180s; last state: deployment \"myblog\": 0 of 2 updated replicas are available".into(),
                logs: vec![
                    ContainerLog { pod: "myblog-5c7d-a".into(), container: init.into(), log: MIGRATE_WRONG_HOST.into() },
                    ContainerLog { pod: "myblog-5c7d-b".into(), container: init.into(), log: MIGRATE_WRONG_HOST.into() },
                ],
            }),
            ..observed("myblog", "/blog/index/", vec![])
        };
        let v = judge(&obs, &want("myblog"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("Deployment myblog never became ready, so no page could be served: deployment ns/myblog rollout: not done after 180s"), "{}", v.reason);
        assert!(
            v.reason.ends_with("; migrate of myblog-5c7d-a says: waiting for MySQL database 'myblog' at mysqldb:3306: (2005, \"Unknown server host 'mysqldb' (-2)\") (the same in 1 more Pod)"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains(p["expect_error"].as_str().unwrap()));
    }

    #[test]
    fn myblog_serving_its_index_passes() {
        let page = |b: &str| Answer::response(200, Some(b), "<html><body><h1>我的博客列表</h1><ul><li class=\"empty\">no articles yet</li></ul></body></html>");
        let obs = observed("myblog", "/blog/index/", vec![page("myblog-5c7d-a"), page("myblog-5c7d-b"), page("myblog-5c7d-a")]);
        let v = judge(&obs, &want("myblog"));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert_eq!(v.reason, "GET /blog/index/ answered 200 3 times, from myblog-5c7d-a, myblog-5c7d-b: Deployment myblog reaches its database by the Service's name");
    }

    #[test]
    fn the_counter_with_a_wrong_redis_host_fails_with_the_apps_error() {
        let p = params("counter");
        let path = p["path"].as_str().unwrap();
        // index.php run by PHP 8.2's CLI with php-redis and REDIS_HOST=counter-redis-wrong.
        let error = Answer::response(503, Some("counter-app-7d4b9-x2k4q"), "counter: cannot reach redis at counter-redis-wrong:6379: php_network_getaddresses: getaddrinfo for counter-redis-wrong failed: Name or service not known\n");
        let v = judge(&observed("counter-app", path, vec![error]), &want("counter"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            "GET / through the entry point answered 503 from counter-app-7d4b9-x2k4q \"counter: cannot reach redis at counter-redis-wrong:6379: php_network_getaddresses: getaddrinfo for \
             counter-redis-wrong failed: Name or service not known\" (1 of 1 requests failed; the app needs its database for this page)"
        );
        assert!(v.reason.contains(p["expect_error"].as_str().unwrap()));

        let page = |n: u32, b: &str| Answer::response(200, Some(b), &format!("Hello World by {b} from 10.244.2.1 ! This page has been visited {n} times.\n"));
        let good = observed("counter-app", path, vec![page(1, "counter-app-a"), page(2, "counter-app-b"), page(3, "counter-app-c")]);
        assert_eq!(judge(&good, &want("counter")).outcome, Outcome::Pass);
        // A 200 that is not the counter's page (e.g. a default nginx page) is not the app reaching redis.
        let other = observed("counter-app", path, vec![page(1, "counter-app-a"), Answer::response(200, None, "<h1>Welcome to nginx!</h1>")]);
        let v = judge(&other, &want("counter"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("answered 200 \"Welcome to nginx!\" without \"visited\" (1 of 2 requests failed"), "{}", v.reason);
    }

    #[test]
    fn wordpress_with_a_wrong_database_host_fails_with_its_database_error() {
        let p = params("wordpress");
        let page = include_str!("../../tests-data/app-wordpress-db-error.html");
        let obs = observed("wordpress", p["path"].as_str().unwrap(), vec![Answer::response(500, Some("wordpress-6b9f-q"), page)]);
        let v = judge(&obs, &want("wordpress"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains(&format!("answered 500 from wordpress-6b9f-q \"{}\"", p["expect_error"].as_str().unwrap())), "{}", v.reason);
    }

    /// Derived from the captured Pod in pod-crashloopbackoff.json: init containers and their
    /// statuses added in code (one finished, one still running, as myblog's migrate waits).
    #[test]
    fn the_container_holding_a_pod_up_is_the_first_unfinished_init_container() {
        let mut pod: Pod = crate::samples::load("pod-crashloopbackoff.json");
        let app_containers: Vec<String> = pod.status.as_ref().unwrap().container_statuses.iter().flatten().filter(|s| !s.ready).map(|s| s.name.clone()).collect();
        assert!(!app_containers.is_empty(), "the sample has a container that is not ready");
        assert_eq!(blocking_containers(&pod), app_containers, "no init containers: the unready app containers");

        let init = serde_json::json!([{"name": "copy", "image": "busybox"}, {"name": "migrate", "image": "myblog:v1"}]);
        pod.spec.as_mut().unwrap().init_containers = Some(serde_json::from_value(init).unwrap());
        let statuses = serde_json::json!([
            {"name": "copy", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "migrate", "image": "myblog:v1", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-11-22T00:05:48Z"}}}
        ]);
        pod.status.as_mut().unwrap().init_container_statuses = Some(serde_json::from_value(statuses).unwrap());
        assert_eq!(blocking_containers(&pod), vec!["migrate".to_string()]);
        // Not started yet (no status at all): the first one is what holds the Pod up.
        pod.status.as_mut().unwrap().init_container_statuses = None;
        assert_eq!(blocking_containers(&pod), vec!["copy".to_string()]);
    }

    #[test]
    fn every_stack_names_its_app_and_a_page_that_needs_the_database() {
        for name in ["myblog", "wordpress", "counter"] {
            let stack = Stack::find(name).unwrap();
            let p = params(name);
            let app = p["deployment"].as_str().unwrap();
            assert!(stack.deployment(app).is_some(), "{name}: {app}");
            assert!(p.contains_key("expect_error"), "{name}");
            if let Some(init) = p.get("init_container").and_then(|v| v.as_str()) {
                assert!(stack.pod_spec(app).unwrap().init_containers.iter().flatten().any(|c| c.name == init), "{name}: {init}");
            }
        }
    }
}
