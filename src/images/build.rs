//! Building a stack's images: skip what is already built under its content-hash tag, build the
//! rest from a staged copy of the context, and when a build fails say which stack, image and
//! Dockerfile step (with its line) failed, with the builder's last words.

use super::builder::Builder;
use super::tag::ImageBuild;
use crate::stack::Stack;
use anyhow::{Context, Result};
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum BuildOutcome {
    /// Built now, in this long.
    Built(Duration),
    /// The tag already existed: same context, nothing to do.
    UpToDate,
}

/// A Dockerfile instruction that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// `n` of `STEP n/m` (1 = the stage's FROM).
    pub n: usize,
    pub of: usize,
    /// The instruction as the builder printed it.
    pub instruction: String,
    /// Its first line in the Dockerfile, when found.
    pub line: Option<usize>,
}

#[derive(Debug)]
pub struct BuildError {
    pub stack: String,
    pub image: String,
    pub version: String,
    pub dockerfile: PathBuf,
    pub step: Option<FailedStep>,
    /// The last lines the builder printed.
    pub tail: String,
    /// The full build output.
    pub log: PathBuf,
    pub builder: Builder,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack {}: image {}:{} failed to build", self.stack, self.image, self.version)?;
        match &self.step {
            Some(s) => {
                let at = match s.line {
                    Some(l) => format!("{}:{l}", self.dockerfile.display()),
                    None => self.dockerfile.display().to_string(),
                };
                write!(f, " at Dockerfile step {}/{} ({at}): {}", s.n, s.of, s.instruction)?;
            }
            None => write!(f, " ({}; no Dockerfile step was reached)", self.dockerfile.display())?,
        }
        write!(f, "\n{} said:\n{}\nfull log: {}", self.builder.program(), indent(&self.tail), self.log.display())
    }
}

impl std::error::Error for BuildError {}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

/// One build at a time per process: parallel tests asking for the same image must not build it
/// twice, and two builds on 2 cores are slower than one after the other.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Build `b` unless its tag exists already (or `force`).
pub fn build_image(builder: Builder, b: &ImageBuild, force: bool) -> Result<BuildOutcome> {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !force && builder.exists(&b.tag) {
        return Ok(BuildOutcome::UpToDate);
    }
    let start = Instant::now();
    let stage = tempfile::Builder::new().prefix("seaworthy-context-").tempdir()?;
    let context = stage.path().join("context");
    std::fs::create_dir(&context)?;
    let dockerfile = b.stage(&context)?;
    let labels = vec![
        ("io.seaworthy.stack".to_string(), b.stack.clone()),
        ("io.seaworthy.image".to_string(), b.image.clone()),
        ("io.seaworthy.version".to_string(), b.version.clone()),
        ("io.seaworthy.context-hash".to_string(), b.hash.clone()),
    ];
    let log_path = std::env::temp_dir().join(format!("seaworthy-build-{}-{}-{}.log", b.stack, b.image, b.version));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let status = Command::new(builder.program())
        .args(builder.build_args(&context, &dockerfile, &b.tag, &b.build_args, &labels))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("running {}", builder.program()))?;
    if status.success() {
        let _ = std::fs::remove_file(&log_path);
        return Ok(BuildOutcome::Built(start.elapsed()));
    }
    let output = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let dockerfile_text = std::fs::read_to_string(b.dockerfile_path()).unwrap_or_default();
    let step = failed_step(&output).map(|mut s| {
        s.line = step_line(&dockerfile_text, &s);
        s
    });
    Err(BuildError {
        stack: b.stack.clone(),
        image: b.image.clone(),
        version: b.version.clone(),
        dockerfile: b.dockerfile_path(),
        step,
        tail: tail(&output, 15),
        log: log_path,
        builder,
    }
    .into())
}

/// Build every image of `stack` (each version), calling `progress` before and after each one.
/// Stops at the first failure.
pub fn build_stack(builder: Builder, stack: &Stack, base: &str, force: bool, mut progress: impl FnMut(&ImageBuild, Option<&BuildOutcome>)) -> Result<Vec<(ImageBuild, BuildOutcome)>> {
    let mut done = Vec::new();
    for b in super::planned(stack, base)? {
        progress(&b, None);
        let outcome = build_image(builder, &b, force)?;
        progress(&b, Some(&outcome));
        done.push((b, outcome));
    }
    Ok(done)
}

/// The tag of `<image>:<version>` of `stack`, built if it is not yet.
pub fn ensure_built(builder: Builder, stack: &Stack, image: &str, version: &str, base: &str) -> Result<String> {
    let b = ImageBuild::new(stack, image, version, base)?;
    build_image(builder, &b, false)?;
    Ok(b.tag)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The step that failed, from a build's output: podman/buildah (`STEP n/m: ...`, `[s/t] STEP`),
/// the classic docker builder (`Step n/m : ...`) or BuildKit (`#7 [2/5] RUN ...`, with the
/// failing one repeated as `ERROR [2/5] ...` or ` > [2/5] ...:`).
pub fn failed_step(output: &str) -> Option<FailedStep> {
    let mut last: Option<FailedStep> = None;
    let mut buildkit_error: Option<FailedStep> = None;
    for line in output.lines() {
        let l = line.trim_end();
        if let Some(s) = parse_step_marker(l) {
            last = Some(s);
        } else if let Some(s) = parse_buildkit(l) {
            let errorish = l.starts_with("ERROR [") || l.trim_start().starts_with("> [") || l.contains(" ERROR [");
            if errorish && buildkit_error.is_none() {
                let mut s = s;
                s.instruction = s.instruction.trim_end_matches(':').to_string();
                buildkit_error = Some(s);
            } else if !errorish {
                last = Some(s);
            }
        }
    }
    buildkit_error.or(last)
}

/// `STEP 3/6: RUN ...` (optionally after `[1/2] `) or `Step 3/6 : RUN ...`.
fn parse_step_marker(line: &str) -> Option<FailedStep> {
    let mut l = line.trim_start();
    if l.starts_with('[')
        && let Some(end) = l.find("] ")
    {
        l = &l[end + 2..];
    }
    let rest = l.strip_prefix("STEP ").or_else(|| l.strip_prefix("Step "))?;
    let (nm, instr) = rest.split_once(':')?;
    let (n, of) = nm.trim().split_once('/')?;
    Some(FailedStep { n: n.trim().parse().ok()?, of: of.trim().parse().ok()?, instruction: instr.trim().to_string(), line: None })
}

/// BuildKit's `#7 [2/5] RUN ...`, `#7 [stage-1 2/5] RUN ...`, `ERROR [2/5] RUN ...`, ` > [2/5] RUN ...:`.
fn parse_buildkit(line: &str) -> Option<FailedStep> {
    let open = line.find('[')?;
    let prefix = line[..open].trim();
    if !(prefix.is_empty() || prefix == ">" || prefix == "ERROR" || (prefix.starts_with('#') && prefix[1..].split_whitespace().next()?.chars().all(|c| c.is_ascii_digit()))) {
        return None;
    }
    let close = line[open..].find(']')? + open;
    let inside = &line[open + 1..close];
    let nm = inside.rsplit(' ').next()?;
    let (n, of) = nm.split_once('/')?;
    let instruction = line[close + 1..].trim().to_string();
    if instruction.is_empty() {
        return None;
    }
    Some(FailedStep { n: n.parse().ok()?, of: of.parse().ok()?, instruction, line: None })
}

/// The Dockerfile's instructions with their first line numbers: continuations joined, comment
/// lines dropped (also inside a continuation, as the builders do).
pub fn instructions(dockerfile: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (start, mut text) = current.take().unwrap_or((i + 1, String::new()));
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        text.push_str(body);
        text.push(' ');
        if continues {
            current = Some((start, text));
        } else {
            out.push((start, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    if let Some((start, text)) = current {
        out.push((start, text.split_whitespace().collect::<Vec<_>>().join(" ")));
    }
    out
}

/// The Dockerfile line of a failed step: the instruction with the same text, else the n-th
/// instruction of the (single) build stage, counting its FROM as 1 as the builders do.
fn step_line(dockerfile: &str, step: &FailedStep) -> Option<usize> {
    let all = instructions(dockerfile);
    let want = step.instruction.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((line, _)) = all.iter().find(|(_, t)| *t == want) {
        return Some(*line);
    }
    let from = all.iter().position(|(_, t)| t.to_ascii_uppercase().starts_with("FROM "))?;
    all.get(from + step.n - 1).map(|(l, _)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "# nginx\nARG BASE=debian:bookworm-slim\nFROM ${BASE}\nARG VERSION\n# packages\nRUN apt-get update \\\n && apt-get install -y nginx \\\n # a comment inside\n && rm -rf /var/lib/apt/lists/*\nRUN test -n \"$VERSION\"\nCMD [\"nginx\"]\n";

    #[test]
    fn dockerfile_instructions_and_lines() {
        let ins = instructions(DOCKERFILE);
        let lines: Vec<usize> = ins.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 6, 10, 11]);
        assert_eq!(ins[3].1, "RUN apt-get update && apt-get install -y nginx && rm -rf /var/lib/apt/lists/*");
    }

    #[test]
    fn podman_failure_names_the_step_and_line() {
        // Captured from podman 4.3 building a Dockerfile like the one above without network.
        let out = "STEP 1/5: FROM debian:bookworm-slim\nSTEP 2/5: ARG VERSION\n--> fd4ad1ed1ac\n\
                   STEP 3/5: RUN apt-get update  && apt-get install -y nginx   && rm -rf /var/lib/apt/lists/*\n\
                   E: Unable to locate package nginx\n\
                   Error: building at STEP \"RUN apt-get update  && apt-get install -y nginx   && rm -rf /var/lib/apt/lists/*\": while running runtime: exit status 100\n";
        let mut s = failed_step(out).unwrap();
        assert_eq!((s.n, s.of), (3, 5));
        s.line = step_line(DOCKERFILE, &s);
        assert_eq!(s.line, Some(6));

        // A step whose printed text differs from the file (ARG expanded) is found by position.
        let s = failed_step("STEP 1/5: FROM debian:bookworm-slim\nError: creating build container: ...\n").unwrap();
        assert_eq!(step_line(DOCKERFILE, &s), Some(3));

        let staged = "[2/2] STEP 4/5: RUN test -n \"$VERSION\"\nError: building at STEP ...\n";
        let s = failed_step(staged).unwrap();
        assert_eq!((s.n, s.instruction.as_str()), (4, "RUN test -n \"$VERSION\""));
        assert_eq!(step_line(DOCKERFILE, &s), Some(10));
    }

    #[test]
    fn docker_classic_and_buildkit_failures() {
        let classic = "Step 1/5 : FROM debian:bookworm-slim\n ---> abc\nStep 5/5 : CMD [\"nginx\"]\n";
        assert_eq!(failed_step(classic).unwrap().n, 5);

        let buildkit = "#5 [1/4] FROM docker.io/library/debian:bookworm-slim\n#6 [2/4] RUN apt-get update\n#7 [3/4] RUN test -n \"$VERSION\"\n\
                        #7 ERROR: process \"/bin/sh -c test -n \\\"$VERSION\\\"\" did not complete successfully: exit code: 1\n\
                        #6 [2/4] RUN apt-get update\n------\n > [3/4] RUN test -n \"$VERSION\":\n------\n\
                        ERROR: failed to solve: process \"/bin/sh -c test -n \\\"$VERSION\\\"\" did not complete successfully: exit code: 1\n";
        let s = failed_step(buildkit).unwrap();
        assert_eq!((s.n, s.of), (3, 4));
        assert_eq!(s.instruction, "RUN test -n \"$VERSION\"");
        assert_eq!(step_line(DOCKERFILE, &s), Some(10));
    }

    #[test]
    fn the_error_names_stack_image_and_step() {
        let e = BuildError {
            stack: "phpdemo".into(),
            image: "phpdemo-nginx".into(),
            version: "v1".into(),
            dockerfile: "fixtures/phpdemo/app/nginx/Dockerfile".into(),
            step: Some(FailedStep { n: 3, of: 6, instruction: "RUN apt-get update".into(), line: Some(7) }),
            tail: "E: Unable to locate package nginx".into(),
            log: "/tmp/x.log".into(),
            builder: Builder::Podman,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("stack phpdemo: image phpdemo-nginx:v1 failed to build at Dockerfile step 3/6 (fixtures/phpdemo/app/nginx/Dockerfile:7): RUN apt-get update"),
            "{text}"
        );
        assert!(text.contains("  | E: Unable to locate package nginx"), "{text}");
    }
}
