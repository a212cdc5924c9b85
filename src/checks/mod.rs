//! The checks of shared/STACKS.md, one file each, and what they conclude. Each check runs
//! traffic, Kubernetes actions and watchers on one running variant of a stack and returns a
//! [`Verdict`] with its evidence; [`runner`] runs the good variant and the negative control.

pub mod actions;
pub mod capacity;
pub mod context;
pub mod http_probe;
pub mod negative;
pub mod params;
pub mod reachable;
pub mod runner;
pub mod timeline;
pub mod verdict;

mod config_override;
mod endpoints_follow_readiness;
mod hpa_scale;
mod insufficient_resources;
pub(crate) mod pdb_drain;
mod persistence;
mod rollout_undo;
mod rollout_zero_5xx;
mod service_discovery;
mod stale_dns_proxy;

pub use context::CheckContext;
pub use verdict::{CheckResult, FailureCluster, FailureKind, Outcome, Phase, Verdict};

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

/// Whether a check needs the cluster to itself. pdb-drain cordons nodes: while it runs, new Pods
/// of other stacks (their apply, a rollout, a replacement) may have nowhere to go (on one node,
/// none), and their checks would fail for a reason that is not theirs.
pub fn needs_cluster_alone(name: &str) -> bool {
    name == "pdb-drain"
}

/// One per process: every variant of a check holds it while its namespace exists, shared, or
/// alone for [`needs_cluster_alone`]. tokio's RwLock is fair, so a waiting drain is not starved
/// by a stream of shared holders.
static CLUSTER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub enum ClusterGuard {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

pub async fn lock_cluster(check: &str) -> ClusterGuard {
    if needs_cluster_alone(check) { ClusterGuard::Alone(CLUSTER.write().await) } else { ClusterGuard::Shared(CLUSTER.read().await) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_drain_waits_for_every_other_check_and_they_wait_for_it() {
        let shared = lock_cluster("rollout-zero-5xx").await;
        // Other ordinary checks run alongside.
        assert!(lock_cluster("persistence").now_or_never().is_some());
        let mut drain = Box::pin(lock_cluster("pdb-drain"));
        assert!((&mut drain).now_or_never().is_none(), "pdb-drain got the cluster while a check held it");
        drop(shared);
        let alone = drain.now_or_never().expect("the drain gets the cluster once the others are done");
        assert!(lock_cluster("hpa-scale").now_or_never().is_none(), "a check started during the drain");
        drop(alone);
        assert!(lock_cluster("hpa-scale").now_or_never().is_some());
    }
}
