//! Which tool builds images here, and its command lines. docker only when its daemon answers
//! (`docker info`: a docker CLI without a daemon is common, e.g. next to podman), else podman,
//! else buildah. `SEAWORTHY_BUILDER` picks one explicitly.

use anyhow::{Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    Docker,
    Podman,
    Buildah,
}

impl Builder {
    pub fn program(self) -> &'static str {
        match self {
            Builder::Docker => "docker",
            Builder::Podman => "podman",
            Builder::Buildah => "buildah",
        }
    }

    pub fn parse(name: &str) -> Result<Builder> {
        Ok(match name {
            "docker" => Builder::Docker,
            "podman" => Builder::Podman,
            "buildah" => Builder::Buildah,
            other => bail!("unknown image builder {other:?}: use docker, podman or buildah"),
        })
    }

    /// `SEAWORTHY_BUILDER` if set (and working), else the first of docker (daemon up), podman,
    /// buildah that works on this machine.
    pub fn detect() -> Result<Builder> {
        if let Ok(name) = std::env::var("SEAWORTHY_BUILDER")
            && !name.trim().is_empty()
        {
            let b = Builder::parse(name.trim())?;
            if !b.works() {
                bail!("SEAWORTHY_BUILDER={name} but `{}` does not work here ({})", b.probe_line(), b.program());
            }
            return Ok(b);
        }
        for b in [Builder::Docker, Builder::Podman, Builder::Buildah] {
            if b.works() {
                return Ok(b);
            }
        }
        bail!(
            "no image builder found: install podman (apt-get install podman), buildah, or Docker with a running daemon \
             (a docker CLI whose `docker info` fails does not count)"
        )
    }

    fn probe(self) -> Vec<&'static str> {
        match self {
            // The client alone answers `docker version`; only `info` needs the daemon.
            Builder::Docker => vec!["info", "--format", "{{.ServerVersion}}"],
            Builder::Podman => vec!["info", "--format", "{{.Host.OCIRuntime.Name}}"],
            Builder::Buildah => vec!["info"],
        }
    }

    fn probe_line(self) -> String {
        format!("{} {}", self.program(), self.probe().join(" "))
    }

    /// Whether the tool is installed and can reach what it builds with.
    pub fn works(self) -> bool {
        Command::new(self.program())
            .args(self.probe())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `build` of one image. Layers are cached (buildah's default is not to), and the labels
    /// let `podman images --filter label=io.seaworthy.stack=...` find a stack's images.
    pub fn build_args(self, context: &Path, dockerfile: &Path, tag: &str, build_args: &[(String, String)], labels: &[(String, String)]) -> Vec<String> {
        let mut a: Vec<String> = match self {
            Builder::Docker => vec!["build".into()],
            Builder::Podman => vec!["build".into(), "--layers".into()],
            Builder::Buildah => vec!["bud".into(), "--layers".into()],
        };
        a.extend(["--tag".into(), tag.into(), "--file".into(), dockerfile.display().to_string()]);
        for (k, v) in build_args {
            a.extend(["--build-arg".into(), format!("{k}={v}")]);
        }
        for (k, v) in labels {
            a.extend(["--label".into(), format!("{k}={v}")]);
        }
        a.push(context.display().to_string());
        a
    }

    /// Exits 0 when `tag` is in the builder's local storage.
    pub fn exists_args(self, tag: &str) -> Vec<String> {
        match self {
            Builder::Docker => vec!["image".into(), "inspect".into(), "--format".into(), "{{.Id}}".into(), tag.into()],
            Builder::Podman => vec!["image".into(), "exists".into(), tag.into()],
            Builder::Buildah => vec!["inspect".into(), "--type".into(), "image".into(), "--format".into(), "{{.FromImageID}}".into(), tag.into()],
        }
    }

    /// Write `tag` to `out` as a docker-archive tarball (what `docker load`, `kind load
    /// image-archive`, `k3d image import` and `ctr images import` read).
    pub fn save_args(self, tag: &str, out: &Path) -> Vec<String> {
        let out = out.display().to_string();
        match self {
            Builder::Docker => vec!["save".into(), "--output".into(), out, tag.into()],
            Builder::Podman => vec!["save".into(), "--format".into(), "docker-archive".into(), "--output".into(), out, tag.into()],
            Builder::Buildah => vec!["push".into(), tag.into(), format!("docker-archive:{out}:{tag}")],
        }
    }

    /// Prints the image ID of `tag` (one line) when it is in the builder's local storage.
    pub fn image_id_args(self, tag: &str) -> Vec<String> {
        match self {
            Builder::Docker | Builder::Podman => vec!["image".into(), "inspect".into(), "--format".into(), "{{.Id}}".into(), tag.into()],
            Builder::Buildah => vec!["inspect".into(), "--type".into(), "image".into(), "--format".into(), "{{.FromImageID}}".into(), tag.into()],
        }
    }

    /// The image ID of `tag` in the builder's local storage; None when it is not there.
    pub fn image_id(self, tag: &str) -> Option<String> {
        let out = Command::new(self.program()).args(self.image_id_args(tag)).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !id.is_empty() && !id.contains(char::is_whitespace)).then_some(id)
    }

    pub fn exists(self, tag: &str) -> bool {
        Command::new(self.program())
            .args(self.exists_args(tag))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let args = vec![("VERSION".to_string(), "v1".to_string()), ("BASE".to_string(), "debian:bookworm-slim".to_string())];
        let labels = vec![("io.seaworthy.stack".to_string(), "phpdemo".to_string())];
        let ctx = Path::new("/tmp/ctx");
        let df = Path::new("/tmp/ctx/Dockerfile");
        assert_eq!(
            Builder::Podman.build_args(ctx, df, "localhost/seaworthy/a:v1-0123456789ab", &args, &labels).join(" "),
            "build --layers --tag localhost/seaworthy/a:v1-0123456789ab --file /tmp/ctx/Dockerfile \
             --build-arg VERSION=v1 --build-arg BASE=debian:bookworm-slim --label io.seaworthy.stack=phpdemo /tmp/ctx"
        );
        assert!(Builder::Docker.build_args(ctx, df, "t", &args, &[]).join(" ").starts_with("build --tag t --file"));
        assert!(Builder::Buildah.build_args(ctx, df, "t", &args, &[]).join(" ").starts_with("bud --layers --tag t"));
        let out = Path::new("/o/a.tar");
        assert_eq!(Builder::Podman.save_args("t:1", out).join(" "), "save --format docker-archive --output /o/a.tar t:1");
        assert_eq!(Builder::Docker.save_args("t:1", out).join(" "), "save --output /o/a.tar t:1");
        assert_eq!(Builder::Buildah.save_args("t:1", out).join(" "), "push t:1 docker-archive:/o/a.tar:t:1");
        assert_eq!(Builder::Podman.exists_args("t:1").join(" "), "image exists t:1");
        assert_eq!(Builder::Podman.image_id_args("debian:bookworm-slim").join(" "), "image inspect --format {{.Id}} debian:bookworm-slim");
        assert_eq!(Builder::Docker.image_id_args("b").join(" "), "image inspect --format {{.Id}} b");
        assert_eq!(Builder::Buildah.image_id_args("b").join(" "), "inspect --type image --format {{.FromImageID}} b");
    }

    #[test]
    fn unknown_builder_names_the_choices() {
        let e = Builder::parse("nerdctl").unwrap_err().to_string();
        assert!(e.contains("docker, podman or buildah"), "{e}");
    }
}
