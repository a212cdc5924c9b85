//! `seaworthy run [STACK...] [--check NAME...]`.

use super::cluster::ClusterArgs;
use crate::checks::context::Timeouts;
use crate::checks::runner::RunOptions;
use crate::cluster::{Cluster, Provider, k3s, lifecycle};
use crate::run::{Plan, Settings, execute, exit_code, table};
use crate::stack::Stack;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stacks to run: shipped stack names or stack folders (default: all shipped stacks).
    pub stacks: Vec<String>,
    /// Only these checks (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Stacks run in parallel.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Where evidence and image archives go.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Leave a failed check's namespace in the cluster for inspection.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// For clusters seaworthy cannot load images into itself: each image archive is piped to this
    /// shell command (e.g. 'microk8s ctr image import -').
    #[arg(long, value_name = "CMD")]
    pub load_images_with: Option<String>,
    /// Base image of every fixture image (point it at a mirror).
    #[arg(long, env = "SEAWORTHY_BASE_IMAGE", default_value = "debian:bookworm-slim")]
    pub base: String,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Every stack is loaded and validated before anything touches a cluster.
    let stacks: Vec<Stack> = if args.stacks.is_empty() {
        Stack::list()?.iter().map(|d| Stack::load(d).map_err(anyhow::Error::from)).collect::<anyhow::Result<_>>()?
    } else {
        args.stacks
            .iter()
            .map(|s| {
                let p = std::path::Path::new(s);
                if p.join("stack.toml").is_file() { Stack::load(p).map_err(anyhow::Error::from) } else { Stack::find(s) }
            })
            .collect::<anyhow::Result<_>>()?
    };
    let plan = Plan { stacks, checks: args.checks.clone() };
    crate::run::selected(&plan)?;
    let settings = Settings {
        run: RunOptions { artifacts: args.artifacts.clone(), keep_on_failure: args.keep_on_failure, timeouts: Timeouts::default() },
        jobs: args.jobs,
        load_images_with: args.load_images_with.clone(),
        base: args.base.clone(),
    };
    let report = tokio::runtime::Runtime::new()?.block_on(async {
        let cluster = connect(&args.cluster).await?;
        execute(&cluster, &plan, &settings).await
    })?;
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        report.save(path)?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::report::junit_xml(&report)?)?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, crate::report::html(&report))?;
    }
    Ok(exit_code(&report))
}

/// The chosen provider; by default an existing local context if one answers, else k3s in a
/// container.
async fn connect(args: &ClusterArgs) -> anyhow::Result<Cluster> {
    let explicit = args.provider.is_some() || Provider::from_env()?.is_some();
    let provider = args.provider()?;
    let node_ports = lifecycle::stack_node_ports();
    match (explicit, provider) {
        (true, Provider::K3s) => k3s::start(&k3s::K3sOptions { node_ports }).await,
        (true, p @ (Provider::Kind | Provider::K3d)) => {
            let opts = lifecycle::UpOptions { provider: p, name: args.name.clone(), workers: 2, image: None, node_ports, connect: args.connect() };
            lifecycle::up(&opts).await
        }
        (true, Provider::Existing) => Cluster::connect_existing(&args.connect()).await,
        (false, _) => match Cluster::connect_existing(&args.connect()).await {
            Ok(c) => Ok(c),
            Err(e) => {
                eprintln!("no usable local context ({e:#}); starting k3s in a container");
                k3s::start(&k3s::K3sOptions { node_ports }).await
            }
        },
    }
}
