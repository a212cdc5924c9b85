//! The cross-object rules: what would apply cleanly yet never work in a cluster.

use super::resource::Resource;
use super::{Object, Problem, Stack};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, HashMap, HashSet};

pub(super) fn validate(stack: &Stack) -> Vec<Problem> {
    let mut problems = Vec::new();
    spec_rules(stack, &mut problems);
    duplicates(stack, &mut problems);
    let templates = pod_templates(stack);
    for t in &templates {
        pod_rules(stack, t.object, t.spec, &t.path, &mut problems);
    }
    for object in &stack.objects {
        match &object.resource {
            Resource::Service(svc) => service_rules(object, svc, &templates, &mut problems),
            Resource::PodDisruptionBudget(pdb) => {
                let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
                if !templates.iter().any(|t| selects(selector, &t.labels)) {
                    problems.push(object.problem("spec.selector", "selects no Pod of any workload in this stack"));
                }
            }
            Resource::HorizontalPodAutoscaler(hpa) => {
                if let Some(spec) = &hpa.spec {
                    let target = &spec.scale_target_ref;
                    if stack.get(&target.kind, &target.name).is_none() {
                        problems.push(object.problem(
                            "spec.scaleTargetRef",
                            format!("{} {} is not in this stack", target.kind, target.name),
                        ));
                    }
                }
            }
            Resource::Ingress(ing) => ingress_rules(stack, object, ing, &mut problems),
            _ => {}
        }
    }
    problems
}

/// stack.toml against the manifests and the folder.
fn spec_rules(stack: &Stack, problems: &mut Vec<Problem>) {
    let file = stack.dir.join("stack.toml");
    let mut problem = |field: String, message: String| problems.push(Problem { file: file.clone(), doc: None, object: None, field: Some(field), message });
    let folder = stack.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if stack.variant.is_none() && stack.spec.name != folder {
        problem("name".into(), format!("{:?} must equal the folder name {folder:?}", stack.spec.name));
    }
    for (i, image) in stack.spec.images.iter().enumerate() {
        let context = stack.dir.join(&image.context);
        if !context.join(&image.dockerfile).is_file() {
            problem(format!("images[{i}].context"), format!("{} has no {}", context.display(), image.dockerfile));
        }
        if image.versions.is_empty() {
            problem(format!("images[{i}].versions"), "names no version".into());
        }
    }
    let entry = &stack.spec.entry;
    match stack.service(&entry.service) {
        None => problem("entry.service".into(), format!("Service {} is not in the manifests", entry.service)),
        Some(svc) => {
            let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref()).cloned().unwrap_or_default();
            match ports.iter().find(|p| p.port == entry.port) {
                None => problem("entry.port".into(), format!("Service {} has no port {}", entry.service, entry.port)),
                Some(p) => {
                    let svc_type = svc.spec.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
                    if entry.node_port.is_none() {
                        problem(
                            "entry.node_port".into(),
                            format!(
                                "missing: without it the stack cannot be reached on a cluster that has no ingress controller (k3s without Traefik, kind without ingress-nginx, a bare cluster); make Service {} type NodePort with a nodePort on port {} and name that nodePort here (keep the Ingress with `prefer_ingress = true` to test it wherever a controller answers)",
                                entry.service, entry.port
                            ),
                        );
                    } else if !matches!(svc_type, "NodePort" | "LoadBalancer") {
                        problem("entry.node_port".into(), format!("Service {} is type {svc_type}: only a NodePort or LoadBalancer Service has a nodePort", entry.service));
                    }
                    if entry.node_port.is_some() && p.node_port != entry.node_port {
                        problem(
                            "entry.node_port".into(),
                            format!("Service {} port {} has nodePort {:?}, not {:?}", entry.service, entry.port, p.node_port, entry.node_port),
                        );
                    }
                }
            }
        }
    }
    let mut problems_of_checks = Vec::new();
    for (i, check) in stack.spec.checks.iter().enumerate() {
        match crate::checks::params::problems(&check.name, &check.params) {
            None => {
                let names: Vec<&str> = crate::checks::params::CHECKS.iter().map(|c| c.name).collect();
                let near = crate::checks::params::nearest(&check.name, &names).map(|n| format!("; did you mean {n:?}?")).unwrap_or_default();
                problem(format!("checks[{i}].name"), format!("unknown check {:?}; the checks are: {}{near}", check.name, names.join(", ")));
            }
            // Named by the check, so that a stack with two checks of one kind is still clear;
            // `seaworthy checks NAME` lists what the check takes.
            Some(Err(e)) => {
                let key = if e.key.is_empty() { format!("checks[{i}].params") } else { format!("checks[{i}].params.{}", e.key) };
                problems_of_checks.push(Problem {
                    file: file.clone(),
                    doc: None,
                    object: Some(format!("check {}", check.name)),
                    field: Some(key),
                    message: format!("{} (see `seaworthy checks {}`)", e.message, check.name),
                });
            }
            Some(Ok(())) => {}
        }
        if let Some(neg) = &check.negative
            && !stack.spec.variants.contains_key(neg)
        {
            problem(format!("checks[{i}].negative"), format!("no variant {neg:?} in [variants]"));
        }
    }
    problems.extend(problems_of_checks);
}

fn duplicates(stack: &Stack, problems: &mut Vec<Problem>) {
    let mut seen: HashMap<(String, String, String), &Object> = HashMap::new();
    for object in &stack.objects {
        let ns = object.resource.metadata().namespace.clone().unwrap_or_default();
        let key = (object.resource.kind().to_string(), ns, object.resource.name().to_string());
        if let Some(first) = seen.get(&key) {
            problems.push(object.problem(
                "metadata.name",
                format!("duplicate {}: also defined in {} document {}", object.label(), first.file.display(), first.doc),
            ));
        } else {
            seen.insert(key, object);
        }
    }
}

struct Template<'a> {
    object: &'a Object,
    labels: BTreeMap<String, String>,
    spec: &'a PodSpec,
    /// JSON path of the Pod spec inside the object.
    path: String,
}

fn pod_templates(stack: &Stack) -> Vec<Template<'_>> {
    stack
        .objects
        .iter()
        .filter_map(|o| match &o.resource {
            Resource::Pod(p) => p.spec.as_ref().map(|spec| Template {
                object: o,
                labels: p.metadata.labels.clone().unwrap_or_default(),
                spec,
                path: "spec".into(),
            }),
            r => r.pod_template().and_then(|(t, path)| {
                t.spec.as_ref().map(|spec| Template {
                    object: o,
                    labels: t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default(),
                    spec,
                    path: format!("{path}.spec"),
                })
            }),
        })
        .collect()
}

/// Whether `selector` (matchLabels and matchExpressions) selects Pods labelled `labels`.
/// An absent or empty selector selects nothing here: policy/v1 PDBs with one select every Pod
/// of the namespace, which in a stack is surely a mistake.
fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector else { return false };
    let match_labels = sel.match_labels.clone().unwrap_or_default();
    let exprs = sel.match_expressions.clone().unwrap_or_default();
    if match_labels.is_empty() && exprs.is_empty() {
        return false;
    }
    match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && exprs.iter().all(|e| {
            let values = e.values.clone().unwrap_or_default();
            match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            }
        })
}

fn service_rules(object: &Object, svc: &k8s_openapi::api::core::v1::Service, templates: &[Template<'_>], problems: &mut Vec<Problem>) {
    let Some(spec) = &svc.spec else { return };
    // A Service without a selector is backed by hand-made EndpointSlices: nothing to match.
    let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else { return };
    let matched: Vec<&Template<'_>> = templates.iter().filter(|t| selector.iter().all(|(k, v)| t.labels.get(k) == Some(v))).collect();
    if matched.is_empty() {
        let selector: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        problems.push(object.problem("spec.selector", format!("{} matches the Pod labels of no workload in this stack", selector.join(","))));
        return;
    }
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        if let Some(IntOrString::String(name)) = &port.target_port {
            let declared = matched.iter().any(|t| all_containers(t.spec).any(|c| port_names(c).contains(name.as_str())));
            if !declared {
                problems.push(object.problem(
                    format!("spec.ports[{i}].targetPort"),
                    format!("names port {name:?}, which no container of the selected Pods declares"),
                ));
            }
        }
    }
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers.iter().flatten().chain(spec.containers.iter())
}

fn port_names(c: &Container) -> HashSet<&str> {
    c.ports.iter().flatten().filter_map(|p| p.name.as_deref()).collect()
}

fn pod_rules(stack: &Stack, object: &Object, spec: &PodSpec, path: &str, problems: &mut Vec<Problem>) {
    let declared: HashSet<String> =
        stack.spec.images.iter().flat_map(|i| i.versions.iter().map(move |v| format!("{}:{v}", i.name))).collect();
    let volumes: HashSet<&str> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
    let claim_templates: HashSet<String> = match &object.resource {
        Resource::StatefulSet(s) => s
            .spec
            .iter()
            .flat_map(|s| s.volume_claim_templates.iter().flatten())
            .filter_map(|c| c.metadata.name.clone())
            .collect(),
        _ => HashSet::new(),
    };
    let lists = [("initContainers", spec.init_containers.as_deref().unwrap_or_default()), ("containers", &spec.containers[..])];
    for (list, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            let at = format!("{path}.{list}[{i}]");
            match c.image.as_deref() {
                None => problems.push(object.problem(format!("{at}.image"), "missing")),
                Some(image) if !declared.contains(image) => {
                    let mut known: Vec<&String> = declared.iter().collect();
                    known.sort();
                    problems.push(object.problem(
                        format!("{at}.image"),
                        format!("{image:?} is not declared in stack.toml [[images]] (declared: {})", known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                    ))
                }
                Some(_) => {}
            }
            let names = port_names(c);
            let probes = [("readinessProbe", &c.readiness_probe), ("livenessProbe", &c.liveness_probe), ("startupProbe", &c.startup_probe)];
            for (probe_name, probe) in probes {
                let Some(probe) = probe else { continue };
                let ports = [
                    ("httpGet.port", probe.http_get.as_ref().map(|h| &h.port)),
                    ("tcpSocket.port", probe.tcp_socket.as_ref().map(|t| &t.port)),
                ];
                for (field, port) in ports {
                    if let Some(IntOrString::String(name)) = port
                        && !names.contains(name.as_str())
                    {
                        problems.push(object.problem(
                            format!("{at}.{probe_name}.{field}"),
                            format!("names port {name:?}, which container {} does not declare", c.name),
                        ));
                    }
                }
            }
            for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
                if !volumes.contains(m.name.as_str()) && !claim_templates.contains(&m.name) {
                    problems.push(object.problem(format!("{at}.volumeMounts[{j}].name"), format!("no volume named {:?} in the Pod", m.name)));
                }
            }
            for (j, e) in c.env.iter().flatten().enumerate() {
                let Some(from) = &e.value_from else { continue };
                if let Some(r) = &from.config_map_key_ref
                    && r.optional != Some(true)
                    && !stack.config_map(&r.name).is_some_and(|cm| cm.data.as_ref().is_some_and(|d| d.contains_key(&r.key)))
                {
                    problems.push(object.problem(format!("{at}.env[{j}].valueFrom.configMapKeyRef"), format!("no key {:?} in a ConfigMap {} of this stack", r.key, r.name)));
                }
                if let Some(r) = &from.secret_key_ref
                    && r.optional != Some(true)
                    && !stack.secret(&r.name).is_some_and(|s| secret_keys(s).contains(&r.key))
                {
                    problems.push(object.problem(format!("{at}.env[{j}].valueFrom.secretKeyRef"), format!("no key {:?} in a Secret {} of this stack", r.key, r.name)));
                }
            }
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if let Some(cm) = &v.config_map
            && cm.optional != Some(true)
            && stack.config_map(&cm.name).is_none()
        {
            problems.push(object.problem(format!("{path}.volumes[{i}].configMap.name"), format!("ConfigMap {} is not in this stack", cm.name)));
        }
        if let Some(s) = &v.secret
            && s.optional != Some(true)
            && let Some(name) = &s.secret_name
            && stack.secret(name).is_none()
        {
            problems.push(object.problem(format!("{path}.volumes[{i}].secret.secretName"), format!("Secret {name} is not in this stack")));
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && stack.get("PersistentVolumeClaim", &pvc.claim_name).is_none()
        {
            problems.push(object.problem(
                format!("{path}.volumes[{i}].persistentVolumeClaim.claimName"),
                format!("PersistentVolumeClaim {} is not in this stack", pvc.claim_name),
            ));
        }
    }
}

pub(super) fn secret_keys(s: &k8s_openapi::api::core::v1::Secret) -> HashSet<String> {
    s.data.iter().flat_map(|d| d.keys().cloned()).chain(s.string_data.iter().flat_map(|d| d.keys().cloned())).collect()
}

fn ingress_rules(stack: &Stack, object: &Object, ing: &k8s_openapi::api::networking::v1::Ingress, problems: &mut Vec<Problem>) {
    let Some(spec) = &ing.spec else { return };
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        for (j, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
            let Some(svc_ref) = &p.backend.service else { continue };
            let at = format!("spec.rules[{i}].http.paths[{j}].backend.service");
            let Some(svc) = stack.service(&svc_ref.name) else {
                problems.push(object.problem(format!("{at}.name"), format!("Service {} is not in this stack", svc_ref.name)));
                continue;
            };
            let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
            if let Some(port) = &svc_ref.port {
                let found = ports.iter().any(|sp| port.number == Some(sp.port) || (port.name.is_some() && port.name == sp.name));
                if !found {
                    problems.push(object.problem(format!("{at}.port"), format!("Service {} has no such port", svc_ref.name)));
                }
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        if let Some(name) = &tls.secret_name
            && stack.secret(name).is_none()
        {
            problems.push(object.problem(format!("spec.tls[{i}].secretName"), format!("Secret {name} is not in this stack")));
        }
    }
}
