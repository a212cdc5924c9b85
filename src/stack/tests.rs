//! The loader's judgements on small inline stacks; `suites/lint.rs` runs the CLI on broken
//! copies of the real fixtures.

use super::*;

fn parse(text: &str) -> (Vec<Object>, Vec<Problem>) {
    let mut problems = Vec::new();
    let objects = parse_documents(Path::new("m.yaml"), text, &mut problems);
    (objects, problems)
}

fn one_problem(text: &str) -> Problem {
    let (_, problems) = parse(text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.into_iter().next().unwrap()
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:v1
        resources: {limits: {cpu: 1}}
";

#[test]
fn documents_are_typed_and_counted_from_one() {
    let (objects, problems) = parse(&format!("---\n{DEPLOYMENT}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{a: b}}\n"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].label(), "Deployment web");
    assert_eq!((objects[0].doc, objects[1].doc), (1, 2));
    assert!(matches!(objects[1].resource, Resource::ConfigMap(_)));
}

#[test]
fn invalid_yaml_names_the_document() {
    let p = one_problem(&format!("{DEPLOYMENT}---\nkind: [unclosed\n"));
    assert_eq!(p.doc, Some(2));
    assert!(p.message.starts_with("invalid YAML"), "{p}");
}

#[test]
fn unknown_kind_and_removed_api_are_refused() {
    let p = one_problem("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n");
    assert_eq!(p.field.as_deref(), Some("apiVersion"));
    assert!(p.message.contains("unknown apiVersion/kind example.com/v1 Widget"), "{p}");
    let p = one_problem("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n");
    assert!(p.message.contains("networking.k8s.io/v1"), "{p}");
}

#[test]
fn wrong_types_and_unknown_fields_name_the_field() {
    // The sms-web seed's pitfall: env values must be strings.
    let p = one_problem(&DEPLOYMENT.replace("        resources: {limits: {cpu: 1}}\n", "        env: [{name: DEBUG, value: true}]\n"));
    assert_eq!(p.field.as_deref(), Some("spec.template.spec.containers[0].env[0].value"), "{p}");
    assert_eq!(p.object.as_deref(), Some("Deployment web"));
    let p = one_problem(&DEPLOYMENT.replace("        image: web:v1\n", "        image: web:v1\n        imagePullPolicyy: Always\n"));
    assert_eq!(p.field.as_deref(), Some("spec.template.spec.containers[0].imagePullPolicyy"), "{p}");
    assert!(p.message.contains("unknown field"));
}

#[test]
fn missing_name_is_refused() {
    let p = one_problem("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n");
    assert_eq!(p.field.as_deref(), Some("metadata.name"));
}

#[test]
fn problem_display_says_file_document_object_and_field() {
    let p = Problem {
        file: PathBuf::from("/x/m.yaml"),
        doc: Some(3),
        object: Some("Service web".into()),
        field: Some("spec.selector".into()),
        message: "matches nothing".into(),
    };
    assert_eq!(p.to_string(), "/x/m.yaml: document 3 (Service web): spec.selector: matches nothing");
}
