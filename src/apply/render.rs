//! A stack turned into the exact objects sent to the API server: the run's namespace, the
//! built images, the run labels, in dependency order. Pure, so every rule is unit-tested.

use crate::stack::{Resource, Stack};
use anyhow::{Context, Result, bail};
use kube::core::ApiResource;
use serde_json::{Value, json};

/// Labels every object seaworthy creates carries; nothing without them is ever modified.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "seaworthy");
pub const RUN_LABEL: &str = "seaworthy.dev/run";
pub const STACK_LABEL: &str = "seaworthy.dev/stack";
/// The variant (negative control) a namespace holds, empty for the good stack.
pub const VARIANT_LABEL: &str = "seaworthy.dev/variant";

/// One object ready for server-side apply.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub kind: String,
    pub name: String,
    pub resource: ApiResource,
    pub namespaced: bool,
    pub body: Value,
}

/// Maps a manifest's `image:version` to the reference built for this stack.
pub type ImageRef<'a> = &'a dyn Fn(&str, &str) -> Result<String>;

/// A namespace name for one stack in one run: `sw-<stack>-<variant?>-<run>`, within the 63
/// characters a DNS label allows.
pub fn namespace_name(stack: &str, variant: Option<&str>, run_id: &str) -> String {
    let mut base = format!("sw-{stack}");
    if let Some(v) = variant {
        base.push('-');
        base.push_str(v);
    }
    let room = 63 - run_id.len() - 1;
    base.truncate(room);
    let base = base.trim_end_matches('-');
    format!("{base}-{run_id}")
}

/// The Namespace object of the run, labelled, carrying the labels a stack's own Namespace asked
/// for (e.g. the wordpress stack's own namespace).
pub fn namespace(stack: &Stack, name: &str, run_id: &str) -> Value {
    let mut labels = run_labels(stack, run_id);
    for object in &stack.objects {
        if let Resource::Namespace(ns) = &object.resource {
            for (k, v) in ns.metadata.labels.iter().flatten() {
                labels.entry(k.clone()).or_insert(Value::String(v.clone()));
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn run_labels(stack: &Stack, run_id: &str) -> serde_json::Map<String, Value> {
    let mut labels = serde_json::Map::new();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels.insert(RUN_LABEL.into(), run_id.into());
    labels.insert(STACK_LABEL.into(), stack.name().into());
    labels.insert(VARIANT_LABEL.into(), stack.variant.clone().unwrap_or_default().into());
    labels
}

/// Render every object of `stack` into namespace `ns`, in the order they must be applied.
pub fn render(stack: &Stack, ns: &str, run_id: &str, image_ref: ImageRef<'_>) -> Result<Vec<Rendered>> {
    let labels = run_labels(stack, run_id);
    let mut out = Vec::new();
    for object in &stack.objects {
        // The run's namespace replaces the stack's own: runs must not collide.
        if matches!(object.resource, Resource::Namespace(_)) {
            continue;
        }
        let mut body = object.raw.clone();
        let namespaced = object.resource.is_namespaced();
        let meta = body.get_mut("metadata").and_then(Value::as_object_mut).context("object without metadata")?;
        if namespaced {
            meta.insert("namespace".into(), ns.into());
        }
        merge_labels(meta, &labels);
        if let Some(template) = pod_template_mut(&mut body, object.resource.kind()) {
            let tmeta = template.as_object_mut().context("pod template is not a mapping")?.entry("metadata").or_insert_with(|| json!({}));
            merge_labels(tmeta.as_object_mut().context("pod template metadata is not a mapping")?, &labels);
            let spec = template.get_mut("spec").context("pod template without spec")?;
            render_images(spec, image_ref).with_context(|| object.label())?;
        }
        if let Resource::Pod(_) = object.resource {
            let spec = body.get_mut("spec").context("Pod without spec")?;
            render_images(spec, image_ref).with_context(|| object.label())?;
        }
        out.push(Rendered {
            kind: object.resource.kind().to_string(),
            name: object.resource.name().to_string(),
            resource: object.resource.api_resource(),
            namespaced,
            body,
        });
    }
    out.sort_by_key(|r| apply_rank(&r.kind));
    Ok(out)
}

/// Configuration and storage before the workloads that mount them, workloads before the
/// objects that point at them (a PDB or HPA whose target is missing reports errors).
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ServiceAccount" | "ConfigMap" | "Secret" => 1,
        "PersistentVolume" => 2,
        "PersistentVolumeClaim" => 3,
        "Service" => 4,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "Pod" => 5,
        "PodDisruptionBudget" | "HorizontalPodAutoscaler" | "Ingress" | "NetworkPolicy" => 6,
        _ => 7,
    }
}

fn merge_labels(meta: &mut serde_json::Map<String, Value>, labels: &serde_json::Map<String, Value>) {
    let target = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(map) = target.as_object_mut() {
        for (k, v) in labels {
            map.insert(k.clone(), v.clone());
        }
    }
}

fn pod_template_mut<'a>(body: &'a mut Value, kind: &str) -> Option<&'a mut Value> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => body.pointer_mut("/spec/template"),
        "CronJob" => body.pointer_mut("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// `image: name:version` -> the built reference; never `:latest`, always `IfNotPresent` so the
/// node uses the image seaworthy loaded instead of asking a registry.
fn render_images(pod_spec: &mut Value, image_ref: ImageRef<'_>) -> Result<()> {
    for list in ["initContainers", "containers"] {
        for c in pod_spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let image = c.get("image").and_then(Value::as_str).context("container without image")?.to_string();
            let Some((name, version)) = image.rsplit_once(':') else {
                bail!("image {image:?} names no version");
            };
            let rendered = image_ref(name, version)?;
            if rendered.ends_with(":latest") || !rendered.contains(':') {
                bail!("image {rendered:?} for {image}: seaworthy never deploys :latest");
            }
            c["image"] = rendered.into();
            c["imagePullPolicy"] = "IfNotPresent".into();
        }
    }
    Ok(())
}
