//! The external tools a provider drives (kind, k3d, docker), found on PATH or named plainly.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// The tool's path, or one sentence saying what to install.
pub fn require(tool: &str) -> Result<PathBuf> {
    which(tool).ok_or_else(|| anyhow::anyhow!("{}", missing_sentence(tool)))
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(tool)).find(|p| p.is_file())
}

pub fn missing_sentence(tool: &str) -> String {
    match tool {
        "kind" => "kind is not installed: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or choose another provider with --cluster k3d|k3s|existing.".into(),
        "k3d" => "k3d is not installed: install it (https://k3d.io/#installation) or choose another provider with --cluster kind|k3s|existing.".into(),
        "docker" => "docker is not installed: kind, k3d and the k3s container all need a Docker engine; install Docker, or use --cluster existing with a cluster you already have.".into(),
        other => format!("{other} is not installed: install it and put it on PATH."),
    }
}

/// Whether a Docker engine answers (the CLI alone is not enough).
pub fn docker_running() -> bool {
    Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().is_ok_and(|o| o.status.success())
}

pub fn require_docker() -> Result<()> {
    require("docker")?;
    if !docker_running() {
        bail!("the docker CLI is installed but no Docker engine answers: start the Docker daemon (or Docker Desktop), then try again.");
    }
    Ok(())
}

/// Run a provider command line, echoing it at debug level; its output is the error on failure.
pub fn run(argv: &[String]) -> Result<String> {
    let (program, args) = argv.split_first().context("empty command line")?;
    tracing::debug!(command = argv.join(" "), "running");
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
