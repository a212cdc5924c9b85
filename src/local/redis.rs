//! Debian's redis-server with an append-only file, so restarts keep the data as a PVC would.

use super::{Proc, free_port};
use anyhow::{Result, bail};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Redis {
    pub proc: Proc,
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    pub fn start(dir: &Path) -> Result<Redis> {
        let port = free_port();
        let proc = spawn(dir, port)?;
        Ok(Redis { proc, port, dir: dir.to_path_buf() })
    }

    /// Stop (SIGTERM: redis flushes the AOF) and start again on the same port with the same data.
    pub fn restart(&mut self) -> Result<()> {
        self.proc.signal(Signal::SIGTERM)?;
        if self.proc.wait_timeout(Duration::from_secs(10)).is_none() {
            bail!("redis did not stop within 10s of SIGTERM");
        }
        self.proc = spawn(&self.dir, self.port)?;
        Ok(())
    }
}

fn spawn(dir: &Path, port: u16) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new("/usr/bin/redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--protected-mode", "no"])
        .args(["--daemonize", "no", "--appendonly", "yes", "--appendfsync", "always", "--save", ""])
        .arg("--dir")
        .arg(dir);
    Proc::serve(&format!("redis-{port}"), cmd, dir, port, Duration::from_secs(10))
}
