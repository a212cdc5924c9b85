//! A child process that cannot outlive its owner.

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned server in its own process group, so that signals reach its workers too
/// (php-fpm, nginx and gunicorn all fork). Dropping it kills the whole group.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc> {
        std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({program}): is its Debian package installed? (.ci/packages.txt)"))?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(Proc { name: name.to_string(), child, log, exit: None })
    }

    /// Spawn a server and return once it listens on 127.0.0.1:`port`. If it dies first or does
    /// not listen in time, the error carries its log.
    pub fn serve(name: &str, cmd: Command, log_dir: &Path, port: u16, timeout: Duration) -> Result<Proc> {
        let mut proc = Proc::spawn(name, cmd, log_dir)?;
        super::wait_for_server(&mut proc, port, timeout)?;
        Ok(proc)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Signal the whole process group, as the kubelet's signal reaches a container's PID 1 and
    /// the server then stops its own children.
    pub fn signal_group(&self, sig: Signal) -> Result<()> {
        killpg(Pid::from_raw(self.pid()), sig).with_context(|| format!("sending {sig} to {}", self.name))
    }

    /// Signal only the main process (what the kubelet does: PID 1 of the container).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        nix::sys::signal::kill(Pid::from_raw(self.pid()), sig).with_context(|| format!("sending {sig} to {}", self.name))
    }

    pub fn is_running(&mut self) -> bool {
        self.poll().is_none()
    }

    fn poll(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Wait up to `timeout` for the main process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The combined stdout/stderr so far, for error messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A wrapper such as dumb-init starts its child in a session of its own, out of reach of
        // our group; those groups are found while the parent links still lead to them.
        let others = descendant_groups(self.pid());
        // The group may outlive the leader (workers reparented), so kill the group regardless.
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        for pgid in others {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Process groups, other than `root`'s own, of the processes descended from `root`.
fn descendant_groups(root: i32) -> Vec<i32> {
    // (pid, ppid, pgid) from /proc/<pid>/stat; the command name may hold spaces and parentheses,
    // so the fields are counted from the last ')'.
    let procs: Vec<(i32, i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
            let ppid = fields.nth(1)?.parse().ok()?;
            let pgid = fields.next()?.parse().ok()?;
            Some((pid, ppid, pgid))
        })
        .collect();
    let mut tree = vec![root];
    let mut groups = Vec::new();
    let mut i = 0;
    while i < tree.len() {
        for &(pid, ppid, pgid) in &procs {
            if ppid == tree[i] && !tree.contains(&pid) {
                tree.push(pid);
                if pgid != root && !groups.contains(&pgid) {
                    groups.push(pgid);
                }
            }
        }
        i += 1;
    }
    groups
}
