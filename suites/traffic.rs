//! The load generator against real servers on loopback: Debian's nginx serving a static file, and
//! nginx load-balancing real Python backends that get killed, drained, or stall.
//!
//! Every assertion is about counts and shapes (records, buckets, backends), never about how long
//! something took on this machine.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::Signal;
use seaworthy::local::{self, Nginx};
use seaworthy::traffic::cli::{run_cli, LoadArgs};
use seaworthy::traffic::{FailureKind, Load, LoadConfig, Outcome, Record, Report, Schedule, Summary};

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
    ] {
        let e = args(&bad).err().unwrap_or_else(|| panic!("{bad:?} must be refused"));
        assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
    }
    // Accepted by clap, refused with a message and exit 2.
    assert_eq!(run_cli(args(&[&url, "--rate", "5", "-c", "10", "--max-in-flight", "5"]).unwrap()).await.unwrap(), 2);
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
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back.status_codes.get("200"), Some(&200));

    // A missing page: every request fails, so the exit code says so unless allowed.
    let missing = url.replace("index.html", "missing.html");
    assert_eq!(run_cli(args(&[&missing, "--rate", "50", "--duration", "500ms", "-q"]).unwrap()).await.unwrap(), 1);
    let allowed = args(&[&missing, "--rate", "50", "--duration", "500ms", "-q", "--allow-failures"]).unwrap();
    let code = run_cli(allowed).await.unwrap();
    assert!(code == 0 || code == 3, "--allow-failures must clear the failure exit (3: rate not held), got {code}");
}
