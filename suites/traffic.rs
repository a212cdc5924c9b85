//! The load generator against real servers on loopback: Debian's nginx serving a static file,
//! nginx load-balancing real Python backends that get killed, drained, or stall, and nginx
//! `stream` balancing per connection (as kube-proxy and IPVS do) over backends that get killed
//! mid-request or must all be reached.
//!
//! Every assertion is about counts and shapes (records, buckets, backends), never about how long
//! something took on this machine.

// `serial()`'s guard is held across awaits on purpose: each test has its own runtime, and the
// lock only keeps two tests' servers and loads from sharing the 2 cores at once.
#![allow(clippy::await_holding_lock)]

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::Signal;
use seaworthy::local::{self, Nginx};
use seaworthy::traffic::cli::{run_cli, LoadArgs};
use seaworthy::traffic::{flags, ConnectionPolicy, FailureKind, Load, LoadConfig, Outcome, Record, Report, Schedule, Summary};

mod support;

use support::backends::{backend, proxy_conf};

/// The tests measure schedules in microseconds; running them one at a time keeps one test's
/// servers from stealing the other's CPU on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const SEC: Duration = Duration::from_secs(1);

/// nginx serving one static file; returns (nginx, url).
fn static_nginx(dir: &Path) -> (Nginx, String) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "<h1>seaworthy</h1>\n".repeat(20)).unwrap();
    let port = local::free_port();
    let conf = format!(
        "server {{\n listen 127.0.0.1:{port};\n access_log off;\n keepalive_requests 1000000;\n root {}/www;\n}}\n",
        dir.display()
    );
    (Nginx::start(dir, &conf).unwrap(), format!("http://127.0.0.1:{port}/index.html"))
}

fn failures(rep: &Report) -> Vec<Record> {
    rep.records.iter().filter(|r| !r.is_ok()).copied().collect()
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Every planned request was started within a bucket of its plan: each bucket's sent count is
/// the schedule's count, give or take the one request that crosses each boundary, plus the few
/// (at most 1% of the rate on either side of the boundary: the bucket after the last planned one
/// plans nothing but receives the stragglers) that a descheduled test thread on a busy 2-core CI
/// machine pushes across it: a generator that lost the schedule would be off by far more.
fn assert_schedule_kept(s: &Summary) {
    assert_eq!(s.sent, s.planned, "every planned request must be sent");
    let mut before = 0;
    for b in &s.timeline {
        let planned = b.planned.expect("open model buckets carry the plan");
        assert!(
            b.sent.abs_diff(planned) <= 1 + planned.max(before) / 100,
            "bucket at {}s: sent {} but the schedule planned {}\n{}",
            b.t_s,
            b.sent,
            planned,
            s.render()
        );
        before = planned;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_against_static_nginx_is_exact() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, url) = static_nginx(dir.path());

    let cfg = LoadConfig::constant(&url, 1000.0, 3 * SEC).unwrap();
    let rep = Load::start(cfg).await.unwrap().finish().await;
    let s = rep.summary(SEC);

    assert_eq!(s.planned, 3000);
    assert_eq!(rep.records.len(), 3000, "one record per planned request");
    assert_eq!(s.completed, s.planned);
    assert_eq!(s.failed, 0, "{}", s.render());
    assert_eq!(s.status_codes.get("200"), Some(&3000));
    assert!(s.failures.is_empty());
    assert_eq!(s.rate_held, Some(true), "{}", s.render());
    assert_eq!(s.timeline.iter().take(3).map(|b| b.planned.unwrap()).collect::<Vec<_>>(), vec![1000, 1000, 1000]);
    assert_schedule_kept(&s);
    // Planned offsets are exactly the schedule's: request i at i ms.
    let mut planned: Vec<u64> = rep.records.iter().map(|r| r.planned_ns).collect();
    planned.sort_unstable();
    assert!(planned.iter().enumerate().all(|(i, &p)| p == i as u64 * 1_000_000));
    // Corrected latency can only be at least the service time.
    assert!(rep.records.iter().all(|r| r.latency_us >= r.service_us));
    let l = s.latency_ms;
    assert!(l.count == 3000 && l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
    assert!(s.service_time_ms.p50 <= l.p50);
    assert!(s.record_bytes <= 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_plans_the_integral_and_keeps_it() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, url) = static_nginx(dir.path());

    // 100 -> 500 req/s over 2 s: 200 + 400 requests (the integral of each second), not 2 x 300.
    let schedule = Schedule::ramp(&[(Duration::ZERO, 100.0), (2 * SEC, 500.0)]).unwrap();
    let rep = Load::start(LoadConfig::open(&url, schedule)).await.unwrap().finish().await;
    let s = rep.summary(SEC);
    assert_eq!(s.planned, 600);
    assert_eq!(s.timeline.iter().take(2).map(|b| b.planned.unwrap()).collect::<Vec<_>>(), vec![200, 400]);
    assert_eq!(s.ok, 600, "{}", s.render());
    assert_schedule_kept(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_abruptly_shows_as_failures_after_the_kill() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let a = backend(dir.path(), "backend-a");
    let mut b = backend(dir.path(), "backend-b");
    let port = local::free_port();
    let _nginx = Nginx::start(dir.path(), &proxy_conf(port, &[a.port, b.port])).unwrap();

    let cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), 200.0, 4 * SEC).unwrap();
    let load = Load::start(cfg).await.unwrap();
    tokio::time::sleep(1500 * Duration::from_millis(1)).await;
    let killed_at = load.elapsed();
    b.proc.signal_group(Signal::SIGKILL).unwrap();
    assert!(b.proc.wait_timeout(5 * SEC).is_some(), "SIGKILL must end the backend");
    let rep = load.finish().await;
    let s = rep.summary(SEC);

    let failed = failures(&rep);
    assert!(failed.len() >= 50, "half of ~500 requests after the kill reach the dead backend:\n{}", s.render());
    assert_eq!(s.failed, failed.len() as u64);
    assert_eq!(s.ok + s.failed, s.planned);
    assert_eq!(s.timeline.iter().map(|b| b.failed).sum::<u64>(), s.failed, "the timeline places every failure");
    // nginx answers for the dead backend: 502 (connect refused, or reset mid-request).
    assert!(failed.iter().all(|r| matches!(r.outcome(), Outcome::Status(502))), "{}", s.render());
    // Placed in time: no failure was observed before the kill; the timeline (by send time) has
    // none in the second before it, and has them in the seconds after it.
    let first_failure_ns = failed.iter().map(|r| r.ended_ns()).min().unwrap();
    assert!(first_failure_ns >= ns(killed_at), "a failure ended before the kill");
    assert_eq!(s.timeline[0].failed, 0, "{}", s.render());
    assert!(s.timeline[2].failed > 0 && s.timeline[3].failed > 0, "{}", s.render());
    // Placed on a backend: the dead one answered nothing sent after the kill, and its last
    // answer came before the first failure; the other one answered to the end.
    let dead = s.backend(&b.name).expect("backend-b answered before the kill");
    let alive = s.backend(&a.name).expect("backend-a answered");
    assert!(dead.last_seen_s <= killed_at.as_secs_f64(), "{dead:?} vs kill at {killed_at:?}");
    assert!(dead.last_seen_s * 1e9 < first_failure_ns as f64, "{dead:?} vs first failure {first_failure_ns} ns");
    assert!(alive.last_seen_s > killed_at.as_secs_f64());
    assert_eq!(alive.failed + dead.failed, 0, "failures come from nginx, not from a backend");
    assert_eq!(s.versions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_removed_gracefully_costs_no_request() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let a = backend(dir.path(), "backend-a");
    let b = backend(dir.path(), "backend-b");
    let port = local::free_port();
    let mut nginx = Nginx::start(dir.path(), &proxy_conf(port, &[a.port, b.port])).unwrap();

    let mut cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), 200.0, 4 * SEC).unwrap();
    // One warm connection; the pool opens the others on demand, each for a request at once. A
    // connection that nginx's old worker accepted before the reload but never got a request on
    // is not idle to nginx: it stays with the old worker and its old upstream list (the dead
    // backend) for good. A Service in front of Pods has no such thing.
    cfg.connections = 1;
    let load = Load::start(cfg).await.unwrap();
    tokio::time::sleep(SEC).await;
    // Drain: out of the upstream, reload (old workers finish what they have), wait, then stop.
    let conf = proxy_conf(port, &[a.port]);
    tokio::task::block_in_place(|| nginx.reload(&conf)).unwrap();
    tokio::time::sleep(SEC).await;
    let stopped_at = load.elapsed();
    b.proc.signal_group(Signal::SIGKILL).unwrap();
    let rep = load.finish().await;
    let s = rep.summary(SEC);

    assert_eq!(s.failed, 0, "a drained backend must cost no request:\n{}", s.render());
    assert_eq!(s.completed, s.planned);
    assert_eq!(s.sent, s.planned);
    let gone = s.backend(&b.name).expect("backend-b served before the drain");
    let kept = s.backend(&a.name).unwrap();
    assert!(gone.last_seen_s < stopped_at.as_secs_f64());
    assert!(kept.last_seen_s > stopped_at.as_secs_f64());
    assert_eq!(gone.count + kept.count, s.planned, "every response named its backend");
}

/// Accepts TCP connections and never answers; counts them.
struct Stalled {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stalled {
    fn start() -> Stalled {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (acc, st) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        conn.set_nonblocking(true).unwrap();
                        let _ = conn.read(&mut [0u8; 4096]);
                        held.push(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Stalled { port, accepted, stop, thread: Some(thread) }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backend_gives_timeouts_and_the_schedule_goes_on() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let a = backend(dir.path(), "backend-a");
    let b = backend(dir.path(), "backend-b");
    let stalled = Stalled::start();
    let port = local::free_port();
    let _nginx = Nginx::start(dir.path(), &proxy_conf(port, &[a.port, b.port, stalled.port])).unwrap();

    let timeout = SEC;
    let mut cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), 150.0, 3 * SEC).unwrap();
    cfg.timeout = timeout;
    let load = Load::start(cfg).await.unwrap();
    // A hang guard only: a stuck run would never return.
    let rep = tokio::time::timeout(60 * SEC, load.finish()).await.expect("the run must end");
    let s = rep.summary(SEC);

    assert!(stalled.accepted.load(Ordering::Relaxed) > 0, "nginx sent requests to the stalled backend");
    let timeouts = *s.failures.get(FailureKind::Timeout.name()).unwrap_or(&0);
    // Round robin over three: a third of the requests wait on the stalled one.
    assert!(timeouts >= s.planned / 5, "timeouts {timeouts} of {}:\n{}", s.planned, s.render());
    // And no more than that third: the healthy two answer everything they are sent.
    assert!(timeouts <= s.planned / 3 + s.planned / 20, "timeouts {timeouts} of {}:\n{}", s.planned, s.render());
    assert_eq!(s.ok + timeouts, s.planned, "only timeouts fail:\n{}", s.render());
    assert_eq!(s.planned, 450);
    assert_schedule_kept(&s);
    for r in failures(&rep) {
        assert!(r.latency_us as u64 >= timeout.as_micros() as u64, "a timeout waited its full timeout");
        assert!(r.is_sent());
    }
    // The others kept answering throughout, on both healthy backends.
    for be in [&a, &b] {
        let seen = s.backend(&be.name).unwrap();
        assert!(seen.count as f64 >= s.planned as f64 / 5.0 && seen.failed == 0, "{seen:?}");
    }
    assert!(s.timeline.iter().take(3).all(|t| t.ok > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_early_closed_model_and_unreachable() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, url) = static_nginx(dir.path());

    // Stopped early: the schedule ends at the stop, every started request is recorded.
    let load = Load::start(LoadConfig::constant(&url, 500.0, 60 * SEC).unwrap()).await.unwrap();
    tokio::time::sleep(SEC / 2).await;
    let live = load.snapshot().summary(SEC);
    assert!(live.planned > 0 && live.planned < 30_000);
    let rep = load.stop().await;
    let s = rep.summary(SEC);
    assert!(s.planned >= live.planned && s.planned < 30_000, "{}", s.render());
    assert_eq!(rep.records.len() as u64, s.planned);
    assert_eq!(s.failed, 0);
    assert!(rep.records.iter().all(|r| r.planned_ns <= ns(rep.window)));

    // Closed model: N loops, exactly the requested count.
    let mut cfg = LoadConfig::closed(&url, 4, None);
    cfg.max_requests = Some(2000);
    let s = Load::start(cfg).await.unwrap().finish().await.summary(SEC);
    assert_eq!((s.planned, s.completed, s.ok), (2000, 2000, 2000), "{}", s.render());
    assert_eq!(s.mode, "closed");
    assert_eq!(s.rate_held, None);
    assert!(s.connections_opened <= 4);

    // Nothing listens: a clear error, not a run full of failures.
    let nowhere = format!("http://127.0.0.1:{}/", local::free_port());
    let err = Load::start(LoadConfig::constant(&nowhere, 10.0, SEC).unwrap()).await.err().expect("must fail");
    assert!(format!("{err:#}").contains("connection refused"), "{err:#}");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

fn args(a: &[&str]) -> Result<LoadArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("load").chain(a.iter().copied())).map(|c| c.load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_flags_json_and_exit_codes() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, url) = static_nginx(dir.path());

    for bad in [
        vec![url.as_str(), "--rate", "0"],
        vec![url.as_str(), "--rate", "fast"],
        vec![url.as_str(), "--duration", "10 parsecs", "--rate", "5"],
        vec![url.as_str(), "--ramp", "10s:5,20s:6"],
        vec![url.as_str(), "--rate", "5", "--ramp", "0s:1,1s:1"],
        vec![url.as_str(), "--rate", "5", "-H", "no colon"],
        vec![url.as_str(), "--rate", "5", "--no-keepalive", "--max-requests-per-connection", "5"],
        vec![url.as_str(), "--rate", "5", "--connection-max-age", "soon"],
        vec![url.as_str(), "--rate", "5", "--no-keepalive", "--connection-max-idle", "1s"],
    ] {
        let e = args(&bad).err().unwrap_or_else(|| panic!("{bad:?} must be refused"));
        assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
    }
    // Accepted by clap, refused with a message and exit 2.
    assert_eq!(run_cli(args(&[&url, "--rate", "5", "-c", "10", "--max-in-flight", "5"]).unwrap()).await.unwrap(), 2);
    assert_eq!(run_cli(args(&[&url, "--rate", "5", "--max-requests-per-connection", "0"]).unwrap()).await.unwrap(), 2);
    assert_eq!(run_cli(args(&[&url, "--rate", "5", "--connection-max-age", "0s"]).unwrap()).await.unwrap(), 2);
    assert_eq!(run_cli(args(&[&url]).unwrap()).await.unwrap(), 2, "no rate given");
    assert_eq!(run_cli(args(&["ftp://127.0.0.1/", "--rate", "5"]).unwrap()).await.unwrap(), 2);
    // Unreachable.
    let nowhere = format!("http://127.0.0.1:{}/", local::free_port());
    assert_eq!(run_cli(args(&[&nowhere, "--rate", "5", "-q"]).unwrap()).await.unwrap(), 1);

    let json = dir.path().join("out.json");
    let ok = args(&[&url, "--rate", "200", "--duration", "1s", "-q", "--json", json.to_str().unwrap()]).unwrap();
    let code = run_cli(ok).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // 3 = no failure, but a machine too busy to send on time; the JSON must then say so too.
    assert!(code == 0 || (code == 3 && v["rate_held"] == false), "exit {code}: {v}");
    assert_eq!(v["failed"], 0);
    for key in ["schema_version", "planned", "completed", "failed", "achieved_rps", "status_codes", "failures", "latency_ms", "timeline"] {
        assert!(v.get(key).is_some(), "JSON lacks {key}: {v}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(v["latency_ms"][key].is_number(), "latency_ms lacks {key}");
    }
    assert_eq!(v["planned"], 200);
    assert_eq!(v["completed"], 200);
    // `seaworthy load` keeps connections as long as the server does, as wrk/vegeta/oha do.
    for key in ["max_requests_per_connection", "connection_max_age_s", "connection_max_idle_s"] {
        assert!(v.get(key).is_some_and(|k| k.is_null()), "{key}: {v}");
    }
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back.status_codes.get("200"), Some(&200));
    assert!(back.render().contains("connections live as long as the server keeps them"));

    // The connection knobs reach the engine and the summary.
    let knobs = args(&[&url, "--rate", "100", "--duration", "1s", "-q", "--json", json.to_str().unwrap(), "--max-requests-per-connection", "10", "--connection-max-age", "500ms"]).unwrap();
    run_cli(knobs).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((v["max_requests_per_connection"].as_u64(), v["connection_max_age_s"].as_f64()), (Some(10), Some(0.5)), "{v}");
    assert!(v["connection_max_idle_s"].is_null(), "{v}");
    assert!(v["connections_opened"].as_u64().unwrap() >= 10, "100 requests, 10 per connection: {v}");
    let none = args(&[&url, "--rate", "50", "--duration", "1s", "-q", "--json", json.to_str().unwrap(), "--no-keepalive"]).unwrap();
    run_cli(none).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["max_requests_per_connection"], 1);
    assert_eq!(v["failed"], 0, "{v}");
    assert!(v["connections_opened"].as_u64().unwrap() >= 50, "a new connection per request: {v}");

    // A missing page: every request fails, so the exit code says so unless allowed.
    let missing = url.replace("index.html", "missing.html");
    assert_eq!(run_cli(args(&[&missing, "--rate", "50", "--duration", "500ms", "-q"]).unwrap()).await.unwrap(), 1);
    let allowed = args(&[&missing, "--rate", "50", "--duration", "500ms", "-q", "--allow-failures"]).unwrap();
    let code = run_cli(allowed).await.unwrap();
    assert!(code == 0 || code == 3, "--allow-failures must clear the failure exit (3: rate not held), got {code}");
}

// --- Connection handling: no hidden failure, and the spread over backends --------------------

/// nginx with a whole config of ours (`stream {}` needs the top level, which [`Nginx`] keeps),
/// listening once this returns on every port of `ports`.
fn nginx_with(dir: &Path, name: &str, main: &str, ports: &[u16]) -> local::Proc {
    if main.contains(STREAM_MODULE) && !Path::new(STREAM_MODULE).exists() {
        panic!("{STREAM_MODULE} is missing: install Debian's libnginx-mod-stream (.ci/packages.txt)");
    }
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    // Workers run as root when the test does: a temp dir is 0700 and `nobody` could not read it.
    let user = if nix::unistd::geteuid().is_root() { "user root;\n" } else { "" };
    // `load_module` must come before anything else.
    let (modules, main): (Vec<&str>, Vec<&str>) = main.lines().partition(|l| l.starts_with("load_module"));
    let (modules, main) = (modules.join("\n"), main.join("\n"));
    let conf = format!(
        "{modules}\n{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n{main}\n",
        d = d.display()
    )
    .replace("TMP", &d.join("tmp").display().to_string());
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new("/usr/sbin/nginx");
    cmd.arg("-p").arg(&d).arg("-c").arg(d.join("nginx.conf")).arg("-e").arg(d.join("error.log"));
    let mut proc = local::Proc::spawn(name, cmd, &d).unwrap();
    for &port in ports {
        if let Err(e) = local::wait_for_server(&mut proc, port, 10 * SEC) {
            panic!("{e:#}\nnginx error log:\n{}", std::fs::read_to_string(d.join("error.log")).unwrap_or_default());
        }
    }
    proc
}

/// The temp paths of an `http {}` block, so that nginx writes nothing outside the test's dir.
const HTTP_TEMPS: &str = "client_body_temp_path TMP/body; proxy_temp_path TMP/proxy; fastcgi_temp_path TMP/fcgi; \
                          uwsgi_temp_path TMP/uwsgi; scgi_temp_path TMP/scgi;";

/// Debian's nginx builds `stream` as a module (libnginx-mod-stream).
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// An L4 balancer on `port` over `upstreams`, one backend chosen per connection, as kube-proxy
/// and IPVS do; `method` is "" (round robin) or "random;".
fn stream_block(port: u16, method: &str, upstreams: &[u16]) -> String {
    let servers: String = upstreams.iter().map(|p| format!("  server 127.0.0.1:{p};\n")).collect();
    format!(
        "upstream pool{port} {{\n  {method}\n{servers}}}\n\
         server {{\n  listen 127.0.0.1:{port};\n  proxy_pass pool{port};\n  proxy_connect_timeout 1s;\n}}\n"
    )
}

/// A Python backend that takes `delay_s` per request and appends a line to `<name>.arrivals` as
/// each request arrives, before answering: what it received, counted apart from what answered.
const SLOW_PY: &str = r#"
import os, sys, time, http.server
port, name, delay, log = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        os.write(fd, b"GET\n")
        time.sleep(delay)
        body = ("hello from %s\n" % name).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seaworthy-Backend", name)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
S(("127.0.0.1", port), H).serve_forever()
"#;

struct Slow {
    name: String,
    proc: local::Proc,
    arrivals: std::path::PathBuf,
    port: u16,
}

fn slow_backend(dir: &Path, name: &str, delay: Duration) -> Slow {
    let script = dir.join("slow.py");
    std::fs::write(&script, SLOW_PY).unwrap();
    let port = local::free_port();
    let arrivals = dir.join(format!("{name}.arrivals"));
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script).arg(port.to_string()).arg(name).arg(delay.as_secs_f64().to_string()).arg(&arrivals);
    let proc = local::Proc::serve(name, cmd, dir, port, 10 * SEC).unwrap();
    Slow { name: name.into(), proc, arrivals, port }
}

impl Slow {
    fn arrived(&self) -> u64 {
        std::fs::read_to_string(&self.arrivals).unwrap_or_default().lines().count() as u64
    }
}

/// A Pod killed with requests in flight, behind a per-connection balancer that sends any new
/// connection to the survivor (a Service with another ready Pod): every request that reached the
/// dead backend and got no answer must be a failed request. A retry on a new connection would
/// be answered by the survivor and hide the kill, which is how a negative control that drops
/// graceful shutdown passed on a real cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cut_by_a_killed_server_are_failures_never_retries() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let delay = Duration::from_millis(300);
    let a = slow_backend(dir.path(), "slow-a", delay);
    let mut b = slow_backend(dir.path(), "slow-b", delay);
    let port = local::free_port();
    let conf = format!("load_module {STREAM_MODULE};\nstream {{\n{}}}\n", stream_block(port, "", &[a.port, b.port]));
    let _lb = nginx_with(dir.path(), "balancer", &conf, &[port]);

    // Long-lived keep-alive connections, reused again and again: the kill cuts requests on
    // connections that already carried some.
    let mut cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), 40.0, 4 * SEC).unwrap();
    cfg.connections = 24;
    cfg.connection = ConnectionPolicy::KEEP_ALIVE;
    assert!(cfg.retry_closed_idle, "retries stay on: only a request never written may be sent again");
    let load = Load::start(cfg).await.unwrap();
    tokio::time::sleep(2 * SEC).await;
    let killed_at = load.elapsed();
    b.proc.signal_group(Signal::SIGKILL).unwrap();
    assert!(b.proc.wait_timeout(5 * SEC).is_some(), "SIGKILL must end the backend");
    let rep = load.finish().await;
    let s = rep.summary(SEC);

    let answered_by_b = s.backend(&b.name).map_or(0, |seen| seen.count);
    let cut = b.arrived() - answered_by_b;
    let failed = failures(&rep);
    let counts = format!(
        "{} reached the killed backend, {answered_by_b} answered, {cut} cut; failed {} {:?}, retried {}; killed at {killed_at:?}\n{}",
        b.arrived(),
        s.failed,
        s.failures,
        s.retried,
        s.render()
    );
    eprintln!("{counts}");
    // 20 req/s of 300 ms each on the killed backend: about 6 in flight when it died.
    assert!(cut >= 3, "the kill must cut requests in flight: {counts}");
    assert!(s.failed >= cut, "every cut request must be a failure, none hidden by a retry: {counts}");
    for r in &failed {
        assert_eq!(r.outcome(), Outcome::Failure(FailureKind::Reset), "a cut request is a reset: {counts}");
        assert_eq!(r.flags & flags::RETRIED, 0, "a cut request is never sent again: {counts}");
        // Give or take a request written on a connection to the dead backend before the balancer's
        // close of it was seen here (a starved test process sees it late).
        assert!(r.started_ns() <= ns(killed_at) + ns(SEC / 2), "only requests in flight at the kill fail: {counts}");
    }
    assert!(failed.iter().filter(|r| r.flags & flags::NEW_CONNECTION == 0).count() as u64 >= cut, "cut on reused connections: {counts}");
    // A retry is allowed only for a request hyper gave back unwritten: it was answered.
    let retried: Vec<_> = rep.records.iter().filter(|r| r.flags & flags::RETRIED != 0).collect();
    assert_eq!(retried.len() as u64, s.retried, "each retry is flagged on its record: {counts}");
    assert!(retried.iter().all(|r| r.is_ok()), "{counts}");
    assert_eq!(s.ok + s.failed, s.planned);
    let survivor = s.backend(&a.name).expect("slow-a answered");
    assert!(survivor.last_seen_s > killed_at.as_secs_f64(), "the survivor answered after the kill: {counts}");
}

/// A server that closes idle keep-alive connections while the load runs costs no request: nginx
/// with a 200 ms `keepalive_timeout` while each connection waits 500 ms or more between requests
/// (margins of 300 ms, so no request is written as the server closes: that race, seen from the
/// client, is a cut request like any other); the checks' policy against a gunicorn-like 2 s
/// timeout at 4 req/s, where 8 connections taken in turn would idle 2 s each without the
/// policy's 1 s idle bound (a race at equal times that the server usually loses, so this case
/// guards the policy's outcome, not the bound itself); and a server that ends each connection
/// after 3 requests with `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_idle_connections_costs_no_request() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "<h1>seaworthy</h1>\n").unwrap();
    let (short, gunicorn_like, by_count) = (local::free_port(), local::free_port(), local::free_port());
    let www = dir.path().join("www");
    let conf = format!(
        "http {{\n {HTTP_TEMPS}\n access_log off;\n\
         server {{ listen 127.0.0.1:{short}; root {www}; keepalive_timeout 200ms; }}\n\
         server {{ listen 127.0.0.1:{gunicorn_like}; root {www}; keepalive_timeout 2s; }}\n\
         server {{ listen 127.0.0.1:{by_count}; root {www}; keepalive_requests 3; }}\n}}\n",
        www = www.display()
    );
    let _nginx = nginx_with(dir.path(), "closing", &conf, &[short, gunicorn_like, by_count]);
    let url = |port: u16| format!("http://127.0.0.1:{port}/index.html");

    // Unlimited keep-alive on our side, so every close is the server's: 2 req/s round 2
    // connections, each used connection is closed by the server 200 ms later, before its turn.
    let mut cfg = LoadConfig::constant(&url(short), 2.0, 6 * SEC).unwrap();
    cfg.connections = 2;
    cfg.connection = ConnectionPolicy::KEEP_ALIVE;
    let rep = Load::start(cfg).await.unwrap().finish().await;
    let s = rep.summary(SEC);
    eprintln!("idle close: failed {}, retried {}, connections opened {}", s.failed, s.retried, s.connections_opened);
    assert_eq!(s.planned, 12);
    assert_eq!((s.ok, s.failed), (12, 0), "idle connections closed by the server cost no request:\n{}", s.render());
    // The server did close them: after the 2 warm ones, each request needed a new connection
    // (give or take one answered so late, on a starved machine, that its connection's turn came
    // within 200 ms).
    assert!(s.connections_opened + 2 >= s.planned, "nginx closed the idle connections:\n{}", s.render());
    assert_eq!(rep.records.iter().filter(|r| r.flags & flags::RETRIED != 0).count() as u64, s.retried);

    let mut cfg = LoadConfig::constant(&url(gunicorn_like), 4.0, 6 * SEC).unwrap();
    cfg.connection = ConnectionPolicy::CHECKS;
    let s = Load::start(cfg).await.unwrap().finish().await.summary(SEC);
    eprintln!("checks' policy, 2 s server timeout: failed {}, retried {}, connections opened {}", s.failed, s.retried, s.connections_opened);
    assert_eq!((s.ok, s.failed), (24, 0), "{}", s.render());

    // The server ends each connection after 3 requests and says so: the connection is not used
    // again, so nothing fails and nothing needs a retry.
    let mut cfg = LoadConfig::constant(&url(by_count), 200.0, 2 * SEC).unwrap();
    cfg.connection = ConnectionPolicy::KEEP_ALIVE;
    let s = Load::start(cfg).await.unwrap().finish().await.summary(SEC);
    eprintln!("Connection: close after 3: failed {}, retried {}, connections opened {}", s.failed, s.retried, s.connections_opened);
    assert_eq!((s.ok, s.failed, s.retried), (400, 0, 0), "{}", s.render());
    assert!(s.connections_opened >= 400 / 3, "{}", s.render());
}

/// Four backends behind a real per-connection balancer (nginx `stream`), a constant load with
/// the checks' connection policy: each backend gets its share. Round robin per connection: within
/// ±25% of a quarter each (connections of ~13 requests, ~30 of them, dealt in turn). A random
/// choice per connection (kube-proxy's iptables mode): every backend answers (with ~50
/// connections, the chance that one of 4 gets none is 4·(3/4)^50 < 1e-5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_load_reaches_every_backend_behind_a_per_connection_balancer() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let backends: Vec<u16> = (0..4).map(|_| local::free_port()).collect();
    let (rr, random) = (local::free_port(), local::free_port());
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                " server {{ listen 127.0.0.1:{p}; location / {{ add_header X-Seaworthy-Backend backend-{i}; return 200 \"backend-{i}\\n\"; }} }}\n"
            )
        })
        .collect();
    let conf = format!(
        "load_module {STREAM_MODULE};\nhttp {{\n {HTTP_TEMPS}\n access_log off;\n{servers}}}\nstream {{\n{}{}}}\n",
        stream_block(rr, "", &backends),
        stream_block(random, "random;", &backends)
    );
    let mut ports = backends.clone();
    ports.extend([rr, random]);
    let _nginx = nginx_with(dir.path(), "balancers", &conf, &ports);

    for (port, secs, exact) in [(rr, 4, true), (random, 5, false)] {
        let mut cfg = LoadConfig::constant(&format!("http://127.0.0.1:{port}/"), 100.0, secs * SEC).unwrap();
        cfg.connection = ConnectionPolicy::CHECKS;
        let rep = Load::start(cfg).await.unwrap().finish().await;
        let s = rep.summary(SEC);
        let counts: Vec<(String, u64)> = s.backends.iter().map(|b| (b.name.clone(), b.count)).collect();
        let what = if exact { "round robin" } else { "random" };
        eprintln!("{what}: {counts:?}, failed {}, retried {}, connections opened {}", s.failed, s.retried, s.connections_opened);
        assert_eq!(s.failed, 0, "{}", s.render());
        assert_eq!(s.backends.len(), 4, "{what}: every backend must answer, got {counts:?}\n{}", s.render());
        if exact {
            let share = s.planned as f64 / 4.0;
            for (name, n) in &counts {
                assert!(
                    (*n as f64 - share).abs() <= share / 4.0,
                    "{what}: {name} answered {n} of {}, not a quarter ±25%: {counts:?}\n{}",
                    s.planned,
                    s.render()
                );
            }
        }
    }
}
