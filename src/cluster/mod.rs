//! Where the cluster comes from: an existing kubeconfig context, kind, k3d, or k3s in a
//! container. Whatever the provider, the result is one [`Cluster`]: a client, what the cluster
//! offers, and how traffic from this machine reaches a NodePort or the Ingress.

pub mod addons;
pub mod info;
pub mod k3d;
pub mod k3s;
pub mod kind;
mod kubeconfig;
pub mod lifecycle;
pub mod safety;
pub mod tools;

pub use info::{ClusterInfo, NodeInfo};
pub use kubeconfig::KubeconfigSource;

use anyhow::{Context, Result, bail};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// A context of your kubeconfig (SEAWORTHY_KUBECONFIG, else KUBECONFIG, else ~/.kube/config).
    Existing,
    Kind,
    K3d,
    /// k3s in a Docker container via testcontainers; it lives as long as the seaworthy process.
    K3s,
}

impl Provider {
    pub fn from_env() -> Result<Option<Provider>> {
        match std::env::var("SEAWORTHY_CLUSTER").ok().as_deref() {
            None | Some("") => Ok(None),
            Some("existing") => Ok(Some(Provider::Existing)),
            Some("kind") => Ok(Some(Provider::Kind)),
            Some("k3d") => Ok(Some(Provider::K3d)),
            Some("k3s") => Ok(Some(Provider::K3s)),
            Some(other) => bail!("SEAWORTHY_CLUSTER={other:?} is not a provider: use kind, k3d, k3s or existing"),
        }
    }
}

/// How a request from this machine reaches the stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// kind/k3d/k3s port mappings: a NodePort N is 127.0.0.1:N, the ingress controller's HTTP port
    /// is 127.0.0.1:`ingress_http_port`.
    Loopback { ingress_http_port: Option<u16> },
    /// An existing cluster: NodePorts on a node's InternalIP; no known ingress address.
    NodeAddress { address: String },
}

/// A reachable, vetted cluster.
pub struct Cluster {
    pub client: kube::Client,
    pub provider: Provider,
    pub context: String,
    pub info: ClusterInfo,
    pub access: Access,
    /// Keeps seaworthy's own k3s container alive for as long as this handle lives.
    pub(crate) _k3s: Option<k3s::K3sContainer>,
}

/// How the caller wants the cluster reached.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: KubeconfigSource,
    pub context: Option<String>,
    /// `--allow-context NAME`: use a context that does not look like a local test cluster.
    pub allow_context: Option<String>,
}

impl Cluster {
    /// Use an existing context, refusing one that is not a local test cluster unless allowed,
    /// and failing with one plain sentence when the API server does not answer.
    pub async fn connect_existing(opts: &ConnectOptions) -> Result<Cluster> {
        let (config, context, described) = opts.kubeconfig.load(opts.context.as_deref()).await?;
        safety::check_context(&context, opts.allow_context.as_deref())?;
        let provider = if context.starts_with("kind-") {
            Provider::Kind
        } else if context.starts_with("k3d-") {
            Provider::K3d
        } else {
            Provider::Existing
        };
        let cluster_url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
        let info = reach(&client, &cluster_url, &context, &described).await?;
        let published = published_ports(provider, &context).await;
        let internal_ip = info.nodes.iter().find_map(|n| n.internal_ip.clone());
        let access = match decide_access(published.as_deref(), &lifecycle::stack_node_ports(), internal_ip) {
            Some(access) => access,
            None => bail!("no node of context {context} reports an InternalIP, and its node containers publish no NodePorts here, so the stacks cannot be reached"),
        };
        Ok(Cluster { client, provider, context, info, access, _k3s: None })
    }

    /// The id of seaworthy's own k3s container, for image import.
    pub fn k3s_container_id(&self) -> Option<String> {
        self._k3s.as_ref().map(|c| c.id().to_string())
    }

    /// The URL of a stack's entry point from this machine, and the Host header to send (for an
    /// Ingress). NodePort is preferred: it needs no ingress controller.
    pub fn entry_url(&self, entry: &crate::stack::spec::Entry) -> Result<(String, Option<String>)> {
        let host = match &self.access {
            Access::Loopback { .. } => "127.0.0.1".to_string(),
            Access::NodeAddress { address } => address.clone(),
        };
        entry_url(&self.access, &host, !self.info.ingress_classes.is_empty(), entry)
            .ok_or_else(|| anyhow::anyhow!("service {} has no nodePort and no reachable Ingress on context {}", entry.service, self.context))
    }
}

/// The entry URL (and Host header) on a cluster reached through `access` at `host`: the
/// NodePort, or the Ingress where a controller answers on this machine (first, for an entry
/// that prefers it).
pub fn entry_url(access: &Access, host: &str, has_ingress_class: bool, entry: &crate::stack::spec::Entry) -> Option<(String, Option<String>)> {
    let ingress = match (access, &entry.ingress_host) {
        (Access::Loopback { ingress_http_port: Some(port) }, Some(ingress)) if has_ingress_class => {
            Some((format!("http://127.0.0.1:{port}{}", entry.path), Some(ingress.clone())))
        }
        _ => None,
    };
    let node_port = entry.node_port.map(|port| (format!("http://{host}:{port}{}", entry.path), None));
    if entry.prefer_ingress { ingress.or(node_port) } else { node_port.or(ingress) }
}

/// One published port of a node container, as `docker port CONTAINER` prints it:
/// `80/tcp -> 127.0.0.1:18080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

/// Parse `docker port CONTAINER` (TCP lines only; anything unparsable is skipped).
pub fn parse_docker_port(stdout: &str) -> Vec<PublishedPort> {
    stdout
        .lines()
        .filter_map(|line| {
            let (inner, outer) = line.trim().split_once(" -> ")?;
            let container_port = inner.strip_suffix("/tcp")?.parse().ok()?;
            let (host_ip, host_port) = outer.rsplit_once(':')?;
            Some(PublishedPort { container_port, host_ip: host_ip.trim_matches(|c| c == '[' || c == ']').to_string(), host_port: host_port.parse().ok()? })
        })
        .collect()
}

/// How this machine reaches the stacks. Loopback only when the node containers really publish
/// every stack NodePort on the same port of an address this machine can use (a kind or k3d
/// cluster seaworthy created does; one made by a plain `kind create cluster` publishes none);
/// the ingress controller is then whatever host port publishes the node's port 80. Otherwise
/// the NodePorts are reached on a node's InternalIP. `None` when neither works.
pub fn decide_access(published: Option<&[PublishedPort]>, node_ports: &[u16], internal_ip: Option<String>) -> Option<Access> {
    let local = |p: &&PublishedPort| ["127.0.0.1", "0.0.0.0", "::", "::1"].contains(&p.host_ip.as_str());
    if let Some(published) = published.filter(|p| !p.is_empty()) {
        let all_node_ports = node_ports.iter().all(|port| published.iter().filter(local).any(|p| p.container_port == *port && p.host_port == *port));
        if all_node_ports {
            let ingress_http_port = published.iter().filter(local).find(|p| p.container_port == 80).map(|p| p.host_port);
            return Some(Access::Loopback { ingress_http_port });
        }
    }
    internal_ip.map(|address| Access::NodeAddress { address })
}

/// The containers whose published ports carry a kind/k3d cluster's traffic: kind's control
/// plane; k3d's load balancer (k3d v5 publishes node ports "via the serverlb") and first server.
pub fn node_containers(provider: Provider, context: &str) -> Vec<String> {
    match provider {
        Provider::Kind => vec![format!("{}-control-plane", cluster_name(context, "kind-"))],
        Provider::K3d => {
            let name = cluster_name(context, "k3d-");
            vec![format!("k3d-{name}-serverlb"), format!("k3d-{name}-server-0")]
        }
        Provider::K3s | Provider::Existing => vec![],
    }
}

/// The kind/k3d cluster name of a context: `kind-kind` is cluster `kind` (a repeated prefix is
/// part of the name, so not `trim_start_matches`).
pub fn cluster_name<'a>(context: &'a str, prefix: &str) -> &'a str {
    context.strip_prefix(prefix).unwrap_or(context)
}

/// What the cluster's node containers publish here, or `None` when Docker cannot say (no docker
/// CLI, a remote engine, containers named otherwise).
async fn published_ports(provider: Provider, context: &str) -> Option<Vec<PublishedPort>> {
    let mut all = Vec::new();
    for container in node_containers(provider, context) {
        let run = tokio::process::Command::new("docker").args(["port", &container]).kill_on_drop(true).output();
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), run).await
            && out.status.success()
        {
            all.extend(parse_docker_port(&String::from_utf8_lossy(&out.stdout)));
        }
    }
    (!all.is_empty()).then_some(all)
}

/// Host port of the ingress controller in the clusters seaworthy creates.
pub const DEFAULT_INGRESS_HTTP_PORT: u16 = 18080;

/// Ask the API server what it is, within a deadline, so that an unreachable cluster is one
/// sentence, not a hang.
async fn reach(client: &kube::Client, url: &str, context: &str, kubeconfig: &str) -> Result<ClusterInfo> {
    match tokio::time::timeout(Duration::from_secs(10), ClusterInfo::discover(client)).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => bail!(
            "cannot reach the Kubernetes API at {url} (context {context}, {kubeconfig}): {e:#}. Is the cluster running? \
             (`kind get clusters`, `k3d cluster list`, or `seaworthy up`)"
        ),
        Err(_) => bail!(
            "the Kubernetes API at {url} (context {context}, {kubeconfig}) did not answer within 10s: is the cluster running? \
             (`kind get clusters`, `k3d cluster list`, or `seaworthy up`)"
        ),
    }
}

/// For the cluster suites: a cluster if one is configured, else `Err(reason)` to print as the
/// skip line. `SEAWORTHY_REQUIRE_CLUSTER=1` makes the caller fail instead of skipping.
pub async fn for_tests() -> std::result::Result<Cluster, String> {
    let provider = Provider::from_env().map_err(|e| e.to_string())?;
    let configured = std::env::var_os("SEAWORTHY_KUBECONFIG").is_some() || std::env::var_os("KUBECONFIG").is_some();
    if provider.is_none() && !configured {
        return Err("no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG)".into());
    }
    let opts = ConnectOptions { allow_context: std::env::var("SEAWORTHY_ALLOW_CONTEXT").ok(), ..Default::default() };
    let result = match provider {
        Some(Provider::K3s) => k3s::start(&k3s::K3sOptions::default()).await,
        _ => Cluster::connect_existing(&opts).await,
    };
    result.map_err(|e| format!("no usable cluster: {e:#}"))
}

/// Whether a cluster is required (the nightly job), so a missing one fails rather than skips.
pub fn cluster_required() -> bool {
    std::env::var("SEAWORTHY_REQUIRE_CLUSTER").is_ok_and(|v| v == "1" || v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker port` output of a kind control plane created from seaworthy's config (the format
    /// of Docker's `docker port` reference: `7890/tcp -> 0.0.0.0:4321`).
    const SEAWORTHY_KIND: &str = "80/tcp -> 127.0.0.1:18080\n6443/tcp -> 127.0.0.1:40123\n30080/tcp -> 127.0.0.1:30080\n31090/tcp -> 127.0.0.1:31090\n";

    /// myblog on the 2026-12-06 lab cluster (no ingress controller) was skipped: its only entry
    /// was the Ingress. With a NodePort it is reached there, and still through the Ingress
    /// wherever a controller answers, since its entry prefers it.
    #[test]
    fn an_entry_that_prefers_its_ingress_falls_back_to_its_node_port() {
        let myblog = crate::stack::Stack::find("myblog").unwrap().spec.entry;
        let node = Access::NodeAddress { address: "10.200.0.1".into() };
        assert_eq!(entry_url(&node, "10.200.0.1", false, &myblog), Some(("http://10.200.0.1:30082/blog/index/".into(), None)));
        let kind = Access::Loopback { ingress_http_port: Some(18080) };
        assert_eq!(entry_url(&kind, "127.0.0.1", true, &myblog), Some(("http://127.0.0.1:18080/blog/index/".into(), Some("myblog.luffy.com".into()))));
        // A published port 80 without any IngressClass is no controller.
        assert_eq!(entry_url(&kind, "127.0.0.1", false, &myblog), Some(("http://127.0.0.1:30082/blog/index/".into(), None)));
        // A stack that does not prefer its Ingress keeps its NodePort, as before.
        let phpdemo = crate::stack::Stack::find("phpdemo").unwrap().spec.entry;
        assert_eq!(entry_url(&kind, "127.0.0.1", true, &phpdemo), Some(("http://127.0.0.1:30080/api.php".into(), None)));
        let ingress_only = crate::stack::spec::Entry { node_port: None, ..myblog };
        assert_eq!(entry_url(&node, "10.200.0.1", false, &ingress_only), None);
    }

    #[test]
    fn docker_port_output_is_parsed() {
        let p = parse_docker_port("7890/tcp -> 0.0.0.0:4321\n9876/tcp -> [::]:1234\n53/udp -> 0.0.0.0:53\ngarbage\n");
        assert_eq!(
            p,
            [
                PublishedPort { container_port: 7890, host_ip: "0.0.0.0".into(), host_port: 4321 },
                PublishedPort { container_port: 9876, host_ip: "::".into(), host_port: 1234 },
            ]
        );
    }

    #[test]
    fn loopback_only_when_every_node_port_is_published() {
        let ip = Some("172.18.0.3".to_string());
        let ports = [30080, 31090];
        let ours = parse_docker_port(SEAWORTHY_KIND);
        assert_eq!(decide_access(Some(&ours), &ports, ip.clone()), Some(Access::Loopback { ingress_http_port: Some(18080) }));
        // A plain `kind create cluster` publishes only the API server.
        let plain = parse_docker_port("6443/tcp -> 127.0.0.1:37503\n");
        assert_eq!(decide_access(Some(&plain), &ports, ip.clone()), Some(Access::NodeAddress { address: "172.18.0.3".into() }));
        // A cluster created before a stack with a new NodePort was added lacks that one.
        assert_eq!(decide_access(Some(&ours), &[30080, 31090, 30999], ip.clone()), Some(Access::NodeAddress { address: "172.18.0.3".into() }));
        // Docker could not say (remote engine, not a container cluster).
        assert_eq!(decide_access(None, &ports, ip), Some(Access::NodeAddress { address: "172.18.0.3".into() }));
        assert_eq!(decide_access(None, &ports, None), None);
        // Published on another interface only: not reachable as 127.0.0.1.
        let elsewhere = parse_docker_port("30080/tcp -> 192.168.1.5:30080\n31090/tcp -> 192.168.1.5:31090\n");
        assert_eq!(decide_access(Some(&elsewhere), &ports, None), None);
    }

    #[test]
    fn node_container_names() {
        assert_eq!(node_containers(Provider::Kind, "kind-seaworthy"), ["seaworthy-control-plane"]);
        assert_eq!(node_containers(Provider::Kind, "kind-kind"), ["kind-control-plane"], "plain `kind create cluster`");
        assert_eq!(node_containers(Provider::K3d, "k3d-dev"), ["k3d-dev-serverlb", "k3d-dev-server-0"]);
        assert!(node_containers(Provider::Existing, "minikube").is_empty());
    }
}
