//! Loading the captured API objects in `tests-data/` (unit tests only).
use serde::de::DeserializeOwned;
use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests-data")
        .join(name)
}

pub fn value(name: &str) -> serde_json::Value {
    let p = path(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn from_value<T: DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v)
        .unwrap_or_else(|e| panic!("not a {}: {e}", std::any::type_name::<T>()))
}

pub fn load<T: DeserializeOwned>(name: &str) -> T {
    from_value(value(name))
}

/// The items of a `kind: List` file (`kubectl get ... -o json` of several objects).
pub fn load_list<T: DeserializeOwned>(name: &str) -> Vec<T> {
    let v = value(name);
    let items = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no items"));
    items.iter().cloned().map(from_value).collect()
}
