//! `apply::apply`: the run's namespace created first and labelled, then every object
//! server-side applied under one field manager, forced, labelled, in dependency order.

use super::{Seen, echo, pair};
use crate::apply::render::{MANAGED_BY, RUN_LABEL, STACK_LABEL, apply_rank};
use crate::apply::{self, FIELD_MANAGER};
use crate::stack::Stack;
use serde_json::{Value, json};

const NS: &str = "sw-wordpress-abc123";
const RUN: &str = "abc123";

fn image_ref(name: &str, version: &str) -> anyhow::Result<String> {
    Ok(format!("localhost/seaworthy/{name}:{version}-0123456789ab"))
}

/// The kinds the wordpress fixture holds besides its Namespace, the richest of the stacks.
const WORDPRESS_OBJECTS: [&str; 11] = [
    "ConfigMap",
    "ConfigMap",
    "Deployment",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Secret",
    "Service",
    "Service",
];

/// Where server-side apply of `kind` must go in the run's namespace.
fn collection(kind: &str) -> &'static str {
    match kind {
        "ConfigMap" => "/api/v1/namespaces/sw-wordpress-abc123/configmaps",
        "Secret" => "/api/v1/namespaces/sw-wordpress-abc123/secrets",
        "PersistentVolumeClaim" => "/api/v1/namespaces/sw-wordpress-abc123/persistentvolumeclaims",
        "Service" => "/api/v1/namespaces/sw-wordpress-abc123/services",
        "Deployment" => "/apis/apps/v1/namespaces/sw-wordpress-abc123/deployments",
        "PodDisruptionBudget" => "/apis/policy/v1/namespaces/sw-wordpress-abc123/poddisruptionbudgets",
        "HorizontalPodAutoscaler" => "/apis/autoscaling/v2/namespaces/sw-wordpress-abc123/horizontalpodautoscalers",
        "Ingress" => "/apis/networking.k8s.io/v1/namespaces/sw-wordpress-abc123/ingresses",
        other => panic!("wordpress has no {other}"),
    }
}

fn already_exists(name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("namespaces \"{name}\" already exists"), "reason": "AlreadyExists",
        "details": {"name": name, "kind": "namespaces"}, "code": 409
    })
}

#[tokio::test]
async fn namespace_first_then_every_object_server_side_applied_in_order() {
    let stack = Stack::find("wordpress").unwrap();
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let (ns, send) = s.next().await;
        send.send_response(super::json(201, &echo(&ns.body)));
        let mut seen = vec![ns];
        while let Some((patch, send)) = s.try_next().await {
            send.send_response(super::json(200, &echo(&patch.body)));
            seen.push(patch);
        }
        check_apply(&seen);
        s
    });
    apply::apply(&client, &stack, NS, RUN, &image_ref).await.unwrap();
    drop(client);
    script.await.unwrap();
}

fn check_apply(seen: &[Seen]) {
    let ns = &seen[0];
    ns.expect("POST", "/api/v1/namespaces");
    assert_eq!(ns.query("fieldManager"), Some(FIELD_MANAGER));
    assert_eq!(ns.body["kind"], "Namespace");
    assert_eq!(ns.body["metadata"]["name"], NS);
    let labels = &ns.body["metadata"]["labels"];
    assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1, "{labels}");
    assert_eq!(labels[RUN_LABEL], RUN, "{labels}");
    assert_eq!(labels[STACK_LABEL], "wordpress", "{labels}");

    let mut kinds: Vec<&str> = seen[1..].iter().map(|p| p.body["kind"].as_str().unwrap_or("?")).collect();
    kinds.sort();
    assert_eq!(kinds, WORDPRESS_OBJECTS);

    let mut last_rank = 0;
    for p in &seen[1..] {
        let kind = p.body["kind"].as_str().unwrap_or_else(|| panic!("no kind: {p:?}"));
        let name = p.body["metadata"]["name"].as_str().unwrap();
        p.expect("PATCH", &format!("{}/{name}", collection(kind)));
        assert_eq!(p.content_type.as_deref(), Some("application/apply-patch+yaml"), "{kind} {name}");
        assert_eq!(p.query("fieldManager"), Some(FIELD_MANAGER), "{kind} {name}");
        // Without force a field another manager owns (a kubectl edit while the run is kept)
        // makes the next apply fail with a conflict.
        assert_eq!(p.query("force"), Some("true"), "{kind} {name}");
        assert_eq!(p.query("dryRun"), None, "{kind} {name}");
        assert_eq!(p.body["metadata"]["namespace"], NS, "{kind} {name}");
        let labels = &p.body["metadata"]["labels"];
        assert_eq!(labels[RUN_LABEL], RUN, "{kind} {name}: {labels}");
        assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1, "{kind} {name}: {labels}");
        if kind == "Deployment" {
            assert_eq!(p.body["spec"]["template"]["metadata"]["labels"][RUN_LABEL], RUN, "{name}: its Pods");
        }
        let rank = apply_rank(kind);
        assert!(rank >= last_rank, "{kind} {name} applied after a later kind");
        last_rank = rank;
    }

    // The order that matters, named: what a Pod mounts exists before the Pod, what points at a
    // workload comes after it.
    let position = |kind: &str| -> Vec<usize> { seen.iter().enumerate().filter(|(_, s)| s.body["kind"] == kind).map(|(i, _)| i).collect() };
    let deployments = position("Deployment");
    assert_eq!(deployments.len(), 2);
    for before in ["ConfigMap", "Secret", "PersistentVolumeClaim"] {
        let at = position(before);
        assert!(!at.is_empty() && at.iter().all(|i| *i < deployments[0]), "{before} at {at:?}, Deployments at {deployments:?}");
    }
    for after in ["PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress"] {
        let at = position(after);
        assert!(at.len() == 1 && at[0] > *deployments.last().unwrap(), "{after} at {at:?}, Deployments at {deployments:?}");
    }
    // The stack's own Namespace is replaced by the run's, never applied.
    assert!(position("Namespace") == [0]);
}

#[tokio::test]
async fn an_existing_namespace_is_not_applied_into() {
    let stack = Stack::find("wordpress").unwrap();
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let ns = s.reply(409, already_exists(NS)).await;
        ns.expect("POST", "/api/v1/namespaces");
        s
    });
    let e = apply::apply(&client, &stack, NS, RUN, &image_ref).await.unwrap_err();
    assert!(format!("{e:#}").contains(&format!("creating namespace {NS}")), "{e:#}");
    drop(client);
    script.await.unwrap();
}

#[tokio::test]
async fn the_first_refused_object_stops_the_apply_and_is_named() {
    let stack = Stack::find("wordpress").unwrap();
    let refused = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let refused_in_script = refused.clone();
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let (ns, send) = s.next().await;
        send.send_response(super::json(201, &echo(&ns.body)));
        let first = s
            .reply(
                422,
                json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "ConfigMap \"x\" is invalid", "reason": "Invalid", "code": 422
                }),
            )
            .await;
        assert_eq!(first.method, "PATCH");
        *refused_in_script.lock().unwrap() = format!("applying {} {}", first.body["kind"].as_str().unwrap(), first.body["metadata"]["name"].as_str().unwrap());
        s
    });
    let e = apply::apply(&client, &stack, NS, RUN, &image_ref).await.unwrap_err();
    drop(client);
    script.await.unwrap();
    let refused = refused.lock().unwrap().clone();
    assert!(format!("{e:#}").contains(&refused), "{e:#} does not name {refused}");
}

/// The counter stack with a hostPath PersistentVolume added: the one kind of object a run puts
/// outside its namespace, where an object of the same name may belong to someone else.
fn counter_with_volume() -> Stack {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/counter");
    let toml = std::fs::read_to_string(dir.join("stack.toml")).unwrap();
    let mut manifests: Vec<(std::path::PathBuf, String)> = ["app.yaml", "nginx.yaml", "redis.yaml"]
        .iter()
        .map(|f| (dir.join("manifests").join(f), std::fs::read_to_string(dir.join("manifests").join(f)).unwrap()))
        .collect();
    let pv = "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: counter-data\nspec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  hostPath:\n    path: /var/lib/counter\n";
    manifests.push((dir.join("manifests/pv.yaml"), pv.into()));
    Stack::from_sources(&dir, &toml, &manifests).unwrap()
}

const PV_PATH: &str = "/api/v1/persistentvolumes/counter-data";

/// Applies the counter stack with its volume, answering the volume's GET with `existing`; returns
/// every request and the apply's result.
async fn apply_with_volume(existing: Option<Value>) -> (Vec<Seen>, anyhow::Result<()>) {
    let stack = counter_with_volume();
    let (client, server) = pair();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let script = server.run(move |mut s| async move {
        while let Some((req, send)) = s.try_next().await {
            let answer = match (req.method.as_str(), req.path.as_str()) {
                ("GET", PV_PATH) => match &existing {
                    Some(pv) => super::json(200, pv),
                    None => super::json(404, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "persistentvolumes \"counter-data\" not found", "reason": "NotFound", "code": 404})),
                },
                ("POST", _) => super::json(201, &echo(&req.body)),
                ("PATCH", _) => super::json(200, &echo(&req.body)),
                _ => panic!("unexpected request: {req:?}"),
            };
            send.send_response(answer);
            log.lock().unwrap().push(req);
        }
        s
    });
    let result = apply::apply(&client, &stack, "sw-counter-abc123", RUN, &image_ref).await;
    drop(client);
    script.await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, result)
}

fn volume(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "counter-data", "uid": "pv-1", "resourceVersion": "9", "labels": labels}, "spec": {"capacity": {"storage": "1Gi"}}})
}

#[tokio::test]
async fn a_new_cluster_scoped_object_is_applied_without_a_namespace() {
    let (seen, result) = apply_with_volume(None).await;
    result.unwrap();
    let at = seen.iter().position(|s| s.path == PV_PATH && s.method == "GET").expect("the volume is looked up first");
    let p = &seen[at + 1];
    p.expect("PATCH", PV_PATH);
    assert_eq!(p.query("fieldManager"), Some(FIELD_MANAGER));
    assert_eq!(p.query("force"), Some("true"));
    assert!(p.body["metadata"]["namespace"].is_null(), "{p:?}");
    assert_eq!(p.body["metadata"]["labels"][RUN_LABEL], RUN);
    // After what it may hold (ConfigMaps), before the claims and workloads that use it.
    let kind_at = |kind: &str| seen.iter().position(|s| s.body["kind"] == kind).unwrap();
    assert!(kind_at("ConfigMap") < at && at < kind_at("PersistentVolumeClaim") && at < kind_at("Deployment"), "{:?}", seen.iter().map(|s| &s.path).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_cluster_scoped_object_of_someone_else_is_left_alone() {
    for labels in [json!({}), json!({MANAGED_BY.0: MANAGED_BY.1, RUN_LABEL: "other1"}), json!({RUN_LABEL: RUN})] {
        let (seen, result) = apply_with_volume(Some(volume(labels.clone()))).await;
        let e = result.unwrap_err();
        assert!(format!("{e:#}").contains("was not created by this run"), "{labels}: {e:#}");
        assert!(!seen.iter().any(|s| s.path == PV_PATH && s.method == "PATCH"), "{labels}: the volume was patched");
        // Nothing after the refusal either.
        assert_eq!(seen.last().map(|s| (s.method.as_str(), s.path.as_str())), Some(("GET", PV_PATH)), "{labels}");
    }
}

#[tokio::test]
async fn a_cluster_scoped_object_of_this_run_is_applied_again() {
    let (seen, result) = apply_with_volume(Some(volume(json!({MANAGED_BY.0: MANAGED_BY.1, RUN_LABEL: RUN})))).await;
    result.unwrap();
    assert!(seen.iter().any(|s| s.path == PV_PATH && s.method == "PATCH"));
}
