//! A stack: `fixtures/<name>/` read into typed Kubernetes objects and validated, before anything
//! reaches a cluster. Bad input is refused here with the file, document and field to fix.

mod error;
mod pod;
mod resource;
pub mod spec;
mod validate;
mod variant;

pub use error::{Problem, StackError};
pub use pod::MountedFile;
pub use resource::Resource;
pub use spec::StackSpec;

use anyhow::Context;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret, Service};
use std::path::{Path, PathBuf};

/// One manifest document.
#[derive(Debug, Clone)]
pub struct Object {
    pub file: PathBuf,
    /// 1-based index of the document in its file.
    pub doc: usize,
    pub resource: Resource,
    /// The document as written (after variant patches), kept for patches and apply.
    pub raw: serde_json::Value,
}

impl Object {
    /// `Kind name`, as messages name an object.
    pub fn label(&self) -> String {
        format!("{} {}", self.resource.kind(), self.resource.name())
    }

    pub(crate) fn problem(&self, field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            doc: Some(self.doc),
            object: Some(self.label()),
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub dir: PathBuf,
    pub spec: StackSpec,
    pub objects: Vec<Object>,
    /// The negative-control variant this is, if any.
    pub variant: Option<String>,
}

impl Stack {
    /// The fixtures shipped with seaworthy: `SEAWORTHY_FIXTURES`, else the repository's folder.
    pub fn fixtures_dir() -> PathBuf {
        std::env::var_os("SEAWORTHY_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
    }

    /// Folders of the shipped stacks, by name.
    pub fn list() -> anyhow::Result<Vec<PathBuf>> {
        let dir = Self::fixtures_dir();
        let mut stacks = Vec::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.join("stack.toml").is_file() {
                stacks.push(path);
            }
        }
        stacks.sort();
        Ok(stacks)
    }

    /// Every shipped stack, loaded and validated.
    pub fn shipped() -> anyhow::Result<Vec<Stack>> {
        Self::list()?.iter().map(|d| Self::load(d).map_err(anyhow::Error::from)).collect()
    }

    /// A shipped stack by name.
    pub fn find(name: &str) -> anyhow::Result<Stack> {
        let dir = Self::fixtures_dir().join(name);
        if !dir.join("stack.toml").is_file() {
            let known: Vec<String> = Self::list()?
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            anyhow::bail!("no stack named {name:?} in {}; the stacks are: {}", Self::fixtures_dir().display(), known.join(", "));
        }
        Ok(Self::load(&dir)?)
    }

    /// Read and validate the stack in `dir`. Every problem found is reported, not just the first.
    pub fn load(dir: &Path) -> Result<Stack, StackError> {
        let dir = dir.canonicalize().map_err(|source| StackError::Io { path: dir.to_path_buf(), source })?;
        let toml_path = dir.join("stack.toml");
        let toml_text = std::fs::read_to_string(&toml_path).map_err(|source| StackError::Io { path: toml_path, source })?;
        let manifests = read_manifests(&dir.join("manifests"))?;
        Self::from_sources(&dir, &toml_text, &manifests)
    }

    /// Build a stack from its texts: `stack.toml` and `(file, text)` of each manifest. Only the
    /// image build contexts are looked up on disk, under `dir`.
    pub fn from_sources(dir: &Path, toml_text: &str, manifests: &[(PathBuf, String)]) -> Result<Stack, StackError> {
        let stack_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut problems = Vec::new();
        let spec = match toml::from_str::<StackSpec>(toml_text) {
            Ok(spec) => Some(spec),
            Err(e) => {
                problems.push(Problem { file: dir.join("stack.toml"), doc: None, object: None, field: None, message: e.to_string() });
                None
            }
        };
        if manifests.is_empty() {
            problems.push(Problem {
                file: dir.join("manifests"),
                doc: None,
                object: None,
                field: None,
                message: "no *.yaml manifests here".into(),
            });
        }
        let objects: Vec<Object> = manifests.iter().flat_map(|(file, text)| parse_documents(file, text, &mut problems)).collect();
        let Some(spec) = spec else {
            return Err(StackError::Invalid { stack: stack_name, problems });
        };
        let stack = Stack { dir: dir.to_path_buf(), spec, objects, variant: None };
        problems.extend(validate::validate(&stack));
        if problems.is_empty() { Ok(stack) } else { Err(StackError::Invalid { stack: stack_name, problems }) }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.resource.kind() == kind && o.resource.name() == name)
    }

    pub fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.objects.iter().find_map(|o| match &o.resource {
            Resource::ConfigMap(c) if o.resource.name() == name => Some(c),
            _ => None,
        })
    }

    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.objects.iter().find_map(|o| match &o.resource {
            Resource::Secret(s) if o.resource.name() == name => Some(s),
            _ => None,
        })
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.objects.iter().find_map(|o| match &o.resource {
            Resource::Service(s) if o.resource.name() == name => Some(s),
            _ => None,
        })
    }

    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.objects.iter().find_map(|o| match &o.resource {
            Resource::Deployment(d) if o.resource.name() == name => Some(d),
            _ => None,
        })
    }

    pub fn stateful_set(&self, name: &str) -> Option<&StatefulSet> {
        self.objects.iter().find_map(|o| match &o.resource {
            Resource::StatefulSet(s) if o.resource.name() == name => Some(s),
            _ => None,
        })
    }

    /// The Pod spec of a workload (any kind with a Pod template, or a bare Pod) by name.
    pub fn pod_spec(&self, workload: &str) -> Option<&PodSpec> {
        self.objects.iter().filter(|o| o.resource.name() == workload).find_map(|o| match &o.resource {
            Resource::Pod(p) => p.spec.as_ref(),
            r => r.pod_template().and_then(|(t, _)| t.spec.as_ref()),
        })
    }
}

/// The text of every `*.yaml`/`*.yml` in `dir`, in file-name order.
fn read_manifests(dir: &Path) -> Result<Vec<(PathBuf, String)>, StackError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| StackError::Io { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| match std::fs::read_to_string(&file) {
            Ok(text) => Ok((file, text)),
            Err(source) => Err(StackError::Io { path: file, source }),
        })
        .collect()
}

/// Parse a multi-document YAML file. Problems are collected; good documents are kept so that
/// one typo does not hide the rest of the file's problems.
pub fn parse_documents(file: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<Object> {
    use serde::Deserialize;
    let mut objects = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let doc = i + 1;
        let problem = |object: Option<String>, field: Option<String>, message: String| Problem {
            file: file.to_path_buf(),
            doc: Some(doc),
            object,
            field,
            message,
        };
        let yaml = match serde_yaml::Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                problems.push(problem(None, None, format!("invalid YAML: {e}")));
                // The YAML stream cannot be resynchronised after a syntax error.
                break;
            }
        };
        if yaml.is_null() {
            continue;
        }
        let raw = match serde_json::to_value(&yaml) {
            Ok(v) => v,
            Err(e) => {
                problems.push(problem(None, None, format!("not representable as a Kubernetes object: {e}")));
                continue;
            }
        };
        match parse_object(raw) {
            Ok((resource, raw)) => objects.push(Object { file: file.to_path_buf(), doc, resource, raw }),
            Err(p) => problems.push(problem(p.object, p.field, p.message)),
        }
    }
    objects
}

/// What went wrong with one document, before it has a file and index.
pub(crate) struct DocProblem {
    pub object: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

/// Type one document: known apiVersion/kind, fields of the right types, no unknown fields.
pub(crate) fn parse_object(raw: serde_json::Value) -> Result<(Resource, serde_json::Value), DocProblem> {
    let field = |name: &str| raw.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let missing = |f: &str| DocProblem { object: None, field: Some(f.into()), message: "missing (every object needs apiVersion, kind and metadata.name)".into() };
    if !raw.is_object() {
        return Err(DocProblem { object: None, field: None, message: "a manifest document must be a mapping".into() });
    }
    let api_version = field("apiVersion").ok_or_else(|| missing("apiVersion"))?;
    let kind = field("kind").ok_or_else(|| missing("kind"))?;
    let name = raw.pointer("/metadata/name").and_then(|v| v.as_str()).map(str::to_string);
    let object = Some(format!("{kind} {}", name.as_deref().unwrap_or("?")));
    if name.as_deref().unwrap_or("").is_empty() {
        return Err(DocProblem { object, field: Some("metadata.name".into()), message: "missing".into() });
    }
    let resource = match Resource::parse(&api_version, &kind, raw.clone()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let message = match resource::removed_api_hint(&api_version, &kind) {
                Some(hint) => format!("{api_version} {kind} is not served by current Kubernetes: {hint}"),
                None => {
                    let known: Vec<String> = Resource::KNOWN.iter().map(|(a, k)| format!("{a} {k}")).collect();
                    format!("unknown apiVersion/kind {api_version} {kind}; seaworthy knows: {}", known.join(", "))
                }
            };
            return Err(DocProblem { object, field: Some("apiVersion".into()), message });
        }
        Err(e) => {
            return Err(DocProblem { object, field: Some(e.path().to_string()), message: e.into_inner().to_string() });
        }
    };
    // k8s-openapi skips fields it does not know; a misspelt field would silently do nothing in
    // a cluster too (the API server prunes it), so it is refused here.
    if let Some(path) = unknown_field(&raw, &resource.to_json(), String::new()) {
        return Err(DocProblem { object, field: Some(path), message: format!("unknown field for {api_version} {kind}") });
    }
    Ok((resource, raw))
}

/// The first key present in `written` but absent from the typed round trip `typed`.
fn unknown_field(written: &serde_json::Value, typed: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => w.iter().find_map(|(k, wv)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match t.get(k) {
                None if !wv.is_null() => Some(p),
                None => None,
                Some(tv) => unknown_field(wv, tv, p),
            }
        }),
        (Value::Array(w), Value::Array(t)) => {
            w.iter().zip(t).enumerate().find_map(|(i, (wv, tv))| unknown_field(wv, tv, format!("{path}[{i}]")))
        }
        _ => None,
    }
}
#[cfg(test)]
mod tests;
