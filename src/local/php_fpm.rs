//! Debian's php-fpm with one pool on a loopback TCP port, as the fixtures' nginx reaches it.

use super::{Proc, free_port, write_file};
use anyhow::{Result, bail};
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Debian 12's php-fpm, as the fixture images install it.
pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

pub struct PhpFpm {
    pub proc: Proc,
    pub port: u16,
}

impl PhpFpm {
    /// Start php-fpm in the foreground with `env` visible to PHP (`clear_env = no`, as the images
    /// configure it so that Pod env reaches getenv()).
    pub fn start(dir: &Path, env: &[(String, String)]) -> Result<PhpFpm> {
        let port = free_port();
        let d = dir.display();
        let root = nix::unistd::geteuid().is_root();
        let user = if root { "user = root\ngroup = root\n" } else { "" };
        write_file(
            &dir.join("php-fpm.conf"),
            &format!(
                "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/php-fpm-error.log\ndaemonize = no\n\
                 [www]\n{user}listen = 127.0.0.1:{port}\npm = static\npm.max_children = 8\n\
                 clear_env = no\ncatch_workers_output = yes\n"
            ),
        )?;
        let mut cmd = Command::new(PHP_FPM);
        cmd.arg("-F").arg("-y").arg(dir.join("php-fpm.conf"));
        if root {
            cmd.arg("-R");
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let proc = Proc::serve("php-fpm", cmd, dir, port, Duration::from_secs(10))?;
        Ok(PhpFpm { proc, port })
    }

    /// php-fpm's graceful stop: workers finish the request they serve.
    pub fn stop_graceful(&mut self, timeout: Duration) -> Result<()> {
        self.proc.signal(Signal::SIGQUIT)?;
        match self.proc.wait_timeout(timeout) {
            Some(_) => Ok(()),
            None => bail!("php-fpm did not stop within {timeout:?} after SIGQUIT"),
        }
    }
}
