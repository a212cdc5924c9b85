//! The fixture images, built and run for real with podman: each stack's Pods as its Pod templates
//! say (initContainers first, shared emptyDirs, ConfigMap/Secret files and env from the manifests,
//! command/args as written), Services as DNS names on a per-test network, entry ports on
//! 127.0.0.1. The same app-level promises as the local proofs, now against the images a cluster
//! would run; SIGTERM drains with a request in flight; the negative-control variants fail as they
//! must. Skipped (one line) where podman or the base image is missing, or podman is rootless,
//! unless SEAWORTHY_REQUIRE_IMAGES=1 (CI) makes that a failure. Sandboxes a killed run left behind
//! are removed first (only those whose process is gone: a concurrent run's are its own).

use anyhow::Result;
use seaworthy::images::{self, Builder, Pod, PodOptions, Sandbox};
use seaworthy::stack::Stack;
use std::io::Write;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Availability

/// Whether the image tests can run here. The reason they cannot is printed once, past the test
/// harness's output capture, so a skipped run says so.
fn available() -> bool {
    static STATE: OnceLock<Result<(), String>> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        if !Builder::Podman.works() {
            return Err("podman is not installed or does not work (apt-get install podman, then ci/podman-setup.sh)".into());
        }
        images::pods::check_rootful().map_err(|e| format!("{e:#}"))?;
        let base = images::base();
        if !Builder::Podman.exists(&base) {
            return Err(format!("the base image {base} is not in podman's storage (ci/debian-base.sh imports one)"));
        }
        match images::pods::sweep_leftovers() {
            Ok(swept) if !swept.is_empty() => {
                let _ = writeln!(std::io::stderr(), "images: removed the sandboxes of killed runs: {}", swept.join(", "));
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "images: could not sweep the sandboxes of killed runs: {e:#}");
            }
        }
        Ok(())
    });
    match state {
        Ok(()) => true,
        Err(reason) if std::env::var("SEAWORTHY_REQUIRE_IMAGES").as_deref() == Ok("1") => {
            panic!("SEAWORTHY_REQUIRE_IMAGES=1 but {reason}")
        }
        Err(reason) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                let _ = writeln!(std::io::stderr(), "images: SKIPPED, {reason}");
            });
            false
        }
    }
}

macro_rules! require_images {
    () => {
        if !available() {
            return;
        }
    };
}

fn stack(name: &str) -> Stack {
    Stack::find(name).unwrap_or_else(|e| panic!("fixtures/{name} loads: {e:#}"))
}

fn variant(name: &str, v: &str) -> Stack {
    stack(name).variant(v).unwrap_or_else(|e| panic!("{name} variant {v}: {e:#}"))
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        // One connection per request, as a load test or a probe makes: a kept-alive connection
        // would hide which Pod a new request reaches.
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client")
}

fn get(url: &str) -> Result<Answer> {
    request(client(Duration::from_secs(30)).get(url))
}

fn request(req: reqwest::blocking::RequestBuilder) -> Result<Answer> {
    let resp = req.send()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text()?;
    Ok(Answer { status, headers, body })
}

/// GET until `ok` holds (or `timeout`); the last answer or error on failure.
fn get_until(url: &str, timeout: Duration, ok: impl Fn(&Answer) -> bool) -> Result<Answer> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = get(url);
        match &last {
            Ok(a) if ok(a) => return last,
            _ if Instant::now() >= deadline => {
                return Err(anyhow::anyhow!("{url}: no good answer within {timeout:?}; last: {last:?}"));
            }
            _ => thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Start a slow request now; its answer (or error) arrives through the handle.
fn in_flight(url: String) -> thread::JoinHandle<Result<Answer>> {
    thread::spawn(move || get(&url))
}

/// How long the slow requests of the drain tests are held open by the app.
const SLOW_SECS: u64 = 5;

/// Start a slow request, give it a second to reach the app, then stop the Pod's containers
/// (stop signal, SIGKILL after `grace`): the request's outcome and how long the stop took.
fn stop_with_request_in_flight(pod: &Pod, url: String, grace: Duration) -> (Result<Answer>, Duration) {
    let slow = in_flight(url);
    thread::sleep(Duration::from_secs(1));
    let took = pod.stop(grace).unwrap();
    (slow.join().unwrap(), took)
}

/// A drain: the request in flight is answered, and the stop waited for it (well short of the
/// SIGKILL deadline).
fn assert_drained(answer: Result<Answer>, took: Duration, grace: Duration, logs: impl FnOnce() -> String) -> Answer {
    let a = answer.unwrap_or_else(|e| panic!("the request in flight was cut: {e:#}\n{}", logs()));
    assert_eq!(a.status, 200, "{a:?}");
    assert!(took >= Duration::from_secs(SLOW_SECS - 2), "the stop did not wait for the request in flight: {took:?}");
    assert!(took < grace - Duration::from_secs(2), "stopped by SIGKILL at the deadline, not by the drain: {took:?}");
    a
}

/// What a drain test stopped, and the sandbox it ran in: kept alive until the assertions (and
/// the logs they print on failure) are done, since dropping it removes the Pods and their logs.
struct Stopped {
    answer: Result<Answer>,
    took: Duration,
    pod: Pod,
    _sandbox: Sandbox,
}

/// Every container's log of a Pod, for a failure message.
fn pod_logs(pod: &Pod) -> String {
    pod.containers.iter().map(|(c, _)| format!("--- {} {c} ---\n{}", pod.name, pod.logs(c))).collect::<Vec<_>>().join("\n")
}

/// No drain: the request in flight is cut (an error, or at best a 5xx), and the stop is immediate.
fn assert_cut(answer: Result<Answer>, took: Duration) {
    if let Ok(a) = answer {
        assert!(a.status >= 500, "a SIGKILLed Pod cannot answer 2xx: {a:?}");
    }
    assert!(took < Duration::from_secs(2), "SIGKILL at once: {took:?}");
}

/// What keep-alive clients saw while a Pod went through the kubelet's termination sequence.
#[derive(Debug, Default)]
struct Through {
    ok: u64,
    /// Answers that were not 2xx, by status: the promise broken.
    bad: std::collections::BTreeMap<u16, u64>,
    /// Requests that got no answer on a kept-alive connection: a reset as nginx, stopping
    /// gracefully, closes its idle connections while a client's next request is on its way (the
    /// keep-alive close race of RFC 9112 §9.3.1; about one run in five at this rate). Reported,
    /// not judged: the promise here is that nginx never answers without php-fpm behind it, and
    /// a request nginx never read was not answered 502. The drain tests prove that requests it
    /// did read are finished.
    cut: Vec<String>,
    /// New connections refused: nothing listens any more, the Pod is gone (a cluster would
    /// have sent them to another Pod long before).
    refused: u64,
    terminated: Vec<images::pods::Terminated>,
}

impl Through {
    fn not_2xx(&self) -> u64 {
        self.bad.values().sum::<u64>()
    }
}

/// How long after php-fpm's hook ended nginx's stop comes in [`through_termination`]: on the
/// lab cluster, the 502s of one terminating Pod went on for up to a second.
const NGINX_LATE: Duration = Duration::from_millis(300);

/// `clients` keep-alive clients send `path` back to back on connections opened before the Pod
/// is told to stop (requests still routed to a terminating Pod: kube-proxy only steers *new*
/// connections away), while [`Pod::terminate`] plays the kubelet's sequence: every preStop at
/// once, each container's stop signal when its own hook ends (nginx's [`NGINX_LATE`] later:
/// the order of the hooks' ends that hurts a Pod whose nginx needs its php-fpm), SIGKILL at
/// `grace`. A client stops once its connection is refused (the Pod is gone).
fn through_termination(pod: &Pod, path: &str, clients: usize, grace: Duration) -> Through {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let url = pod.url(80, path).unwrap();
    let tally = Arc::new(Mutex::new(Through::default()));
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (url, tally, done) = (url.clone(), tally.clone(), done.clone());
            thread::spawn(move || {
                // One kept-alive connection per client, as a browser or an ingress holds it.
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .pool_max_idle_per_host(1)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                while !done.load(Ordering::Relaxed) {
                    let r = client.get(&url).send().and_then(|r| {
                        let status = r.status().as_u16();
                        r.bytes().map(|_| status)
                    });
                    let mut t = tally.lock().unwrap();
                    match r {
                        Ok(s) if (200..300).contains(&s) => t.ok += 1,
                        Ok(s) => *t.bad.entry(s).or_default() += 1,
                        Err(e) if e.is_connect() => {
                            t.refused += 1;
                            return;
                        }
                        Err(e) => {
                            let mut chain = vec![e.to_string()];
                            let mut src = std::error::Error::source(&e);
                            while let Some(s) = src {
                                chain.push(s.to_string());
                                src = s.source();
                            }
                            t.cut.push(chain.join(": "));
                        }
                    }
                    drop(t);
                    thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    // Every client has its connection open and in use before the Pod is told to stop.
    thread::sleep(Duration::from_secs(2));
    let before = tally.lock().unwrap().ok;
    assert!(before > clients as u64, "the clients were answered before the stop: {:?}", tally.lock().unwrap());
    let terminated = pod.terminate(grace, &[("nginx", NGINX_LATE)]).unwrap();
    done.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let mut t = std::mem::take(&mut *tally.lock().unwrap());
    t.terminated = terminated;
    t
}

/// The `"key" => "value"` pairs of a PHP `$config = [...]` file, as json_encode prints them.
fn php_config(text: &str) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once("=>") {
            let k = k.trim().trim_matches('"');
            let v = v.trim().trim_end_matches(',').trim_matches('"');
            map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
    }
    assert!(!map.is_empty(), "no \"key\" => \"value\" pairs in:\n{text}");
    serde_json::Value::Object(map)
}

const READY: Duration = Duration::from_secs(90);
const INIT: Duration = Duration::from_secs(120);

fn opts(publish: &[i32]) -> PodOptions {
    PodOptions { publish: publish.to_vec(), ..Default::default() }
}

// ---------------------------------------------------------------------------------------------
// Archives

#[test]
fn saved_archives_are_docker_archives() {
    require_images!();
    let s = stack("phpdemo");
    let b = images::ImageBuild::new(&s, "phpdemo-code", "v1", &images::base()).unwrap();
    images::build_image(Builder::Podman, &b, false).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (path, info) = images::archive::save(Builder::Podman, &b, out.path()).unwrap();
    assert_eq!(info.repo_tags, std::slice::from_ref(&b.tag));
    // Read back with GNU tar, independently of the module's own reader: manifest.json names the
    // tag, a config and layers, and all of them are in the archive.
    let tar = |flags: &str, member: Option<&str>| {
        let out = std::process::Command::new("tar").arg(flags).arg(&path).args(member).output().unwrap();
        assert!(out.status.success(), "tar {flags} {member:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listing: Vec<String> = tar("-tf", None).lines().map(str::to_string).collect();
    let manifest: serde_json::Value = serde_json::from_str(&tar("-xOf", Some("manifest.json"))).unwrap();
    let entry = &manifest.as_array().expect("manifest.json is a list")[0];
    assert_eq!(entry["RepoTags"], serde_json::json!([b.tag]));
    let config = entry["Config"].as_str().unwrap();
    assert!(listing.iter().any(|l| l == config), "config {config} in {listing:?}");
    let config_json: serde_json::Value = serde_json::from_str(&tar("-xOf", Some(config))).unwrap();
    assert_eq!(config_json["rootfs"]["type"], "layers");
    let layers = entry["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), config_json["rootfs"]["diff_ids"].as_array().unwrap().len());
    // The code image is the base plus its own layers.
    assert!(layers.len() >= 2, "{entry}");
    for l in layers {
        assert!(listing.iter().any(|x| x == l.as_str().unwrap()), "layer {l} in the archive");
    }
    assert_eq!(info.layers.len(), layers.len());
    // Saved a second time, the same archive is reused (content-addressed by the tag).
    let (path2, _) = images::archive::save(Builder::Podman, &b, out.path()).unwrap();
    assert_eq!(path, path2);
}

/// Tags this test builds that no fixture has: removed even when the test fails.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = std::process::Command::new("podman").args(["rmi", "--force", t]).output();
        }
    }
}

#[test]
fn unchanged_contexts_are_not_rebuilt_and_failures_name_the_step() {
    require_images!();
    // A copy of phpdemo: the tag depends on content only, so the copy hashes like the original.
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("phpdemo");
    let st = std::process::Command::new("cp").arg("-r").arg(stack("phpdemo").dir).arg(&copy).status().unwrap();
    assert!(st.success());
    let original = images::ImageBuild::new(&stack("phpdemo"), "phpdemo-code", "v1", &images::base()).unwrap();
    images::build_image(Builder::Podman, &original, false).unwrap();
    let s = Stack::load(&copy).unwrap();
    let same = images::ImageBuild::new(&s, "phpdemo-code", "v1", &images::base()).unwrap();
    assert_eq!(same.tag, original.tag);
    assert_eq!(images::build_image(Builder::Podman, &same, false).unwrap(), images::BuildOutcome::UpToDate);

    // A changed source is a new tag, built.
    std::fs::write(copy.join("app/code/src/extra.txt"), "changed").unwrap();
    let changed = images::ImageBuild::new(&s, "phpdemo-code", "v1", &images::base()).unwrap();
    let _cleanup = RemoveImages(vec![changed.tag.clone()]);
    assert_ne!(changed.tag, original.tag);
    assert!(matches!(images::build_image(Builder::Podman, &changed, false).unwrap(), images::BuildOutcome::Built(_)));
    assert!(Builder::Podman.exists(&changed.tag));

    // A failing step: the error names the stack, the image, the step and its Dockerfile line.
    let dockerfile = copy.join("app/code/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let line = text.lines().count() + 1;
    std::fs::write(&dockerfile, format!("{text}RUN echo seaworthy-broken-step && exit 3\n")).unwrap();
    let broken = images::ImageBuild::new(&s, "phpdemo-code", "v2", &images::base()).unwrap();
    let e = images::build_image(Builder::Podman, &broken, false).unwrap_err();
    let be = e.downcast_ref::<images::BuildError>().expect("a BuildError");
    let text = be.to_string();
    assert!(text.starts_with("stack phpdemo: image phpdemo-code:v2 failed to build at Dockerfile step"), "{text}");
    assert!(text.contains(&format!("Dockerfile:{line}): RUN echo seaworthy-broken-step && exit 3")), "{text}");
    assert!(!Builder::Podman.exists(&broken.tag));
}

// ---------------------------------------------------------------------------------------------
// phpdemo: the init container copies the code out of the code-only image into the emptyDir
// that php-fpm and nginx share; /api.php prints the config.php php-fpm sees.

fn phpdemo_pod(sb: &mut Sandbox, s: &Stack, code: &str) -> Pod {
    let mut o = opts(&[80]);
    o.images = vec![("init-phpdemo-src".into(), format!("phpdemo-code:{code}"))];
    let pod = sb.run_pod(s, "phpdemo", &o, INIT).unwrap();
    pod.wait_ready(READY).unwrap();
    pod
}

#[test]
fn phpdemo_serves_the_configmap_config_v1_and_v2() {
    require_images!();
    let s = stack("phpdemo");
    let want = php_config(&s.mounted_file("phpdemo", "php-fpm", "/data/www/config.php").unwrap().text());
    let mut sb = Sandbox::new("phpdemo-config").unwrap();
    for version in ["v1", "v2"] {
        let pod = phpdemo_pod(&mut sb, &s, version);
        let a = get(&pod.url(80, "/api.php").unwrap()).unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        let got: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {a:?}"));
        assert_eq!(got, want, "php-fpm serves the ConfigMap's config.php");
        assert_eq!(a.header("x-seaworthy-version"), version, "the code image's VERSION");
        assert_eq!(a.header("x-seaworthy-backend"), pod.name, "POD_NAME from the downward API");
        sb.remove_pod(&pod).unwrap();
    }
}

#[test]
fn phpdemo_without_the_configmap_serves_the_baked_in_config() {
    require_images!();
    let s = variant("phpdemo", "no-configmap");
    let baked = std::fs::read_to_string(s.dir.join("app/code/src/config.php")).unwrap();
    let mut sb = Sandbox::new("phpdemo-no-cm").unwrap();
    let pod = phpdemo_pod(&mut sb, &s, "v1");
    let a = get(&pod.url(80, "/api.php").unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {a:?}"));
    assert_eq!(got, php_config(&baked));
    let good = php_config(&stack("phpdemo").mounted_file("phpdemo", "php-fpm", "/data/www/config.php").unwrap().text());
    assert_ne!(got, good, "the variant must not serve the ConfigMap's config");
}

/// A request in flight while the Pod is stopped: finished by the good stack (SIGTERM becomes
/// SIGQUIT, the graceful stop of php-fpm and nginx), cut by the abrupt variant (SIGKILL). The
/// sandbox comes back too: its Pods (and their logs) stay until the caller is done.
fn phpdemo_stop_with_request_in_flight(s: &Stack, label: &str) -> Stopped {
    let mut sb = Sandbox::new(label).unwrap();
    let pod = phpdemo_pod(&mut sb, s, "v1");
    let url = pod.url(80, &format!("/api.php?sleep={SLOW_SECS}")).unwrap();
    let (answer, took) = stop_with_request_in_flight(&pod, url, PHPDEMO_GRACE);
    Stopped { answer, took, pod, _sandbox: sb }
}

const PHPDEMO_GRACE: Duration = Duration::from_secs(35);

#[test]
fn phpdemo_drains_on_sigterm() {
    require_images!();
    let Stopped { answer, took, pod, _sandbox } = phpdemo_stop_with_request_in_flight(&stack("phpdemo"), "phpdemo-drain");
    let a = assert_drained(answer, took, PHPDEMO_GRACE, || pod_logs(&pod));
    assert!(a.body.contains("\"host\""), "{a:?}");
}

#[test]
fn phpdemo_abrupt_stop_cuts_requests_in_flight() {
    require_images!();
    let Stopped { answer, took, .. } = phpdemo_stop_with_request_in_flight(&variant("phpdemo", "abrupt-stop"), "phpdemo-abrupt");
    assert_cut(answer, took);
}

/// The kubelet's termination sequence (every preStop at once, then each container's stop signal
/// as its own hook ends) with keep-alive clients still sending to the Pod: nginx must never be
/// left without php-fpm. With both hooks a plain `sleep 5`, php-fpm got SIGQUIT while nginx still
/// took requests on open connections, and answered them 502 (shared/lab-runs/2026-12-06).
#[test]
fn phpdemo_answers_through_the_kubelets_termination_sequence() {
    require_images!();
    let s = stack("phpdemo");
    let mut sb = Sandbox::new("phpdemo-terminate").unwrap();
    let pod = phpdemo_pod(&mut sb, &s, "v1");
    let t = through_termination(&pod, "/api.php", 8, PHPDEMO_GRACE);
    assert!(t.ok > 0 && t.refused > 0, "the clients were answered, then refused once the Pod was gone: {t:?}");
    assert_eq!(t.not_2xx(), 0, "keep-alive requests were answered 5xx while the Pod terminated: {t:?}\n{}", pod_logs(&pod));
    let exit = |c: &str| t.terminated.iter().find(|x| x.container == c).unwrap().exited;
    assert!(exit("php-fpm") >= exit("nginx"), "php-fpm outlives nginx: {t:?}");
    assert!(exit("php-fpm") < PHPDEMO_GRACE - Duration::from_secs(2), "stopped by its hook's end, not SIGKILL: {t:?}");
}

// ---------------------------------------------------------------------------------------------
// myblog: Django under gunicorn against the MariaDB image, reached as Service `mysql`.

fn title() -> String {
    format!("seaworthy-{:08x}", rand::random::<u32>())
}

fn add_article(app: &Pod, title: &str) -> Answer {
    let a = request(client(Duration::from_secs(30)).post(app.url(8002, "/blog/add/").unwrap()).form(&[("title", title)])).unwrap();
    assert_eq!(a.status, 201, "{a:?}");
    assert!(a.body.starts_with("added "), "{a:?}");
    a
}

/// The mysql Pod replaced as a Recreate rollout does: stopped (SIGTERM, clean shutdown), removed,
/// a new one started on the same claim.
fn replace(sb: &mut Sandbox, s: &Stack, old: &Pod, publish: &[i32]) -> Pod {
    old.stop(Duration::from_secs(30)).unwrap();
    sb.remove_pod(old).unwrap();
    let mut o = opts(publish);
    if s.stateful_set(&old.workload).is_some() {
        o.name = Some(old.name.clone());
    }
    let new = sb.run_pod(s, &old.workload, &o, INIT).unwrap();
    new.wait_ready(READY).unwrap();
    new
}

fn myblog_up(sb: &mut Sandbox, s: &Stack) -> (Pod, Pod) {
    let db = sb.run_pod(s, "mysql", &opts(&[]), INIT).unwrap();
    db.wait_ready(READY).unwrap();
    let app = sb.run_pod(s, "myblog", &opts(&[8002]), INIT).unwrap();
    app.wait_ready(READY).unwrap();
    (db, app)
}

#[test]
fn myblog_against_the_mariadb_image() {
    require_images!();
    let s = stack("myblog");
    let mut sb = Sandbox::new("myblog").unwrap();
    let (db, app) = myblog_up(&mut sb, &s);
    let index = app.url(8002, "/blog/index/").unwrap();
    let a = get(&index).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-seaworthy-version"), "v1");
    assert_eq!(a.header("x-seaworthy-backend"), app.name);

    let t = title();
    add_article(&app, &t);
    assert!(get(&index).unwrap().body.contains(&t), "the new row is on the page");

    // The row lives on the PVC: a new MariaDB Pod on the same claim still has it.
    let _db = replace(&mut sb, &s, &db, &[]);
    get_until(&index, Duration::from_secs(60), |a| a.status == 200 && a.body.contains(&t)).unwrap();

    // gunicorn drains on SIGTERM: the request in flight is finished before it exits.
    let grace = Duration::from_secs(30);
    let (answer, took) = stop_with_request_in_flight(&app, app.url(8002, &format!("/blog/slow/?seconds={SLOW_SECS}")).unwrap(), grace);
    let a = assert_drained(answer, took, grace, || app.logs("myblog"));
    assert_eq!(a.body.trim(), format!("slept {SLOW_SECS}s"), "{a:?}");
    assert_eq!(app.exit_code("myblog").unwrap(), 0, "gunicorn exits cleanly after the drain");
}

#[test]
fn myblog_emptydir_mysql_loses_rows() {
    require_images!();
    let s = variant("myblog", "emptydir-mysql");
    let mut sb = Sandbox::new("myblog-emptydir").unwrap();
    let (db, app) = myblog_up(&mut sb, &s);
    let index = app.url(8002, "/blog/index/").unwrap();
    let t = title();
    add_article(&app, &t);
    assert!(get(&index).unwrap().body.contains(&t));
    let _db = replace(&mut sb, &s, &db, &[]);
    // The new database is empty (not even migrated: that was the init container's job).
    for _ in 0..5 {
        let a = get(&index).unwrap();
        assert!(!(a.status == 200 && a.body.contains(&t)), "the row survived an emptyDir: {a:?}");
        thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn myblog_wrong_mysql_host_never_gets_past_its_init_container() {
    require_images!();
    let s = variant("myblog", "wrong-mysql-host");
    let mut sb = Sandbox::new("myblog-wrong-host").unwrap();
    let db = sb.run_pod(&s, "mysql", &opts(&[]), INIT).unwrap();
    db.wait_ready(READY).unwrap();
    let app = sb.create_pod(&s, "myblog", &opts(&[8002])).unwrap();
    let e = format!("{:#}", app.start(Duration::from_secs(20)).unwrap_err());
    assert!(e.contains("initContainer migrate did not finish"), "{e}");
    assert!(e.contains("mysqldb"), "the migrate log names the host it cannot find: {e}");
    assert_eq!(app.status("myblog").unwrap(), "created", "the app container never started");
}

// ---------------------------------------------------------------------------------------------
// counter: nginx -> php-fpm x2 -> redis (appendonly on its PVC), all found by Service name.

fn visits(a: &Answer) -> u64 {
    let after = a.body.split("visited ").nth(1).unwrap_or_else(|| panic!("no count: {a:?}"));
    after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count: {a:?}"))
}

fn counter_up(sb: &mut Sandbox, s: &Stack) -> (Pod, Vec<Pod>, Pod) {
    counter_up_with(sb, s, 2)
}

fn counter_up_with(sb: &mut Sandbox, s: &Stack, app_pods: usize) -> (Pod, Vec<Pod>, Pod) {
    let redis = sb.run_pod(s, "counter-redis", &opts(&[]), INIT).unwrap();
    redis.wait_ready(READY).unwrap();
    let apps: Vec<Pod> = (0..app_pods).map(|_| sb.run_pod(s, "counter-app", &opts(&[]), INIT).unwrap()).collect();
    for a in &apps {
        a.wait_ready(READY).unwrap();
    }
    // nginx resolves `counter-app` when it starts: the app Pods come first.
    let nginx = sb.run_pod(s, "counter-nginx", &opts(&[80]), INIT).unwrap();
    nginx.wait_ready(READY).unwrap();
    (redis, apps, nginx)
}

/// Count a few visits, replace the redis Pod, and return (counts before, count after).
fn counter_across_redis_replacement(s: &Stack, label: &str) -> (Vec<u64>, u64, Vec<String>) {
    let mut sb = Sandbox::new(label).unwrap();
    let (redis, apps, nginx) = counter_up(&mut sb, s);
    let url = nginx.url(80, "/").unwrap();
    let mut counts = Vec::new();
    let mut backends = Vec::new();
    for _ in 0..6 {
        let a = get(&url).unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        counts.push(visits(&a));
        backends.push(a.header("x-seaworthy-backend").to_string());
    }
    let _redis = replace(&mut sb, s, &redis, &[]);
    let a = get_until(&url, Duration::from_secs(30), |a| a.status == 200).unwrap();
    drop(apps);
    (counts, visits(&a), backends)
}

#[test]
fn counter_counts_in_redis_across_app_pods_and_a_replaced_redis() {
    require_images!();
    let (counts, after, backends) = counter_across_redis_replacement(&stack("counter"), "counter");
    assert_eq!(counts, (1..=6).collect::<Vec<u64>>(), "one shared count, one INCR per visit");
    assert_eq!(after, 7, "the count carries on after redis is replaced (AOF on the PVC)");
    let mut distinct = backends.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "nginx spreads over both app Pods: {backends:?}");
}

#[test]
fn counter_emptydir_redis_starts_over() {
    require_images!();
    let (counts, after, _) = counter_across_redis_replacement(&variant("counter", "emptydir-redis"), "counter-emptydir");
    assert_eq!(counts.last(), Some(&6));
    assert_eq!(after, 1, "an emptyDir redis forgets the count");
}

#[test]
fn counter_wrong_redis_host_fails_with_the_apps_error() {
    require_images!();
    let s = variant("counter", "wrong-redis-host");
    let mut sb = Sandbox::new("counter-wrong-host").unwrap();
    let (_redis, _apps, nginx) = counter_up(&mut sb, &s);
    let a = get(&nginx.url(80, "/").unwrap()).unwrap();
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.body.contains("cannot reach redis at counter-redis-wrong:6379"), "{a:?}");
}

/// The counter-app Deployment's terminationGracePeriodSeconds (counter-nginx has none: 30 s).
const COUNTER_GRACE: Duration = Duration::from_secs(30);

/// A slow visit through nginx (php-fpm holds it for SLOW_SECS before it counts) while the Pod of
/// `stop` (counter-app or counter-nginx) is stopped: both turn SIGTERM into SIGQUIT, their
/// graceful stop, so the visit is answered and counted.
fn counter_drain(stop: &str, label: &str) {
    let s = stack("counter");
    let mut sb = Sandbox::new(label).unwrap();
    // One app Pod: the slow visit must reach the Pod being stopped.
    let (redis, apps, nginx) = counter_up_with(&mut sb, &s, 1);
    let url = nginx.url(80, &format!("/?sleep={SLOW_SECS}")).unwrap();
    let pod = if stop == "counter-app" { &apps[0] } else { &nginx };
    let (answer, took) = stop_with_request_in_flight(pod, url, COUNTER_GRACE);
    let a = assert_drained(answer, took, COUNTER_GRACE, || [&redis, &apps[0], &nginx].map(pod_logs).join("\n"));
    assert_eq!(visits(&a), 1, "{a:?}");
    assert_eq!(a.header("x-seaworthy-backend"), apps[0].name, "{a:?}");
    for (c, _) in &pod.containers {
        assert_eq!(pod.exit_code(c).unwrap(), 0, "{c} exits cleanly after the drain:\n{}", pod_logs(pod));
    }
}

#[test]
fn counter_app_drains_on_sigterm() {
    require_images!();
    counter_drain("counter-app", "counter-app-drain");
}

#[test]
fn counter_nginx_drains_on_sigterm() {
    require_images!();
    counter_drain("counter-nginx", "counter-nginx-drain");
}

// ---------------------------------------------------------------------------------------------
// sms-web: web -> redis (broker) -> celery worker -> redis (results) -> web; beat -> worker.

#[test]
fn sms_web_runs_a_celery_task_per_request_and_drains() {
    require_images!();
    let s = stack("sms-web");
    let mut sb = Sandbox::new("sms-web").unwrap();
    let redis = sb.run_pod(&s, "sms-redis", &opts(&[]), INIT).unwrap();
    redis.wait_ready(READY).unwrap();
    let worker = sb.run_pod(&s, "sms-celery", &opts(&[]), INIT).unwrap();
    let beat = sb.run_pod(&s, "sms-beat", &opts(&[]), INIT).unwrap();
    let web = sb.run_pod(&s, "sms-web", &opts(&[8004]), INIT).unwrap();
    for p in [&worker, &beat, &web] {
        p.wait_ready(READY).unwrap();
    }
    let entry = format!("{}{}", web.url(8004, "").unwrap(), s.spec.entry.path);
    let a = get_until(&entry, Duration::from_secs(60), |a| a.status == 200).unwrap_or_else(|e| panic!("{e:#}\n{}", worker.logs("sms-celery")));
    let j: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(j["result"]["to"], "10086", "{j}");
    assert_eq!(j["result"]["worker"], worker.name.as_str(), "the worker Pod ran the task: {j}");
    assert_eq!(j["Host"], web.name.as_str());
    assert_eq!(a.header("x-seaworthy-version"), "v1");

    // beat schedules a heartbeat every BEAT_INTERVAL_SECONDS; a worker runs it.
    let hb = get_until(&web.url(8004, "/beat").unwrap(), Duration::from_secs(60), |a| a.status == 200).unwrap();
    assert!(hb.body.contains(&worker.name), "{hb:?}");

    let grace = Duration::from_secs(60);
    let (answer, took) = stop_with_request_in_flight(&web, web.url(8004, &format!("/slow?seconds={SLOW_SECS}")).unwrap(), grace);
    let a = assert_drained(answer, took, grace, || web.logs("sms-web"));
    assert!(a.body.starts_with(&format!("slept {SLOW_SECS}s")), "{a:?}");
}

/// The sms-celery Deployment's terminationGracePeriodSeconds.
const CELERY_GRACE: Duration = Duration::from_secs(60);

/// The worker's promise (sms-celery.yaml): SIGTERM is celery's warm shutdown, the task at hand
/// is finished before the worker exits, its result stored. A task that takes SLOW_SECS is sent
/// from inside the worker's container (same image and env), and the worker stopped once it has
/// started the task; the result is then read from the result backend in the redis Pod.
#[test]
fn sms_celery_worker_finishes_its_task_on_sigterm() {
    require_images!();
    let s = stack("sms-web");
    let mut sb = Sandbox::new("sms-celery-drain").unwrap();
    let redis = sb.run_pod(&s, "sms-redis", &opts(&[]), INIT).unwrap();
    redis.wait_ready(READY).unwrap();
    let worker = sb.run_pod(&s, "sms-celery", &opts(&[]), INIT).unwrap();
    worker.wait_ready(READY).unwrap();
    let logs = || [&redis, &worker].map(pod_logs).join("\n");

    let send = format!("import tasks; print(tasks.slow.delay({SLOW_SECS}).id)");
    let out = worker.exec("sms-celery", &["python3", "-c", &send]).unwrap();
    assert!(out.status.success(), "sending the task: {}\n{}", String::from_utf8_lossy(&out.stderr), logs());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // Started: the worker logs `Task tasks.slow[<id>] received` as it hands it to a pool process.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !worker.logs("sms-celery").contains(&format!("tasks.slow[{id}] received")) {
        assert!(Instant::now() < deadline, "the worker never took task {id}:\n{}", logs());
        thread::sleep(Duration::from_millis(200));
    }
    let received = Instant::now();
    let took = worker.stop(CELERY_GRACE).unwrap();
    let ran = received.elapsed();
    assert!(ran >= Duration::from_secs(SLOW_SECS - 1), "the stop did not wait for the task in progress: {took:?}\n{}", logs());
    assert!(took < CELERY_GRACE - Duration::from_secs(2), "stopped by SIGKILL at the deadline, not by the warm shutdown: {took:?}\n{}", logs());
    assert_eq!(worker.exit_code("sms-celery").unwrap(), 0, "the worker exits cleanly after its task:\n{}", logs());

    let backend: std::collections::BTreeMap<_, _> = s.container_env("sms-celery", "sms-celery").unwrap().into_iter().collect();
    let db = backend["CELERY_RESULT_BACKEND"].rsplit('/').next().unwrap().to_string();
    let out = redis.exec("redis", &["redis-cli", "-n", &db, "GET", &format!("celery-task-meta-{id}")]).unwrap();
    let stored = String::from_utf8_lossy(&out.stdout).to_string();
    let meta: serde_json::Value = serde_json::from_str(stored.trim()).unwrap_or_else(|e| panic!("no result stored for task {id} ({e}): {stored:?}\n{}", logs()));
    assert_eq!(meta["status"], "SUCCESS", "{meta}");
    assert_eq!(meta["result"]["worker"], worker.name.as_str(), "{meta}");
    assert_eq!(meta["result"]["slept"].as_f64(), Some(SLOW_SECS as f64), "{meta}");
}

// ---------------------------------------------------------------------------------------------
// flask-sts: gunicorn StatefulSet Pods behind an nginx that re-resolves the headless Service.

fn flask_up(sb: &mut Sandbox, s: &Stack) -> (Vec<Pod>, Pod) {
    flask_up_with(sb, s, 2)
}

fn flask_up_with(sb: &mut Sandbox, s: &Stack, replicas: usize) -> (Vec<Pod>, Pod) {
    let pods: Vec<Pod> = (0..replicas)
        .map(|i| sb.run_pod(s, "flask-sts", &PodOptions { ordinal: Some(i), publish: vec![80], ..Default::default() }, INIT).unwrap())
        .collect();
    for p in &pods {
        p.wait_ready(READY).unwrap();
    }
    let nginx = sb.run_pod(s, "flask-nginx", &opts(&[80]), INIT).unwrap();
    nginx.wait_ready(READY).unwrap();
    (pods, nginx)
}

/// Every StatefulSet Pod replaced, each with a new address (as in a cluster); returns the new ones.
fn replace_flask_pods(sb: &mut Sandbox, s: &Stack, pods: Vec<Pod>) -> Vec<Pod> {
    pods.iter()
        .map(|old| {
            let new = replace(sb, s, old, &[80]);
            assert_ne!(new.ip, old.ip, "a replaced Pod has a new address");
            new
        })
        .collect()
}

#[test]
fn flask_sts_behind_nginx_follows_new_pod_ips() {
    require_images!();
    let s = stack("flask-sts");
    let mut sb = Sandbox::new("flask-sts").unwrap();
    let (pods, nginx) = flask_up(&mut sb, &s);
    let url = nginx.url(80, "/").unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let a = get(&url).unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-seaworthy-proxy"), nginx.name, "answered through the nginx Pod");
        seen.insert(a.header("x-seaworthy-backend").to_string());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["flask-sts-0", "flask-sts-1"], "both StatefulSet Pods answer");

    let _new = replace_flask_pods(&mut sb, &s, pods);
    // nginx asks DNS again (valid=3s): the new addresses answer.
    get_until(&url, Duration::from_secs(20), |a| a.status == 200).unwrap_or_else(|e| panic!("{e:#}\n{}", nginx.logs("nginx")));
}

#[test]
fn flask_sts_static_proxy_goes_stale() {
    require_images!();
    let s = variant("flask-sts", "static-proxy");
    let mut sb = Sandbox::new("flask-static").unwrap();
    let (pods, nginx) = flask_up(&mut sb, &s);
    let url = nginx.url(80, "/").unwrap();
    assert_eq!(get(&url).unwrap().status, 200, "the static proxy works until the Pods move");
    let _new = replace_flask_pods(&mut sb, &s, pods);
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = client(Duration::from_secs(10));
    while Instant::now() < deadline {
        if let Ok(a) = request(c.get(&url)) {
            assert_ne!(a.status, 200, "nginx cached the old addresses, nothing can answer: {a:?}");
        }
        thread::sleep(Duration::from_millis(500));
    }
}

fn flask_stop_with_request_in_flight(s: &Stack, label: &str) -> Stopped {
    let mut sb = Sandbox::new(label).unwrap();
    let pod = sb.run_pod(s, "flask-sts", &PodOptions { ordinal: Some(0), publish: vec![80], ..Default::default() }, INIT).unwrap();
    pod.wait_ready(READY).unwrap();
    let url = pod.url(80, &format!("/slow?seconds={SLOW_SECS}")).unwrap();
    let (answer, took) = stop_with_request_in_flight(&pod, url, FLASK_GRACE);
    Stopped { answer, took, pod, _sandbox: sb }
}

const FLASK_GRACE: Duration = Duration::from_secs(30);

#[test]
fn flask_sts_drains_on_sigterm() {
    require_images!();
    let Stopped { answer, took, pod, _sandbox } = flask_stop_with_request_in_flight(&stack("flask-sts"), "flask-drain");
    let a = assert_drained(answer, took, FLASK_GRACE, || pod_logs(&pod));
    assert!(a.body.starts_with(&format!("slept {SLOW_SECS}s on flask-sts-0")), "{a:?}");
}

/// The nginx Deployment has no terminationGracePeriodSeconds: Kubernetes' default.
const FLASK_NGINX_GRACE: Duration = Duration::from_secs(30);

/// flask-sts-nginx turns SIGTERM into SIGQUIT: a slow request it is proxying is answered.
#[test]
fn flask_sts_nginx_drains_on_sigterm() {
    require_images!();
    let s = stack("flask-sts");
    let mut sb = Sandbox::new("flask-nginx-drain").unwrap();
    let (pods, nginx) = flask_up_with(&mut sb, &s, 1);
    let url = nginx.url(80, &format!("/slow?seconds={SLOW_SECS}")).unwrap();
    let (answer, took) = stop_with_request_in_flight(&nginx, url, FLASK_NGINX_GRACE);
    let a = assert_drained(answer, took, FLASK_NGINX_GRACE, || [&pods[0], &nginx].map(pod_logs).join("\n"));
    assert!(a.body.starts_with(&format!("slept {SLOW_SECS}s on flask-sts-0")), "{a:?}");
    assert_eq!(a.header("x-seaworthy-proxy"), nginx.name, "answered through the nginx Pod");
    assert_eq!(nginx.exit_code("nginx").unwrap(), 0, "nginx exits cleanly after the drain:\n{}", pod_logs(&nginx));
}

#[test]
fn flask_sts_abrupt_variant_cuts_requests_in_flight() {
    require_images!();
    let Stopped { answer, took, .. } = flask_stop_with_request_in_flight(&variant("flask-sts", "abrupt"), "flask-abrupt");
    assert_cut(answer, took);
}

/// PUT a file on flask-sts-0, replace the Pod, GET it back: (status before, status after).
fn flask_volume_across_replacement(s: &Stack, label: &str) -> (u16, u16) {
    let mut sb = Sandbox::new(label).unwrap();
    let pod = sb.run_pod(s, "flask-sts", &PodOptions { ordinal: Some(0), publish: vec![80], ..Default::default() }, INIT).unwrap();
    pod.wait_ready(READY).unwrap();
    let name = title();
    let put = request(client(Duration::from_secs(30)).put(pod.url(80, &format!("/data/{name}")).unwrap()).body("kept")).unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let before = get(&pod.url(80, &format!("/data/{name}")).unwrap()).unwrap();
    let new = replace(&mut sb, s, &pod, &[80]);
    let after = get(&new.url(80, &format!("/data/{name}")).unwrap()).unwrap();
    if after.status == 200 {
        assert_eq!(after.body, "kept");
    }
    (before.status, after.status)
}

#[test]
fn flask_sts_pod_keeps_its_volume() {
    require_images!();
    assert_eq!(flask_volume_across_replacement(&stack("flask-sts"), "flask-volume"), (200, 200));
}

#[test]
fn flask_sts_emptydir_variant_loses_the_file() {
    require_images!();
    assert_eq!(flask_volume_across_replacement(&variant("flask-sts", "emptydir"), "flask-emptydir"), (200, 404));
}

// ---------------------------------------------------------------------------------------------
// wordpress: nginx + php-fpm containers of one image, against the MariaDB image.

/// `path` and `form` of a check's `setup` in stack.toml (the installer's form).
fn wordpress_setup(s: &Stack) -> (String, Vec<(String, String)>) {
    let check = s.spec.checks.iter().find(|c| c.params.contains_key("setup")).expect("a check with a setup form");
    let setup = check.params["setup"].as_table().unwrap();
    let form = setup["form"].as_table().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    (setup["path"].as_str().unwrap().to_string(), form)
}

fn wordpress_up(sb: &mut Sandbox, s: &Stack) -> (Pod, Pod) {
    let db = sb.run_pod(s, "wordpress-mysql", &opts(&[]), INIT).unwrap();
    db.wait_ready(READY).unwrap();
    let wp = sb.run_pod(s, "wordpress", &opts(&[80]), INIT).unwrap();
    wp.wait_ready(READY).unwrap();
    (db, wp)
}

fn wordpress_stop_with_request_in_flight(s: &Stack, label: &str) -> Stopped {
    let mut sb = Sandbox::new(label).unwrap();
    let (_db, wp) = wordpress_up(&mut sb, s);
    let url = wp.url(80, &format!("/seaworthy/slow?ms={}", SLOW_SECS * 1000)).unwrap();
    let (answer, took) = stop_with_request_in_flight(&wp, url, WORDPRESS_GRACE);
    Stopped { answer, took, pod: wp, _sandbox: sb }
}

const WORDPRESS_GRACE: Duration = Duration::from_secs(60);

/// Run WordPress's installer (the checks' setup form) and return the site title it set.
fn wordpress_install(s: &Stack, wp: &Pod) -> String {
    let (path, form) = wordpress_setup(s);
    let a = request(client(Duration::from_secs(120)).post(wp.url(80, &path).unwrap()).form(&form)).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("Success!"), "the installer ran against MariaDB: {}", &a.body[..a.body.len().min(2000)]);
    form.iter().find(|(k, _)| k == "weblog_title").map(|(_, v)| v.clone()).unwrap()
}

/// The site's name, read back from the database through the REST index (theme-independent: the
/// image installs no theme package). None while WordPress is not installed (it redirects every
/// page to its installer then); panics on any other answer.
fn wordpress_site_name(wp: &Pod) -> Option<String> {
    let home = get(&wp.url(80, "/?rest_route=/").unwrap()).unwrap();
    if home.status == 302 && home.header("location").contains("/wp-admin/install.php") {
        return None;
    }
    assert_eq!(home.status, 200, "{home:?}");
    let j: serde_json::Value = serde_json::from_str(&home.body).unwrap_or_else(|e| panic!("{e}: {home:?}"));
    Some(j["name"].as_str().unwrap_or_else(|| panic!("no name: {j}")).to_string())
}

/// Installed, then the MariaDB Pod replaced (Recreate): what the site says after (None: the
/// installer again). The database may answer errors while it starts: retried for a minute.
fn wordpress_installed_across_mysql_replacement(s: &Stack, label: &str) -> (Pod, Sandbox, String, Option<String>) {
    let mut sb = Sandbox::new(label).unwrap();
    let (db, wp) = wordpress_up(&mut sb, s);
    let title = wordpress_install(s, &wp);
    assert_eq!(wordpress_site_name(&wp).as_deref(), Some(title.as_str()));
    let _db = replace(&mut sb, s, &db, &[]);
    let url = wp.url(80, "/?rest_route=/").unwrap();
    get_until(&url, Duration::from_secs(60), |a| a.status == 200 || a.status == 302).unwrap();
    let after = wordpress_site_name(&wp);
    (wp, sb, title, after)
}

#[test]
fn wordpress_installs_and_serves_against_the_mariadb_image() {
    require_images!();
    let s = stack("wordpress");
    let (wp, _sb, title, after) = wordpress_installed_across_mysql_replacement(&s, "wordpress");
    assert_eq!(after.as_deref(), Some(title.as_str()), "the install lives on the PVC: a new MariaDB Pod on the same claim has it");
    let home = get(&wp.url(80, "/?rest_route=/").unwrap()).unwrap();
    assert_eq!(home.header("x-seaworthy-version"), "v1");
    assert_eq!(home.header("x-seaworthy-backend"), wp.name);
}

#[test]
fn wordpress_mysql_emptydir_forgets_the_install() {
    require_images!();
    let (_wp, _sb, _title, after) = wordpress_installed_across_mysql_replacement(&variant("wordpress", "mysql-emptydir"), "wordpress-emptydir");
    assert_eq!(after, None, "a new MariaDB Pod on an emptyDir starts empty: WordPress sends every page to its installer again");
}

#[test]
fn wordpress_drains_on_sigterm() {
    require_images!();
    let Stopped { answer, took, pod, _sandbox } = wordpress_stop_with_request_in_flight(&stack("wordpress"), "wordpress-drain");
    let a = assert_drained(answer, took, WORDPRESS_GRACE, || pod_logs(&pod));
    assert!(a.body.starts_with(&format!("slept {SLOW_SECS}")), "{a:?}");
}

#[test]
fn wordpress_abrupt_stop_cuts_requests_in_flight() {
    require_images!();
    let Stopped { answer, took, .. } = wordpress_stop_with_request_in_flight(&variant("wordpress", "abrupt-stop"), "wordpress-abrupt");
    assert_cut(answer, took);
}

/// The same termination sequence as phpdemo's: wordpress is nginx + php-fpm in one Pod too.
#[test]
fn wordpress_answers_through_the_kubelets_termination_sequence() {
    require_images!();
    let s = stack("wordpress");
    let mut sb = Sandbox::new("wordpress-terminate").unwrap();
    let (_db, wp) = wordpress_up(&mut sb, &s);
    let t = through_termination(&wp, "/seaworthy/slow?ms=0", 8, WORDPRESS_GRACE);
    assert!(t.ok > 0 && t.refused > 0, "the clients were answered, then refused once the Pod was gone: {t:?}");
    assert_eq!(t.not_2xx(), 0, "keep-alive requests were answered 5xx while the Pod terminated: {t:?}\n{}", pod_logs(&wp));
    let exit = |c: &str| t.terminated.iter().find(|x| x.container == c).unwrap().exited;
    assert!(exit("php-fpm") >= exit("nginx"), "php-fpm outlives nginx: {t:?}");
}

#[test]
fn wordpress_wrong_db_host_shows_the_database_error() {
    require_images!();
    let good = stack("wordpress");
    let check = good.spec.checks.iter().find(|c| c.name == "service-discovery").unwrap();
    let path = check.params["path"].as_str().unwrap();
    let expect = check.params["expect_error"].as_str().unwrap();
    let expect_status = check.params["expect_status"].as_integer().unwrap();
    // The good stack, on the same images: the page answers, without the error.
    let mut sb = Sandbox::new("wordpress-right-host").unwrap();
    let (_db, wp) = wordpress_up(&mut sb, &good);
    let a = get(&wp.url(80, path).unwrap()).unwrap();
    assert_eq!(a.status as i64, expect_status, "{a:?}");
    assert!(!a.body.contains(expect), "{a:?}");
    drop(sb);

    let mut sb = Sandbox::new("wordpress-wrong-host").unwrap();
    let (_db, wp) = wordpress_up(&mut sb, &good.variant("wrong-db-host").unwrap());
    let a = get(&wp.url(80, path).unwrap()).unwrap();
    assert_eq!(a.status, 500, "{a:?}");
    assert!(a.body.contains(expect), "{a:?}");
    assert!(a.body.contains("wordpress-mysql-wrong"), "the error names the host: {a:?}");
}

#[test]
fn flask_sts_v2_image_serves_v2() {
    require_images!();
    let s = stack("flask-sts");
    let mut sb = Sandbox::new("flask-v2").unwrap();
    for version in ["v1", "v2"] {
        let o = PodOptions { ordinal: Some(0), publish: vec![80], images: vec![("flask".into(), format!("flask-sts-app:{version}"))], ..Default::default() };
        let pod = sb.run_pod(&s, "flask-sts", &o, INIT).unwrap();
        pod.wait_ready(READY).unwrap();
        let a = get(&pod.url(80, "/").unwrap()).unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-seaworthy-version"), version, "{a:?}");
        assert_eq!(a.header("x-seaworthy-backend"), "flask-sts-0");
        sb.remove_pod(&pod).unwrap();
    }
}
