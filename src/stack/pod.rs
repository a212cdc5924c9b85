//! What a container sees of its stack: env and mounted ConfigMap/Secret files, resolved from the
//! manifests as the kubelet would. The local proofs and image tests run apps with exactly this.

use super::Stack;
use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Container, KeyToPath};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A file a container gets from a ConfigMap or Secret volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile {
    /// Absolute path inside the container.
    pub path: PathBuf,
    pub content: Vec<u8>,
}

impl MountedFile {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.content).into_owned()
    }
}

impl Stack {
    /// A container (init or regular) of a workload, by name.
    pub fn container(&self, workload: &str, container: &str) -> Result<&Container> {
        let spec = self.pod_spec(workload).ok_or_else(|| anyhow!("stack {}: no workload {workload:?}", self.name()))?;
        spec.init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .find(|c| c.name == container)
            .ok_or_else(|| anyhow!("stack {}: workload {workload} has no container {container:?}", self.name()))
    }

    /// The environment of a container: `envFrom` first, then `env` (which wins), as the kubelet
    /// builds it. Downward-API values (fieldRef, resourceFieldRef) need a running Pod: skipped.
    /// `$(VAR)` references to earlier variables are expanded as Kubernetes does.
    pub fn container_env(&self, workload: &str, container: &str) -> Result<Vec<(String, String)>> {
        let c = self.container(workload, container)?;
        let mut env: Vec<(String, String)> = Vec::new();
        let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
            env.retain(|(name, _)| *name != k);
            env.push((k, v));
        };
        for from in c.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(r) = &from.config_map_ref {
                for (k, v) in self.config_map_data(&r.name)? {
                    set(&mut env, format!("{prefix}{k}"), v);
                }
            }
            if let Some(r) = &from.secret_ref {
                for (k, v) in self.secret_data(&r.name)? {
                    set(&mut env, format!("{prefix}{k}"), String::from_utf8_lossy(&v).into_owned());
                }
            }
        }
        for e in c.env.iter().flatten() {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => expand(v, &env),
                (None, Some(from)) => {
                    if let Some(r) = &from.config_map_key_ref {
                        match self.config_map_data(&r.name)?.remove(&r.key) {
                            Some(v) => v,
                            None if r.optional == Some(true) => continue,
                            None => bail!("env {}: ConfigMap {} has no key {}", e.name, r.name, r.key),
                        }
                    } else if let Some(r) = &from.secret_key_ref {
                        match self.secret_data(&r.name)?.remove(&r.key) {
                            Some(v) => String::from_utf8_lossy(&v).into_owned(),
                            None if r.optional == Some(true) => continue,
                            None => bail!("env {}: Secret {} has no key {}", e.name, r.name, r.key),
                        }
                    } else {
                        continue;
                    }
                }
                (None, None) => String::new(),
            };
            set(&mut env, e.name.clone(), value);
        }
        Ok(env)
    }

    /// Every file the container gets from ConfigMap and Secret volumes, at its in-container
    /// path (`items` and `subPath` honoured).
    pub fn mounted_files(&self, workload: &str, container: &str) -> Result<Vec<MountedFile>> {
        let spec = self.pod_spec(workload).ok_or_else(|| anyhow!("stack {}: no workload {workload:?}", self.name()))?;
        let c = self.container(workload, container)?;
        let mut files = Vec::new();
        for m in c.volume_mounts.iter().flatten() {
            let Some(volume) = spec.volumes.iter().flatten().find(|v| v.name == m.name) else { continue };
            let (data, items): (BTreeMap<String, Vec<u8>>, Option<&Vec<KeyToPath>>) = if let Some(cm) = &volume.config_map {
                if self.config_map(&cm.name).is_none() && cm.optional == Some(true) {
                    continue;
                }
                let mut data: BTreeMap<String, Vec<u8>> =
                    self.config_map_data(&cm.name)?.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                if let Some(binary) = self.config_map(&cm.name).and_then(|c| c.binary_data.as_ref()) {
                    data.extend(binary.iter().map(|(k, v)| (k.clone(), v.0.clone())));
                }
                (data, cm.items.as_ref())
            } else if let Some(s) = &volume.secret {
                let name = s.secret_name.as_deref().unwrap_or_default();
                if self.secret(name).is_none() && s.optional == Some(true) {
                    continue;
                }
                (self.secret_data(name)?, s.items.as_ref())
            } else {
                continue;
            };
            // The files the volume holds, by their path inside the volume.
            let in_volume: Vec<(String, Vec<u8>)> = match items {
                Some(items) => items
                    .iter()
                    .map(|i| {
                        data.get(&i.key)
                            .map(|v| (i.path.clone(), v.clone()))
                            .with_context(|| format!("volume {}: no key {:?}", volume.name, i.key))
                    })
                    .collect::<Result<_>>()?,
                None => data.into_iter().collect(),
            };
            match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let (_, content) = in_volume
                        .into_iter()
                        .find(|(p, _)| p == sub)
                        .with_context(|| format!("mount {}: subPath {sub:?} is not a file of volume {}", m.mount_path, volume.name))?;
                    files.push(MountedFile { path: PathBuf::from(&m.mount_path), content });
                }
                None => files.extend(
                    in_volume.into_iter().map(|(p, content)| MountedFile { path: Path::new(&m.mount_path).join(p), content }),
                ),
            }
        }
        Ok(files)
    }

    /// The one mounted file at `path` inside the container.
    pub fn mounted_file(&self, workload: &str, container: &str, path: &str) -> Result<MountedFile> {
        self.mounted_files(workload, container)?
            .into_iter()
            .find(|f| f.path == Path::new(path))
            .ok_or_else(|| anyhow!("stack {}: container {workload}/{container} mounts no file at {path}", self.name()))
    }

    fn config_map_data(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let cm = self.config_map(name).ok_or_else(|| anyhow!("stack {}: no ConfigMap {name}", self.name()))?;
        Ok(cm.data.clone().unwrap_or_default())
    }

    fn secret_data(&self, name: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let s = self.secret(name).ok_or_else(|| anyhow!("stack {}: no Secret {name}", self.name()))?;
        let mut data: BTreeMap<String, Vec<u8>> = s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        // stringData wins over data, as the API server merges them.
        data.extend(s.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes())));
        Ok(data)
    }
}

/// Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` escapes, others stay.
fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(end) = after.strip_prefix('(').and_then(|a| a.find(')')) {
            let name = &after[1..end + 1];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[i..i + end + 3]),
            }
            rest = &after[end + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expansion_follows_kubernetes() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }
}
