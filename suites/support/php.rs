//! A PHP Pod on loopback: php-fpm and nginx in front of it, each under the dumb-init of its
//! container's command, as the phpdemo, counter and wordpress stacks run them.

#![allow(dead_code)]

use super::http::{Client, Response, receive};
use anyhow::{Context, Result, ensure};
use nix::sys::signal::Signal;
use seaworthy::local::{self, Nginx, PHP_FPM, Proc};
use seaworthy::stack::Stack;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};


/// The ConfigMap's server blocks of `workload`'s nginx, as Debian's nginx.conf includes them
/// (conf.d/*.conf).
pub fn nginx_conf_d(stack: &Stack, workload: &str) -> Result<String> {
    Ok(stack
        .mounted_files(workload, "nginx")?
        .iter()
        .filter(|f| f.path.parent() == Some(Path::new("/etc/nginx/conf.d")) && f.path.extension().is_some_and(|e| e == "conf"))
        .map(|f| f.text())
        .collect())
}

/// php-fpm's config as an image installs it that COPYs its own php-fpm.conf and www.conf (build
/// context `context`), written into `dir`. Only the pool's `listen` and the include path change.
/// Returns the php-fpm.conf to start with.
pub fn image_config(context: &Path, dir: &Path, listen: &str, port: u16) -> Result<PathBuf> {
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile"))?;
    ensure!(
        dockerfile.contains("COPY php-fpm.conf /etc/php/8.2/fpm/php-fpm.conf") && dockerfile.contains("COPY www.conf /etc/php/8.2/fpm/pool.d/www.conf"),
        "{}/Dockerfile no longer installs php-fpm.conf and www.conf where the local run expects",
        context.display()
    );
    std::fs::create_dir_all(dir.join("pool.d"))?;
    let pool = local::rewrite(&std::fs::read_to_string(context.join("www.conf"))?, &[(listen, &format!("listen = 127.0.0.1:{port}"))])?;
    std::fs::write(dir.join("pool.d/www.conf"), pool)?;
    let global = local::rewrite(
        &std::fs::read_to_string(context.join("php-fpm.conf"))?,
        &[("include = /etc/php/8.2/fpm/pool.d/*.conf", &format!("include = {}/pool.d/*.conf", dir.display()))],
    )?;
    std::fs::write(dir.join("php-fpm.conf"), global)?;
    Ok(dir.join("php-fpm.conf"))
}

/// php-fpm in the foreground on `conf`, under `wrap` (the container command's part before
/// php-fpm): the caller adds the env.
pub fn command(wrap: &[String], conf: &Path) -> Result<Command> {
    let (program, args) = wrap.split_first().context("php-fpm runs without dumb-init")?;
    let mut cmd = Command::new(program);
    cmd.args(args).arg(PHP_FPM).arg("-F").arg("-y").arg(conf);
    Ok(cmd)
}

/// Spawn `cmd` and return once php-fpm listens on `port`.
pub fn start(name: &str, cmd: Command, dir: &Path, port: u16) -> Result<Proc> {
    Proc::serve(name, cmd, dir, port, Duration::from_secs(10))
}

/// The kubelet's stop after preStop: SIGTERM to PID 1 of both containers at once.
pub fn sigterm(fpm: &Proc, nginx: &Nginx) -> Result<()> {
    fpm.signal(Signal::SIGTERM)?;
    nginx.proc.signal(Signal::SIGTERM)
}

pub fn wait_stopped(fpm: &mut Proc, nginx: &mut Nginx, timeout: Duration) -> Result<()> {
    ensure!(fpm.wait_timeout(timeout).is_some(), "php-fpm still runs {timeout:?} after SIGTERM:\n{}", fpm.log());
    ensure!(nginx.proc.wait_timeout(timeout).is_some(), "nginx still runs {timeout:?} after SIGTERM:\n{}", nginx.error_log());
    Ok(())
}

pub fn logs(fpm: &Proc, nginx: &Nginx) -> String {
    format!("php-fpm:\n{}\nnginx:\n{}", fpm.log(), nginx.error_log())
}

/// Start `path` (a request php-fpm holds), then SIGTERM both containers once it is surely in a
/// worker. Returns the request's outcome and how long it took.
pub fn in_flight_across_sigterm(http: &Client, port: u16, path: &str, fpm: &Proc, nginx: &Nginx) -> (Result<Response>, Duration) {
    let started = Instant::now();
    let conn = http.send(port, "GET", path, &[], None).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    sigterm(fpm, nginx).unwrap();
    let outcome = receive(conn);
    (outcome, started.elapsed())
}

/// What an abrupt stop does to a request held for `hold`: cut, or answered with an error, at the
/// SIGTERM and not after the hold.
pub fn assert_cut_at_sigterm(outcome: Result<Response>, took: Duration, hold: Duration, logs: &str) {
    match outcome {
        Err(_) => {}
        Ok(r) if r.status >= 500 => {}
        Ok(r) => panic!("the abrupt stop still answered {r:?} after {took:?}\n{logs}"),
    }
    assert!(took < hold, "the request ended after {took:?}, not at the SIGTERM");
}
