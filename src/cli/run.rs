//! `seaworthy run [STACK...] [--check NAME...]`.

use super::cluster::ClusterArgs;
use crate::checks::context::Timeouts;
use crate::checks::runner::RunOptions;
use crate::cluster::{Cluster, Provider, k3s, lifecycle, tools};
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
    /// Where the evidence of failed checks goes (what CI uploads).
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Keep the image archives loaded into the cluster in DIR, and reuse those of unchanged
    /// images on the next run (default: a temporary folder, removed once they are loaded; they
    /// are gigabytes, and no part of the evidence).
    #[arg(long, value_name = "DIR")]
    pub image_archives: Option<PathBuf>,
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
    /// Write the run report (JSON: every check, its traffic and its events) here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML here (one test case per check, for CI).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Every stack is loaded and validated before anything touches a cluster.
    let stacks: Vec<Stack> = if args.stacks.is_empty() {
        Stack::shipped()?
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
        run: RunOptions { artifacts: args.artifacts.clone(), keep_on_failure: args.keep_on_failure, timeouts: Timeouts::default(), progress: None },
        jobs: args.jobs,
        load_images_with: args.load_images_with.clone(),
        base: args.base.clone(),
        image_archives: args.image_archives.clone(),
    };
    let report = tokio::runtime::Runtime::new()?.block_on(async {
        let cluster = connect(&args.cluster).await?;
        execute(&cluster, &plan, &settings).await
    })?;
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        report.save(path)?;
    }
    super::report::write_views(&report, args.html.as_deref(), args.junit.as_deref())?;
    Ok(exit_code(&report))
}

/// The chosen provider; by default the current context if it is a local test cluster that
/// answers, else (see [`fallback`]) k3s in a container on a machine with Docker but neither kind
/// nor k3d.
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
                let installed = |t| tools::which(t).is_some();
                match fallback(installed("kind"), installed("k3d"), installed("docker"), &format!("{e:#}")) {
                    Fallback::StartK3s(note) => {
                        eprintln!("{note}");
                        k3s::start(&k3s::K3sOptions { node_ports }).await
                    }
                    Fallback::Fail(message) => anyhow::bail!(message),
                }
            }
        },
    }
}

/// What `run` without `--cluster` does when the current context cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Start k3s in a container, saying why (the line to print).
    StartK3s(String),
    /// Stop with this message.
    Fail(String),
}

/// k3s in a container is the default only for a machine with Docker but neither kind nor k3d;
/// with kind or k3d installed the user has a provider they chose, so seaworthy names it rather
/// than starting something else behind their back.
pub fn fallback(kind: bool, k3d: bool, docker: bool, why: &str) -> Fallback {
    let tool = if kind { Some("kind") } else if k3d { Some("k3d") } else { None };
    match (tool, docker) {
        (Some(tool), _) => Fallback::Fail(format!(
            "the current context cannot be used ({why}); {tool} is installed: run `seaworthy up --cluster {tool}` once, \
             or pass --cluster {tool} (or --cluster k3s for a throwaway k3s container)"
        )),
        (None, true) => Fallback::StartK3s(format!("no usable local context ({why}); starting k3s in a container (neither kind nor k3d is installed)")),
        (None, false) => Fallback::Fail(format!(
            "the current context cannot be used ({why}), and without Docker seaworthy cannot start a cluster: \
             install Docker (and kind or k3d), or pass --cluster existing --context NAME for a cluster you have"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_only_on_a_machine_with_docker_but_neither_kind_nor_k3d() {
        let why = "refusing context \"prod\": it does not look like a local test cluster";
        assert!(matches!(fallback(false, false, true, why), Fallback::StartK3s(m) if m.contains(why)));
        for (kind, k3d, tool) in [(true, false, "kind"), (false, true, "k3d"), (true, true, "kind")] {
            for docker in [true, false] {
                let Fallback::Fail(m) = fallback(kind, k3d, docker, why) else { panic!("{tool} installed must not start k3s") };
                assert!(m.contains(why) && m.contains(&format!("seaworthy up --cluster {tool}")), "{m}");
            }
        }
        let Fallback::Fail(m) = fallback(false, false, false, why) else { panic!("no docker, no k3s") };
        assert!(m.contains("install Docker"), "{m}");
    }
}
