//! `seaworthy up` / `down`: create or reuse a cluster through its provider, and remove it.

use super::k3d::{self, K3dSpec};
use super::kind::{self, KindSpec};
use super::{Cluster, ClusterInfo, ConnectOptions, DEFAULT_INGRESS_HTTP_PORT, KubeconfigSource, Provider, addons, k3s, tools};
use anyhow::{Context, Result, bail};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub provider: Provider,
    /// The kind/k3d cluster name.
    pub name: String,
    pub workers: u32,
    /// kind node image or k3s image, to test a given Kubernetes version.
    pub image: Option<String>,
    /// NodePorts to map to 127.0.0.1 (every shipped stack's entry point).
    pub node_ports: Vec<u16>,
    pub connect: ConnectOptions,
}

/// NodePorts of the shipped stacks' entry points, for the port mappings.
pub fn stack_node_ports() -> Vec<u16> {
    let mut ports: Vec<u16> = crate::stack::Stack::list()
        .unwrap_or_default()
        .iter()
        .filter_map(|dir| crate::stack::Stack::load(dir).ok())
        .filter_map(|s| s.spec.entry.node_port)
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Create (or reuse) the cluster and connect to it.
pub async fn up(opts: &UpOptions) -> Result<Cluster> {
    match opts.provider {
        Provider::Existing => Cluster::connect_existing(&opts.connect).await,
        Provider::K3s => k3s::start(&k3s::K3sOptions { node_ports: opts.node_ports.clone() }).await,
        Provider::Kind => {
            tools::require("kind")?;
            tools::require_docker()?;
            let spec = KindSpec {
                name: opts.name.clone(),
                workers: opts.workers,
                node_ports: opts.node_ports.clone(),
                ingress_http_port: DEFAULT_INGRESS_HTTP_PORT,
                node_image: opts.image.clone(),
            };
            if kind::parse_clusters(&tools::run(&kind::list_command())?).contains(&spec.name) {
                eprintln!("reusing kind cluster {} (its port mappings are the ones it was created with)", spec.name);
            } else {
                let config = tempfile::Builder::new().prefix("seaworthy-kind-").suffix(".yaml").tempfile()?;
                std::fs::write(config.path(), spec.config_yaml())?;
                eprintln!("creating kind cluster {} (1 control plane + {} workers)...", spec.name, spec.workers);
                tools::run(&spec.create_command(config.path()))?;
            }
            let yaml = tools::run(&spec.kubeconfig_command())?;
            let mut cluster = connect(yaml, spec.context(), &opts.connect).await?;
            let install_metrics = !cluster.info.metrics_api;
            let install_ingress = cluster.info.ingress_classes.is_empty();
            if install_metrics {
                eprintln!("installing metrics-server (for the HPA check)...");
                addons::install(&cluster.client, &addons::metrics_server()).await?;
            }
            if install_ingress {
                eprintln!("installing ingress-nginx (for stacks reached by Ingress)...");
                addons::install(&cluster.client, &addons::ingress_nginx(cluster.info.minor)).await?;
            }
            settle(&mut cluster, &kind_readiness(install_metrics, install_ingress)).await?;
            Ok(cluster)
        }
        Provider::K3d => {
            tools::require("k3d")?;
            tools::require_docker()?;
            let spec = K3dSpec {
                name: opts.name.clone(),
                agents: opts.workers,
                node_ports: opts.node_ports.clone(),
                ingress_http_port: DEFAULT_INGRESS_HTTP_PORT,
                image: opts.image.clone(),
            };
            if k3d::parse_clusters(&tools::run(&k3d::list_command())?)?.contains(&spec.name) {
                eprintln!("reusing k3d cluster {}", spec.name);
            } else {
                eprintln!("creating k3d cluster {} (1 server + {} agents)...", spec.name, spec.agents);
                tools::run(&spec.create_command())?;
            }
            let yaml = tools::run(&spec.kubeconfig_command())?;
            let mut cluster = connect(yaml, spec.context(), &opts.connect).await?;
            settle(&mut cluster, &k3s_readiness()).await?;
            Ok(cluster)
        }
    }
}

async fn connect(kubeconfig_yaml: String, context: String, base: &ConnectOptions) -> Result<Cluster> {
    let opts = ConnectOptions { kubeconfig: KubeconfigSource::Yaml(kubeconfig_yaml), context: Some(context), allow_context: base.allow_context.clone() };
    Cluster::connect_existing(&opts).await
}

/// What must be up before a cluster seaworthy made is handed to the checks: its nodes, and the
/// add-ons the checks rely on. Without the waits the first Ingress hits ingress-nginx's
/// admission webhook before it answers, the HPA check is skipped for want of metrics, and a
/// NotReady worker makes Pods Unschedulable (which the waits take as a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// (namespace, name) of Deployments whose rollout must complete.
    pub deployments: Vec<(&'static str, &'static str)>,
    /// (namespace, name) of Jobs that must complete first (they precede the Deployments).
    pub jobs: Vec<(&'static str, &'static str)>,
    /// APIServices that must be Available.
    pub apiservices: Vec<&'static str>,
}

/// How long each add-on may take (image pulls on a fresh cluster are the slow part).
pub const ADDON_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the nodes may take to become Ready after `kind`/`k3d`/k3s report the cluster up.
pub const NODES_TIMEOUT: Duration = Duration::from_secs(180);

/// kind: what seaworthy just installed (an add-on already there was up when discovered).
pub fn kind_readiness(metrics_server: bool, ingress_nginx: bool) -> Readiness {
    let mut r = Readiness { deployments: vec![], jobs: vec![], apiservices: vec![] };
    if metrics_server {
        r.deployments.push(("kube-system", "metrics-server"));
        r.apiservices.push(super::info::METRICS_APISERVICE);
    }
    if ingress_nginx {
        // The Jobs create the webhook's certificate and patch it into the webhook configuration;
        // until then every Ingress apply is refused.
        r.jobs.extend([("ingress-nginx", "ingress-nginx-admission-create"), ("ingress-nginx", "ingress-nginx-admission-patch")]);
        r.deployments.push(("ingress-nginx", "ingress-nginx-controller"));
    }
    r
}

/// k3s (k3d, or the container): its packaged metrics-server and traefik start after the API
/// server answers, from manifests its deploy controller applies.
pub fn k3s_readiness() -> Readiness {
    Readiness {
        deployments: vec![("kube-system", "metrics-server"), ("kube-system", "traefik")],
        jobs: vec![],
        apiservices: vec![super::info::METRICS_APISERVICE],
    }
}

/// Wait (watch-driven, each with a deadline) for every node and everything in `r`, then read
/// what the cluster offers again: the add-ons change it.
pub async fn settle(cluster: &mut Cluster, r: &Readiness) -> Result<()> {
    use crate::wait::watch;
    let client = &cluster.client;
    eprintln!("waiting for all nodes to be Ready...");
    watch::all_nodes_ready(client, NODES_TIMEOUT).await.context("the cluster's nodes")?;
    for (ns, name) in &r.jobs {
        watch::job_complete(client, ns, name, ADDON_TIMEOUT).await.with_context(|| format!("add-on job {ns}/{name}"))?;
    }
    for (ns, name) in &r.deployments {
        eprintln!("waiting for {ns}/{name}...");
        watch::deployment_rollout(client, ns, name, ADDON_TIMEOUT).await.with_context(|| format!("add-on {ns}/{name}"))?;
    }
    for name in &r.apiservices {
        watch::apiservice_available(client, name, ADDON_TIMEOUT).await.with_context(|| format!("add-on APIService {name}"))?;
    }
    cluster.info = tokio::time::timeout(Duration::from_secs(30), ClusterInfo::discover(client))
        .await
        .context("reading the cluster's offer again after its add-ons started: no answer within 30s")?
        .context("reading the cluster's offer again after its add-ons started")?;
    Ok(())
}

/// Delete the kind/k3d cluster seaworthy created.
pub fn down(provider: Provider, name: &str) -> Result<()> {
    match provider {
        Provider::Kind => {
            tools::require("kind")?;
            let spec = KindSpec { name: name.into(), workers: 0, node_ports: vec![], ingress_http_port: 0, node_image: None };
            tools::run(&spec.delete_command())?;
        }
        Provider::K3d => {
            tools::require("k3d")?;
            let spec = K3dSpec { name: name.into(), agents: 0, node_ports: vec![], ingress_http_port: 0, image: None };
            tools::run(&spec.delete_command())?;
        }
        Provider::K3s => bail!("seaworthy's k3s container is removed when the run that started it ends; nothing to take down"),
        Provider::Existing => bail!("seaworthy does not delete clusters it did not create; use `seaworthy down --runs` to remove its namespaces"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_waits_only_for_what_it_installed() {
        let nothing = kind_readiness(false, false);
        assert!(nothing.deployments.is_empty() && nothing.jobs.is_empty() && nothing.apiservices.is_empty());
        let both = kind_readiness(true, true);
        assert_eq!(both.apiservices, ["v1beta1.metrics.k8s.io"]);
        assert_eq!(both.deployments, [("kube-system", "metrics-server"), ("ingress-nginx", "ingress-nginx-controller")]);
        assert_eq!(both.jobs.len(), 2);
        assert_eq!(k3s_readiness().deployments, [("kube-system", "metrics-server"), ("kube-system", "traefik")]);
    }

    #[test]
    fn the_shipped_stacks_node_ports_are_distinct_and_in_range() {
        let ports = super::stack_node_ports();
        assert!(!ports.is_empty());
        assert!(ports.iter().all(|p| (30000..=32767).contains(p)), "{ports:?}");
    }
}
