//! stack.toml + manifest parsing and validation must never panic, whatever the bytes.
//! Input: the stack.toml text, a NUL byte, then one manifest file's text (and optionally a
//! second NUL and a variant name to render).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seaworthy::stack::Stack;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let toml = parts.next().unwrap_or_default();
    let yaml = parts.next().unwrap_or_default();
    let variant = parts.next();
    let dir = Path::new("/nonexistent/fuzz");
    if let Ok(stack) = Stack::from_sources(dir, toml, &[(PathBuf::from("/nonexistent/fuzz/manifests/m.yaml"), yaml.to_string())]) {
        for name in stack.spec.variants.keys().map(String::as_str).chain(variant) {
            let _ = stack.variant(name);
        }
        if let Some(object) = stack.objects.first() {
            let workload = object.resource.name().to_string();
            if let Some(spec) = stack.pod_spec(&workload) {
                for c in &spec.containers {
                    let _ = stack.container_env(&workload, &c.name);
                    let _ = stack.mounted_files(&workload, &c.name);
                }
            }
        }
    }
});
