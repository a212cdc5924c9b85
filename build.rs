//! libtest cannot mark a test skipped at run time, only ignored when it is compiled. So the cluster
//! suites' cases are compiled in only when a cluster is configured; otherwise each suite has one
//! ignored test saying "skipped: no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG)", never a pass
//! (suites/support/cluster.rs). SEAWORTHY_REQUIRE_CLUSTER=1 compiles them in regardless, so that
//! a missing cluster fails them.

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
