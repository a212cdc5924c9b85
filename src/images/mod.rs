//! The images a stack declares: content-hash tags, building (docker, else podman, else buildah),
//! docker-archive tarballs, loading them into a cluster, and running them the way a Pod template
//! says (podman pods) before any cluster sees them.
//!
//! A manifest names an image as `<image>:<version>`; what runs is
//! `localhost/seaworthy/<image>:<version>-<12 hex>`, the hex a SHA-256 over the build context, the
//! Dockerfile, the base image (its ID where the builder has it) and the build arguments. Never
//! `:latest`: a tag names one build.

pub mod archive;
pub mod build;
pub mod builder;
pub mod load;
pub mod pods;
pub mod tag;

pub use archive::{ArchiveInfo, inspect_archive};
pub use build::{BuildError, BuildOutcome, build_image, build_stack, ensure_built};
pub use builder::Builder;
pub use load::{LoadCommand, Loader};
pub use pods::{Pod, PodOptions, Sandbox};
pub use tag::{ImageBuild, context_hash};

use crate::stack::Stack;
use anyhow::{Result, anyhow, bail};

/// The base the fixture Dockerfiles start `FROM` (their `ARG BASE` default).
pub const DEFAULT_BASE: &str = "debian:bookworm-slim";

/// The repository every seaworthy image is tagged under.
pub const REPOSITORY: &str = "localhost/seaworthy";

/// The configured base image: `SEAWORTHY_BASE`, else the Dockerfiles' default.
pub fn base() -> String {
    std::env::var("SEAWORTHY_BASE").ok().filter(|b| !b.trim().is_empty()).unwrap_or_else(|| DEFAULT_BASE.to_string())
}

/// The tag the cluster layer renders `<image>:<version>` of `stack` to, with the configured base.
pub fn image_ref(stack: &Stack, image: &str, version: &str) -> Result<String> {
    image_ref_with_base(stack, image, version, &base())
}

/// [`image_ref`] for a given base image.
pub fn image_ref_with_base(stack: &Stack, image: &str, version: &str, base: &str) -> Result<String> {
    Ok(ImageBuild::new(stack, image, version, base)?.tag)
}

/// Split a manifest's `image:` (`phpdemo-code:v1`) into the stack's image and version; an image
/// the stack does not declare, or a version it does not build, is an error naming what it has.
pub fn parse_manifest_image<'a>(stack: &Stack, image: &'a str) -> Result<(&'a str, &'a str)> {
    let (name, version) = image
        .rsplit_once(':')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty() && !v.contains('/'))
        .ok_or_else(|| anyhow!("stack {}: image {image:?} has no :<version>", stack.name()))?;
    let spec = stack.spec.images.iter().find(|i| i.name == name).ok_or_else(|| {
        let known: Vec<&str> = stack.spec.images.iter().map(|i| i.name.as_str()).collect();
        anyhow!("stack {}: image {name:?} is not declared in stack.toml [[images]] (declared: {})", stack.name(), known.join(", "))
    })?;
    if !spec.versions.iter().any(|v| v == version) {
        bail!("stack {}: image {name} has no version {version:?} (versions: {})", stack.name(), spec.versions.join(", "));
    }
    Ok((name, version))
}

/// Every image and version a stack builds, in stack.toml order. Negative-control variants only
/// edit manifests, so they run these same images.
pub fn planned(stack: &Stack, base: &str) -> Result<Vec<ImageBuild>> {
    let mut out = Vec::new();
    for spec in &stack.spec.images {
        for version in &spec.versions {
            out.push(ImageBuild::new(stack, &spec.name, version, base)?);
        }
    }
    Ok(out)
}
