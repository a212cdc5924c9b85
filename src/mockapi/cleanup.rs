//! Deleting namespaces (a run's cleanup and `down --runs`): listed by seaworthy's labels,
//! deleted only when they carry a run label (this run's, for a run's own cleanup), and waited
//! for with a deadline.

use super::pair;
use crate::apply::render::{MANAGED_BY, RUN_LABEL};
use crate::apply;
use crate::cleanup::Cleanup;
use serde_json::{Value, json};
use std::time::Duration;

const OLD: &str = "2026-11-01T08:00:00Z";

fn namespace(name: &str, labels: Value, created: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "700", "creationTimestamp": created, "labels": labels},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
    })
}

fn run_labels(run: &str) -> Value {
    json!({MANAGED_BY.0: MANAGED_BY.1, RUN_LABEL: run, "kubernetes.io/metadata.name": "x"})
}

fn not_found(name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("namespaces \"{name}\" not found"), "reason": "NotFound",
        "details": {"name": name, "kind": "namespaces"}, "code": 404
    })
}

/// What the API server answers a namespace DELETE with: the namespace, now terminating.
fn terminating(ns: &Value) -> Value {
    let mut t = ns.clone();
    t["metadata"]["deletionTimestamp"] = "2026-12-03T10:00:00Z".into();
    t["status"]["phase"] = "Terminating".into();
    t
}

/// Script of one namespace deleted and gone: GET, DELETE, then the watch's initial list that no
/// longer holds it.
async fn deleted(s: &mut super::Server, ns: Value) {
    let name = ns["metadata"]["name"].as_str().unwrap().to_string();
    s.reply(200, ns.clone()).await.expect("GET", &format!("/api/v1/namespaces/{name}"));
    let d = s.reply(200, terminating(&ns)).await;
    d.expect("DELETE", &format!("/api/v1/namespaces/{name}"));
    assert_eq!(d.body["propagationPolicy"], "Foreground", "{d:?}");
    let w = s.reply(200, json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "800"}, "items": []})).await;
    w.expect("GET", "/api/v1/namespaces");
    // The wait watches this one namespace, not every namespace of the cluster.
    assert_eq!(w.query("fieldSelector"), Some(format!("metadata.name={name}").as_str()), "{w:?}");
}

#[tokio::test]
async fn down_runs_lists_by_label_and_keeps_only_old_run_namespaces() {
    let young = k8s_openapi::jiff::Timestamp::now().to_string();
    let list = json!({
        "apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "900"},
        "items": [
            namespace("sw-counter-dead01", run_labels("dead01"), OLD),
            namespace("sw-counter-live01", run_labels("live01"), &young),
            // An add-on seaworthy installed: managed by it, but no run's.
            namespace("ingress-nginx", json!({MANAGED_BY.0: MANAGED_BY.1}), OLD),
            // Not ours at all; a server ignoring the selector must still not make it a leftover.
            namespace("default", json!({"kubernetes.io/metadata.name": "default"}), OLD),
        ]
    });
    let (client, server) = pair();
    let script = server.run(move |mut s| async move {
        let l = s.reply(200, list).await;
        l.expect("GET", "/api/v1/namespaces");
        assert_eq!(l.query("labelSelector"), Some("app.kubernetes.io/managed-by=seaworthy"), "{l:?}");
        s
    });
    let left = apply::leftovers(&client, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(left, ["sw-counter-dead01"]);
    drop(client);
    script.await.unwrap();
}

#[tokio::test]
async fn down_runs_deletes_any_runs_namespace_and_waits_until_gone() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        deleted(&mut s, namespace("sw-counter-dead01", run_labels("dead01"), OLD)).await;
        s
    });
    apply::delete_namespace(&client, "sw-counter-dead01", None, Duration::from_secs(180)).await.unwrap();
    drop(client);
    script.await.unwrap();
}

#[tokio::test]
async fn unlabelled_or_another_runs_namespace_is_never_deleted() {
    let cases = [
        ("kube-example", json!({"kubernetes.io/metadata.name": "kube-example"}), None),
        ("ingress-nginx", json!({MANAGED_BY.0: MANAGED_BY.1}), None),
        ("sw-counter-run2", run_labels("run2"), Some("run1")),
        // The run label alone, without managed-by, is someone's copy of our manifests.
        ("sw-counter-run1", json!({RUN_LABEL: "run1"}), Some("run1")),
    ];
    for (name, labels, run) in cases {
        let (client, server) = pair();
        let ns = namespace(name, labels, OLD);
        let script = server.run(move |mut s| async move {
            s.reply(200, ns).await.expect("GET", &format!("/api/v1/namespaces/{name}"));
            // No DELETE may follow.
            s
        });
        let e = apply::delete_namespace(&client, name, run, Duration::from_secs(180)).await.unwrap_err();
        assert!(e.to_string().contains("does not delete it"), "{name}: {e}");
        drop(client);
        script.await.unwrap();
    }
}

#[tokio::test]
async fn a_namespace_already_gone_needs_no_delete() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        s.reply(404, not_found("sw-counter-run1")).await.expect("GET", "/api/v1/namespaces/sw-counter-run1");
        s
    });
    apply::delete_namespace(&client, "sw-counter-run1", Some("run1"), Duration::from_secs(180)).await.unwrap();
    drop(client);
    script.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_namespace_stuck_terminating_ends_at_the_deadline() {
    let ns = namespace("sw-counter-run1", run_labels("run1"), OLD);
    let (client, server) = pair();
    let script = server.run(move |mut s| async move {
        s.reply(200, ns.clone()).await.expect("GET", "/api/v1/namespaces/sw-counter-run1");
        s.reply(200, terminating(&ns)).await.expect("DELETE", "/api/v1/namespaces/sw-counter-run1");
        let items = json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "800"}, "items": [terminating(&ns)]});
        s.reply(200, items).await.expect("GET", "/api/v1/namespaces");
        // The watch that would report it gone: held open, never answered, as a finalizer would.
        let (w, held) = s.next().await;
        assert_eq!(w.query("watch"), Some("true"), "{w:?}");
        assert!(s.try_next().await.is_none(), "a request after the deadline");
        drop(held);
        s
    });
    let started = tokio::time::Instant::now();
    let e = apply::delete_namespace(&client, "sw-counter-run1", Some("run1"), Duration::from_secs(180)).await.unwrap_err();
    assert!(e.to_string().contains("still terminating after 180s"), "{e}");
    assert_eq!(started.elapsed().as_secs(), 180);
    drop(client);
    script.await.unwrap();
}

#[tokio::test]
async fn a_runs_cleanup_uncordons_its_nodes_and_deletes_its_namespaces() {
    let ns = namespace("sw-counter-run1", run_labels("run1"), OLD);
    let node = |annotations: Value, unschedulable: bool| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "vm", "uid": "n", "resourceVersion": "5", "annotations": annotations}, "spec": {"unschedulable": unschedulable}})
    };
    let (client, server) = pair();
    let script = server.run(move |mut s| async move {
        s.reply(200, node(json!({}), false)).await.expect("GET", "/api/v1/nodes/vm");
        let p = s.reply(200, node(json!({crate::apply::CORDONED_BY: "run1"}), true)).await;
        p.expect("PATCH", "/api/v1/nodes/vm");
        // The final cleanup: the cordon first (every Pod of the cluster waits on it), then the
        // namespace.
        s.reply(200, node(json!({crate::apply::CORDONED_BY: "run1"}), true)).await.expect("GET", "/api/v1/nodes/vm");
        let u = s.reply(200, node(json!({}), false)).await;
        u.expect("PATCH", "/api/v1/nodes/vm");
        assert!(u.body["spec"]["unschedulable"].is_null() && u.body["metadata"]["annotations"][crate::apply::CORDONED_BY].is_null(), "{u:?}");
        deleted(&mut s, ns).await;
        s
    });
    let cleanup = Cleanup::new(client, "run1");
    cleanup.track("sw-counter-run1").unwrap();
    assert!(cleanup.cordon("vm").await.unwrap());
    cleanup.all().await;
    assert!(cleanup.left().is_empty() && cleanup.cordoned().is_empty());
    drop(cleanup);
    script.await.unwrap();
}
