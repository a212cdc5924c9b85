//! Content-hash tags. The hash covers exactly what the builder is given: the files of the build
//! context (which are also what gets staged for the build, so the two cannot drift apart), the
//! Dockerfile, the base image, the version and the other build arguments. An edit to any of them
//! is a new tag; an unchanged context is the same tag, found already built and not rebuilt.
//!
//! The base image counts by its image ID where the builder has it, not only by its tag: a base
//! re-imported (ci/debian-base.sh) or re-pulled under the same tag is a new base, and every image
//! on it is rebuilt. Where the builder does not have the base yet (a registry pulls it during the
//! first build), the tag alone is hashed; the next process, which sees the pulled base's ID,
//! hashes to a new tag once and rebuilds (from the builder's layer cache).

use super::builder::Builder;
use crate::stack::Stack;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// One image version of a stack, ready to build: where its sources are and the tag they hash to.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    pub stack: String,
    pub image: String,
    pub version: String,
    pub base: String,
    /// The base image's ID in the builder's storage, when it has it (hashed with the tag).
    pub base_id: Option<String>,
    /// The build context folder.
    pub context: PathBuf,
    /// The Dockerfile, as stack.toml names it (relative to the context).
    pub dockerfile: PathBuf,
    /// `--build-arg`s: VERSION, BASE, then stack.toml `build_args`, sorted by name.
    pub build_args: Vec<(String, String)>,
    /// The context's files, relative and sorted, as hashed and staged.
    pub files: Vec<ContextFile>,
    /// 12 hex digits of the content hash.
    pub hash: String,
    /// `localhost/seaworthy/<image>:<version>-<hash>`.
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub path: PathBuf,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// Contents and whether it is executable (COPY keeps the mode, so a lost `x` bit matters).
    File { content: Vec<u8>, executable: bool },
    Symlink { target: PathBuf },
}

impl ImageBuild {
    /// The build of `<image>:<version>` on `base`, its ID looked up with the builder that
    /// [`Builder::detect`] finds (once per process and base: see [`base_image_id`]).
    pub fn new(stack: &Stack, image: &str, version: &str, base: &str) -> Result<ImageBuild> {
        Self::with_base_id(stack, image, version, base, base_image_id(base).as_deref())
    }

    /// [`ImageBuild::new`] with the base's image ID given (None: hash its tag only).
    pub fn with_base_id(stack: &Stack, image: &str, version: &str, base: &str, base_id: Option<&str>) -> Result<ImageBuild> {
        let spec = stack.spec.images.iter().find(|i| i.name == image).ok_or_else(|| {
            let known: Vec<&str> = stack.spec.images.iter().map(|i| i.name.as_str()).collect();
            anyhow!("stack {}: no image {image:?} in stack.toml (images: {})", stack.name(), known.join(", "))
        })?;
        if !spec.versions.iter().any(|v| v == version) {
            bail!("stack {}: image {image} has no version {version:?} (versions: {})", stack.name(), spec.versions.join(", "));
        }
        let context = stack.dir.join(&spec.context);
        let dockerfile = PathBuf::from(&spec.dockerfile);
        let mut build_args = vec![("VERSION".to_string(), version.to_string()), ("BASE".to_string(), base.to_string())];
        let mut extra: Vec<(String, String)> = spec.build_args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        extra.retain(|(k, _)| k != "VERSION" && k != "BASE");
        extra.sort();
        build_args.extend(extra);
        let files = context_files(&context).with_context(|| format!("stack {}: image {image}: reading the build context", stack.name()))?;
        let dockerfile_text = std::fs::read(context.join(&dockerfile))
            .with_context(|| format!("stack {}: image {image}: reading {}", stack.name(), context.join(&dockerfile).display()))?;
        let hash = content_hash(&files, &dockerfile, &dockerfile_text, &build_args, base_id);
        let tag = format!("{}/{image}:{version}-{hash}", super::REPOSITORY);
        Ok(ImageBuild {
            stack: stack.name().to_string(),
            image: image.to_string(),
            version: version.to_string(),
            base: base.to_string(),
            base_id: base_id.map(str::to_string),
            context,
            dockerfile,
            build_args,
            files,
            hash,
            tag,
        })
    }

    /// `<image>:<version>`, as the manifests say it.
    pub fn manifest_name(&self) -> String {
        format!("{}:{}", self.image, self.version)
    }

    /// The Dockerfile's path on disk.
    pub fn dockerfile_path(&self) -> PathBuf {
        self.context.join(&self.dockerfile)
    }

    /// Copy the hashed files into `dir` (which becomes the build context) and return the
    /// Dockerfile's path to build with. Files the hash skipped (bytecode caches) are not there.
    pub fn stage(&self, dir: &Path) -> Result<PathBuf> {
        for f in &self.files {
            let to = dir.join(&f.path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match &f.kind {
                FileKind::File { content, executable } => {
                    std::fs::write(&to, content).with_context(|| format!("staging {}", to.display()))?;
                    let mode = if *executable { 0o755 } else { 0o644 };
                    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
                }
                FileKind::Symlink { target } => std::os::unix::fs::symlink(target, &to)?,
            }
        }
        let inside = normal_relative(&self.dockerfile);
        if inside && self.files.iter().any(|f| f.path == self.dockerfile) {
            Ok(dir.join(&self.dockerfile))
        } else {
            // A Dockerfile outside the context is not part of what COPY sees; it goes next to it.
            let outside = dir.with_extension("Dockerfile");
            std::fs::copy(self.dockerfile_path(), &outside)?;
            Ok(outside)
        }
    }
}

/// A relative path that stays inside its folder (no `..`, not absolute).
fn normal_relative(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Names that are never part of a build context: bytecode the local proofs leave behind when
/// they run the fixtures' Python from the source tree, and version-control metadata.
fn skipped(name: &str) -> bool {
    name == "__pycache__" || name.ends_with(".pyc") || name == ".git"
}

/// Every file under `context`, relative and sorted, with contents.
pub fn context_files(context: &Path) -> Result<Vec<ContextFile>> {
    if !context.is_dir() {
        bail!("build context {} is not a folder", context.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = context.join(&rel);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            if skipped(&name.to_string_lossy()) {
                continue;
            }
            let path = rel.join(&name);
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.file_type().is_symlink() {
                out.push(ContextFile { path, kind: FileKind::Symlink { target: std::fs::read_link(entry.path())? } });
            } else if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let content = std::fs::read(entry.path()).with_context(|| format!("reading {}", entry.path().display()))?;
                out.push(ContextFile { path, kind: FileKind::File { content, executable: meta.permissions().mode() & 0o111 != 0 } });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The image ID of `base` in the builder's storage, looked up once per process (so that every
/// tag a process computes, for building and for the manifests it applies, agrees), with
/// `SEAWORTHY_BUILDER` or the builder [`Builder::detect`] finds. None when there is no builder
/// or it does not have the base.
pub fn base_image_id(base: &str) -> Option<String> {
    static BUILDER: OnceLock<Option<Builder>> = OnceLock::new();
    static IDS: Mutex<BTreeMap<String, Option<String>>> = Mutex::new(BTreeMap::new());
    let mut ids = IDS.lock().unwrap_or_else(|p| p.into_inner());
    ids.entry(base.to_string())
        .or_insert_with(|| BUILDER.get_or_init(|| Builder::detect().ok()).and_then(|b| b.image_id(base)))
        .clone()
}

/// [`content_hash`] without a base image ID (the base counts by its tag, a build argument).
pub fn context_hash(files: &[ContextFile], dockerfile: &Path, dockerfile_text: &[u8], build_args: &[(String, String)]) -> String {
    content_hash(files, dockerfile, dockerfile_text, build_args, None)
}

/// 12 hex digits of SHA-256 over the context files (sorted paths, kinds, modes and contents),
/// the Dockerfile (its path and text), the build arguments and, when known, the base image's ID.
/// Every field is length-prefixed, so no two different inputs concatenate to the same bytes.
pub fn content_hash(files: &[ContextFile], dockerfile: &Path, dockerfile_text: &[u8], build_args: &[(String, String)], base_id: Option<&str>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"seaworthy-image-v1");
    for f in files {
        field(f.path.as_os_str().as_encoded_bytes());
        match &f.kind {
            FileKind::File { content, executable } => {
                field(if *executable { b"x" } else { b"f" });
                field(content);
            }
            FileKind::Symlink { target } => {
                field(b"l");
                field(target.as_os_str().as_encoded_bytes());
            }
        }
    }
    field(b"dockerfile");
    field(dockerfile.as_os_str().as_encoded_bytes());
    field(dockerfile_text);
    for (k, v) in build_args {
        field(b"arg");
        field(k.as_bytes());
        field(v.as_bytes());
    }
    if let Some(id) = base_id {
        field(b"base-id");
        field(id.as_bytes());
    }
    let digest = h.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn hash_of(dir: &Path, args: &[(&str, &str)]) -> String {
        let files = context_files(dir).unwrap();
        let df = std::fs::read(dir.join("Dockerfile")).unwrap();
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        context_hash(&files, Path::new("Dockerfile"), &df, &args)
    }

    #[test]
    fn the_hash_follows_every_input_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "Dockerfile", "FROM x\nCOPY . /app\n");
        write(d, "src/a.py", "print(1)\n");
        write(d, "b.txt", "b");
        let args = [("VERSION", "v1"), ("BASE", "debian:bookworm-slim")];
        let h0 = hash_of(d, &args);
        assert_eq!(h0.len(), 12);
        assert!(h0.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash_of(d, &args), h0, "same inputs, same hash");

        // Bytecode caches are neither hashed nor staged.
        write(d, "src/__pycache__/a.cpython-311.pyc", "junk");
        assert_eq!(hash_of(d, &args), h0);

        assert_ne!(hash_of(d, &[("VERSION", "v2"), ("BASE", "debian:bookworm-slim")]), h0, "version");
        assert_ne!(hash_of(d, &[("VERSION", "v1"), ("BASE", "debian:trixie-slim")]), h0, "base");

        write(d, "src/a.py", "print(2)\n");
        let h1 = hash_of(d, &args);
        assert_ne!(h1, h0, "content");

        std::fs::rename(d.join("b.txt"), d.join("c.txt")).unwrap();
        let h2 = hash_of(d, &args);
        assert_ne!(h2, h1, "a renamed file");

        std::fs::set_permissions(d.join("c.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let h3 = hash_of(d, &args);
        assert_ne!(h3, h2, "the executable bit");

        write(d, "Dockerfile", "FROM x\nCOPY . /srv\n");
        assert_ne!(hash_of(d, &args), h3, "the Dockerfile");
    }

    #[test]
    fn staging_reproduces_the_hashed_files() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write(&src, "Dockerfile", "FROM x\n");
        write(&src, "bin/run.sh", "#!/bin/sh\n");
        std::fs::set_permissions(src.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&src, "__pycache__/x.pyc", "junk");
        std::os::unix::fs::symlink("bin/run.sh", src.join("run")).unwrap();
        let files = context_files(&src).unwrap();
        let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(paths, [Path::new("Dockerfile"), Path::new("bin/run.sh"), Path::new("run")]);

        let build = ImageBuild {
            stack: "s".into(),
            image: "i".into(),
            version: "v1".into(),
            base: "b".into(),
            base_id: None,
            context: src.clone(),
            dockerfile: "Dockerfile".into(),
            build_args: vec![],
            files: files.clone(),
            hash: String::new(),
            tag: String::new(),
        };
        let staged = t.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        let df = build.stage(&staged).unwrap();
        assert_eq!(df, staged.join("Dockerfile"));
        assert_eq!(context_files(&staged).unwrap(), files);
        assert!(!staged.join("__pycache__").exists());
    }

    #[test]
    fn the_base_counts_by_its_image_id_when_known() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "Dockerfile", "ARG BASE\nFROM ${BASE}\n");
        let files = context_files(d).unwrap();
        let df = std::fs::read(d.join("Dockerfile")).unwrap();
        let args = vec![("VERSION".to_string(), "v1".to_string()), ("BASE".to_string(), "debian:bookworm-slim".to_string())];
        let hash = |id: Option<&str>| content_hash(&files, Path::new("Dockerfile"), &df, &args, id);
        // Without an ID, the tag-only hash of before.
        assert_eq!(hash(None), context_hash(&files, Path::new("Dockerfile"), &df, &args));
        // A base re-imported under the same tag is a different base: a new tag, rebuilt.
        let a = hash(Some("e78fb5d5489e0aa7f4c8e5b0b1d4c1b4"));
        let b = hash(Some("0580e6b0b1db3f2c9a8d7e6f5a4b3c2d"));
        assert_ne!(a, b);
        assert_ne!(a, hash(None));
        assert_eq!(a, hash(Some("e78fb5d5489e0aa7f4c8e5b0b1d4c1b4")), "the same base, the same tag");

        // Through ImageBuild, on a stack: the tag follows the ID given, the field keeps it.
        let stack = crate::stack::Stack::find("phpdemo").unwrap();
        let with = |id: Option<&str>| ImageBuild::with_base_id(&stack, "phpdemo-code", "v1", "debian:bookworm-slim", id).unwrap();
        let (x, y, none) = (with(Some("sha256:aaa")), with(Some("sha256:bbb")), with(None));
        assert_ne!(x.tag, y.tag);
        assert_ne!(x.tag, none.tag);
        assert_eq!(x.base_id.as_deref(), Some("sha256:aaa"));
        assert_eq!(with(Some("sha256:aaa")).tag, x.tag);
        assert!(x.tag.starts_with("localhost/seaworthy/phpdemo-code:v1-"), "{}", x.tag);
    }
}
