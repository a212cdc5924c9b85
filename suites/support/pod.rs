//! Running a container of a fixture on loopback as the kubelet would: its command and args from
//! the manifest (in-Pod addresses rewritten), only the env the Pod would have, and the command
//! as PID 1 of its own PID namespace, so that dumb-init behaves as in the image and everything
//! it started dies with the guard, even the process group that dumb-init moves its child into.
//!
//! The flask_sts and sms_web suites run gunicorn under dumb-init this way; the PHP suites take
//! the manifest's command apart the same way.

#![allow(dead_code)]

use super::http::{self, Client};
use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::Signal;
use seaworthy::local::{self, Proc};
use seaworthy::stack::Stack;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---- HTTP, as the flask and sms clients send it ----

#[allow(unused_imports)]
pub use super::http::{Response, receive};

const HTTP: Client = http::client("pydemo.local.com", 60);

/// Send a request and return the open connection; [`receive`] reads the answer.
pub fn send(port: u16, method: &str, path: &str, body: Option<&[u8]>) -> Result<TcpStream> {
    HTTP.send(port, method, path, &[], body)
}

pub fn get(port: u16, path: &str) -> Result<Response> {
    HTTP.get(port, path)
}

pub fn put(port: u16, path: &str, body: &[u8]) -> Result<Response> {
    HTTP.request(port, "PUT", path, &[], Some(body))
}

/// Poll `f` until it returns Some or `timeout` passes; the error says what was seen last.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "not yet".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}; last: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- containers ----

/// command + args of a container, as the kubelet joins them.
pub fn argv_of(stack: &Stack, workload: &str, container: &str) -> Result<Vec<String>> {
    let c = stack.container(workload, container)?;
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    ensure!(!argv.is_empty(), "container {workload}/{container} has no command: the local run needs the manifest's");
    Ok(argv)
}

/// The part of a command before `program` (dumb-init and its signal rewrite), after checking that
/// what follows is what the local run starts: the local run supplies its own config paths.
pub fn wrapper(argv: &[String], program: &str, rest: &[&str]) -> Result<Vec<String>> {
    let at = argv.iter().position(|a| a == program).with_context(|| format!("{argv:?} does not run {program}"))?;
    ensure!(argv[at + 1..] == *rest, "{program} runs with {:?}; the local run knows {rest:?}", &argv[at + 1..]);
    Ok(argv[..at].to_vec())
}

/// [`local::rewrite`] over the whole argv, so a `from` that occurs in no argument is an error.
pub fn rewrite_argv(argv: &[String], pairs: &[(&str, &str)]) -> Result<Vec<String>> {
    let joined = serde_json::to_string(argv)?;
    // Quotes and backslashes are JSON-escaped in `joined`; the pairs here are plain addresses
    // and paths, which JSON leaves as they are.
    Ok(serde_json::from_str(&local::rewrite(&joined, pairs)?)?)
}

/// [`local::rewrite`] over the values of an env: one text, so a `from` that occurs in no value is
/// an error, as it is for a config file.
pub fn rewrite_env(env: &[(String, String)], pairs: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
    let values: Vec<&str> = env.iter().map(|(_, v)| v.as_str()).collect();
    let joined = serde_json::to_string(&values)?;
    let values: Vec<String> = serde_json::from_str(&local::rewrite(&joined, pairs)?)?;
    Ok(env.iter().map(|(k, _)| k.clone()).zip(values).collect())
}

/// The env a container starts with besides the manifest's: what the image sets (its Dockerfile
/// ENV, checked to still say so) and what a Debian image has anyway.
pub fn image_env(dockerfile: &Path, version: &str, home: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(dockerfile).with_context(|| format!("reading {}", dockerfile.display()))?;
    // The image bakes --build-arg VERSION into APP_VERSION; a local run is that build.
    ensure!(text.contains("APP_VERSION=${VERSION}"), "{} no longer bakes VERSION into APP_VERSION", dockerfile.display());
    Ok(vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), home.display().to_string()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("APP_VERSION".into(), version.into()),
    ])
}

/// The version a container runs: the tag of `image: <image>:<version>`, one stack.toml builds.
pub fn image_version(stack: &Stack, workload: &str, container: &str, image: &str) -> Result<String> {
    let reference = stack.container(workload, container)?.image.clone().unwrap_or_default();
    let version = reference
        .strip_prefix(&format!("{image}:"))
        .with_context(|| format!("{workload}/{container} runs {reference:?}, not {image}:<version>"))?;
    ensure!(
        stack.spec.images.iter().any(|i| i.name == image && i.versions.iter().any(|v| v == version)),
        "{image}:{version} is not a version stack.toml builds"
    );
    Ok(version.to_string())
}

/// Whether the env var `name` of a container is the downward API's `fieldPath`: it has no value
/// outside a Pod, so the local run supplies it.
pub fn ensure_field_ref(stack: &Stack, workload: &str, container: &str, name: &str, field_path: &str) -> Result<()> {
    let c = stack.container(workload, container)?;
    let field = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value_from.as_ref())
        .and_then(|f| f.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    ensure!(field.as_deref() == Some(field_path), "{workload}/{container} env {name} is not the downward API's {field_path}: {field:?}");
    Ok(())
}

/// Start `argv` as the container's PID 1, in a PID namespace of its own (as in a Pod): dumb-init
/// then forwards signals exactly as in the image, and when the guard kills it the kernel kills
/// everything else in the namespace, including the session dumb-init puts its child in.
pub fn run_container(name: &str, argv: &[String], cwd: &Path, env: &[(String, String)], log_dir: &Path) -> Result<Proc> {
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["--pid", "--fork", "--kill-child", "--"]).args(argv).current_dir(cwd).env_clear().envs(env.iter().cloned());
    Proc::spawn(name, cmd, log_dir)
}

/// The kubelet's stop: SIGTERM to the container's PID 1. The group holds unshare (which blocks
/// SIGTERM while it waits for its child) and dumb-init, so only dumb-init acts on it.
pub fn sigterm(proc: &Proc) -> Result<()> {
    proc.signal_group(Signal::SIGTERM)
}

/// CPU quantity in millicores ("0.1", "100m", "2", "1000", "1k"), read as the harness reads it.
pub fn cpu_millis(q: &str) -> Result<u64> {
    seaworthy::checks::capacity::cpu_millis(q).with_context(|| format!("bad CPU quantity {q:?}"))
}
