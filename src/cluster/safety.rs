//! seaworthy deletes namespaces and evicts Pods: it must never do that to a cluster someone
//! depends on. Only contexts that look like a local test cluster are accepted unless the user
//! names the context explicitly.

use anyhow::{Result, bail};

/// The context name of the k3s container seaworthy starts itself.
pub const OWN_K3S_CONTEXT: &str = "seaworthy-k3s";

/// Whether `context` may be used. `allow` is the user's `--allow-context NAME`.
pub fn check_context(context: &str, allow: Option<&str>) -> Result<()> {
    let local = context.starts_with("kind-") || context.starts_with("k3d-") || context == OWN_K3S_CONTEXT;
    if local || allow == Some(context) {
        return Ok(());
    }
    if let Some(other) = allow {
        bail!("refusing context {context:?}: --allow-context names {other:?}, not this context");
    }
    bail!(
        "refusing context {context:?}: it does not look like a local test cluster (kind-*, k3d-*, {OWN_K3S_CONTEXT}); \
         if it is one you may wreck, pass --allow-context {context}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_contexts_pass_and_others_need_naming() {
        for ok in ["kind-seaworthy", "k3d-dev", OWN_K3S_CONTEXT] {
            check_context(ok, None).unwrap();
        }
        for refused in ["prod-eu", "kind", "gke_project_zone_cluster", "minikube", "docker-desktop"] {
            let e = check_context(refused, None).unwrap_err().to_string();
            assert!(e.contains(&format!("--allow-context {refused}")), "{e}");
        }
        check_context("minikube", Some("minikube")).unwrap();
        assert!(check_context("prod", Some("minikube")).unwrap_err().to_string().contains("names \"minikube\""));
    }
}
