//! Getting built images into a cluster's container runtime, without a registry: each provider's
//! own importer reads the docker-archive that `images save` wrote; any other cluster gets the
//! archive piped to a command the user names (`--load-images-with`).

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loader {
    /// `kind load image-archive` into every node of a kind cluster.
    Kind { cluster: String },
    /// `k3d image import` into every node of a k3d cluster.
    K3d { cluster: String },
    /// containerd's importer inside a k3s container (seaworthy's own, through testcontainers).
    K3sContainer { engine: String, container: String },
    /// `--load-images-with 'CMD'`: run by `sh -c` with the archive on stdin.
    Command(String),
}

/// One import: a program, its arguments, and whether the archive goes to its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadCommand {
    pub program: String,
    pub args: Vec<String>,
    /// Environment added for the command (the `--load-images-with` contract).
    pub env: Vec<(String, String)>,
    pub stdin: Option<PathBuf>,
}

impl LoadCommand {
    /// The command as a shell would show it (for messages).
    pub fn display(&self) -> String {
        let mut s = std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).map(shell_quote).collect::<Vec<_>>().join(" ");
        if let Some(p) = &self.stdin {
            s.push_str(&format!(" < {}", shell_quote(&p.display().to_string())));
        }
        s
    }

    pub fn run(&self) -> Result<()> {
        self.run_within(LOAD_TIMEOUT)
    }

    /// Run the import, killing it (and saying so) if it has not finished within `timeout`: a
    /// wedged `kind load`/`docker exec` would otherwise hang the whole run.
    pub fn run_within(&self, timeout: Duration) -> Result<()> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v))).stdout(Stdio::piped()).stderr(Stdio::piped());
        match &self.stdin {
            Some(p) => cmd.stdin(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?),
            None => cmd.stdin(Stdio::null()),
        };
        let mut child = cmd.spawn().with_context(|| match self.program.as_str() {
            "kind" => "running kind: install it (https://kind.sigs.k8s.io) or use another provider".to_string(),
            "k3d" => "running k3d: install it (https://k3d.io) or use another provider".to_string(),
            p => format!("running {p}"),
        })?;
        // Drained on threads: a child blocked on a full pipe would never exit.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut out);
                }
                out
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("loading an image: `{}` did not finish within {timeout:?} and was killed; is the cluster's container runtime responsive?", self.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
        if !status.success() {
            bail!(
                "loading an image failed: `{}` exited with {}: {}{}",
                self.display(),
                status,
                String::from_utf8_lossy(&err).trim(),
                String::from_utf8_lossy(&out).trim()
            );
        }
        Ok(())
    }
}

/// How long one image import may take: a few hundred MB into every node of a kind cluster.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

impl Loader {
    /// How to import `archive`, whose image is tagged `image_ref`.
    pub fn command(&self, archive: &Path, image_ref: &str) -> LoadCommand {
        let a = archive.display().to_string();
        match self {
            Loader::Kind { cluster } => LoadCommand {
                program: "kind".into(),
                args: vec!["load".into(), "image-archive".into(), a, "--name".into(), cluster.clone()],
                env: vec![],
                stdin: None,
            },
            Loader::K3d { cluster } => LoadCommand {
                program: "k3d".into(),
                args: vec!["image".into(), "import".into(), a, "--cluster".into(), cluster.clone()],
                env: vec![],
                stdin: None,
            },
            Loader::K3sContainer { engine, container } => LoadCommand {
                program: engine.clone(),
                // k3s ships ctr as a link to itself; kubelet's images live in the k8s.io namespace.
                // testcontainers' k3s runs `server --snapshotter=native`: an image unpacked into
                // ctr's default (overlayfs) snapshotter is one the kubelet cannot start.
                args: ["exec", "-i", container, "ctr", "-n", "k8s.io", "images", "import", "--snapshotter=native", "-"].map(String::from).to_vec(),
                env: vec![],
                stdin: Some(archive.to_path_buf()),
            },
            Loader::Command(cmd) => LoadCommand {
                program: "sh".into(),
                args: vec!["-c".into(), cmd.clone()],
                env: vec![("SEAWORTHY_IMAGE".into(), image_ref.to_string()), ("SEAWORTHY_IMAGE_ARCHIVE".into(), a)],
                stdin: Some(archive.to_path_buf()),
            },
        }
    }

    /// Import one archive.
    pub fn load(&self, archive: &Path, image_ref: &str) -> Result<()> {
        self.command(archive, image_ref).run().with_context(|| format!("loading {image_ref} from {}", archive.display()))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: &str = "localhost/seaworthy/phpdemo-code:v1-0123456789ab";

    #[test]
    fn provider_command_lines() {
        let a = Path::new("/out/phpdemo_phpdemo-code_v1-0123456789ab.tar");
        assert_eq!(
            Loader::Kind { cluster: "seaworthy".into() }.command(a, REF).display(),
            "kind load image-archive /out/phpdemo_phpdemo-code_v1-0123456789ab.tar --name seaworthy"
        );
        assert_eq!(
            Loader::K3d { cluster: "seaworthy".into() }.command(a, REF).display(),
            "k3d image import /out/phpdemo_phpdemo-code_v1-0123456789ab.tar --cluster seaworthy"
        );
        assert_eq!(
            Loader::K3sContainer { engine: "docker".into(), container: "k3s-1234".into() }.command(a, REF).display(),
            "docker exec -i k3s-1234 ctr -n k8s.io images import --snapshotter=native - < /out/phpdemo_phpdemo-code_v1-0123456789ab.tar"
        );
        let c = Loader::Command("microk8s ctr image import -".into()).command(a, REF);
        assert_eq!(c.display(), "sh -c 'microk8s ctr image import -' < /out/phpdemo_phpdemo-code_v1-0123456789ab.tar");
        assert!(c.env.contains(&("SEAWORTHY_IMAGE".to_string(), REF.to_string())));
    }

    #[test]
    fn a_user_command_gets_the_archive_on_stdin() {
        let t = tempfile::tempdir().unwrap();
        let archive = t.path().join("a.tar");
        std::fs::write(&archive, b"archive bytes").unwrap();
        let got = t.path().join("got");
        let cmd = format!("cat > '{}' && echo \"$SEAWORTHY_IMAGE\" >> '{}'", got.display(), got.display());
        Loader::Command(cmd).load(&archive, REF).unwrap();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), format!("archive bytes{REF}\n"));

        let e = format!("{:#}", Loader::Command("echo nope >&2; exit 3".into()).load(&archive, REF).unwrap_err());
        assert!(e.contains("exited with exit status: 3") && e.contains("nope"), "{e}");

        let started = Instant::now();
        let e = Loader::Command("cat >/dev/null; exec sleep 30".into()).command(&archive, REF).run_within(Duration::from_millis(300)).unwrap_err().to_string();
        assert!(e.contains("did not finish within 300ms and was killed"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10), "the import was killed at the deadline");
    }
}
