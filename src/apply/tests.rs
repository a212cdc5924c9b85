use super::render::*;
use crate::stack::Stack;
use serde_json::Value;

fn image_ref(name: &str, version: &str) -> anyhow::Result<String> {
    Ok(format!("localhost/seaworthy/{name}:{version}-0123456789ab"))
}

fn rendered(stack: &str) -> (Stack, Vec<Rendered>) {
    let stack = Stack::find(stack).unwrap();
    let objects = render(&stack, "sw-x-abc123", "abc123", &image_ref).unwrap();
    (stack, objects)
}

#[test]
fn every_object_is_labelled_namespaced_and_ordered() {
    for name in ["phpdemo", "counter", "myblog"] {
        let (stack, objects) = rendered(name);
        assert!(!objects.is_empty());
        let mut last = 0;
        for o in &objects {
            let rank = apply_rank(&o.kind);
            assert!(rank >= last, "{name}: {} {} out of order", o.kind, o.name);
            last = rank;
            assert_eq!(o.body["metadata"]["labels"][RUN_LABEL], "abc123", "{} {}", o.kind, o.name);
            assert_eq!(o.body["metadata"]["labels"][STACK_LABEL], stack.name());
            if o.namespaced {
                assert_eq!(o.body["metadata"]["namespace"], "sw-x-abc123");
            }
            assert_ne!(o.kind, "Namespace", "the run's namespace replaces the stack's own");
        }
    }
}

#[test]
fn images_are_rendered_never_latest_and_if_not_present() {
    let (_, objects) = rendered("phpdemo");
    let deployment = objects.iter().find(|o| o.kind == "Deployment").unwrap();
    let spec = &deployment.body["spec"]["template"]["spec"];
    let containers: Vec<&Value> = spec["initContainers"].as_array().unwrap().iter().chain(spec["containers"].as_array().unwrap()).collect();
    for c in containers {
        let image = c["image"].as_str().unwrap();
        assert!(image.starts_with("localhost/seaworthy/") && image.ends_with("-0123456789ab"), "{image}");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    }
    // Pods carry the run label too (selectors are untouched, so they still match).
    assert_eq!(deployment.body["spec"]["template"]["metadata"]["labels"][RUN_LABEL], "abc123");
    assert!(deployment.body["spec"]["selector"]["matchLabels"].get(RUN_LABEL).is_none());
}

#[test]
fn latest_is_refused() {
    let stack = Stack::find("phpdemo").unwrap();
    let latest = |name: &str, _: &str| Ok(format!("{name}:latest"));
    let e = render(&stack, "ns", "abc123", &latest).unwrap_err();
    assert!(format!("{e:#}").contains("never deploys :latest"), "{e:#}");
}

#[test]
fn namespace_names_fit_a_dns_label() {
    assert_eq!(namespace_name("phpdemo", None, "abc123"), "sw-phpdemo-abc123");
    assert_eq!(namespace_name("phpdemo", Some("no-configmap"), "abc123"), "sw-phpdemo-no-configmap-abc123");
    let long = namespace_name(&"x".repeat(80), Some("y"), "abc123");
    assert!(long.len() <= 63 && long.ends_with("-abc123"), "{long}");
}

#[test]
fn run_ids_differ() {
    let ids: std::collections::HashSet<String> = (0..50).map(|_| super::new_run_id()).collect();
    assert!(ids.len() > 45);
}

fn namespace_created(body: Value, created: &str) -> k8s_openapi::api::core::v1::Namespace {
    let mut body = body;
    body["metadata"]["creationTimestamp"] = created.into();
    serde_json::from_value(body).unwrap()
}

#[test]
fn down_runs_removes_only_old_run_namespaces() {
    use super::is_stale;
    use std::time::Duration;
    let stack = Stack::find("phpdemo").unwrap();
    let now: k8s_openapi::jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let thirty = Duration::from_secs(30 * 60);
    // Derived: the rendered run Namespace as the API server returns it, with a creationTimestamp.
    let old = namespace_created(namespace(&stack, "sw-phpdemo-abc123", "abc123"), "2026-01-01T11:00:00Z");
    let live = namespace_created(namespace(&stack, "sw-phpdemo-def456", "def456"), "2026-01-01T11:45:00Z");
    let ahead = namespace_created(namespace(&stack, "sw-phpdemo-0a0a0a", "0a0a0a"), "2026-01-01T12:05:00Z");
    assert!(is_stale(&old, now, thirty));
    assert!(!is_stale(&live, now, thirty), "a 15-minute-old namespace may be a live run's");
    assert!(is_stale(&live, now, Duration::ZERO));
    assert!(!is_stale(&ahead, now, Duration::ZERO), "a clock ahead of ours is not age");
    // The ingress-nginx Namespace seaworthy installs is managed-by seaworthy but belongs to no run.
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-nginx\n  labels: {app.kubernetes.io/name: ingress-nginx}\n";
    let addon = crate::cluster::addons::prepare(&crate::cluster::addons::ingress_nginx(30), yaml).unwrap().remove(0);
    let addon = namespace_created(addon, "2025-01-01T00:00:00Z");
    assert!(!super::is_ours(&addon, None));
    assert!(!is_stale(&addon, now, Duration::ZERO));
}

#[test]
fn down_runs_uncordons_only_nodes_seaworthy_cordoned() {
    use super::{CORDONED_BY, NodeCleanup, node_cleanup};
    let node: k8s_openapi::api::core::v1::Node = crate::samples::load("node-cordoned.json");
    assert_eq!(node_cleanup(&node), NodeCleanup::Leave, "cordoned by someone else");
    // Derived: the same node with the annotation a pdb-drain check adds when it cordons.
    let mut v = crate::samples::value("node-cordoned.json");
    v["metadata"]["annotations"][CORDONED_BY] = "abc123".into();
    assert_eq!(node_cleanup(&crate::samples::from_value(v.clone())), NodeCleanup::Uncordon { run: "abc123".into() });
    v["spec"].as_object_mut().unwrap().remove("unschedulable");
    assert_eq!(node_cleanup(&crate::samples::from_value(v)), NodeCleanup::DropAnnotation { run: "abc123".into() });
}
