//! docker-archive tarballs: what `docker save` writes and `docker load`, `kind load image-archive`,
//! `k3d image import` and `ctr images import` read. `manifest.json` lists, per image, its
//! `RepoTags`, its `Config` (the image config JSON) and its `Layers` (uncompressed layer tars whose
//! SHA-256 are the config's `rootfs.diff_ids`). Every saved archive is checked against that before
//! seaworthy hands it to anything.

use super::builder::Builder;
use super::tag::ImageBuild;
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a docker-archive holds, read back from the file.
#[derive(Debug, Clone)]
pub struct ArchiveInfo {
    pub repo_tags: Vec<String>,
    /// The config's file name in the archive.
    pub config: String,
    pub os: String,
    pub architecture: String,
    /// Layer file names, bottom first.
    pub layers: Vec<String>,
    /// `sha256:<hex>` of each layer, bottom first (equal to the config's diff_ids: checked).
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

/// The archive's file name for a build: unique per tag, so an archive on disk is never stale.
pub fn archive_name(b: &ImageBuild) -> String {
    format!("{}_{}_{}-{}.tar", b.stack, b.image, b.version, b.hash)
}

/// Save `b` (already built) into `out_dir` as a docker-archive and check it. An archive of the
/// same tag that is already there and checks out is reused.
pub fn save(builder: Builder, b: &ImageBuild, out_dir: &Path) -> Result<(PathBuf, ArchiveInfo)> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(archive_name(b));
    if path.is_file()
        && let Ok(info) = inspect_archive(&path)
        && info.repo_tags.contains(&b.tag)
    {
        return Ok((path, info));
    }
    let partial = out_dir.join(format!(".{}.partial", archive_name(b)));
    let _ = std::fs::remove_file(&partial);
    let out = Command::new(builder.program())
        .args(builder.save_args(&b.tag, &partial))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} save", builder.program()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "stack {}: saving {} failed: {} {}",
            b.stack,
            b.tag,
            builder.program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let info = inspect_archive(&partial).with_context(|| format!("{} wrote {}", builder.program(), partial.display()))?;
    if !info.repo_tags.contains(&b.tag) {
        bail!("{} wrote an archive tagged {:?}, not {}", builder.program(), info.repo_tags, b.tag);
    }
    std::fs::rename(&partial, &path)?;
    Ok((path, info))
}

/// Read a docker-archive and check that it is one: manifest.json with one image, its config
/// present and a valid image config, every layer present with the SHA-256 the config promises.
pub fn inspect_archive(path: &Path) -> Result<ArchiveInfo> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    walk_entries(std::io::BufReader::new(file), |entry| {
        let (name, size, data) = match entry {
            Entry::Link { name, target } => {
                links.insert(name.to_string(), target.to_string());
                return Ok(());
            }
            Entry::File { name, size, data } => (name, size, data),
        };
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let keep = size <= 4 << 20 && (name.ends_with(".json") || !name.contains('.'));
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = data.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        digests.insert(name.to_string(), format!("sha256:{:x}", hasher.finalize()));
        if keep {
            small.insert(name.to_string(), kept);
        }
        Ok(())
    })
    .with_context(|| format!("{} is not a readable tar archive", path.display()))?;
    // `docker save` before v25 stores a layer shared by two images (or twice in one) once and
    // links the other `<id>/layer.tar` to it: a member named in manifest.json may be a link.
    let resolve = |name: &str| -> String {
        let mut name = name.trim_start_matches("./").to_string();
        for _ in 0..32 {
            match links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        name
    };

    let manifest = small.get(&resolve("manifest.json")).ok_or_else(|| anyhow!("{}: no manifest.json: not a docker-archive", path.display()))?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(manifest).with_context(|| format!("{}: manifest.json", path.display()))?;
    let [entry] = entries.as_slice() else {
        bail!("{}: manifest.json lists {} images; seaworthy saves one per archive", path.display(), entries.len());
    };
    let config_bytes = small.get(&resolve(&entry.config)).ok_or_else(|| anyhow!("{}: the config {} named in manifest.json is missing", path.display(), entry.config))?;
    let config: ImageConfig = serde_json::from_slice(config_bytes).with_context(|| format!("{}: image config {}", path.display(), entry.config))?;
    if config.rootfs.kind != "layers" {
        bail!("{}: rootfs.type is {:?}, not \"layers\"", path.display(), config.rootfs.kind);
    }
    if config.rootfs.diff_ids.len() != entry.layers.len() {
        bail!("{}: the config has {} diff_ids but manifest.json {} layers", path.display(), config.rootfs.diff_ids.len(), entry.layers.len());
    }
    let mut diff_ids = Vec::new();
    for (layer, want) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let got = digests.get(&resolve(layer)).ok_or_else(|| anyhow!("{}: layer {layer} named in manifest.json is missing", path.display()))?;
        if got != want {
            bail!("{}: layer {layer} has {got}, the config says {want}", path.display());
        }
        diff_ids.push(got.clone());
    }
    Ok(ArchiveInfo {
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        config: entry.config.clone(),
        os: config.os,
        architecture: config.architecture,
        layers: entry.layers.clone(),
        diff_ids,
    })
}

/// Walk a tar stream (ustar, GNU long names, PAX `path`), calling `f(name, size, data)` for
/// each regular file. A reader of its own: all seaworthy needs is names and bytes.
pub fn for_each_entry<R: Read>(r: R, mut f: impl FnMut(&str, u64, &mut dyn Read) -> std::io::Result<()>) -> Result<()> {
    walk_entries(r, |entry| match entry {
        Entry::File { name, size, data } => f(name, size, data),
        Entry::Link { .. } => Ok(()),
    })
}

/// One member of a tar stream, as [`walk_entries`] hands it over.
pub enum Entry<'a> {
    /// A regular file and its bytes.
    File { name: &'a str, size: u64, data: &'a mut dyn Read },
    /// A symbolic or hard link, its target resolved to the member name it points at (relative
    /// to the archive's root, `.`/`..` folded; a target outside the archive keeps what is left).
    Link { name: &'a str, target: &'a str },
}

/// Walk a tar stream (ustar, GNU long names and link names, PAX `path`/`linkpath`), calling `f`
/// for each regular file and each link; folders and other members are skipped.
pub fn walk_entries<R: Read>(mut r: R, mut f: impl FnMut(Entry<'_>) -> std::io::Result<()>) -> Result<()> {
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_link: Option<String> = None;
    let mut header = [0u8; 512];
    loop {
        if !read_full(&mut r, &mut header)? {
            bail!("truncated: no end-of-archive marker");
        }
        if header.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let stored: u32 = header.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 }).sum();
        let claimed = octal(&header[148..156]).ok_or_else(|| anyhow!("bad header checksum field"))?;
        if stored as u64 != claimed {
            bail!("header checksum mismatch: not a tar archive (or corrupt)");
        }
        let size = size_field(&header[124..136]).ok_or_else(|| anyhow!("bad size field"))?;
        let kind = header[156];
        let mut name = cstr(&header[0..100]);
        if &header[257..262] == b"ustar" {
            let prefix = cstr(&header[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        let padded = size.div_ceil(512) * 512;
        let mut data = (&mut r).take(size);
        match kind {
            b'L' | b'K' => {
                let mut buf = Vec::new();
                data.read_to_end(&mut buf)?;
                *(if kind == b'L' { &mut long_name } else { &mut long_link }) = Some(cstr(&buf));
            }
            b'x' => {
                let mut buf = Vec::new();
                data.read_to_end(&mut buf)?;
                pax_path = pax_record(&buf, "path");
                pax_link = pax_record(&buf, "linkpath");
            }
            b'0' | 0 | b'7' | b'1' | b'2' => {
                let name = pax_path.take().or(long_name.take()).unwrap_or(name);
                let name = name.trim_start_matches("./").to_string();
                let link = pax_link.take().or(long_link.take()).unwrap_or_else(|| cstr(&header[157..257]));
                match kind {
                    // A symlink's target is relative to its own folder; a hard link's to the root.
                    b'2' => {
                        let folder = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        let target = if link.starts_with('/') { link.clone() } else { format!("{folder}/{link}") };
                        f(Entry::Link { name: &name, target: &fold_path(&target) })?;
                    }
                    b'1' => f(Entry::Link { name: &name, target: &fold_path(&link) })?,
                    _ => f(Entry::File { name: &name, size, data: &mut data })?,
                }
                std::io::copy(&mut data, &mut std::io::sink())?;
            }
            _ => {
                pax_path = None;
                pax_link = None;
                long_name = None;
                long_link = None;
                std::io::copy(&mut data, &mut std::io::sink())?;
            }
        }
        let mut pad = (&mut r).take(padded - size);
        std::io::copy(&mut pad, &mut std::io::sink())?;
    }
}

/// `a/./b/../c` -> `a/c`, relative to the archive's root (a leading `/` or `..` past the root is
/// dropped: nothing outside the archive can be read from it anyway).
fn fold_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(false);
        }
        filled += n;
    }
    Ok(true)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn octal(b: &[u8]) -> Option<u64> {
    let s = cstr(b);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Sizes above 8 GiB use GNU's base-256 form (high bit set).
fn size_field(b: &[u8]) -> Option<u64> {
    if b[0] & 0x80 != 0 {
        return Some(b[1..].iter().fold(0u64, |acc, x| (acc << 8) | *x as u64));
    }
    octal(b)
}

/// `<len> key=value\n` records of a PAX extended header.
fn pax_record(buf: &[u8], key: &str) -> Option<String> {
    let mut rest = buf;
    while !rest.is_empty() {
        let space = rest.iter().position(|c| *c == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len == 0 || len > rest.len() {
            return None;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|c| *c == b'=')
            && &record[..eq] == key.as_bytes()
        {
            return Some(String::from_utf8_lossy(&record[eq + 1..]).into_owned());
        }
        rest = &rest[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar made by GNU tar (the system's, not this module) from files written here.
    fn gnu_tar(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        for (name, data) in files {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let out = t.path().join("a.tar");
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        let st = Command::new("tar").arg("-C").arg(&root).arg("--format=posix").arg("-cf").arg(&out).args(&names).status().unwrap();
        assert!(st.success());
        (t, out)
    }

    fn sha(b: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(b))
    }

    #[test]
    fn reads_what_gnu_tar_writes_including_long_names() {
        let long = format!("{}/layer.tar", "d".repeat(120));
        let (_t, path) = gnu_tar(&[("short.txt", b"hello"), (&long, b"world!")]);
        let mut seen = Vec::new();
        for_each_entry(std::fs::File::open(&path).unwrap(), |name, size, data| {
            let mut s = String::new();
            data.read_to_string(&mut s)?;
            seen.push((name.to_string(), size, s));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [("short.txt".to_string(), 5, "hello".to_string()), (long, 6, "world!".to_string())]);
    }

    fn docker_archive(layer: &[u8], claimed: &str, tags: &str) -> (tempfile::TempDir, PathBuf) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{claimed}"]}}}}"#);
        let manifest = format!(r#"[{{"Config":"abc.json","RepoTags":{tags},"Layers":["l1.tar"]}}]"#);
        gnu_tar(&[("manifest.json", manifest.as_bytes()), ("abc.json", config.as_bytes()), ("l1.tar", layer)])
    }

    #[test]
    fn checks_a_docker_archive() {
        let layer = b"pretend layer";
        let (_t, ok) = docker_archive(layer, &sha(layer), r#"["localhost/seaworthy/a:v1-0123456789ab"]"#);
        let info = inspect_archive(&ok).unwrap();
        assert_eq!(info.repo_tags, ["localhost/seaworthy/a:v1-0123456789ab"]);
        assert_eq!(info.layers, ["l1.tar"]);
        assert_eq!(info.diff_ids, [sha(layer)]);

        let (_t, bad) = docker_archive(layer, &sha(b"other"), "[]");
        let e = format!("{:#}", inspect_archive(&bad).unwrap_err());
        assert!(e.contains("layer l1.tar has sha256:"), "{e}");

        let (_t, none) = gnu_tar(&[("index.json", b"{}")]);
        let e = format!("{:#}", inspect_archive(&none).unwrap_err());
        assert!(e.contains("no manifest.json"), "{e}");

        let t = tempfile::tempdir().unwrap();
        let junk = t.path().join("junk.tar");
        std::fs::write(&junk, vec![7u8; 2048]).unwrap();
        assert!(inspect_archive(&junk).is_err());
    }

    /// What `docker save` before v25 writes for an image whose layers repeat: one
    /// `<id>/layer.tar` file, the others links to it (symlinks `../<id>/layer.tar`; hard links in
    /// some tools; with a target too long for the ustar header, a PAX `linkpath`).
    #[test]
    fn follows_layer_links_as_old_docker_save_writes_them() {
        let layer: &[u8] = b"shared layer bytes";
        let other: &[u8] = b"top layer";
        let long = "d".repeat(120);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{a}","{a}","{a}","{a}","{a}","{b}"]}}}}"#,
            a = sha(layer),
            b = sha(other)
        );
        let layers = ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar", &format!("{long}/layer.tar"), "eee/layer.tar", "top/layer.tar"];
        let manifest = format!(r#"[{{"Config":"cfg.json","RepoTags":["t:1"],"Layers":{}}}]"#, serde_json::to_string(&layers).unwrap());
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let put = |rel: &str, data: &[u8]| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        put("manifest.json", manifest.as_bytes());
        put("cfg.json", config.as_bytes());
        put("aaa/layer.tar", layer);
        put("top/layer.tar", other);
        for d in ["bbb", "ccc", "eee", long.as_str()] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("../aaa/layer.tar", root.join("bbb/layer.tar")).unwrap();
        // A symlink to a symlink, and an absolute one (relative to the archive's root).
        std::os::unix::fs::symlink("/bbb/./layer.tar", root.join("ccc/layer.tar")).unwrap();
        std::fs::hard_link(root.join("aaa/layer.tar"), root.join(format!("{long}/layer.tar"))).unwrap();
        // A target longer than the header's 100 bytes: PAX linkpath, or GNU's ././@LongLink.
        std::os::unix::fs::symlink(format!("../{long}/layer.tar"), root.join("eee/layer.tar")).unwrap();
        let tar = |format: &str| {
            let out = t.path().join(format!("{format}.tar"));
            let st = Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg(format!("--format={format}"))
                .arg("-cf")
                .arg(&out)
                .args(["manifest.json", "cfg.json", "aaa", "bbb", "ccc", &long, "eee", "top"])
                .status()
                .unwrap();
            assert!(st.success());
            out
        };
        for format in ["posix", "gnu"] {
            let path = tar(format);
            let info = inspect_archive(&path).unwrap_or_else(|e| panic!("{format}: {e:#}"));
            assert_eq!(info.layers, layers, "{format}");
            assert_eq!(info.diff_ids, [sha(layer), sha(layer), sha(layer), sha(layer), sha(layer), sha(other)], "{format}");
        }

        // A link to nothing is still a missing layer.
        std::fs::remove_file(root.join("bbb/layer.tar")).unwrap();
        std::os::unix::fs::symlink("../gone/layer.tar", root.join("bbb/layer.tar")).unwrap();
        let e = format!("{:#}", inspect_archive(&tar("posix")).unwrap_err());
        assert!(e.contains("layer bbb/layer.tar named in manifest.json is missing"), "{e}");
    }

    #[test]
    fn folds_link_targets() {
        assert_eq!(fold_path("bbb/../aaa/layer.tar"), "aaa/layer.tar");
        assert_eq!(fold_path("/x/./y//z"), "x/y/z");
        assert_eq!(fold_path("../../etc/passwd"), "etc/passwd");
    }
}
