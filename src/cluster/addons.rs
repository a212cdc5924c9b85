//! What kind lacks for the checks: metrics-server (the HPA check) and ingress-nginx (stacks
//! reached by Ingress). k3s brings its own metrics-server and traefik. The upstream manifests are
//! fetched at `seaworthy up` time and applied with server-side apply.

use crate::apply::render::MANAGED_BY;
use anyhow::{Context, Result, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use std::collections::HashMap;
use std::time::Duration;

pub struct Addon {
    pub name: &'static str,
    pub url: String,
}

/// metrics-server v0.7.2 supports Kubernetes 1.19+.
pub fn metrics_server() -> Addon {
    Addon { name: "metrics-server", url: "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.7.2/components.yaml".into() }
}

/// ingress-nginx's kind flavour; controller 1.8 is the last line tested on Kubernetes 1.24/1.25.
pub fn ingress_nginx(k8s_minor: u32) -> Addon {
    let version = if k8s_minor <= 25 { "controller-v1.8.5" } else { "controller-v1.11.3" };
    Addon {
        name: "ingress-nginx",
        url: format!("https://raw.githubusercontent.com/kubernetes/ingress-nginx/{version}/deploy/static/provider/kind/deploy.yaml"),
    }
}

/// The documents of an addon manifest, adjusted for a local cluster: metrics-server cannot
/// verify kind's self-signed kubelet certificates, hence `--kubelet-insecure-tls` (as kind's own
/// docs advise). Every object is labelled managed-by seaworthy, but never with a run label: the
/// add-ons outlive runs, and `down --runs` only removes what a run labelled.
pub fn prepare(addon: &Addon, yaml: &str) -> Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(de).with_context(|| format!("parsing {}", addon.url))?;
        if value.is_null() {
            continue;
        }
        let mut doc: serde_json::Value = serde_json::to_value(value)?;
        if !doc["metadata"].is_object() {
            bail!("{}: a document without metadata", addon.url);
        }
        if !doc["metadata"]["labels"].is_object() {
            doc["metadata"]["labels"] = serde_json::json!({});
        }
        doc["metadata"]["labels"][MANAGED_BY.0] = MANAGED_BY.1.into();
        if addon.name == "metrics-server" && doc["kind"] == "Deployment" {
            for c in doc["spec"]["template"]["spec"]["containers"].as_array_mut().into_iter().flatten() {
                if let Some(args) = c["args"].as_array_mut()
                    && !args.iter().any(|a| a == "--kubelet-insecure-tls")
                {
                    args.push("--kubelet-insecure-tls".into());
                }
            }
        }
        docs.push(doc);
    }
    if docs.is_empty() {
        bail!("{} has no objects", addon.url);
    }
    Ok(docs)
}

/// How long fetching one manifest may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one API request of the install may take (discovery of one group, one apply).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn install(client: &kube::Client, addon: &Addon) -> Result<()> {
    let http = reqwest::Client::builder().timeout(DOWNLOAD_TIMEOUT).build()?;
    let yaml = http
        .get(&addon.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("downloading {} from {}: is this machine online?", addon.name, addon.url))?
        .text()
        .await
        .with_context(|| format!("downloading {} from {}: is this machine online?", addon.name, addon.url))?;
    // Each kind is resolved on its own group-version only: full discovery fails on the first
    // group that errors, and a just-installed metrics-server makes `metrics.k8s.io` answer 503
    // until it is up, which would break the ingress-nginx install that follows it.
    let mut resolved: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    for doc in prepare(addon, &yaml)? {
        let obj: DynamicObject = serde_json::from_value(doc.clone())?;
        let types = obj.types.as_ref().context("object without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(types)?;
        if !resolved.contains_key(&gvk) {
            let found = tokio::time::timeout(REQUEST_TIMEOUT, kube::discovery::pinned_kind(client, &gvk))
                .await
                .map_err(|_| anyhow::anyhow!("API discovery of {} did not answer within {REQUEST_TIMEOUT:?}", types.api_version))?
                .with_context(|| format!("{} {} is not served by this cluster", types.api_version, types.kind))?;
            resolved.insert(gvk.clone(), found);
        }
        let (ar, caps) = &resolved[&gvk];
        let name = obj.metadata.name.clone().context("object without name")?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), obj.metadata.namespace.as_deref().unwrap_or("default"), ar),
            Scope::Cluster => Api::all_with(client.clone(), ar),
        };
        tokio::time::timeout(REQUEST_TIMEOUT, api.patch(&name, &PatchParams::apply(crate::apply::FIELD_MANAGER).force(), &Patch::Apply(&doc)))
            .await
            .map_err(|_| anyhow::anyhow!("installing {}: applying {} {name} did not answer within {REQUEST_TIMEOUT:?}", addon.name, types.kind))?
            .with_context(|| format!("installing {}: {} {name}", addon.name, types.kind))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_server_gets_insecure_tls_once() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: metrics-server, namespace: kube-system}\n---\n\
                    apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: metrics-server, namespace: kube-system}\n\
                    spec:\n  template:\n    spec:\n      containers:\n      - name: metrics-server\n        args: [--secure-port=10250]\n";
        let docs = prepare(&metrics_server(), yaml).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["spec"]["template"]["spec"]["containers"][0]["args"], serde_json::json!(["--secure-port=10250", "--kubelet-insecure-tls"]));
        for d in &docs {
            assert_eq!(d["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
            assert!(d["metadata"]["labels"].get(crate::apply::render::RUN_LABEL).is_none(), "add-ons outlive runs");
        }
        let again = serde_yaml::to_string(&docs[1]).unwrap();
        let docs = prepare(&metrics_server(), &again).unwrap();
        assert_eq!(docs[0]["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn ingress_version_follows_the_cluster() {
        assert!(ingress_nginx(24).url.contains("controller-v1.8.5/deploy/static/provider/kind"));
        assert!(ingress_nginx(30).url.contains("controller-v1.11.3"));
    }
}
