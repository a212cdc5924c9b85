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
