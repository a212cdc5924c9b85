//! What checks do to the cluster, the way users do it, each step written to the event log so
//! that it appears on the timeline next to its effects.

use crate::observe::{EventLog, Source};
use crate::wait::eviction::{EvictionOutcome, classify_eviction_result};
use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodTemplateSpec};
use kube::api::{Api, AttachParams, DeleteParams, EvictParams, ListParams, LogParams, Patch, PatchParams};
use serde_json::json;
use tokio::io::AsyncReadExt;

/// Field manager for the checks' own changes, distinct from the apply's, so that managed
/// fields show who changed what.
pub const CHECK_MANAGER: &str = "seaworthy-check";

pub struct Actions {
    pub client: kube::Client,
    pub ns: String,
    pub log: EventLog,
}

impl Actions {
    fn params() -> PatchParams {
        PatchParams { field_manager: Some(CHECK_MANAGER.into()), ..Default::default() }
    }

    /// `kubectl set image KIND/NAME CONTAINER=IMAGE`: a strategic merge on the container list,
    /// keyed by container name (init containers too).
    pub async fn set_image(&self, kind: &str, name: &str, container: &str, init: bool, image: &str) -> Result<()> {
        let list = if init { "initContainers" } else { "containers" };
        let patch = json!({"spec": {"template": {"spec": {list: [{"name": container, "image": image}]}}}});
        self.patch_workload(kind, name, &patch).await?;
        self.log.push(Source::Action, format!("{kind}/{name}"), format!("set image {container}={image}"));
        Ok(())
    }

    /// `kubectl set image KIND/NAME C1=IMAGE C2=IMAGE`: every container in one patch, so the
    /// controller rolls out one new revision rather than one per container. Each entry is
    /// (container, is an init container, image).
    pub async fn set_images(&self, kind: &str, name: &str, images: &[(String, bool, String)]) -> Result<()> {
        let entry = |(c, _, image): &(String, bool, String)| json!({"name": c, "image": image});
        let containers: Vec<_> = images.iter().filter(|i| !i.1).map(entry).collect();
        let init: Vec<_> = images.iter().filter(|i| i.1).map(entry).collect();
        let mut spec = serde_json::Map::new();
        if !containers.is_empty() {
            spec.insert("containers".into(), containers.into());
        }
        if !init.is_empty() {
            spec.insert("initContainers".into(), init.into());
        }
        if spec.is_empty() {
            bail!("set image on {kind}/{name}: no container named");
        }
        self.patch_workload(kind, name, &json!({"spec": {"template": {"spec": spec}}})).await?;
        let what: Vec<String> = images.iter().map(|(c, _, image)| format!("{c}={image}")).collect();
        self.log.push(Source::Action, format!("{kind}/{name}"), format!("set image {}", what.join(" ")));
        Ok(())
    }

    /// `kubectl rollout restart`: a new template annotation, so the controller rolls every Pod.
    pub async fn rollout_restart(&self, kind: &str, name: &str) -> Result<()> {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
        self.patch_workload(kind, name, &patch).await?;
        self.log.push(Source::Action, format!("{kind}/{name}"), "rollout restart");
        Ok(())
    }

    async fn patch_workload(&self, kind: &str, name: &str, patch: &serde_json::Value) -> Result<()> {
        let p = Patch::Strategic(patch);
        match kind {
            "Deployment" => {
                Api::<Deployment>::namespaced(self.client.clone(), &self.ns).patch(name, &Self::params(), &p).await?;
            }
            "StatefulSet" => {
                Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(self.client.clone(), &self.ns).patch(name, &Self::params(), &p).await?;
            }
            other => bail!("cannot roll out a {other}"),
        }
        Ok(())
    }

    /// `kubectl rollout undo deployment NAME`: the previous revision's Pod template goes back
    /// into the Deployment (there is no API verb for it; kubectl does exactly this).
    pub async fn rollout_undo(&self, name: &str) -> Result<()> {
        let deployments = Api::<Deployment>::namespaced(self.client.clone(), &self.ns);
        let d = deployments.get(name).await?;
        let rss = Api::<ReplicaSet>::namespaced(self.client.clone(), &self.ns).list(&ListParams::default()).await?.items;
        let (revision, template) = previous_template(&d, &rss).with_context(|| format!("Deployment {name} has no previous revision to undo to"))?;
        let patch = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
        let patch: json_patch::Patch = serde_json::from_value(patch)?;
        deployments.patch(name, &Self::params(), &Patch::<()>::Json(patch)).await?;
        self.log.push(Source::Action, format!("Deployment/{name}"), format!("rollout undo to revision {revision}"));
        Ok(())
    }

    /// Run a command in a container; its stdout, or an error with its stderr.
    pub async fn exec(&self, pod: &str, container: &str, command: &[&str]) -> Result<String> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns);
        let ap = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
        let mut proc = pods.exec(pod, command.to_vec(), &ap).await.with_context(|| format!("exec in {pod}/{container}"))?;
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut s) = proc.stdout() {
            s.read_to_string(&mut out).await?;
        }
        if let Some(mut s) = proc.stderr() {
            s.read_to_string(&mut err).await?;
        }
        let status = match proc.take_status() {
            Some(s) => s.await,
            None => None,
        };
        proc.join().await?;
        if let Some(status) = status
            && status.status.as_deref() == Some("Failure")
        {
            bail!("`{}` in {pod}/{container} failed: {} {err}", command.join(" "), status.message.unwrap_or_default());
        }
        self.log.push(Source::Action, format!("Pod/{pod}"), format!("exec {container}: {}", command.join(" ")));
        Ok(out)
    }

    /// One eviction through the Eviction API, as `kubectl drain` sends it; a 429 is an outcome,
    /// not an error, and is logged as such.
    pub async fn evict(&self, pod: &str) -> EvictionOutcome {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns);
        let outcome = classify_eviction_result(&pods.evict(pod, &EvictParams::default()).await);
        let line = match &outcome {
            EvictionOutcome::Evicted => "evicted".to_string(),
            EvictionOutcome::BlockedByBudget { cause, .. } => format!("eviction refused (429): {cause}"),
            other => format!("eviction: {other:?}"),
        };
        self.log.push(Source::Action, format!("Pod/{pod}"), line);
        outcome
    }

    pub async fn delete_pod(&self, pod: &str) -> Result<()> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns).delete(pod, &DeleteParams::default()).await?;
        self.log.push(Source::Action, format!("Pod/{pod}"), "deleted");
        Ok(())
    }

    /// Replace keys of a ConfigMap's data (others stay).
    pub async fn patch_config_map(&self, name: &str, data: &std::collections::BTreeMap<String, String>) -> Result<()> {
        let patch = json!({"data": data});
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns).patch(name, &Self::params(), &Patch::Merge(&patch)).await?;
        let keys: Vec<&String> = data.keys().collect();
        self.log.push(Source::Action, format!("ConfigMap/{name}"), format!("changed {keys:?}"));
        Ok(())
    }

    /// The last `tail` lines of a container's log (init containers too). A container that is
    /// waiting to restart has an empty current log; then the previous run's is read.
    pub async fn container_log(&self, pod: &str, container: &str, tail: i64) -> Result<String> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns);
        let lp = |previous| LogParams { container: Some(container.to_string()), tail_lines: Some(tail), previous, ..Default::default() };
        let current = pods.logs(pod, &lp(false)).await.with_context(|| format!("log of {pod}/{container}"))?;
        let log = if current.trim().is_empty() { pods.logs(pod, &lp(true)).await.unwrap_or_default() } else { current };
        self.log.push(Source::Action, format!("Pod/{pod}"), format!("read log of {container}"));
        Ok(log)
    }

    /// `kubectl set resources KIND/NAME -c CONTAINER --requests=... --limits=...`: a strategic
    /// merge of the container's requests and limits, which starts a rollout.
    pub async fn set_resources(&self, kind: &str, name: &str, container: &str, resources: &k8s_openapi::api::core::v1::ResourceRequirements) -> Result<()> {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": container, "resources": resources}]}}}});
        self.patch_workload(kind, name, &patch).await?;
        let list = |m: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.iter().flatten().map(|(k, v)| format!("{k}={}", v.0)).collect::<Vec<_>>().join(",")
        };
        self.log.push(
            Source::Action,
            format!("{kind}/{name}"),
            format!("set resources {container}: requests {} limits {}", list(&resources.requests), list(&resources.limits)),
        );
        Ok(())
    }

    /// Pods of the namespace matching a label selector.
    pub async fn pods(&self, selector: &str) -> Result<Vec<Pod>> {
        Ok(Api::<Pod>::namespaced(self.client.clone(), &self.ns).list(&ListParams::default().labels(selector)).await?.items)
    }
}

/// The revision before the current one and its Pod template, without the pod-template-hash
/// label the ReplicaSet controller added (kubectl strips it too).
pub fn previous_template(d: &Deployment, rss: &[ReplicaSet]) -> Option<(i64, PodTemplateSpec)> {
    let uid = d.metadata.uid.as_deref()?;
    let revision = |rs: &ReplicaSet| -> Option<i64> { rs.metadata.annotations.as_ref()?.get("deployment.kubernetes.io/revision")?.parse().ok() };
    let mut owned: Vec<(i64, &ReplicaSet)> = rss
        .iter()
        .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true)))
        .filter_map(|rs| revision(rs).map(|r| (r, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| *r);
    let current = owned.last()?.0;
    let (rev, rs) = owned.iter().rev().find(|(r, _)| *r < current)?;
    let mut template = rs.spec.as_ref()?.template.clone()?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    Some((*rev, template))
}

/// The kind (Deployment or StatefulSet) of a workload of the stack and its Pods' selector.
pub fn workload_selector(stack: &crate::stack::Stack, name: &str) -> Result<(&'static str, String)> {
    let (kind, selector) = if let Some(d) = stack.deployment(name) {
        ("Deployment", d.spec.as_ref().and_then(|s| s.selector.match_labels.clone()))
    } else if let Some(s) = stack.stateful_set(name) {
        ("StatefulSet", s.spec.as_ref().and_then(|s| s.selector.match_labels.clone()))
    } else {
        bail!("stack {} has no Deployment or StatefulSet {name:?}", stack.name());
    };
    match selector {
        Some(labels) if !labels.is_empty() => Ok((kind, selector_of(&labels))),
        _ => bail!("{kind} {name} of stack {} has no matchLabels selector", stack.name()),
    }
}

/// Names of the Pods that are Ready and not being deleted: the ones a Service sends to.
pub fn serving_pods(pods: &[Pod]) -> Vec<String> {
    let mut names: Vec<String> =
        pods.iter().filter(|p| crate::wait::pods::pod_ready(p).is_done()).filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    names
}

/// A label selector string (`a=b,c=d`) for a workload's Pods.
pub fn selector_of(match_labels: &std::collections::BTreeMap<String, String>) -> String {
    match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_goes_to_the_revision_before_the_current_one() {
        let d: Deployment = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests-data/deployment-rollout-complete.json")).unwrap()).unwrap();
        let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests-data/replicasets-after-rollout.json")).unwrap()).unwrap();
        let rss: Vec<ReplicaSet> = serde_json::from_value(list["items"].clone()).unwrap();
        let current_image = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.clone();
        let (rev, template) = previous_template(&d, &rss).expect("the sample has two revisions");
        let current_rev: i64 = d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"].parse().unwrap();
        assert_eq!(rev, current_rev - 1);
        let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert!(!labels.contains_key("pod-template-hash"));
        let old = &template.spec.as_ref().unwrap().containers[0];
        // The sample rollout changed the template; the undo target differs from the current one.
        assert!(old.image != current_image || template != d.spec.as_ref().unwrap().template, "undo would change nothing");
    }
}
