//! `seaworthy images build|save`.

use crate::images::{self, Builder, BuildOutcome};
use crate::stack::Stack;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build every image the stacks declare (each version), tagged
    /// localhost/seaworthy/<image>:<version>-<content hash>; an unchanged context is not rebuilt.
    Build {
        /// Shipped stack names or stack folders (default: every shipped stack).
        stacks: Vec<String>,
        #[command(flatten)]
        opts: BuildOpts,
        /// Build even when the tag exists already.
        #[arg(long)]
        force: bool,
    },
    /// Build (if needed) and save each image as a docker-archive tarball, the format
    /// `kind load image-archive`, `k3d image import` and `ctr images import` read.
    Save {
        /// Shipped stack names or stack folders (default: every shipped stack).
        stacks: Vec<String>,
        #[command(flatten)]
        opts: BuildOpts,
        /// Folder for the archives (one <stack>_<image>_<version>-<hash>.tar per image).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct BuildOpts {
    /// The base image the Dockerfiles start FROM (`--build-arg BASE`).
    #[arg(long, env = "SEAWORTHY_BASE", default_value = images::DEFAULT_BASE)]
    base: String,
    /// docker, podman or buildah (default: docker if its daemon answers, else podman, else buildah).
    #[arg(long, env = "SEAWORTHY_BUILDER")]
    builder: Option<String>,
}

pub fn run(cmd: ImagesCommand) -> anyhow::Result<i32> {
    match cmd {
        ImagesCommand::Build { stacks, opts, force } => build(&stacks, &opts, force, None),
        ImagesCommand::Save { stacks, opts, out } => build(&stacks, &opts, false, Some(&out)),
    }
}

fn build(names: &[String], opts: &BuildOpts, force: bool, out: Option<&Path>) -> anyhow::Result<i32> {
    let builder = match &opts.builder {
        Some(b) => {
            let b = Builder::parse(b)?;
            anyhow::ensure!(b.works(), "{} does not work here (try `{} info`)", b.program(), b.program());
            b
        }
        None => Builder::detect()?,
    };
    let stacks = resolve(names)?;
    if !builder.exists(&opts.base) {
        eprintln!(
            "note: base image {} is not in {}'s storage; the build will try to pull it \
             (without a registry, ci/debian-base.sh imports a debootstrapped one)",
            opts.base,
            builder.program()
        );
    }
    let start = Instant::now();
    let (mut built, mut cached, mut saved) = (0, 0, 0);
    for stack in &stacks {
        let result = images::build_stack(builder, stack, &opts.base, force, |b, outcome| match outcome {
            None => eprint!("{:<10} {:<24} ", b.stack, b.manifest_name()),
            Some(BuildOutcome::Built(d)) => eprintln!("{}  built in {:.1}s", b.tag, d.as_secs_f64()),
            Some(BuildOutcome::UpToDate) => eprintln!("{}  up to date", b.tag),
        });
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                eprintln!("FAILED");
                eprintln!("error: {e:#}");
                return Ok(1);
            }
        };
        for (b, outcome) in &done {
            match outcome {
                BuildOutcome::Built(_) => built += 1,
                BuildOutcome::UpToDate => cached += 1,
            }
            if let Some(dir) = out {
                let (path, info) = images::archive::save(builder, b, dir)?;
                saved += 1;
                println!("{}  {} layers  {}", path.display(), info.layers.len(), b.tag);
            }
        }
    }
    eprintln!(
        "{} images with {}: {built} built, {cached} up to date{} in {:.1}s",
        built + cached,
        builder.program(),
        if out.is_some() { format!(", {saved} saved") } else { String::new() },
        start.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Stack names or folders; none means every shipped stack.
fn resolve(names: &[String]) -> anyhow::Result<Vec<Stack>> {
    if names.is_empty() {
        return Stack::shipped();
    }
    names
        .iter()
        .map(|n| {
            let p = Path::new(n);
            if n.contains('/') || p.join("stack.toml").is_file() { Ok(Stack::load(p)?) } else { Stack::find(n) }
        })
        .collect()
}
