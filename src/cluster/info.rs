//! What a cluster offers, so that a check can adapt (NodePort when there is no ingress
//! controller) or skip with a reason (no metrics API: no HPA check), never silently pass.

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: Option<String>,
    pub ready: bool,
    pub unschedulable: bool,
    /// New Pods can land here: not cordoned, and no NoSchedule/NoExecute taint applies (a
    /// control plane's `node-role.kubernetes.io/control-plane`, a user's dedicated-node taint).
    /// The not-ready/unreachable taints are left to `ready`, which they merely mirror.
    pub schedulable: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClusterInfo {
    /// e.g. `v1.24.17`.
    pub version: String,
    pub minor: u32,
    pub nodes: Vec<NodeInfo>,
    /// `metrics.k8s.io` answers: its APIService is Available (metrics-server or a stand-in is up),
    /// so HPA on CPU can work. A registered but unavailable APIService does not count.
    pub metrics_api: bool,
    pub ingress_classes: Vec<String>,
    pub default_storage_class: Option<String>,
}

impl ClusterInfo {
    pub async fn discover(client: &kube::Client) -> Result<ClusterInfo> {
        let version = client.apiserver_version().await?;
        let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?.items;
        let groups = client.list_api_groups().await?;
        let metrics = match Api::<APIService>::all(client.clone()).get_opt(METRICS_APISERVICE).await {
            Ok(found) => MetricsService::Read(found),
            // Reading APIServices is cluster-admin territory; a user with less can still use
            // the group listing.
            Err(kube::Error::Api(e)) if e.code == 403 => MetricsService::Forbidden,
            Err(e) => return Err(e.into()),
        };
        let ingress = Api::<IngressClass>::all(client.clone()).list(&ListParams::default()).await?.items;
        let storage = Api::<StorageClass>::all(client.clone()).list(&ListParams::default()).await?.items;
        Ok(Self::from_objects(&version.git_version, &version.minor, &nodes, &groups, &metrics, &ingress, &storage))
    }

    pub fn from_objects(
        git_version: &str,
        minor: &str,
        nodes: &[Node],
        groups: &APIGroupList,
        metrics: &MetricsService,
        ingress: &[IngressClass],
        storage: &[StorageClass],
    ) -> ClusterInfo {
        ClusterInfo {
            version: git_version.to_string(),
            // Managed distributions report minor as "24+".
            minor: minor.trim_end_matches('+').parse().unwrap_or(0),
            nodes: nodes.iter().map(node_info).collect(),
            metrics_api: metrics_api(groups, metrics),
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
        self.nodes.iter().filter(|n| n.ready && n.schedulable).count()
    }
}

/// The APIService through which metrics-server serves `metrics.k8s.io`.
pub const METRICS_APISERVICE: &str = "v1beta1.metrics.k8s.io";

/// What reading [`METRICS_APISERVICE`] gave.
#[derive(Debug, Clone)]
pub enum MetricsService {
    Read(Option<APIService>),
    /// The user may not read APIServices.
    Forbidden,
}

/// Whether an APIService answers: its `Available` condition is True. Registered but not
/// Available (MissingEndpoints, FailedDiscoveryCheck while metrics-server starts or when it is
/// broken), the group is still listed but every request to it fails with 503.
pub fn apiservice_available(service: &APIService) -> bool {
    service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Available" && c.status == "True"))
}

/// Why an APIService is not available, from its `Available` condition, for messages.
pub fn apiservice_unavailable_reason(service: &APIService) -> String {
    let name = service.metadata.name.as_deref().unwrap_or("<unnamed>");
    match service.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Available")) {
        Some(c) => format!(
            "APIService {name} is not Available ({}: {})",
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        ),
        None => format!("APIService {name} has no Available condition yet"),
    }
}

/// Can an HPA read CPU metrics? The APIService decides when it can be read; when it cannot
/// (forbidden), the group listing is the best evidence left.
pub fn metrics_api(groups: &APIGroupList, service: &MetricsService) -> bool {
    match service {
        MetricsService::Read(Some(s)) => apiservice_available(s),
        MetricsService::Read(None) => false,
        MetricsService::Forbidden => groups.groups.iter().any(|g| g.name == "metrics.k8s.io"),
    }
}

/// Taints the node lifecycle controller derives from conditions the node info already carries
/// (`ready`, `unschedulable`), so they say nothing more about room for new Pods.
const CONDITION_TAINTS: [&str; 3] = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", crate::wait::nodes::UNSCHEDULABLE_TAINT];

/// Not cordoned, and no taint that keeps new Pods off (see [`NodeInfo::schedulable`]).
pub fn node_schedulable(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let tainted = spec
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !CONDITION_TAINTS.contains(&t.key.as_str())));
    !cordoned && !tainted
}

fn node_info(node: &Node) -> NodeInfo {
    let status = node.status.as_ref();
    NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        internal_ip: status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone()),
        ready: node_ready(node),
        unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        schedulable: node_schedulable(node),
    }
}

pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
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
        let info = ClusterInfo::from_objects("v1.24.0-alpha.1+e5f3f020", "24+", &[node], &groups, &MetricsService::Forbidden, &[], &[storage]);
        assert_eq!(info.minor, 24);
        assert!(info.metrics_api, "without the right to read APIServices the group listing decides");
        assert_eq!(info.default_storage_class.as_deref(), Some("hostpath"));
        assert_eq!(info.nodes.len(), 1);
        assert_eq!(info.nodes[0].internal_ip.as_deref(), Some("10.200.0.1"));
        assert!(info.nodes[0].unschedulable);
        assert!(!info.nodes[0].schedulable);
        assert_eq!(info.schedulable_nodes(), 0, "a cordoned node gives a drain no room");
    }

    #[test]
    fn metrics_api_needs_an_available_apiservice() {
        let groups: APIGroupList = serde_json::from_value(serde_json::json!({
            "kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "metrics.k8s.io", "versions": []}]
        }))
        .unwrap();
        let missing: APIService = sample("apiservice-metrics-missing-endpoints.json");
        let available: APIService = sample("apiservice-metrics-available.json");
        assert!(!metrics_api(&groups, &MetricsService::Read(Some(missing.clone()))), "listed, but every request would be a 503");
        assert!(metrics_api(&groups, &MetricsService::Read(Some(available.clone()))));
        assert!(!metrics_api(&groups, &MetricsService::Read(None)));
        assert_eq!(
            apiservice_unavailable_reason(&missing),
            "APIService v1beta1.metrics.k8s.io is not Available (MissingEndpoints: endpoints for service/metrics-server in \"kube-system\" have no addresses with port name \"https\")"
        );
        // Derived: the APIService right after registration, before the controller wrote status.
        let mut fresh = crate::samples::value("apiservice-metrics-missing-endpoints.json");
        fresh.as_object_mut().unwrap().remove("status");
        let fresh: APIService = crate::samples::from_value(fresh);
        assert!(!apiservice_available(&fresh));
        assert!(apiservice_unavailable_reason(&fresh).contains("no Available condition yet"));
    }

    #[test]
    fn taints_decide_schedulability_but_readiness_taints_are_left_to_ready() {
        // Derived from the captured node: uncordoned, then given kubeadm's control-plane taint.
        let mut v = crate::samples::value("node-cordoned.json");
        v["spec"].as_object_mut().unwrap().remove("unschedulable");
        v["spec"]["taints"] = serde_json::json!([]);
        assert!(node_schedulable(&crate::samples::from_value(v.clone())));
        v["spec"]["taints"] = serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
        assert!(!node_schedulable(&crate::samples::from_value(v.clone())));
        v["spec"]["taints"] = serde_json::json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]);
        assert!(!node_schedulable(&crate::samples::from_value(v.clone())));
        v["spec"]["taints"] = serde_json::json!([{"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}]);
        assert!(node_schedulable(&crate::samples::from_value(v.clone())), "a preference keeps no Pod off");
        v["spec"]["taints"] = serde_json::json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]);
        assert!(node_schedulable(&crate::samples::from_value(v)), "readiness is `ready`'s business");
    }
}
