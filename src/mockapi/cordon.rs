//! Cordons: the node patch that cordons for a run names the run, and only a node carrying this
//! run's annotation (or, for `down --runs`, any run's) is ever uncordoned.

use super::{Seen, echo, pair};
use crate::apply::{self, CORDONED_BY};
use crate::cleanup::Cleanup;
use crate::samples::value;
use serde_json::{Value, json};

const RUN: &str = "run1";
const MERGE: &str = "application/merge-patch+json";

/// The captured cordoned node (`vm`), as `kubectl cordon` left it: unschedulable, tainted, and
/// without any seaworthy annotation.
fn cordoned_by_user() -> Value {
    value("node-cordoned.json")
}

/// The same node before the cordon.
fn schedulable(name: &str) -> Value {
    let mut n = cordoned_by_user();
    n["metadata"]["name"] = name.into();
    n["spec"] = json!({"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]});
    n
}

/// The node as a run's cordon leaves it.
fn cordoned_by_run(name: &str, run: &str) -> Value {
    let mut n = cordoned_by_user();
    n["metadata"]["name"] = name.into();
    n["metadata"]["annotations"][CORDONED_BY] = run.into();
    n
}

#[track_caller]
fn expect_merge(p: &Seen, node: &str, body: Value) {
    p.expect("PATCH", &format!("/api/v1/nodes/{node}"));
    // A merge patch, not server-side apply: `kubectl cordon` owns spec.unschedulable under its
    // own manager, and an apply would conflict with it or leave it.
    assert_eq!(p.content_type.as_deref(), Some(MERGE));
    assert_eq!(p.body, body);
}

#[tokio::test]
async fn cordon_sets_unschedulable_and_names_the_run() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        s.reply(200, schedulable("vm")).await.expect("GET", "/api/v1/nodes/vm");
        let (p, send) = s.next().await;
        expect_merge(&p, "vm", json!({"metadata": {"annotations": {CORDONED_BY: RUN}}, "spec": {"unschedulable": true}}));
        send.send_response(super::json(200, &echo(&cordoned_by_run("vm", RUN))));
        s
    });
    let cleanup = Cleanup::new(client, RUN);
    assert!(cleanup.cordon("vm").await.unwrap());
    assert_eq!(cleanup.cordoned(), ["vm"]);
    drop(cleanup);
    script.await.unwrap();
}

#[tokio::test]
async fn a_node_already_unschedulable_is_not_cordoned_again() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        s.reply(200, cordoned_by_user()).await.expect("GET", "/api/v1/nodes/vm");
        s
    });
    let cleanup = Cleanup::new(client, RUN);
    assert!(!cleanup.cordon("vm").await.unwrap());
    // Not ours: the final cleanup must not uncordon it either.
    assert!(cleanup.cordoned().is_empty());
    drop(cleanup);
    script.await.unwrap();
}

#[tokio::test]
async fn uncordon_removes_the_cordon_and_the_annotation_of_this_run() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        s.reply(200, schedulable("vm")).await.expect("GET", "/api/v1/nodes/vm");
        let (p, send) = s.next().await;
        send.send_response(super::json(200, &echo(&cordoned_by_run("vm", RUN))));
        assert_eq!(p.method, "PATCH");
        s.reply(200, cordoned_by_run("vm", RUN)).await.expect("GET", "/api/v1/nodes/vm");
        let (p, send) = s.next().await;
        expect_merge(&p, "vm", json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}}));
        send.send_response(super::json(200, &echo(&schedulable("vm"))));
        s
    });
    let cleanup = Cleanup::new(client, RUN);
    assert!(cleanup.cordon("vm").await.unwrap());
    assert!(cleanup.uncordon("vm").await.unwrap());
    assert!(cleanup.cordoned().is_empty());
    drop(cleanup);
    script.await.unwrap();
}

#[tokio::test]
async fn a_node_recordoned_by_someone_else_is_left_cordoned() {
    for (who, live) in [("the user", cordoned_by_user()), ("another run", cordoned_by_run("vm", "run2"))] {
        let (client, server) = pair();
        let script = server.run(move |mut s| async move {
            s.reply(200, schedulable("vm")).await.expect("GET", "/api/v1/nodes/vm");
            let (_, send) = s.next().await;
            send.send_response(super::json(200, &echo(&cordoned_by_run("vm", RUN))));
            // Between our cordon and our uncordon, someone uncordoned and cordoned it again.
            s.reply(200, live).await.expect("GET", "/api/v1/nodes/vm");
            s
        });
        let cleanup = Cleanup::new(client, RUN);
        assert!(cleanup.cordon("vm").await.unwrap());
        assert!(!cleanup.uncordon("vm").await.unwrap(), "{who}");
        assert!(cleanup.cordoned().is_empty(), "{who}");
        drop(cleanup);
        script.await.unwrap();
    }
}

#[tokio::test]
async fn down_runs_uncordons_only_nodes_a_run_annotated() {
    let mut released = cordoned_by_run("n2", "dead2");
    released["spec"] = json!({});
    let list = json!({
        "apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "900"},
        "items": [cordoned_by_run("n1", "dead1"), released, cordoned_by_user(), schedulable("n4")]
    });
    let (client, server) = pair();
    let script = server.run(move |mut s| async move {
        let l = s.reply(200, list).await;
        l.expect("GET", "/api/v1/nodes");
        let (p, send) = s.next().await;
        expect_merge(&p, "n1", json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}}));
        send.send_response(super::json(200, &echo(&schedulable("n1"))));
        // Someone already uncordoned n2: only the stale annotation goes, spec is not touched.
        let (p, send) = s.next().await;
        expect_merge(&p, "n2", json!({"metadata": {"annotations": {CORDONED_BY: null}}}));
        send.send_response(super::json(200, &echo(&schedulable("n2"))));
        // vm (the user's cordon) and n4 get no request: the script ends here.
        s
    });
    let done = apply::uncordon_leftovers(&client).await.unwrap();
    assert_eq!(done, [("n1".to_string(), "dead1".to_string())]);
    drop(client);
    script.await.unwrap();
}
