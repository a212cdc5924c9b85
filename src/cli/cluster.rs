//! `seaworthy up` and `seaworthy down`.

use crate::cluster::lifecycle::{self, UpOptions};
use crate::cluster::{ConnectOptions, KubeconfigSource, Provider};
use clap::Args;
use std::path::PathBuf;

/// How to reach or make a cluster; shared by `up`, `down --runs` and `run`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Where the cluster comes from (default: SEAWORTHY_CLUSTER, else the current kubeconfig context).
    #[arg(long = "cluster", value_enum)]
    pub provider: Option<Provider>,
    /// kind/k3d cluster name.
    #[arg(long, default_value = "seaworthy")]
    pub name: String,
    /// Kubeconfig file (default: SEAWORTHY_KUBECONFIG, KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Use this context although it does not look like a local test cluster.
    #[arg(long, value_name = "NAME")]
    pub allow_context: Option<String>,
}

impl ClusterArgs {
    pub fn provider(&self) -> anyhow::Result<Provider> {
        Ok(match self.provider {
            Some(p) => p,
            None => Provider::from_env()?.unwrap_or(Provider::Existing),
        })
    }

    pub fn connect(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone().map(KubeconfigSource::File).unwrap_or_default(),
            context: self.context.clone(),
            allow_context: self.allow_context.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Worker nodes (kind) or agents (k3d).
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Node image, to test a Kubernetes version (kind: kindest/node:v1.24.17; k3d: rancher/k3s:v1.24.17-k3s1).
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Instead of deleting the cluster, delete the namespaces earlier runs left behind.
    #[arg(long)]
    pub runs: bool,
    /// With --runs: only namespaces created at least this long ago (younger ones may belong to a
    /// run still going), e.g. 30m, 2h, 0s.
    #[arg(long, default_value = "30m", value_parser = parse_age, requires = "runs")]
    pub older_than: std::time::Duration,
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    crate::traffic::parse_duration(s).map_err(|e| format!("{e:#}"))
}

pub fn up(args: UpArgs) -> anyhow::Result<i32> {
    let provider = args.cluster.provider()?;
    if provider == Provider::K3s {
        anyhow::bail!("k3s in a container lives only as long as the seaworthy process that starts it: use `seaworthy run --cluster k3s`, or kind/k3d for a cluster that stays up");
    }
    let opts = UpOptions {
        provider,
        name: args.cluster.name.clone(),
        workers: args.workers,
        image: args.image,
        node_ports: lifecycle::stack_node_ports(),
        connect: args.cluster.connect(),
    };
    let cluster = tokio::runtime::Runtime::new()?.block_on(lifecycle::up(&opts))?;
    let info = &cluster.info;
    println!(
        "cluster ready: context {}, Kubernetes {}, {} node(s), metrics API: {}, ingress classes: [{}], default StorageClass: {}",
        cluster.context,
        info.version,
        info.nodes.len(),
        if info.metrics_api { "yes" } else { "no" },
        info.ingress_classes.join(", "),
        info.default_storage_class.as_deref().unwrap_or("none")
    );
    Ok(0)
}

pub fn down(args: DownArgs) -> anyhow::Result<i32> {
    if args.runs {
        let connect = args.cluster.connect();
        return tokio::runtime::Runtime::new()?.block_on(async move {
            let cluster = crate::cluster::Cluster::connect_existing(&connect).await?;
            let left = crate::apply::leftovers(&cluster.client, args.older_than).await?;
            if left.is_empty() {
                println!(
                    "no namespaces of earlier runs older than {}s on {}",
                    args.older_than.as_secs(),
                    cluster.context
                );
            }
            for ns in left {
                println!("deleting {ns}");
                crate::apply::delete_namespace(&cluster.client, &ns, None, std::time::Duration::from_secs(180)).await?;
            }
            for (node, run) in crate::apply::uncordon_leftovers(&cluster.client).await? {
                println!("uncordoned node {node} (cordoned by run {run})");
            }
            Ok(0)
        });
    }
    lifecycle::down(args.cluster.provider()?, &args.cluster.name)?;
    println!("deleted {} cluster {}", format!("{:?}", args.cluster.provider()?).to_lowercase(), args.cluster.name);
    Ok(0)
}
