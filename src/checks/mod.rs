//! The checks of shared/STACKS.md, one file each, and what they conclude. Each check runs
//! traffic, Kubernetes actions and watchers on one running variant of a stack and returns a
//! [`Verdict`] with its evidence; [`runner`] runs the good variant and the negative control.

pub mod actions;
pub mod context;
pub mod http_probe;
pub mod runner;
pub mod timeline;
pub mod verdict;

mod config_override;
mod endpoints_follow_readiness;
mod hpa_scale;
mod insufficient_resources;
mod pdb_drain;
mod persistence;
mod rollout_undo;
mod rollout_zero_5xx;
mod service_discovery;
mod stale_dns_proxy;

pub use context::CheckContext;
pub use verdict::{CheckResult, FailureCluster, Outcome, Phase, Verdict};

/// Run the check `name` on a running variant.
pub async fn dispatch(name: &str, ctx: &CheckContext) -> anyhow::Result<Verdict> {
    match name {
        "config-override" => config_override::run(ctx).await,
        "endpoints-follow-readiness" => endpoints_follow_readiness::run(ctx).await,
        "rollout-zero-5xx" => rollout_zero_5xx::run(ctx).await,
        "hpa-scale" => hpa_scale::run(ctx).await,
        "pdb-drain" => pdb_drain::run(ctx).await,
        "persistence" => persistence::run(ctx).await,
        "rollout-undo" => rollout_undo::run(ctx).await,
        "service-discovery" => service_discovery::run(ctx).await,
        "stale-dns-proxy" => stale_dns_proxy::run(ctx).await,
        "insufficient-resources" => insufficient_resources::run(ctx).await,
        other => anyhow::bail!("unknown check {other:?}"),
    }
}

/// Whether the runner waits for the stack to be ready before the check starts; a check about
/// Pods that can never be scheduled must see them fail instead, and service-discovery waits
/// itself, so that an app that never gets ready is reported with its own error.
pub fn needs_ready_stack(name: &str) -> bool {
    !matches!(name, "insufficient-resources" | "service-discovery")
}
