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
        let access = match provider {
            Provider::Kind | Provider::K3d => Access::Loopback { ingress_http_port: Some(DEFAULT_INGRESS_HTTP_PORT) },
            _ => match info.nodes.iter().find_map(|n| n.internal_ip.clone()) {
                Some(address) => Access::NodeAddress { address },
                None => bail!("no node of context {context} reports an InternalIP, so its NodePorts cannot be reached"),
            },
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
        if let Some(port) = entry.node_port {
            return Ok((format!("http://{host}:{port}{}", entry.path), None));
        }
        match (&self.access, &entry.ingress_host) {
            (Access::Loopback { ingress_http_port: Some(port) }, Some(ingress)) if !self.info.ingress_classes.is_empty() => {
                Ok((format!("http://127.0.0.1:{port}{}", entry.path), Some(ingress.clone())))
            }
            _ => bail!("service {} has no nodePort and no reachable Ingress on context {}", entry.service, self.context),
        }
    }
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
