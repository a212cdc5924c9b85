//! What the checks do to a running stack, as `kubectl` would: patches under the checks' own
//! field manager, of the type kubectl uses for each (strategic merge for `set image`, JSON patch
//! for `rollout undo`, merge for a ConfigMap), never a server-side apply that would take fields
//! from the apply's manager.

use super::{Seen, echo, pair};
use crate::checks::actions::{Actions, CHECK_MANAGER};
use crate::observe::EventLog;
use crate::samples::value;
use serde_json::json;

const NS: &str = "samples";

fn actions(client: kube::Client) -> Actions {
    Actions { client, ns: NS.into(), log: EventLog::default() }
}

#[track_caller]
fn expect_patch(p: &Seen, path: &str, content_type: &str) {
    p.expect("PATCH", path);
    assert_eq!(p.content_type.as_deref(), Some(content_type), "{p:?}");
    assert_eq!(p.query("fieldManager"), Some(CHECK_MANAGER), "{p:?}");
    assert_eq!(p.query("force"), None, "{p:?}");
}

#[tokio::test]
async fn set_images_is_one_strategic_merge_keyed_by_container_name() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let deployment = value("deployment-rollout-complete.json");
        let p = s.reply(200, deployment.clone()).await;
        expect_patch(&p, "/apis/apps/v1/namespaces/samples/deployments/web", "application/strategic-merge-patch+json");
        assert_eq!(
            p.body,
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "nginx", "image": "web:v2"}],
                "initContainers": [{"name": "migrate", "image": "web-migrate:v2"}]
            }}}})
        );
        let mut sts = deployment;
        sts["kind"] = "StatefulSet".into();
        let p = s.reply(200, sts).await;
        expect_patch(&p, "/apis/apps/v1/namespaces/samples/statefulsets/db", "application/strategic-merge-patch+json");
        s
    });
    let a = actions(client);
    let images = [("nginx".to_string(), false, "web:v2".to_string()), ("migrate".to_string(), true, "web-migrate:v2".to_string())];
    a.set_images("Deployment", "web", &images).await.unwrap();
    a.set_image("StatefulSet", "db", "mysql", false, "db:v2").await.unwrap();
    // Neither an empty change nor a kind without rollouts reaches the API server.
    assert!(a.set_images("Deployment", "web", &[]).await.is_err());
    assert!(a.set_image("DaemonSet", "agent", "agent", false, "agent:v2").await.is_err());
    drop(a);
    script.await.unwrap();
}

#[tokio::test]
async fn rollout_undo_puts_the_previous_revisions_template_back() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let deployment = value("deployment-rollout-complete.json");
        s.reply(200, deployment.clone()).await.expect("GET", "/apis/apps/v1/namespaces/samples/deployments/web");
        let mut rss = value("replicasets-after-rollout.json");
        rss["kind"] = "ReplicaSetList".into();
        rss["apiVersion"] = "apps/v1".into();
        rss["metadata"] = json!({"resourceVersion": "5000"});
        let previous = rss["items"].as_array().unwrap().iter().find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1").unwrap().clone();
        s.reply(200, rss).await.expect("GET", "/apis/apps/v1/namespaces/samples/replicasets");
        let (p, send) = s.next().await;
        send.send_response(super::json(200, &echo(&deployment)));
        expect_patch(&p, "/apis/apps/v1/namespaces/samples/deployments/web", "application/json-patch+json");
        let ops = p.body.as_array().unwrap_or_else(|| panic!("not a JSON patch: {p:?}"));
        assert_eq!(ops.len(), 1, "{p:?}");
        assert_eq!((ops[0]["op"].as_str(), ops[0]["path"].as_str()), (Some("replace"), Some("/spec/template")));
        let mut want = previous["spec"]["template"].clone();
        want["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
        // The captured template's `creationTimestamp: null` does not survive the typed round trip.
        want["metadata"].as_object_mut().unwrap().remove("creationTimestamp");
        assert_eq!(ops[0]["value"], want);
        s
    });
    actions(client).rollout_undo("web").await.unwrap();
    script.await.unwrap();
}

#[tokio::test]
async fn a_config_map_change_is_a_merge_of_its_data() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": NS}, "data": {"GREETING": "hej", "KEEP": "1"}});
        let p = s.reply(200, cm).await;
        expect_patch(&p, "/api/v1/namespaces/samples/configmaps/web-config", "application/merge-patch+json");
        assert_eq!(p.body, json!({"data": {"GREETING": "hej"}}));
        s
    });
    let data = [("GREETING".to_string(), "hej".to_string())].into_iter().collect();
    actions(client).patch_config_map("web-config", &data).await.unwrap();
    script.await.unwrap();
}

#[tokio::test]
async fn pods_are_listed_by_the_workloads_selector_in_the_runs_namespace() {
    let (client, server) = pair();
    let script = server.run(|mut s| async move {
        let l = s.reply(200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": [value("pod-terminating.json")]})).await;
        l.expect("GET", "/api/v1/namespaces/samples/pods");
        assert_eq!(l.query("labelSelector"), Some("app=web,tier=front"));
        let d = s.reply(200, value("pod-terminating.json")).await;
        d.expect("DELETE", "/api/v1/namespaces/samples/pods/web-1");
        assert!(d.body.is_null() || d.body.get("gracePeriodSeconds").is_none(), "a delete that skips the grace period: {d:?}");
        s
    });
    let a = actions(client);
    let selector = [("app".to_string(), "web".to_string()), ("tier".to_string(), "front".to_string())].into_iter().collect();
    let pods = a.pods(&crate::checks::actions::selector_of(&selector)).await.unwrap();
    assert_eq!(pods.len(), 1);
    a.delete_pod("web-1").await.unwrap();
    drop(a);
    script.await.unwrap();
}
