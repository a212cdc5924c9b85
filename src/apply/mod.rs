//! Putting a stack into the cluster, and taking it out again: one labelled namespace per run and
//! stack, server-side apply with one field manager, deletion only of what carries our labels.

pub mod render;

use crate::stack::Stack;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use render::{MANAGED_BY, RUN_LABEL, Rendered};
use std::time::Duration;

pub const FIELD_MANAGER: &str = "seaworthy";

/// A short random id naming one run: its namespaces and labels.
pub fn new_run_id() -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    format!("{:06x}", n & 0xff_ffff)
}

/// Create namespace `ns` for the run and apply every object of `stack` into it, in dependency
/// order. On an error the namespace is left for the caller's cleanup, which tracks `ns`.
pub async fn apply(client: &kube::Client, stack: &Stack, ns: &str, run_id: &str, image_ref: render::ImageRef<'_>) -> Result<()> {
    let ns = ns.to_string();
    // Render first: a stack that cannot be rendered changes nothing in the cluster.
    let objects = render::render(stack, &ns, run_id, image_ref)?;
    let namespace: Namespace = serde_json::from_value(render::namespace(stack, &ns, run_id))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &namespace)
        .await
        .with_context(|| format!("creating namespace {ns}"))?;
    for object in &objects {
        apply_one(client, &ns, run_id, object).await.with_context(|| format!("applying {} {} in namespace {ns}", object.kind, object.name))?;
    }
    Ok(())
}

async fn apply_one(client: &kube::Client, ns: &str, run_id: &str, object: &Rendered) -> Result<()> {
    let api: Api<DynamicObject> = if object.namespaced {
        Api::namespaced_with(client.clone(), ns, &object.resource)
    } else {
        Api::all_with(client.clone(), &object.resource)
    };
    // Inside our fresh namespace nothing else exists; a cluster-scoped object might, and then it
    // is someone else's.
    if !object.namespaced
        && let Some(existing) = api.get_opt(&object.name).await?
        && !owned_by_run(existing.metadata.labels.as_ref(), run_id)
    {
        bail!("{} {} already exists and was not created by this run: seaworthy leaves it alone", object.kind, object.name);
    }
    api.patch(&object.name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object.body)).await?;
    Ok(())
}

fn owned_by_run(labels: Option<&std::collections::BTreeMap<String, String>>, run_id: &str) -> bool {
    labels.is_some_and(|l| l.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1) && l.get(RUN_LABEL).map(String::as_str) == Some(run_id))
}

/// Whether a namespace belongs to a seaworthy run (any run, or `run_id`). The add-ons seaworthy
/// installs are managed-by seaworthy too, but carry no run label: no run may delete them.
pub fn is_ours(ns: &Namespace, run_id: Option<&str>) -> bool {
    let labels = ns.metadata.labels.as_ref();
    let managed = labels.and_then(|l| l.get(MANAGED_BY.0)).map(String::as_str) == Some(MANAGED_BY.1);
    let run = labels.and_then(|l| l.get(RUN_LABEL));
    managed && run.is_some() && run_id.is_none_or(|id| owned_by_run(labels, id))
}

/// Delete a namespace of this run (refusing any other) and wait until it is gone.
pub async fn delete_namespace(client: &kube::Client, ns: &str, run_id: Option<&str>, deadline: Duration) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(existing) = api.get_opt(ns).await? else { return Ok(()) };
    if !is_ours(&existing, run_id) {
        bail!("namespace {ns} does not carry this run's labels: seaworthy does not delete it");
    }
    let uid = existing.metadata.uid.clone().unwrap_or_default();
    api.delete(ns, &DeleteParams::foreground()).await.with_context(|| format!("deleting namespace {ns}"))?;
    match tokio::time::timeout(deadline, await_condition(api, ns, conditions::is_deleted(&uid))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e).with_context(|| format!("watching namespace {ns} go")),
        Err(_) => bail!("namespace {ns} was still terminating after {deadline:?} (finalizers?): check `kubectl get ns {ns} -o yaml`"),
    }
}

/// The annotation a check puts on a node it cordons, naming its run, so that `down --runs` can
/// undo a cordon whose run died before uncordoning (and touches no node cordoned by anyone else).
pub const CORDONED_BY: &str = "seaworthy.dev/cordoned-by";

/// Is this run namespace old enough to belong to a run that died? A live run's namespaces are
/// younger than the longest run; one without a creationTimestamp (never the case for an object
/// read back from the API server) is not judged stale.
pub fn is_stale(ns: &Namespace, now: k8s_openapi::jiff::Timestamp, older_than: Duration) -> bool {
    let Some(created) = ns.metadata.creation_timestamp.as_ref() else { return false };
    // A creationTimestamp ahead of this machine's clock is a young namespace, not a stale one.
    is_ours(ns, None) && Duration::try_from(now.duration_since(created.0)).is_ok_and(|age| age >= older_than)
}

/// Namespaces left by earlier runs that died (`seaworthy down --runs`): those of seaworthy's
/// runs created at least `older_than` ago.
pub async fn leftovers(client: &kube::Client, older_than: Duration) -> Result<Vec<String>> {
    let api = Api::<Namespace>::all(client.clone());
    let list = api.list(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1))).await?;
    let now = k8s_openapi::jiff::Timestamp::now();
    Ok(list.items.into_iter().filter(|n| is_stale(n, now, older_than)).filter_map(|n| n.metadata.name).collect())
}

/// What `down --runs` does to a node: nothing unless it carries [`CORDONED_BY`]; uncordon it
/// (and drop the annotation) when still unschedulable; only drop the annotation when someone
/// already uncordoned it. A node cordoned by anyone else has no such annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCleanup {
    Leave,
    Uncordon { run: String },
    DropAnnotation { run: String },
}

pub fn node_cleanup(node: &k8s_openapi::api::core::v1::Node) -> NodeCleanup {
    let Some(run) = node.metadata.annotations.as_ref().and_then(|a| a.get(CORDONED_BY)).cloned() else { return NodeCleanup::Leave };
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) { NodeCleanup::Uncordon { run } } else { NodeCleanup::DropAnnotation { run } }
}

/// Uncordon every node a dead run left cordoned (`seaworthy down --runs`), removing the
/// annotation too; returns the nodes uncordoned and the runs that cordoned them.
pub async fn uncordon_leftovers(client: &kube::Client) -> Result<Vec<(String, String)>> {
    let api = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone());
    let mut done = Vec::new();
    for node in api.list(&ListParams::default()).await?.items {
        let Some(name) = node.metadata.name.clone() else { continue };
        // Merge patches, not server-side apply: `kubectl cordon` owns spec.unschedulable under
        // its own manager, and a null removes a field whoever set it.
        let patch = match node_cleanup(&node) {
            NodeCleanup::Leave => continue,
            NodeCleanup::Uncordon { run } => {
                done.push((name.clone(), run));
                serde_json::json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}})
            }
            NodeCleanup::DropAnnotation { .. } => serde_json::json!({"metadata": {"annotations": {CORDONED_BY: null}}}),
        };
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.with_context(|| format!("uncordoning node {name}"))?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
