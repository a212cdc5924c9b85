//! `seaworthy up` / `down`: create or reuse a cluster through its provider, and remove it.

use super::k3d::{self, K3dSpec};
use super::kind::{self, KindSpec};
use super::{Cluster, ConnectOptions, DEFAULT_INGRESS_HTTP_PORT, KubeconfigSource, Provider, addons, k3s, tools};
use anyhow::{Result, bail};

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
        Provider::K3s => k3s::start(&k3s::K3sOptions { node_ports: opts.node_ports.clone(), images_dir: None }).await,
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
            let cluster = connect(yaml, spec.context(), &opts.connect).await?;
            if !cluster.info.metrics_api {
                eprintln!("installing metrics-server (for the HPA check)...");
                addons::install(&cluster.client, &addons::metrics_server()).await?;
            }
            if cluster.info.ingress_classes.is_empty() {
                eprintln!("installing ingress-nginx (for stacks reached by Ingress)...");
                addons::install(&cluster.client, &addons::ingress_nginx(cluster.info.minor)).await?;
            }
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
            connect(yaml, spec.context(), &opts.connect).await
        }
    }
}

async fn connect(kubeconfig_yaml: String, context: String, base: &ConnectOptions) -> Result<Cluster> {
    let opts = ConnectOptions { kubeconfig: KubeconfigSource::Yaml(kubeconfig_yaml), context: Some(context), allow_context: base.allow_context.clone() };
    Cluster::connect_existing(&opts).await
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
    #[test]
    fn the_shipped_stacks_node_ports_are_distinct_and_in_range() {
        let ports = super::stack_node_ports();
        assert!(!ports.is_empty());
        assert!(ports.iter().all(|p| (30000..=32767).contains(p)), "{ports:?}");
    }
}
