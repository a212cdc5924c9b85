//! The cluster half of a stack's suite: one rstest case per check and variant, run against the
//! cluster DESIGN.md says to find (SEAWORTHY_CLUSTER=kind|k3d|k3s, or SEAWORTHY_KUBECONFIG /
//! KUBECONFIG). One cluster, one run id and one image build per test binary.
//!
//! libtest has no run-time skip: a test passes or fails, and only `#[ignore]`, decided when it
//! is compiled, shows as a skip. So build.rs decides: with no cluster configured, the suite's
//! cluster cases are compiled as one ignored test whose reason is the skip line
//! ("skipped: no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG)"), which libtest counts as
//! ignored, never passed. What is only known at run time (a configured cluster that does not
//! answer, a check the cluster cannot support) is a failure under SEAWORTHY_REQUIRE_CLUSTER=1;
//! otherwise the case writes a "skipped:" line straight to the terminal (past libtest's output
//! capture, which would hide it) and returns, the closest libtest has.

#![allow(dead_code)]

use seaworthy::checks::context::Timeouts;
use seaworthy::checks::runner::{ImageRefFn, RunOptions, run_variant};
use seaworthy::checks::{Outcome, Verdict};
use seaworthy::cleanup::Cleanup;
use seaworthy::cluster::{self, Cluster};
use seaworthy::stack::Stack;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use tokio::sync::OnceCell;

/// One runtime for the whole binary: the kube client lives on it, and every test blocks on it.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| tokio::runtime::Runtime::new().expect("tokio runtime"));
static BUILT: LazyLock<tokio::sync::Mutex<HashSet<String>>> = LazyLock::new(Default::default);
/// A stack's Services ask for fixed NodePorts (the host port mappings): two of its variants
/// cannot be applied at once, so the cases of one binary run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn base() -> String {
    std::env::var("SEAWORTHY_BASE_IMAGE").unwrap_or_else(|_| "debian:bookworm-slim".into())
}

fn artifacts() -> PathBuf {
    std::env::var_os("SEAWORTHY_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts"))
}

/// The cluster, or why there is none (a configured one that does not answer, or refuses).
async fn cluster() -> Result<&'static (Cluster, String, Cleanup), &'static str> {
    static NONE: OnceCell<Result<(Cluster, String, Cleanup), String>> = OnceCell::const_new();
    let found = NONE
        .get_or_init(|| async {
            let cluster = cluster::for_tests().await?;
            let run_id = seaworthy::apply::new_run_id();
            let cleanup = Cleanup::new(cluster.client.clone(), &run_id);
            Ok((cluster, run_id, cleanup))
        })
        .await;
    found.as_ref().map_err(String::as_str)
}

/// No usable cluster, found at run time: said once for the whole suite.
fn no_cluster(reason: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    if cluster::cluster_required() {
        panic!("{reason} (SEAWORTHY_REQUIRE_CLUSTER=1: a missing cluster is a failure)");
    }
    SAID.call_once(|| skip_at_run_time(&format!("every cluster case of this suite: {reason}")));
}

/// A skip decided at run time: a failure when a cluster is required, else a line on the
/// terminal that libtest's capture does not swallow.
fn skip_at_run_time(line: &str) {
    if cluster::cluster_required() {
        panic!("{line} (SEAWORTHY_REQUIRE_CLUSTER=1: a skip is a failure)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {line} (SEAWORTHY_REQUIRE_CLUSTER=1 makes this a failure)");
}

async fn images(cluster: &Cluster, stack: &Stack) {
    let mut built = BUILT.lock().await;
    if built.contains(stack.name()) {
        return;
    }
    let loader = seaworthy::run::loader_for(cluster, std::env::var("SEAWORTHY_LOAD_IMAGES_WITH").ok().as_deref()).expect("image loader");
    let s = stack.clone();
    // The archives only live until loaded: the artifacts folder is for evidence (CI uploads it).
    let archives = seaworthy::run::ArchiveDir::new(std::env::var_os("SEAWORTHY_IMAGE_ARCHIVES").map(std::path::PathBuf::from).as_deref()).expect("a folder for the image archives");
    tokio::task::spawn_blocking(move || seaworthy::run::prepare_images(&[s], &loader, &base(), &archives))
        .await
        .expect("image task")
        .unwrap_or_else(|e| panic!("images of {}: {e:#}", stack.name()));
    built.insert(stack.name().to_string());
}

/// The check's verdict on the stack or one of its variants; Err when there is no usable cluster.
async fn verdict(stack_name: &str, check: &str, variant: Option<&str>) -> Result<Verdict, String> {
    let (cluster, run_id, cleanup) = cluster().await.map_err(str::to_string)?;
    let stack = Stack::find(stack_name).expect("shipped stack");
    let spec = stack.spec.checks.iter().find(|c| c.name == check).unwrap_or_else(|| panic!("{stack_name} declares no check {check}")).clone();
    images(cluster, &stack).await;
    let target = match variant {
        None => stack.clone(),
        Some(v) => stack.variant(v).unwrap_or_else(|e| panic!("{e}")),
    };
    let image_ref: ImageRefFn = {
        let stack = stack.clone();
        Arc::new(move |n: &str, v: &str| seaworthy::images::image_ref_with_base(&stack, n, v, &base()))
    };
    let opts = RunOptions { artifacts: artifacts(), keep_on_failure: false, timeouts: Timeouts::default(), progress: None };
    let _one = ONE_AT_A_TIME.lock().await;
    let _guard = cleanup.panic_guard();
    let started_ms = seaworthy::observe::now_ms();
    let v = run_variant(cluster, target, &spec, run_id, image_ref, &opts, cleanup).await;
    save_result(stack_name, check, variant, &v, started_ms, cluster);
    Ok(v)
}

/// With `SEAWORTHY_RESULTS=DIR`, every case leaves its verdict there for `seaworthy report merge`
/// (the nightly's reports and baseline).
fn save_result(stack: &str, check: &str, variant: Option<&str>, v: &Verdict, started_ms: u64, cluster: &Cluster) {
    let Some(dir) = std::env::var_os(seaworthy::report::cases::RESULTS_ENV) else { return };
    let case = seaworthy::report::cases::CaseResult {
        stack: stack.to_string(),
        check: check.to_string(),
        variant: variant.map(String::from),
        verdict: v.clone(),
        started_ms,
        ended_ms: seaworthy::observe::now_ms(),
        cluster: Some(seaworthy::report::ClusterSummary::of(cluster)),
    };
    if let Err(e) = case.save(std::path::Path::new(&dir)) {
        panic!("{stack} {check}: saving its result: {e:#}");
    }
}

fn report(what: &str, v: &Verdict) -> String {
    format!("{what}: {:?}: {}{}", v.outcome, v.reason, v.evidence.as_ref().map(|e| format!(" (evidence: {})", e.display())).unwrap_or_default())
}

/// The good stack must pass the check.
pub fn good(stack: &str, check: &str) {
    let what = format!("{stack} {check}");
    let v = match RUNTIME.block_on(verdict(stack, check, None)) {
        Ok(v) => v,
        Err(reason) => return no_cluster(&reason),
    };
    match v.outcome {
        Outcome::Pass => println!("{}", report(&what, &v)),
        Outcome::Skipped => skip_at_run_time(&report(&what, &v)),
        Outcome::Fail => panic!("{}", report(&what, &v)),
    }
}

/// The check must catch the stack's negative control: fail it for the reason the control exists
/// to show (run_variant judges that), not on a timeout or a failed apply.
pub fn caught(stack: &str, check: &str) {
    let st = Stack::find(stack).expect("shipped stack");
    let variant = st.spec.checks.iter().find(|c| c.name == check).and_then(|c| c.negative.clone()).unwrap_or_else(|| panic!("{stack} {check} has no negative control"));
    let what = format!("{stack} {check} on negative control {variant}");
    let v = match RUNTIME.block_on(verdict(stack, check, Some(&variant))) {
        Ok(v) => v,
        Err(reason) => return no_cluster(&reason),
    };
    match v.outcome {
        _ if v.caught() => println!("caught: {}", report(&what, &v)),
        Outcome::Skipped => skip_at_run_time(&report(&what, &v)),
        Outcome::Pass => panic!("harness failure: the check passed on its negative control: {}", report(&what, &v)),
        Outcome::Fail => panic!("not caught: {}", report(&what, &v)),
    }
}

/// A check added to stack.toml without a case in the suite would silently never run on a
/// cluster: the suite's case lists must equal stack.toml's checks and negative controls.
pub fn assert_cases_cover(stack: &str, checks: &[&str], negatives: &[&str]) {
    let st = Stack::find(stack).expect("shipped stack");
    let declared: Vec<&str> = st.spec.checks.iter().map(|c| c.name.as_str()).collect();
    let with_negative: Vec<&str> = st.spec.checks.iter().filter(|c| c.negative.is_some()).map(|c| c.name.as_str()).collect();
    assert_eq!(declared, checks, "{stack}: the suite's cases and stack.toml's checks differ");
    assert_eq!(with_negative, negatives, "{stack}: the suite's negative-control cases and stack.toml's differ");
}

/// A suite's `on_cluster` module: `passes` for every check of `checks`, `catches_its_negative_control`
/// for every one of `negatives`, and `cases_cover_every_check_of_stack_toml` over those same two
/// lists, so the coverage test speaks of the very cases that run. Without a configured cluster
/// (build.rs) the cases are one ignored test instead, whose reason is the suite's skip line.
#[allow(unused_macros)]
macro_rules! on_cluster {
    (stack: $stack:literal, checks: [$($check:ident: $check_name:literal),+ $(,)?], negatives: [$($neg:ident: $neg_name:literal),* $(,)?] $(,)?) => {
        mod on_cluster {
            #[allow(unused_imports)]
            use rstest::rstest;

            const STACK: &str = $stack;

            #[cfg(seaworthy_cluster)]
            #[rstest]
            $(#[case::$check($check_name)])+
            fn passes(#[case] check: &str) {
                $crate::support::cluster::good(STACK, check);
            }

            $crate::support::cluster::on_cluster!(@negatives $($neg: $neg_name),*);

            /// Stands for every cluster case of the suite, so that a run without a cluster says so
            /// once; run anyway (`--include-ignored`), it fails: nothing was checked.
            #[cfg(not(seaworthy_cluster))]
            #[test]
            #[ignore = "skipped: no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG)"]
            fn cluster_cases() {
                panic!("{STACK}: the cluster cases were not compiled in: no cluster (set SEAWORTHY_CLUSTER or KUBECONFIG, and build again)");
            }

            #[test]
            fn cases_cover_every_check_of_stack_toml() {
                $crate::support::cluster::assert_cases_cover(STACK, &[$($check_name),+], &[$($neg_name),*]);
            }
        }
    };
    // An rstest function needs a case: a stack without negative controls has no such test.
    (@negatives) => {};
    (@negatives $($neg:ident: $neg_name:literal),+) => {
        #[cfg(seaworthy_cluster)]
        #[rstest]
        $(#[case::$neg($neg_name)])+
        fn catches_its_negative_control(#[case] check: &str) {
            $crate::support::cluster::caught(STACK, check);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_cluster;
