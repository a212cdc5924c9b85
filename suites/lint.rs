//! `seaworthy fixtures lint` on the shipped stacks and on broken copies of one, built in a temp
//! dir: each kind of bad input must fail with the file, the document and the field named.

use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

fn seaworthy(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seaworthy")).args(args).output().expect("running seaworthy");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A copy of the phpdemo fixture to break. The folder keeps the stack's name (stack.toml's
/// `name` must match it).
struct Copy {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Copy {
    fn new() -> Copy {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("phpdemo");
        support::fs::copy_dir(&fixtures().join("phpdemo"), &dir).unwrap();
        Copy { _tmp: tmp, dir }
    }

    fn manifests(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("manifests")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }

    /// Edit the first document of `kind`; returns its file name and 1-based document index.
    fn edit(&self, kind: &str, f: impl FnOnce(&mut Value)) -> (String, usize) {
        for file in self.manifests() {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            if let Some(i) = docs.iter().position(|d| d["kind"].as_str() == Some(kind)) {
                f(&mut docs[i]);
                let out: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
                std::fs::write(&file, out.join("---\n")).unwrap();
                return (file.file_name().unwrap().to_string_lossy().into_owned(), i + 1);
            }
        }
        panic!("phpdemo has no {kind}");
    }

    /// Append a document to the last manifest file; returns the file name and its index.
    fn append(&self, doc: &str) -> (String, usize) {
        let file = self.manifests().pop().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let count = serde_yaml::Deserializer::from_str(&text).count();
        std::fs::write(&file, format!("{text}\n---\n{doc}")).unwrap();
        (file.file_name().unwrap().to_string_lossy().into_owned(), count + 1)
    }

    /// Lint the copy: it must fail, and the output must name every one of `expected`.
    fn fails_with(&self, expected: &[&str]) -> String {
        let (code, out) = seaworthy(&["fixtures", "lint", self.dir.to_str().unwrap()]);
        assert_eq!(code, 1, "lint must fail:\n{out}");
        for e in expected {
            assert!(out.contains(e), "lint output lacks {e:?}:\n{out}");
        }
        out
    }
}

fn container0(doc: &mut Value) -> &mut Value {
    &mut doc["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn shipped_stacks_pass_and_are_six() {
    let (code, out) = seaworthy(&["fixtures", "lint"]);
    assert_eq!(code, 0, "{out}");
    for stack in ["phpdemo", "flask-sts", "myblog", "sms-web", "wordpress", "counter"] {
        assert!(out.contains(&format!("ok      {stack}:")), "{stack} missing from lint:\n{out}");
    }
    let (code, out) = seaworthy(&["fixtures", "list"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(" seed ")).count(), 6, "{out}");
}

#[test]
fn an_untouched_copy_passes_by_path() {
    let copy = Copy::new();
    let (code, out) = seaworthy(&["fixtures", "lint", copy.dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn invalid_yaml() {
    let copy = Copy::new();
    let (file, doc) = copy.append("kind: [unclosed\n");
    copy.fails_with(&[&file, &format!("document {doc}"), "invalid YAML"]);
}

#[test]
fn unknown_kind() {
    let copy = Copy::new();
    let (file, doc) = copy.append("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n");
    copy.fails_with(&[&file, &format!("document {doc}"), "(Widget w): apiVersion", "unknown apiVersion/kind"]);
}

#[test]
fn unknown_api_version() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Deployment", |d| d["apiVersion"] = "extensions/v1beta1".into());
    copy.fails_with(&[&file, &format!("document {doc}"), "apiVersion", "use apiVersion apps/v1"]);
}

#[test]
fn duplicate_kind_and_name() {
    let copy = Copy::new();
    let (file, doc) = copy.append("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: phpdemo-config}\ndata: {a: b}\n");
    copy.fails_with(&[&file, &format!("document {doc}"), "(ConfigMap phpdemo-config): metadata.name", "duplicate"]);
}

#[test]
fn undeclared_image() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Deployment", |d| container0(d)["image"] = "phpdemo-php-fpm:v9".into());
    copy.fails_with(&[&file, &format!("document {doc}"), "spec.template.spec.containers[0].image", "not declared in stack.toml"]);
}

#[test]
fn service_selector_matches_nothing() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Service", |d| d["spec"]["selector"] = serde_yaml::from_str("{app: ghost}").unwrap());
    copy.fails_with(&[&file, &format!("document {doc}"), "spec.selector", "app=ghost matches the Pod labels of no workload"]);
}

#[test]
fn probe_names_an_undeclared_port() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Deployment", |d| {
        let containers = d["spec"]["template"]["spec"]["containers"].as_sequence_mut().unwrap();
        let c = containers.iter_mut().find(|c| c.get("readinessProbe").is_some()).expect("a container with a readiness probe");
        c["readinessProbe"] = serde_yaml::from_str("{httpGet: {path: /, port: nope}}").unwrap();
    });
    copy.fails_with(&[&file, &format!("document {doc}"), "readinessProbe.httpGet.port", "names port \"nope\""]);
}

#[test]
fn service_target_port_names_an_undeclared_port() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Service", |d| d["spec"]["ports"][0]["targetPort"] = "nope".into());
    copy.fails_with(&[&file, &format!("document {doc}"), "spec.ports[0].targetPort", "names port \"nope\""]);
}

#[test]
fn pdb_and_hpa_without_a_target() {
    let copy = Copy::new();
    let (file, pdb) = copy.append("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: p}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: ghost}}\n");
    copy.fails_with(&[&file, &format!("document {pdb}"), "(PodDisruptionBudget p): spec.selector", "selects no Pod"]);
    let copy = Copy::new();
    let (file, hpa) = copy.append(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  minReplicas: 1\n  maxReplicas: 2\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}\n",
    );
    copy.fails_with(&[&file, &format!("document {hpa}"), "(HorizontalPodAutoscaler h): spec.scaleTargetRef", "Deployment ghost is not in this stack"]);
}

#[test]
fn wrong_field_type_and_unknown_field() {
    let copy = Copy::new();
    let (file, doc) = copy.edit("Deployment", |d| d["spec"]["replicas"] = "two".into());
    copy.fails_with(&[&file, &format!("document {doc}"), "spec.replicas"]);
    let copy = Copy::new();
    let (file, doc) = copy.edit("Deployment", |d| d["spec"]["replicass"] = 2.into());
    copy.fails_with(&[&file, &format!("document {doc}"), "spec.replicass", "unknown field"]);
}

#[test]
fn broken_stack_toml_and_variant() {
    let copy = Copy::new();
    let toml = copy.dir.join("stack.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("[entry]\n", "[entry]\nservise = \"x\"\n")).unwrap();
    copy.fails_with(&["stack.toml", "servise"]);

    let copy = Copy::new();
    let toml = copy.dir.join("stack.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[variants.broken]\ndescription = \"x\"\n[[variants.broken.patch]]\nkind = \"Deployment\"\nname = \"phpdemo\"\nops = [{{ op = \"remove\", path = \"/spec/nothing/here\" }}]\n")).unwrap();
    copy.fails_with(&["stack.toml", "variants.broken.patch[0].ops", "does not apply"]);
}

#[test]
fn a_folder_without_stack_toml_is_refused_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = seaworthy(&["fixtures", "lint", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has no stack.toml"), "{out}");
    let (code, out) = seaworthy(&["fixtures", "lint", "no-such-stack"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("neither a stack folder nor a shipped stack"), "{out}");
}

/// The copy's stack.toml with `from` replaced by `to` (which must be there to replace).
fn edit_toml(copy: &Copy, from: &str, to: &str) {
    let toml = copy.dir.join("stack.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains(from), "phpdemo's stack.toml has no {from:?}");
    std::fs::write(&toml, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_misspelt_check_param_is_refused_with_the_nearest_valid_key() {
    let copy = Copy::new();
    edit_toml(&copy, "slow_query = \"sleep=1\"\n", "slow_query = \"sleep=1\"\nrsp = 40\n");
    copy.fails_with(&["stack.toml", "(check rollout-zero-5xx)", "checks[1].params.rsp", "unknown parameter", "did you mean `rps`?", "seaworthy checks rollout-zero-5xx"]);
}

#[test]
fn a_check_param_of_the_wrong_type_is_refused_with_what_was_expected() {
    let copy = Copy::new();
    edit_toml(&copy, "slow_query = \"sleep=1\"\n", "slow_query = \"sleep=1\"\nrps = \"40\"\n");
    copy.fails_with(&["stack.toml", "(check rollout-zero-5xx)", "checks[1].params.rps", "expected a number, found string \"40\""]);
    let copy = Copy::new();
    edit_toml(&copy, "image = \"phpdemo-code\"\nversions = [\"v1\", \"v2\"]", "image = \"phpdemo-code\"\nversions = [\"v1\"]");
    copy.fails_with(&["(check rollout-undo)", "checks[2].params.versions", "expected an array of length 2, found 1 item(s)"]);
}

#[test]
fn a_missing_check_param_is_refused() {
    let copy = Copy::new();
    edit_toml(&copy, "configmap = \"phpdemo-config\"\n", "");
    copy.fails_with(&["stack.toml", "(check config-override)", "checks[0].params.configmap", "missing: this parameter is required"]);
    let copy = Copy::new();
    edit_toml(&copy, "name = \"config-override\"", "name = \"config-overide\"");
    copy.fails_with(&["checks[0].name", "unknown check \"config-overide\"", "did you mean \"config-override\"?"]);
}

fn own_stack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data/own-stack")
}

/// Every key (dotted for nested tables, not inside free-form maps such as forms) of a params table.
fn keys(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let key = format!("{prefix}{k}");
        if let toml::Value::Table(inner) = v
            && !["form", "headers", "data", "json"].contains(&k.as_str())
        {
            keys(inner, &format!("{key}."), out);
        }
        out.push(key);
    }
}

/// The README's own-stack example: a stack folder outside fixtures/ lints clean, each variant
/// renders and validates, and `seaworthy checks` documents every parameter it uses.
#[test]
fn a_stack_of_ones_own_lints_renders_and_is_documented() {
    let dir = own_stack();
    let (code, out) = seaworthy(&["fixtures", "lint", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok      own-stack: 6 objects, 2 images, 3 checks, 3 variants"), "{out}");
    let stack = seaworthy::stack::Stack::load(&dir).unwrap();
    for name in stack.spec.variants.keys() {
        let v = stack.variant(name).unwrap_or_else(|e| panic!("variant {name}: {e:#}"));
        assert_ne!(v.objects.iter().map(|o| o.raw.clone()).collect::<Vec<_>>(), stack.objects.iter().map(|o| o.raw.clone()).collect::<Vec<_>>(), "{name} changes nothing");
    }
    // Its PDB says minAvailable, which pdb-drain must take.
    assert!(stack.objects.iter().any(|o| o.raw.pointer("/spec/minAvailable").is_some()));
    for check in &stack.spec.checks {
        let (code, doc) = seaworthy(&["checks", &check.name]);
        assert_eq!(code, 0, "{doc}");
        let mut used = Vec::new();
        keys(&check.params, "", &mut used);
        for key in used {
            assert!(doc.lines().any(|l| l.trim_start().starts_with(&format!("{key} "))), "`seaworthy checks {}` does not document {key}:\n{doc}", check.name);
        }
    }
    let (code, all) = seaworthy(&["checks"]);
    assert_eq!(code, 0);
    assert_eq!(all.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).count(), 10, "ten checks:\n{all}");
}

fn schema() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("stack.schema.json")).unwrap()).unwrap()
}

#[test]
fn the_shipped_schema_is_the_generated_one() {
    let (code, out) = seaworthy(&["schema"]);
    assert_eq!(code, 0);
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("stack.schema.json")).unwrap();
    assert_eq!(out.trim_end(), shipped.trim_end(), "stack.schema.json is stale: run `cargo run -- schema > stack.schema.json`");
}

fn toml_as_json(path: &Path) -> serde_json::Value {
    let t: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    serde_json::to_value(t).unwrap()
}

#[test]
fn the_schema_accepts_every_shipped_stack_and_refuses_a_misspelt_param() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("stack.toml").is_file()).collect();
    assert_eq!(dirs.len(), 6);
    dirs.push(own_stack());
    for dir in &dirs {
        let doc = toml_as_json(&dir.join("stack.toml"));
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{}: {}", dir.display(), errors.join("\n"));
    }
    let mut doc = toml_as_json(&fixtures().join("wordpress/stack.toml"));
    let drain = doc["checks"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "pdb-drain").unwrap();
    drain["params"]["rsp"] = 40.into();
    assert!(!validator.is_valid(&doc), "a misspelt param passes the schema");
    let mut doc = toml_as_json(&fixtures().join("wordpress/stack.toml"));
    doc["checks"][0]["params"]["rps"] = "20".into();
    assert!(!validator.is_valid(&doc), "a string rate passes the schema");
}

/// Every stack must be reachable on a cluster without an ingress controller (myblog was skipped
/// on the 2026-12-06 lab cluster: its only entry was an Ingress): an entry without a nodePort,
/// or one naming a nodePort of a ClusterIP Service, is refused.
#[test]
fn an_entry_only_an_ingress_controller_can_reach_is_refused() {
    let copy = Copy::new();
    let toml = copy.dir.join("stack.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("node_port = 30080\n", "")).unwrap();
    copy.fails_with(&["stack.toml", "entry.node_port", "missing", "no ingress controller", "type NodePort"]);

    let copy = Copy::new();
    copy.edit("Service", |svc| {
        svc["spec"]["type"] = "ClusterIP".into();
    });
    copy.fails_with(&["stack.toml", "entry.node_port", "is type ClusterIP"]);
}
