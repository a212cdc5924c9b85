//! Reports made from real runs: the load generator against Debian's nginx balancing two real
//! Python backends on loopback, untouched (clean) or with one backend killed by SIGKILL mid-run
//! before it leaves the upstream (the injected failure) — plus recorded Kubernetes timelines
//! (the Events of a captured rollout, and a drain written in the observe module's own words). The JSON must round-trip, the JUnit must validate against the Jenkins schema, the HTML
//! must render in headless Chromium and show the failure on its timeline, and `report compare`
//! must call the injected failures a regression and two clean runs the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use seaworthy::checks::timeline::{describe, failure_clusters, next_to};
use seaworthy::checks::{CheckResult, Outcome, Phase, Verdict};
use seaworthy::local::{self, Nginx};
use seaworthy::observe::{event_line, now_ms, Entry, EventLog, Source};
use seaworthy::report::{self, ClusterSummary, RunReport};
use seaworthy::traffic::{Load, LoadConfig};

mod support;

use support::backends::{backend, proxy_conf};

const RATE: f64 = 200.0;
const LOAD_S: u64 = 3;
const PHASE: &str = "200 req/s through nginx to backend-a and backend-b";

/// One real run: 200 req/s for 3 s through nginx to backend-a and backend-b. With `kill`, backend-b
/// gets SIGKILL at 1 s and leaves the upstream at 2 s (a Pod killed before its endpoint was
/// removed); without, nothing happens to it. Every step is logged when it is taken, on the wall
/// clock. (A clean run does not reload nginx: a graceful reload under load can reset one
/// keep-alive request, which is the load generator's concern, not the report's.)
async fn real_run(dir: &Path, kill: bool) -> Run {
    let a = backend(dir, "backend-a");
    let mut b = backend(dir, "backend-b");
    let port = local::free_port();
    let mut nginx = Nginx::start(dir, &proxy_conf(port, &[a.port, b.port])).unwrap();
    let log = EventLog::default();

    let cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), RATE, Duration::from_secs(LOAD_S)).unwrap();
    let load = Load::start(cfg).await.unwrap();
    let start_ms = now_ms() - load.elapsed().as_millis() as u64;
    let mut window = None;
    if kill {
        let at = |s: f64| tokio::time::sleep(Duration::from_secs_f64(s).saturating_sub(load.elapsed()));
        at(1.0).await;
        log.push(Source::Action, "Process/backend-b", "SIGKILL backend-b (injected failure)");
        let killed_s = load.elapsed().as_secs_f64();
        b.proc.signal_group(Signal::SIGKILL).unwrap();
        assert!(b.proc.wait_timeout(Duration::from_secs(5)).is_some(), "SIGKILL must end backend-b");
        at(2.0).await;
        log.push(Source::Action, "Upstream/app", "backend-b removed from the nginx upstream (reload)");
        tokio::task::block_in_place(|| nginx.reload(&proxy_conf(port, &[a.port]))).unwrap();
        window = Some((killed_s, load.elapsed().as_secs_f64()));
    }
    let rep = load.finish().await;

    let summary = rep.summary(Duration::from_millis(250));
    let events = log.entries();
    let clusters = failure_clusters(&rep.records.to_vec(), &rep.backends, start_ms, &events);
    let phase = Phase {
        name: PHASE.into(),
        started_ms: start_ms,
        ended_ms: start_ms + (summary.elapsed_s * 1000.0) as u64,
        traffic: Some(summary.clone()),
        events,
        failure_clusters: clusters.clone(),
    };
    let verdict = if summary.failed == 0 {
        Verdict::pass(format!("no failed request of {}", summary.sent)).with_phase(phase)
    } else {
        let mut v = Verdict::fail(describe(&clusters)).with_phase(phase);
        v.evidence = Some(dir.join("error.log"));
        v
    };
    Run { verdict, window }
}

struct Run {
    verdict: Verdict,
    /// With the kill: when backend-b got SIGKILL and when nginx got the SIGHUP that drops it,
    /// in seconds on the load's own axis (the failure clusters' `from_s`/`to_s`).
    window: Option<(f64, f64)>,
}

/// The real Events of a captured rollout (tests-data/events-rollout.json, Kubernetes 1.24), as the
/// observer writes them, on their own timestamps.
fn recorded_rollout() -> Phase {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data/events-rollout.json");
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let items: Vec<k8s_openapi::api::core::v1::Event> = serde_json::from_value(list["items"].clone()).unwrap();
    let mut events: Vec<Entry> = items
        .iter()
        .map(|e| {
            let at = e.event_time.as_ref().map(|t| t.0).or(e.last_timestamp.as_ref().map(|t| t.0)).or(e.first_timestamp.as_ref().map(|t| t.0)).unwrap();
            let (object, message) = event_line(e);
            Entry { at_ms: at.as_millisecond() as u64, source: Source::Event, object, message }
        })
        .collect();
    events.sort_by_key(|e| e.at_ms);
    Phase {
        name: "rollout v1 -> v2 (recorded Events)".into(),
        started_ms: events[0].at_ms,
        ended_ms: events.last().unwrap().at_ms,
        traffic: None,
        events,
        failure_clusters: vec![],
    }
}

/// A drain as a check records it, in the observe module's own phrases (see observe/diff.rs):
/// the first eviction is refused by the PDB (429), the second goes through after a replacement
/// Pod is ready, and the HPA follows.
fn recorded_drain() -> Phase {
    let t0 = 1_795_306_000_000u64;
    let e = |s: f64, source, object: &str, message: &str| Entry { at_ms: t0 + (s * 1000.0) as u64, source, object: object.into(), message: message.into() };
    Phase {
        name: "drain node-2 (recorded)".into(),
        started_ms: t0,
        ended_ms: t0 + 20_000,
        traffic: None,
        events: vec![
            e(0.5, Source::Action, "Node/node-2", "cordoned"),
            e(0.9, Source::Action, "Pod/web-1", "eviction refused: 429 Too Many Requests (PDB web allows 0 disruptions)"),
            e(2.0, Source::Pod, "Pod/web-3", "created on node-1"),
            e(4.5, Source::Pod, "Pod/web-3", "ready"),
            e(4.6, Source::EndpointSlice, "EndpointSlice/web-abcde", "web-3 added (ready)"),
            e(6.0, Source::Action, "Pod/web-1", "evicted (201)"),
            e(6.1, Source::Pod, "Pod/web-1", "terminating (grace 30s)"),
            e(6.2, Source::EndpointSlice, "EndpointSlice/web-abcde", "web-1 terminating, not serving"),
            e(9.0, Source::Pod, "Pod/web-1", "deleted (uid 1c5f)"),
            e(9.1, Source::EndpointSlice, "EndpointSlice/web-abcde", "web-1 removed"),
            e(12.0, Source::Hpa, "HorizontalPodAutoscaler/web", "desired replicas 3 -> 4"),
            e(15.0, Source::Event, "Pod/web-4", "Warning FailedScheduling: 0/2 nodes are available: 1 node(s) were unschedulable."),
        ],
        failure_clusters: vec![],
    }
}

struct Runs {
    clean_a: Verdict,
    clean_b: Verdict,
    killed: Verdict,
    kill_window: (f64, f64),
}

/// The three real runs, made once per test binary (one after the other: the 2-core machine
/// should not split its CPU between two load generators) and shared by the tests.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let clean_a = rt.block_on(real_run(dirs[0].path(), false)).verdict;
        let clean_b = rt.block_on(real_run(dirs[1].path(), false)).verdict;
        let killed = rt.block_on(real_run(dirs[2].path(), true));
        Runs { clean_a, clean_b, kill_window: killed.window.unwrap(), killed: killed.verdict }
    })
}

fn check(good: Verdict, negative: Option<Verdict>) -> CheckResult {
    CheckResult { stack: "local-nginx".into(), check: "zero-5xx".into(), good, negative: negative.map(|v| ("kill-backend-b".into(), v)) }
}

fn recorded_checks() -> Vec<CheckResult> {
    vec![
        CheckResult {
            stack: "myblog".into(),
            check: "rollout-zero-5xx".into(),
            good: Verdict::pass("rollout completed; events recorded").with_phase(recorded_rollout()).with_metric("rollout_s", 23.0),
            negative: None,
        },
        CheckResult {
            stack: "myblog".into(),
            check: "drain-pdb".into(),
            good: Verdict::pass("the PDB held: one eviction refused with 429 until the replacement was ready").with_phase(recorded_drain()),
            negative: None,
        },
        CheckResult { stack: "counter".into(), check: "hpa-scale".into(), good: Verdict::skipped("no metrics API (metrics.k8s.io is not served)"), negative: None },
    ]
}

fn cluster() -> ClusterSummary {
    ClusterSummary {
        provider: "kind".into(),
        context: "kind-seaworthy".into(),
        version: "v1.24.17".into(),
        nodes: 3,
        schedulable_nodes: 2,
        metrics_api: false,
        ingress_classes: vec!["nginx".into()],
        default_storage_class: Some("standard".into()),
    }
}

/// The full report: the clean run as the good stack, the kill as its negative control, and the
/// recorded checks.
fn full_report() -> RunReport {
    let r = runs();
    let mut results = vec![check(r.clean_a.clone(), Some(r.killed.clone()))];
    results.extend(recorded_checks());
    RunReport::new(now_ms() - 60_000, now_ms(), Some(cluster()), results)
}

fn seaworthy(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seaworthy")).args(args).output().unwrap()
}

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// Whether `tool` is here; if not, the test skips with the reason, or fails under
/// `SEAWORTHY_REQUIRE_REPORT_TOOLS=1` (set by CI, where a missing package must not pass as a skip).
fn tool(tool: &str, package: &str) -> bool {
    if have(tool) {
        return true;
    }
    let why = format!("{tool} not installed (Debian package {package}, in .ci/packages.txt)");
    assert!(std::env::var_os("SEAWORTHY_REQUIRE_REPORT_TOOLS").is_none_or(|v| v != "1"), "SEAWORTHY_REQUIRE_REPORT_TOOLS=1 but {why}");
    println!("skipped: {why}");
    false
}

#[test]
fn the_real_runs_are_what_the_reports_claim() {
    let r = runs();
    for v in [&r.clean_a, &r.clean_b] {
        let s = v.phases[0].traffic.as_ref().unwrap();
        assert_eq!(v.outcome, Outcome::Pass, "nothing happened to either backend:\n{}", s.render());
        assert_eq!(s.failed, 0);
        assert!(s.backend("backend-b").is_some() && s.backend("backend-a").is_some());
    }
    let v = &r.killed;
    let p = &v.phases[0];
    let s = p.traffic.as_ref().unwrap();
    assert_eq!(v.outcome, Outcome::Fail);
    assert!(s.failed >= 50, "about half the requests between kill and reload reach the dead backend:\n{}", s.render());
    // One cluster as a rule; two when the reload, late on a loaded machine, resets a keep-alive
    // request more than a second after the last one that reached the dead backend. Either way
    // every failure is inside the kill window and the bulk is backend-b's, next to the kill.
    let clusters = &p.failure_clusters;
    assert!((1..=2).contains(&clusters.len()), "{clusters:?}");
    assert_eq!(clusters.iter().map(|c| c.count).sum::<u64>(), s.failed, "every failure is in a cluster");
    let (killed_s, reloaded_s) = r.kill_window;
    for c in clusters {
        // Slack before the kill: a request sent to backend-b just before it and unanswered; after
        // the SIGHUP: nginx starts its new workers, and the old ones finish what they hold.
        assert!(c.from_s >= killed_s - 0.25 && c.to_s <= reloaded_s + 1.0, "failures between the kill ({killed_s:.2} s) and the reload ({reloaded_s:.2} s): {c:?}");
    }
    let c = clusters.iter().max_by_key(|c| c.count).unwrap();
    assert_eq!(c.backend.as_deref(), Some("backend-b"), "the backend that went silent: {c:?}");
    assert!(c.from_s < reloaded_s, "the bulk began before the reload: {c:?}");
    let (next, _) = next_to(c).unwrap_or_else(|| panic!("no event next to {c:?}"));
    assert_eq!(next.object, "Process/backend-b", "the failures are placed next to the kill: {c:?}");
    assert!(v.reason.contains("backend backend-b") && v.reason.contains("next to: Process/backend-b SIGKILL"), "{}", v.reason);
}

#[test]
fn json_round_trips() {
    let report = full_report();
    let text = report.to_json();
    assert_eq!(RunReport::from_json(&text).unwrap(), report, "parse(write(report)) must be the report");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    report.save(&path).unwrap();
    assert_eq!(RunReport::load(&path).unwrap(), report);
    // The documented shape (README "Report JSON"), by its field paths.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["cluster"]["version"], "v1.24.17");
    assert_eq!(v["stacks"], serde_json::json!(["local-nginx", "myblog", "counter"]));
    let neg = &v["results"][0]["negative"];
    assert_eq!(neg[0], "kill-backend-b");
    assert_eq!(neg[1]["outcome"], "fail");
    let traffic = &neg[1]["phases"][0]["traffic"];
    assert!(traffic["failed"].as_u64().unwrap() >= 50);
    assert!(traffic["status_codes"]["502"].as_u64().unwrap() >= 50);
    assert!(traffic["latency_ms"]["p999"].as_f64().is_some() && traffic["service_time_ms"]["p99"].as_f64().is_some());
    assert!(traffic["timeline"].as_array().unwrap().iter().any(|b| b["failed"].as_u64().unwrap() > 0));
    assert_eq!(neg[1]["phases"][0]["failure_clusters"][0]["backend"], "backend-b");
    assert_eq!(neg[1]["phases"][0]["events"][0]["source"], "action");
    assert_eq!(v["results"][3]["good"]["outcome"], "skipped");
}

fn xmllint_schema(xml: &Path) -> Output {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data/junit-jenkins.xsd");
    Command::new("xmllint").arg("--noout").arg("--schema").arg(xsd).arg(xml).output().unwrap()
}

#[test]
fn junit_validates_against_the_jenkins_schema() {
    if !tool("xmllint", "libxml2-utils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    full_report().save(&json).unwrap();
    let xml = dir.path().join("junit.xml");
    let out = seaworthy(&["report".as_ref(), "render".as_ref(), json.as_os_str(), "--junit".as_ref(), xml.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let valid = xmllint_schema(&xml);
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(valid.status.success(), "xmllint: {}\n{text}", String::from_utf8_lossy(&valid.stderr));

    // One testsuite per stack, one testcase per check and variant.
    for stack in ["local-nginx", "myblog", "counter"] {
        assert!(text.contains(&format!("<testsuite name=\"{stack}\"")), "{text}");
    }
    assert_eq!(text.matches("<testcase ").count(), 5, "{text}");
    assert!(text.contains("name=\"zero-5xx [negative control: kill-backend-b]\""), "{text}");
    // The caught negative control passes; the skipped check says why.
    assert!(text.contains("<testsuite name=\"local-nginx\" tests=\"2\" skipped=\"0\" errors=\"0\" failures=\"0\""), "{text}");
    assert!(text.contains("<skipped message=\"no metrics API (metrics.k8s.io is not served)\""), "{text}");

    // A failing good variant carries its reason and evidence path.
    let r = runs();
    let failing = RunReport::new(0, 1, None, vec![check(r.killed.clone(), None)]);
    let xml2 = dir.path().join("failing.xml");
    std::fs::write(&xml2, report::junit_xml(&failing).unwrap()).unwrap();
    let check2 = xmllint_schema(&xml2);
    let text2 = std::fs::read_to_string(&xml2).unwrap();
    assert!(check2.status.success(), "xmllint: {}\n{text2}", String::from_utf8_lossy(&check2.stderr));
    assert!(text2.contains("<failure message=\"") && text2.contains("type=\"check failed\""), "{text2}");
    assert!(text2.contains("backend backend-b"), "{text2}");
    let evidence = r.killed.evidence.as_ref().unwrap().display().to_string();
    assert!(text2.contains(&format!("evidence: {evidence}")) && text2.contains(&format!("[[ATTACHMENT|{evidence}]]")), "{text2}");

    // The schema is strict where Jenkins is: quick-junit's raw root element does not pass.
    let raw = dir.path().join("raw.xml");
    std::fs::write(&raw, report::junit(&failing).to_string().unwrap()).unwrap();
    let refused = xmllint_schema(&raw);
    assert!(!refused.status.success(), "a `skipped` attribute on <testsuites> must not validate");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("skipped"), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// Headless Chromium with nothing of the user's and no background traffic.
fn chromium(dir: &Path, page: &Path, mode: &[String]) -> Output {
    let profile = tempfile::tempdir_in(dir).unwrap();
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

/// What the page said to the console (CSP violations, failed loads, script errors).
fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()))
}

#[test]
fn html_renders_in_chromium_and_shows_the_failure_on_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    full_report().save(&json).unwrap();
    let page = dir.path().join("report.html");
    let out = seaworthy(&["report".as_ref(), "render".as_ref(), json.as_os_str(), "--html".as_ref(), page.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: nothing to fetch, nothing to run.
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("@import") && !html.contains("url("));
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "only in-page links: {}", &href[..href.len().min(60)]);
    }
    if tool("xmllint", "libxml2-utils") {
        let wf = Command::new("xmllint").arg("--noout").arg(&page).output().unwrap();
        assert!(wf.status.success(), "the page must be well-formed: {}", String::from_utf8_lossy(&wf.stderr));
    }

    if !tool("chromium", "chromium") {
        return;
    }
    let dom = chromium(dir.path(), &page, &["--dump-dom".into()]);
    assert!(dom.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&dom.stderr));
    assert_eq!(console_lines(&dom), Vec::<String>::new(), "the page must load without a console message");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom_text.contains("<title>seaworthy report: 3 passed, 0 failed, 1 skipped</title>"), "{dom_text}");
    assert_eq!(dom_text.matches("<tr class=\"result ").count(), 4);
    assert_eq!(dom_text.matches("<svg class=\"timeline\"").count(), 4, "a timeline per phase of every variant");
    // The failure, on the negative control's timeline: a shaded cluster naming backend-b and the
    // kill next to it, red failure bars, and the kill marked as the event nearest the failures.
    let clusters: Vec<&str> = dom_text.split("<g class=\"failure-cluster\" data-backend=\"backend-b\">").skip(1).map(|c| &c[..c.find("</g>").unwrap()]).collect();
    assert!(
        clusters.iter().any(|c| c.contains("failed (502 x") && c.contains("backend-b · next to Process/backend-b SIGKILL")),
        "a failure cluster for backend-b next to the kill: {clusters:?}"
    );
    assert!(dom_text.contains("<rect class=\"failures\""));
    assert!(dom_text.contains("<g class=\"event action near-failure\"><title>"), "the kill is ringed as the failure's neighbour");
    // The recorded timelines draw each kind of event.
    for class in ["event-warning", "pod-created", "pod-ready", "pod-terminating", "pod-deleted", "slice-in", "slice-out", "hpa", "eviction"] {
        assert!(dom_text.contains(&format!("<g class=\"event {class}")), "no {class} event drawn");
    }

    let png_path = dir.path().join("report.png");
    let shot = chromium(dir.path(), &page, &[format!("--screenshot={}", png_path.display()), "--window-size=1280,2400".into(), "--hide-scrollbars".into()]);
    assert!(shot.status.success(), "chromium --screenshot: {}", String::from_utf8_lossy(&shot.stderr));
    assert_eq!(console_lines(&shot), Vec::<String>::new());
    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(png_size(&png), (1280, 2400));
    // A blank page of that size compresses to a few KB; charts and text do not.
    assert!(png.len() > 60_000, "the screenshot looks empty ({} bytes)", png.len());
    if let Some(keep) = std::env::var_os("SEAWORTHY_KEEP_REPORT") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        for f in ["report.html", "report.png", "run.json"] {
            std::fs::copy(dir.path().join(f), keep.join(f)).unwrap();
        }
    }

    // The console check can fail: a page that tries to fetch is reported.
    let bad = dir.path().join("bad.html");
    std::fs::write(&bad, html.replacen("<body>", "<body><img src=\"http://192.0.2.1/x.png\" alt=\"\"/>", 1)).unwrap();
    let blocked = chromium(dir.path(), &bad, &["--dump-dom".into()]);
    assert!(console_lines(&blocked).iter().any(|l| l.contains("Content Security Policy")), "{}", String::from_utf8_lossy(&blocked.stderr));
}

fn write_report(dir: &Path, name: &str, good: &Verdict) -> PathBuf {
    let path = dir.join(name);
    RunReport::new(0, 1, Some(cluster()), vec![check(good.clone(), None)]).save(&path).unwrap();
    path
}

#[test]
fn compare_flags_the_injected_failures_and_calls_two_clean_runs_the_same() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let clean_a = write_report(dir.path(), "clean-a.json", &r.clean_a);
    let clean_b = write_report(dir.path(), "clean-b.json", &r.clean_b);
    let killed = write_report(dir.path(), "killed.json", &r.killed);

    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), clean_a.as_os_str(), killed.as_os_str()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a regression exits 1:\n{table}{}", String::from_utf8_lossy(&out.stderr));
    let failed_row = table.lines().find(|l| l.contains("failed_requests")).unwrap_or_else(|| panic!("{table}"));
    assert!(failed_row.contains("REGRESSED") && failed_row.contains(PHASE), "{table}");
    let outcome_row = table.lines().find(|l| l.contains("outcome")).unwrap();
    assert!(outcome_row.contains("pass") && outcome_row.contains("fail") && outcome_row.contains("REGRESSED"), "{table}");

    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), clean_a.as_os_str(), killed.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let cmp: report::Comparison = serde_json::from_slice(&out.stdout).unwrap();
    let row = cmp.rows.iter().find(|r| r.measure == "failed_requests").unwrap();
    assert_eq!(row.status, report::Status::Regressed);
    assert_eq!(row.baseline, Some(report::compare::Value::Number(0.0)));
    assert!(cmp.regressed >= 2);

    // The other way round the failures are gone: improved, and no regression.
    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), killed.as_os_str(), clean_a.as_os_str(), "--json".as_ref()]);
    let back: report::Comparison = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back.rows.iter().find(|r| r.measure == "failed_requests").unwrap().status, report::Status::Improved);

    // Two clean runs of the same setup, with the default thresholds: same on every measure, on
    // this 2-core machine shared with parallel builds (the defaults' floors are above that noise;
    // the threshold rules themselves are unit-tested in src/report/compare.rs).
    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), clean_a.as_os_str(), clean_b.as_os_str()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", String::from_utf8_lossy(&out.stderr));
    let measures = ["outcome", "failed_requests", "latency_p99_ms", "latency_p999_ms", "achieved_rps"];
    for m in measures {
        let row = table.lines().find(|l| l.contains(m)).unwrap_or_else(|| panic!("no {m} row:\n{table}"));
        assert!(row.trim_end().ends_with("same"), "{m} should be the same:\n{table}");
    }
    assert!(table.contains(&format!("0 regressed, 0 improved, {} same", measures.len())), "{table}");
}

#[test]
fn compare_refuses_what_it_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let v = Verdict::pass("ok");
    let base = write_report(dir.path(), "base.json", &v);

    let mut other: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    other["schema_version"] = 2.into();
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, other.to_string()).unwrap();
    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), base.as_os_str(), newer.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("report schema version 1") && err.contains("has 2"), "{err}");

    let different = dir.path().join("different.json");
    RunReport::new(0, 1, None, vec![CheckResult { stack: "myblog".into(), check: "config".into(), good: v.clone(), negative: None }]).save(&different).unwrap();
    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), base.as_os_str(), different.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("different checks") && err.contains("only in the baseline: local-nginx/zero-5xx") && err.contains("only in the current run: myblog/config"), "{err}");

    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), base.as_os_str(), base.as_os_str(), "--latency-p99-ms=-5".as_ref()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--latency-p99-ms -5: a threshold is a number of 0 or more"), "{err}");

    let out = seaworthy(&["report".as_ref(), "render".as_ref(), base.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "render with no output asks for one");
}

#[test]
fn merge_makes_one_run_of_the_suites_cases_and_a_missing_case_is_no_pass() {
    use seaworthy::report::cases::CaseResult;
    use seaworthy::stack::Stack;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out_json = dir.path().join("result.json");
    let merge = |results: &Path| seaworthy(&["report".as_ref(), "merge".as_ref(), results.as_os_str(), "--json".as_ref(), out_json.as_os_str()]);

    std::fs::create_dir(&results).unwrap();
    let out = merge(&results);
    assert_eq!(out.status.code(), Some(2), "no results at all: {}", String::from_utf8_lossy(&out.stderr));

    // Every case of every shipped stack, as the suites would leave them on a cluster.
    let mut last = None;
    for stack in Stack::shipped().unwrap() {
        for spec in &stack.spec.checks {
            let case = |variant: Option<String>, verdict: Verdict| CaseResult {
                stack: stack.name().into(),
                check: spec.name.clone(),
                variant,
                verdict,
                started_ms: 1_000,
                ended_ms: 2_000,
                cluster: Some(cluster()),
            };
            last = Some(case(None, Verdict::pass("ok")).save(&results).unwrap());
            if let Some(v) = &spec.negative {
                case(Some(v.clone()), Verdict::fail("caught")).save(&results).unwrap();
            }
        }
    }
    let out = merge(&results);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", String::from_utf8_lossy(&out.stderr));
    let report = RunReport::load(&out_json).unwrap();
    assert_eq!(report.cluster, Some(cluster()));
    assert_eq!(report.totals().pass, report.results.len());
    assert!(report.stacks.len() >= 6, "{:?}", report.stacks);

    // One case that did not run (a filtered or crashed cargo test) leaves its check unproven.
    std::fs::remove_file(last.unwrap()).unwrap();
    let out = merge(&results);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("skipped") && table.contains("did not run"), "{table}");
    assert_eq!(RunReport::load(&out_json).unwrap().totals().skipped, 1);
}

fn tests_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data").join(name)
}

fn render(json: &Path, html: &Path) -> String {
    let out = seaworthy(&["report".as_ref(), "render".as_ref(), json.as_os_str(), "--html".as_ref(), html.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(html).unwrap()
}

/// The cells of the table row whose first cell is `first`.
fn row_cells<'a>(html: &'a str, first: &str) -> Vec<&'a str> {
    let at = html.find(&format!("<tr><td>{first}</td>")).unwrap_or_else(|| panic!("no row {first}"));
    let row = &html[at..at + html[at..].find("</tr>").unwrap()];
    row.split("<td").skip(1).map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()]).collect()
}

/// A real run's page: one line per check (stack, check, outcome, the number that decided it,
/// the negative control), the reason folded under it; nginx's 502s, which carry no backend
/// header, counted on the Pods their clusters name; no chart for the phases without traffic.
#[test]
fn a_lab_run_leads_with_one_line_per_check_and_counts_failures_without_a_backend_header() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(&tests_data("lab-run-phpdemo-config-override.json"), &dir.path().join("r.html"));
    assert!(html.contains("<tr><th>stack</th><th>check</th><th>outcome</th><th>decided by</th><th>negative control</th></tr>"), "{html}");
    let line = &html[html.find("<tr class=\"result fail\">").unwrap()..];
    let line = &line[..line.find("</tr>").unwrap()];
    assert_eq!(
        line,
        "<tr class=\"result fail\"><td>phpdemo</td><td>config-override</td><td><span class=\"badge fail\">fail</span></td><td>baked_in_served = 0</td><td>no-configmap: skipped</td>"
    );
    assert!(html.contains("<tr class=\"why\"><td colspan=\"5\"><details><summary>8 of 332 requests during the rollout restart were not 2xx (502 x8)"), "the reason folds under the line");
    // 8 failed, none with a header: 7 on trpjt, 1 on j8bvz, as the failure clusters say.
    assert_eq!(row_cells(&html, "phpdemo-6b9f5c688b-trpjt")[3..5], ["0", "7"]);
    assert_eq!(row_cells(&html, "phpdemo-6b9f5c688b-j8bvz")[3..5], ["0", "1"]);
    assert_eq!(row_cells(&html, "phpdemo-685658499-59cq4")[3..5], ["0", "0"]);
    // Three phases, one with traffic and two with neither traffic nor events: one chart.
    assert_eq!(html.matches("<article class=\"phase\"").count(), 3);
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    assert_eq!(html.matches("No traffic and no Kubernetes event in this phase.").count(), 2);

    // Failures no cluster names go to an "unnamed" row.
    let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tests_data("lab-run-phpdemo-config-override.json")).unwrap()).unwrap();
    r["results"][0]["good"]["phases"][1]["failure_clusters"] = serde_json::json!([]);
    let json = dir.path().join("unclustered.json");
    std::fs::write(&json, r.to_string()).unwrap();
    let html = render(&json, &dir.path().join("u.html"));
    assert_eq!(row_cells(&html, "unnamed")[3..5], ["0", "8"]);
}

/// The page of a whole run, every fold open, fits a 1300 px window: long evidence paths and
/// event lines wrap instead of widening the page.
#[test]
fn a_full_run_does_not_scroll_sideways_at_1300px() {
    let dir = tempfile::tempdir().unwrap();
    let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tests_data("lab-run-single-node.json")).unwrap()).unwrap();
    for res in r["results"].as_array_mut().unwrap() {
        let name = format!("{}-{}", res["stack"].as_str().unwrap(), res["check"].as_str().unwrap());
        for pointer in ["/good/evidence", "/negative/1/evidence"] {
            if let Some(e) = res.pointer_mut(pointer).filter(|e| !e.is_null()) {
                *e = format!("/home/someone/src/seaworthy/artifacts/run-e734c2/sw-{name}-e734c2").into();
            }
        }
    }
    let json = dir.path().join("run.json");
    std::fs::write(&json, r.to_string()).unwrap();
    let html = render(&json, &dir.path().join("report.html"));
    if !tool("chromium", "chromium") {
        return;
    }
    // A copy that may run one script: open every fold and write the page's widths in the title.
    let probe = dir.path().join("probe.html");
    let csp = html.find("<meta http-equiv=\"Content-Security-Policy\"").unwrap();
    let csp_end = csp + html[csp..].find("/>").unwrap() + 2;
    let script = "<script>for (const d of document.querySelectorAll('details')) d.open = true; \
                  document.title = 'widths ' + document.documentElement.scrollWidth + ' ' + document.documentElement.clientWidth;</script>";
    std::fs::write(&probe, format!("{}{}", &html[..csp], html[csp_end..].replace("</body>", &format!("{script}</body>")))).unwrap();
    let dom = chromium(dir.path(), &probe, &["--dump-dom".into(), "--window-size=1300,900".into()]);
    let text = String::from_utf8_lossy(&dom.stdout);
    let title = text.split("<title>widths ").nth(1).map(|t| &t[..t.find('<').unwrap()]).unwrap_or_else(|| panic!("no widths: {}", String::from_utf8_lossy(&dom.stderr)));
    let w: Vec<u32> = title.split(' ').map(|n| n.parse().unwrap()).collect();
    assert!(w[0] <= w[1], "the page is {} px wide in a {} px window", w[0], w[1]);
}

/// `seaworthy load --json` summaries are runs of one phase: the page, the JUnit and the
/// regression gate work on them, and a file that is neither is refused saying so.
#[test]
fn a_load_summary_renders_and_compares_as_a_run_of_one_phase() {
    let dir = tempfile::tempdir().unwrap();
    let r = runs();
    let write = |name: &str, v: &Verdict| {
        let path = dir.path().join(name);
        // What `seaworthy load --json` writes: the summary, pretty-printed.
        std::fs::write(&path, serde_json::to_string_pretty(v.phases[0].traffic.as_ref().unwrap()).unwrap()).unwrap();
        path
    };
    let (clean, killed) = (write("clean.json", &r.clean_a), write("killed.json", &r.killed));
    let page = dir.path().join("load.html");
    let junit = dir.path().join("load.xml");
    let out = seaworthy(&["report".as_ref(), "render".as_ref(), killed.as_os_str(), "--html".as_ref(), page.as_os_str(), "--junit".as_ref(), junit.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<td>load</td><td>load</td><td><span class=\"badge fail\">fail</span></td><td>failed = "), "{html}");
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testcase name=\"load\""));

    let out = seaworthy(&["report".as_ref(), "compare".as_ref(), clean.as_os_str(), killed.as_os_str()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.lines().any(|l| l.contains("failed_requests") && l.contains("REGRESSED")), "{table}");

    let neither = dir.path().join("neither.json");
    std::fs::write(&neither, "{\"hello\": 1}").unwrap();
    for args in [vec!["render".as_ref(), neither.as_os_str(), "--html".as_ref(), page.as_os_str()], vec!["compare".as_ref(), clean.as_os_str(), neither.as_os_str()]] {
        let out = seaworthy(&[&["report".as_ref()][..], &args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("neither a seaworthy run report") && err.contains("nor a load summary"), "{err}");
    }
}
