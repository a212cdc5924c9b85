//! Evictions as pdb-drain sends them: a POST to the Pod's eviction subresource; a 429 is
//! recorded and retried on kubectl drain's rhythm until the deadline, a 201 ends the retries and
//! starts the wait for the Pod to go.

use super::{Seen, pair};
use crate::checks::CheckContext;
use crate::checks::actions::Actions;
use crate::checks::context::Timeouts;
use crate::checks::pdb_drain::{Attempt, PodDrain, drain_pod};
use crate::cleanup::Cleanup;
use crate::cluster::ClusterInfo;
use crate::observe::{EventLog, Source};
use crate::samples::value;
use crate::wait::eviction::EvictionOutcome;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const NS: &str = "sw-wordpress-pdb-drain-run1";
const POD: &str = "wordpress-57d8bfc944-a";
const EVICTION: &str = "/api/v1/namespaces/sw-wordpress-pdb-drain-run1/pods/wordpress-57d8bfc944-a/eviction";
const RETRY: Duration = Duration::from_secs(5);

fn actions(client: kube::Client, log: EventLog) -> Actions {
    Actions { client, ns: NS.into(), log }
}

fn context(client: kube::Client) -> CheckContext {
    let log = EventLog::default();
    CheckContext {
        info: ClusterInfo { version: "v1.33.1".into(), minor: 33, nodes: vec![], metrics_api: true, ingress_classes: vec![], default_storage_class: None },
        stack: crate::stack::Stack::find("wordpress").unwrap(),
        ns: NS.into(),
        params: toml::Table::new(),
        actions: actions(client.clone(), log.clone()),
        log,
        entry_url: "http://127.0.0.1:30012".into(),
        host_header: None,
        image_ref: Box::new(|n, v| Ok(format!("{n}:{v}"))),
        timeouts: Timeouts::default(),
        cleanup: Cleanup::new(client.clone(), "run1"),
        client,
    }
}

fn pod() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NS, "uid": "pod-uid-a"},
        "spec": {"terminationGracePeriodSeconds": 10, "containers": [{"name": "nginx", "image": "wordpress:v1"}]}
    }))
    .unwrap()
}

/// kubectl drain's request, as far as kube lets it be chosen: the subresource of this Pod, the
/// Pod named in the body, no dry run (a dry-run eviction would "succeed" and evict nothing).
///
/// kube 5 sends `{"delete_options": null, "metadata": {"name": ...}}`: no apiVersion or kind,
/// which the API server fills in from the endpoint (policy/v1 Eviction), and a snake_case
/// `delete_options` it does not know. Hence no grace period override, which is also kubectl
/// drain's default (the Pod's own terminationGracePeriodSeconds); a kind, if kube ever sends
/// one, must be policy/v1's.
#[track_caller]
fn expect_eviction(e: &Seen) {
    e.expect("POST", EVICTION);
    assert_eq!(e.content_type.as_deref(), Some("application/json"));
    assert_eq!(e.body["metadata"]["name"], POD, "{e:?}");
    assert!(e.body["metadata"]["namespace"].is_null() || e.body["metadata"]["namespace"] == NS, "{e:?}");
    assert!(e.body["apiVersion"].is_null() || (e.body["apiVersion"] == "policy/v1" && e.body["kind"] == "Eviction"), "{e:?}");
    assert!(e.body["delete_options"].is_null() && e.body["deleteOptions"].is_null(), "a grace period override: {e:?}");
    assert_eq!(e.query("dryRun"), None, "{e:?}");
}

fn blocked() -> Value {
    value("eviction-blocked-429.json")
}

fn allowed() -> Value {
    value("eviction-allowed-response.json")
}

/// API Priority and Fairness shedding load: 429 without a budget's cause.
fn throttled() -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1}, "code": 429
    })
}

fn action_lines(log: &EventLog) -> Vec<String> {
    log.entries().into_iter().filter(|e| e.source == Source::Action).map(|e| format!("{}: {}", e.object, e.message)).collect()
}

#[tokio::test]
async fn evict_posts_to_the_pods_eviction_subresource_and_logs_the_answer() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        expect_eviction(&s.reply(429, blocked()).await);
        expect_eviction(&s.reply(201, allowed()).await);
        s
    });
    let log = EventLog::default();
    let a = actions(client, log.clone());
    match a.evict(POD).await {
        EvictionOutcome::BlockedByBudget { cause, .. } => assert_eq!(cause, "The disruption budget web needs 2 healthy pods and has 2 currently"),
        other => panic!("429 with a DisruptionBudget cause read as {other:?}"),
    }
    assert_eq!(a.evict(POD).await, EvictionOutcome::Evicted);
    assert_eq!(
        action_lines(&log),
        [
            format!("Pod/{POD}: eviction refused (429): The disruption budget web needs 2 healthy pods and has 2 currently"),
            format!("Pod/{POD}: evicted"),
        ]
    );
    drop(a);
    script.await.unwrap();
}

/// What the requests' arrival times were, on tokio's (paused) clock, from the drain's start.
type Arrivals = Arc<Mutex<Vec<Duration>>>;

#[tokio::test(start_paused = true)]
async fn a_refused_eviction_is_retried_every_5s_until_accepted_then_the_pod_is_watched_away() {
    let (client, server) = pair();
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let start = Instant::now();
    let script = server.run(move |mut s| async move {
        for answer in [(429, blocked()), (429, throttled()), (201, allowed())] {
            let e = s.reply(answer.0, answer.1).await;
            seen.lock().unwrap().push(start.elapsed());
            expect_eviction(&e);
        }
        // Accepted: the wait for the Pod to be gone watches this one Pod; an empty list is gone.
        let w = s.reply(200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "4100"}, "items": []})).await;
        w.expect("GET", &format!("/api/v1/namespaces/{NS}/pods"));
        assert_eq!(w.query("fieldSelector"), Some(format!("metadata.name={POD}").as_str()));
        s
    });
    let ctx = context(client);
    let attempts = Mutex::new(Vec::new());
    let drained = drain_pod(&ctx, &pod(), start + Duration::from_secs(60), RETRY, &attempts).await;
    assert!(matches!(drained, PodDrain::Gone { .. }), "{drained:?}");
    let outcomes: Vec<EvictionOutcome> = attempts.into_inner().unwrap().into_iter().map(|a: Attempt| a.outcome).collect();
    assert!(matches!(outcomes[..], [EvictionOutcome::BlockedByBudget { .. }, EvictionOutcome::RetryLater { .. }, EvictionOutcome::Evicted]), "{outcomes:?}");
    drop(ctx);
    script.await.unwrap();
    assert_eq!(*arrivals.lock().unwrap(), [Duration::ZERO, RETRY, 2 * RETRY]);
}

#[tokio::test(start_paused = true)]
async fn a_budget_that_never_allows_ends_at_the_deadline() {
    let (client, server) = pair();
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let start = Instant::now();
    let script = server.run(move |mut s| async move {
        // Every attempt refused; the script answers as long as the drain asks.
        while let Some((e, send)) = s.try_next().await {
            seen.lock().unwrap().push(start.elapsed());
            expect_eviction(&e);
            send.send_response(super::json(429, &blocked()));
        }
        s
    });
    let ctx = context(client);
    let attempts = Mutex::new(Vec::new());
    let drained = drain_pod(&ctx, &pod(), start + Duration::from_secs(12), RETRY, &attempts).await;
    assert_eq!(drained, PodDrain::Blocked);
    // At 0, 5 and 10 s; a fourth at 15 s would be past the 12 s deadline, so none is sent.
    assert_eq!(attempts.lock().unwrap().len(), 3);
    assert!(start.elapsed() <= Duration::from_secs(12), "{:?}", start.elapsed());
    drop(ctx);
    script.await.unwrap();
    assert_eq!(*arrivals.lock().unwrap(), [Duration::ZERO, RETRY, 2 * RETRY]);
}

#[tokio::test(start_paused = true)]
async fn a_pod_already_gone_or_a_server_error_ends_without_retry() {
    let cases = [
        (404, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("pods \"{POD}\" not found"), "reason": "NotFound", "code": 404}), true),
        (
            500,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", "reason": "InternalError", "code": 500}),
            false,
        ),
    ];
    for (code, body, gone) in cases {
        let (client, server) = pair();
        let script = server.run(move |mut s| async move {
            expect_eviction(&s.reply(code, body).await);
            s
        });
        let ctx = context(client);
        let attempts = Mutex::new(Vec::new());
        let drained = drain_pod(&ctx, &pod(), Instant::now() + Duration::from_secs(60), RETRY, &attempts).await;
        match drained {
            PodDrain::Gone { .. } => assert!(gone, "{code}"),
            PodDrain::Error(e) => assert!(!gone && e.contains("more than one PodDisruptionBudget"), "{code}: {e}"),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(attempts.lock().unwrap().len(), 1, "{code}");
        drop(ctx);
        script.await.unwrap();
    }
}
