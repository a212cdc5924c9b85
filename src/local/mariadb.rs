//! Debian's MariaDB on a fresh data directory, reachable over TCP on loopback (as apps reach the
//! database Service) and over a socket for the test's own setup SQL.

use super::{Proc, free_port};
use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct MariaDb {
    pub proc: Proc,
    pub port: u16,
    dir: PathBuf,
}

impl MariaDb {
    pub fn start(dir: &Path) -> Result<MariaDb> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        // Each server its own tmpdir: a starting mariadbd deletes every `#sql*` file in its
        // tmpdir, which in a shared /tmp are the temporary tables of another test's bootstrap.
        std::fs::create_dir_all(dir.join("tmp"))?;
        let out = Command::new("/usr/bin/mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--user=root")
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db")
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .output()
            .context("running mariadb-install-db: is mariadb-server installed? (.ci/packages.txt)")?;
        if !out.status.success() {
            bail!("mariadb-install-db failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port();
        let proc = spawn(dir, port)?;
        Ok(MariaDb { proc, port, dir: dir.to_path_buf() })
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// Run SQL as root over the socket; returns tab-separated rows without headers.
    pub fn sql(&self, sql: &str) -> Result<String> {
        let out = Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .context("running the mariadb client")?;
        if !out.status.success() {
            bail!("SQL failed: {sql}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stop cleanly (SIGTERM: InnoDB flushes), as a Pod deletion would.
    pub fn stop(&mut self) -> Result<()> {
        self.proc.signal(Signal::SIGTERM)?;
        if self.proc.wait_timeout(Duration::from_secs(30)).is_none() {
            bail!("mariadbd did not stop within 30s of SIGTERM");
        }
        Ok(())
    }

    /// Start again on the same port and data, as the replacement Pod on the same PVC does.
    pub fn restart(&mut self) -> Result<()> {
        if self.proc.is_running() {
            self.stop()?;
        }
        self.proc = spawn(&self.dir, self.port)?;
        Ok(())
    }
}

fn spawn(dir: &Path, port: u16) -> Result<Proc> {
    let mut cmd = Command::new("/usr/sbin/mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=16M"])
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg("--skip-log-bin");
    Proc::serve(&format!("mariadb-{port}"), cmd, dir, port, Duration::from_secs(60))
}
