//! `stack.toml`: what a stack is, beyond its manifests.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// Must equal the folder name, so `fixtures list` and the stack agree.
    pub name: String,
    /// The post in shared/seeds/ the stack comes from.
    pub seed: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    pub entry: Entry,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    #[serde(default)]
    pub variants: BTreeMap<String, VariantSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Manifests refer to `<name>:<version>`.
    pub name: String,
    /// Build context, relative to the stack folder.
    pub context: String,
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    pub versions: Vec<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
}

fn default_dockerfile() -> String {
    "Dockerfile".to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub service: String,
    pub port: i32,
    #[serde(default)]
    pub node_port: Option<i32>,
    #[serde(default)]
    pub ingress_host: Option<String>,
    /// Reach the stack through its Ingress wherever an ingress controller answers, and through
    /// `node_port` elsewhere (a stack whose promise is about its Ingress).
    #[serde(default)]
    pub prefer_ingress: bool,
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_path() -> String {
    "/".to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    /// The variant this check must catch; a check that passes on it proves nothing.
    #[serde(default)]
    pub negative: Option<String>,
    #[serde(default)]
    pub params: toml::Table,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub description: String,
    #[serde(default)]
    pub remove: Vec<ObjectRef>,
    #[serde(default)]
    pub patch: Vec<PatchSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSpec {
    pub kind: String,
    pub name: String,
    /// RFC 6902 operations, kept as JSON so that any value TOML can spell is allowed.
    pub ops: Vec<serde_json::Value>,
}

impl JsonSchema for CheckSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CheckSpec".into()
    }

    // One alternative per check, each with its own params: see checks::params.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::checks::params::check_spec_schema(generator)
    }
}
