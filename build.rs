//! The cluster suites are compiled as ignored ("no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG)")
//! unless a cluster is configured, so that a machine without one reports them as skipped, never
//! as passed; SEAWORTHY_REQUIRE_CLUSTER=1 compiles them in regardless, so that a missing cluster
//! fails them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(seaworthy_cluster)");
    let vars = ["SEAWORTHY_CLUSTER", "SEAWORTHY_KUBECONFIG", "KUBECONFIG", "SEAWORTHY_REQUIRE_CLUSTER"];
    for v in vars {
        println!("cargo::rerun-if-env-changed={v}");
    }
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty());
    let required = std::env::var("SEAWORTHY_REQUIRE_CLUSTER").is_ok_and(|v| v == "1" || v == "true");
    if required || vars[..3].iter().any(|v| set(v)) {
        println!("cargo::rustc-cfg=seaworthy_cluster");
    }
}
