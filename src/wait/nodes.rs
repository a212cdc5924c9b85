//! Node judgements.

use k8s_openapi::api::core::v1::Node;

use super::{Progress, name_of};

/// The taint the node lifecycle controller adds to a cordoned node (TaintNodesByCondition).
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

fn has_unschedulable_taint(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.key == UNSCHEDULABLE_TAINT && t.effect == "NoSchedule")
        })
}

fn unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// Is the node cordoned, in both ways the scheduler can see it: `spec.unschedulable` (what
/// `kubectl cordon` sets) and the `node.kubernetes.io/unschedulable:NoSchedule` taint the
/// controller derives from it (what the scheduler's TaintToleration filter acts on).
pub fn node_cordoned(node: &Node) -> Progress {
    let name = name_of(&node.metadata);
    match (unschedulable(node), has_unschedulable_taint(node)) {
        (true, true) => Progress::Done,
        (true, false) => Progress::Waiting(format!(
            "node {name}: spec.unschedulable set, {UNSCHEDULABLE_TAINT} taint not added yet"
        )),
        (false, _) => Progress::Waiting(format!(
            "node {name} is schedulable (spec.unschedulable not set)"
        )),
    }
}

/// Is the node uncordoned: neither `spec.unschedulable` nor the taint left?
pub fn node_uncordoned(node: &Node) -> Progress {
    let name = name_of(&node.metadata);
    match (unschedulable(node), has_unschedulable_taint(node)) {
        (false, false) => Progress::Done,
        (true, _) => {
            Progress::Waiting(format!("node {name} is cordoned (spec.unschedulable true)"))
        }
        (false, true) => Progress::Waiting(format!(
            "node {name}: spec.unschedulable cleared, {UNSCHEDULABLE_TAINT} taint not removed yet"
        )),
    }
}

/// Are all nodes Ready? `kind create --wait` and `k3d --wait` wait for the control plane only;
/// a worker still NotReady makes the scheduler report Unschedulable, which the waits take as a
/// failure.
pub fn all_nodes_ready(nodes: &[Node]) -> Progress {
    if nodes.is_empty() {
        return Progress::Waiting("no node has registered yet".into());
    }
    let not_ready: Vec<&str> = nodes
        .iter()
        .filter(|n| !crate::cluster::info::node_ready(n))
        .map(|n| name_of(&n.metadata))
        .collect();
    if not_ready.is_empty() {
        Progress::Done
    } else {
        Progress::Waiting(format!("{} of {} nodes not Ready: {}", not_ready.len(), nodes.len(), not_ready.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, value};

    #[test]
    fn cordoned_node() {
        let node: Node = load("node-cordoned.json");
        assert_eq!(node_cordoned(&node), Progress::Done);
        assert!(node_uncordoned(&node).reason().contains("is cordoned"));
    }

    #[test]
    fn cordon_half_applied_and_uncordoned() {
        // Derived: the moment between `kubectl cordon` and the controller adding the taint.
        let mut v = value("node-cordoned.json");
        v["spec"]["taints"] = serde_json::json!([]);
        assert!(
            node_cordoned(&from_value(v.clone()))
                .reason()
                .contains("taint not added yet")
        );
        // Derived: after `kubectl uncordon`, before the taint is removed, then after.
        let mut v = value("node-cordoned.json");
        v["spec"].as_object_mut().unwrap().remove("unschedulable");
        assert!(
            node_uncordoned(&from_value(v.clone()))
                .reason()
                .contains("taint not removed yet")
        );
        assert!(node_cordoned(&from_value(v.clone())).is_waiting());
        v["spec"].as_object_mut().unwrap().remove("taints");
        assert_eq!(node_uncordoned(&from_value(v)), Progress::Done);
    }

    #[test]
    fn all_nodes_ready_waits_for_the_last_worker() {
        let ready: Node = load("node-cordoned.json");
        assert_eq!(all_nodes_ready(std::slice::from_ref(&ready)), Progress::Done, "cordoned but Ready");
        // Derived: a second node, just joined, whose kubelet has not reported Ready yet.
        let mut v = value("node-cordoned.json");
        v["metadata"]["name"] = "worker2".into();
        for c in v["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "Ready" {
                c["status"] = "False".into();
                c["reason"] = "KubeletNotReady".into();
            }
        }
        assert_eq!(
            all_nodes_ready(&[ready, from_value(v)]),
            Progress::Waiting("1 of 2 nodes not Ready: worker2".into())
        );
        assert!(all_nodes_ready(&[]).is_waiting());
    }
}
