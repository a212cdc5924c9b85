//! What a cluster offers, so that a check can adapt (NodePort when there is no ingress
//! controller) or skip with a reason (no metrics API: no HPA check), never silently pass.

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: Option<String>,
    pub ready: bool,
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClusterInfo {
    /// e.g. `v1.24.17`.
    pub version: String,
    pub minor: u32,
    pub nodes: Vec<NodeInfo>,
    /// `metrics.k8s.io` is served (metrics-server or a stand-in): HPA on CPU can work.
    pub metrics_api: bool,
    pub ingress_classes: Vec<String>,
    pub default_storage_class: Option<String>,
}

impl ClusterInfo {
    pub async fn discover(client: &kube::Client) -> Result<ClusterInfo> {
        let version = client.apiserver_version().await?;
        let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?.items;
        let groups = client.list_api_groups().await?;
        let ingress = Api::<IngressClass>::all(client.clone()).list(&ListParams::default()).await?.items;
        let storage = Api::<StorageClass>::all(client.clone()).list(&ListParams::default()).await?.items;
        Ok(Self::from_objects(&version.git_version, &version.minor, &nodes, &groups, &ingress, &storage))
    }

    pub fn from_objects(
        git_version: &str,
        minor: &str,
        nodes: &[Node],
        groups: &APIGroupList,
        ingress: &[IngressClass],
        storage: &[StorageClass],
    ) -> ClusterInfo {
        ClusterInfo {
            version: git_version.to_string(),
            // Managed distributions report minor as "24+".
            minor: minor.trim_end_matches('+').parse().unwrap_or(0),
            nodes: nodes.iter().map(node_info).collect(),
            metrics_api: groups.groups.iter().any(|g| g.name == "metrics.k8s.io"),
            ingress_classes: ingress.iter().filter_map(|c| c.metadata.name.clone()).collect(),
            default_storage_class: storage
                .iter()
                .find(|s| {
                    let annotations = s.metadata.annotations.clone().unwrap_or_default();
                    ["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"]
                        .iter()
                        .any(|k| annotations.get(*k).map(String::as_str) == Some("true"))
                })
                .and_then(|s| s.metadata.name.clone()),
        }
    }

    /// Nodes that can take new Pods: the room a drain has.
    pub fn schedulable_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.ready && !n.unschedulable).count()
    }
}

fn node_info(node: &Node) -> NodeInfo {
    let status = node.status.as_ref();
    NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        internal_ip: status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone()),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::samples::load as sample;

    #[test]
    fn a_cordoned_node_from_a_1_24_cluster() {
        let node: Node = sample("node-cordoned.json");
        let groups: APIGroupList = serde_json::from_value(serde_json::json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [], "preferredVersion": null}, {"name": "metrics.k8s.io", "versions": []}]
        }))
        .unwrap();
        let storage: StorageClass = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hostpath", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/host-path"
        }))
        .unwrap();
        let info = ClusterInfo::from_objects("v1.24.0-alpha.1+e5f3f020", "24+", &[node], &groups, &[], &[storage]);
        assert_eq!(info.minor, 24);
        assert!(info.metrics_api);
        assert_eq!(info.default_storage_class.as_deref(), Some("hostpath"));
        assert_eq!(info.nodes.len(), 1);
        assert_eq!(info.nodes[0].internal_ip.as_deref(), Some("10.200.0.1"));
        assert!(info.nodes[0].unschedulable);
        assert_eq!(info.schedulable_nodes(), 0, "a cordoned node gives a drain no room");
    }
}
