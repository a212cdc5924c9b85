use super::*;
use crate::stack::Stack;

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

#[test]
fn every_shipped_checks_params_parse_as_its_struct() {
    for stack in Stack::shipped().unwrap() {
        for c in &stack.spec.checks {
            let r = problems(&c.name, &c.params).expect("a known check");
            assert!(r.is_ok(), "{} {}: {}", stack.name(), c.name, r.unwrap_err());
        }
    }
}

#[test]
fn a_misspelt_key_is_refused_with_the_nearest_valid_one() {
    let p = table("workload = \"web\"\ncontainer = \"c\"\nrsp = 40");
    let e = problems("endpoints-follow-readiness", &p).unwrap().unwrap_err();
    assert_eq!(e.key, "rsp");
    assert!(e.message.starts_with("unknown parameter; the valid ones here are `deployment`, `statefulset`, `workload`, `container`"), "{}", e.message);
    assert!(e.message.ends_with("did you mean `rps`?"), "{}", e.message);
}

#[test]
fn a_wrong_type_is_refused_with_what_was_expected() {
    let p = table("workload = \"web\"\ncontainer = \"c\"\npropagation_s = \"3\"");
    let e = problems("endpoints-follow-readiness", &p).unwrap().unwrap_err();
    assert_eq!(e, ParamError { key: "propagation_s".into(), message: "expected a number, found string \"3\"".into() });
}

#[test]
fn a_missing_required_key_is_refused() {
    let e = problems("pdb-drain", &table("deployment = \"web\"")).unwrap().unwrap_err();
    assert_eq!(e, ParamError { key: "pdb".into(), message: "missing: this parameter is required".into() });
    let e = problems("rollout-zero-5xx", &table("workload = \"w\"\nimage = \"i\"\nfrom = \"v1\"\nto = \"v2\"")).unwrap().unwrap_err();
    assert_eq!(e.key, "container");
    assert!(e.message.starts_with("missing"), "{}", e.message);
}

#[test]
fn nested_tables_and_store_kinds_are_checked_too() {
    let p = table("store = \"http\"\ndelete = [\"web\"]\nwrite = { path = \"/n\", from = { t = \"{value}\" } }\nread = { path = \"/n\" }");
    let e = problems("persistence", &p).unwrap().unwrap_err();
    assert_eq!(e.key, "write.from");
    assert!(e.message.contains("did you mean `form`?"), "{}", e.message);
    let e = problems("persistence", &table("store = \"htp\"\ndelete = [\"web\"]")).unwrap().unwrap_err();
    assert_eq!(e.key, "store");
    assert!(e.message.contains("\"htp\" is not one of") && e.message.contains("did you mean \"http\"?"), "{}", e.message);
    // Nothing this run writes would carry the unique value.
    let p = table("store = \"http\"\ndelete = [\"web\"]\nwrite = { path = \"/n\", form = { t = \"x\" } }\nread = { path = \"/n\" }");
    assert_eq!(problems("persistence", &p).unwrap().unwrap_err().key, "write");
}

#[test]
fn workload_aliases_are_accepted_by_serde_and_by_the_schema() {
    let p: RolloutZero5xx = parse(&table("deployment = \"w\"\ncontainer = \"c\"\nimage = \"i\"\nfrom = \"v1\"\nto = \"v2\"")).unwrap();
    assert_eq!((p.workload.as_str(), p.rps, p.lead_s), ("w", 20.0, 5.0));
    let (_, forms) = docs(find("rollout-zero-5xx").unwrap());
    let keys: Vec<&str> = forms[0].1.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"deployment") && keys.contains(&"statefulset") && keys.contains(&"workload"), "{keys:?}");
}

#[test]
fn the_docs_show_type_default_and_meaning_of_every_param() {
    let text = render_docs(Some("pdb-drain")).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("retry_s")).unwrap();
    assert!(line.contains("number") && line.contains("default 5.0") && line.contains("Seconds between retries"), "{line}");
    let line = text.lines().find(|l| l.trim_start().starts_with("pdb ")).unwrap();
    assert!(line.contains("string") && line.contains("required"), "{line}");
    let text = render_docs(Some("persistence")).unwrap();
    assert!(text.contains("store = \"http\"") && text.contains("write.path") && text.contains("read.pattern"), "{text}");
    assert!(render_docs(Some("pdb-dran")).unwrap_err().contains("did you mean pdb-drain?"));
}
