//! The operator's OCI image without Docker (`cargo xtask image`, and the registry test): the operator's OCI image without Docker. A statically linked
//! release binary (glibc, `+crt-static`), one layer written here (the binary, /etc/passwd
//! and /etc/group with the nonroot user 65532, an empty /tmp; every entry root-owned,
//! sorted, stamped with the commit time), assembled with crane (user, entrypoint,
//! platform, OCI labels) through a loopback registry and written as an OCI layout under
//! `target/image/`, with a CycloneDX SBOM beside it. Two builds of one commit give one
//! digest. The Dockerfile describes the same image.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::crane::{Registry, crane};
use anyhow::{Context, Result, bail, ensure};

/// The target the image's binary is built for (the only one this toolchain has; glibc
/// with `+crt-static` links statically).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Repository name of the image (the chart's `image.repository` without the registry).
pub const REPOSITORY: &str = "siths-operator/siths-operator";
/// The non-root user and group of the image (distroless `nonroot`, the chart's
/// `runAsUser`).
pub const UID: u32 = 65532;

/// The image's /etc/passwd: root and nonroot ([`UID`]), no shells.
pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
/// The image's /etc/group.
pub const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";
/// The OCI labels every build sets.
pub const LABELS: [&str; 4] = [
    "org.opencontainers.image.source",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.licenses",
];

/// What `cargo xtask image` wrote.
#[derive(Debug)]
pub struct Built {
    /// The OCI image layout folder.
    pub layout: PathBuf,
    /// `sha256:...` of the image manifest.
    pub digest: String,
    /// The CycloneDX SBOM.
    pub sbom: PathBuf,
    /// The image's version tag.
    pub version: String,
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .context("running git")?;
    ensure!(out.status.success(), "git {} failed", args.join(" "));
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Builds the image of the workspace at `root` into `out` (`target/image/`).
pub fn build(root: &Path, target_dir: &Path, out: &Path) -> Result<Built> {
    let revision = git(root, &["rev-parse", "HEAD"])?;
    // SOURCE_DATE_EPOCH when set (reproducible-builds.org), else the commit's time.
    let epoch: u64 = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().context("SOURCE_DATE_EPOCH")?,
        _ => git(root, &["log", "-1", "--format=%ct"])?
            .parse()
            .context("commit time")?,
    };
    let version = env!("CARGO_PKG_VERSION").to_string();
    let source = env!("CARGO_PKG_REPOSITORY").to_string();
    let licenses = env!("CARGO_PKG_LICENSE").to_string();

    let binary = build_static_binary(root, target_dir)?;
    fs::create_dir_all(out)?;
    let layer = out.join("layer.tar");
    fs::write(&layer, layer_tar(&fs::read(&binary)?, epoch)?)?;

    let registry = Registry::start()?;
    let staging = format!("{}/{REPOSITORY}:staging", registry.host);
    let tagged = format!("{}/{REPOSITORY}:{version}", registry.host);
    crane(&[
        "append",
        "--insecure",
        "--oci-empty-base",
        "--platform",
        "linux/amd64",
        "-f",
        &layer.to_string_lossy(),
        "-t",
        &staging,
    ])?;
    let labels = LABELS.iter().zip([&source, &version, &revision, &licenses]);
    let mut args = vec![
        "mutate".to_string(),
        "--insecure".into(),
        staging.clone(),
        "--set-platform".into(),
        "linux/amd64".into(),
        "--user".into(),
        format!("{UID}:{UID}"),
        "--entrypoint".into(),
        "/siths-operator".into(),
        "--tag".into(),
        tagged.clone(),
    ];
    for (k, v) in labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crane(&args)?;
    let digest = crane(&["digest", "--insecure", &tagged])?
        .trim()
        .to_string();

    let layout = out.join("oci");
    if layout.exists() {
        fs::remove_dir_all(&layout)?;
    }
    crane(&[
        "pull",
        "--insecure",
        "--format",
        "oci",
        &tagged,
        &layout.to_string_lossy(),
    ])?;
    drop(registry);
    fs::remove_file(&layer)?;

    let sbom = out.join("siths-operator.cdx.json");
    fs::write(
        &sbom,
        serde_json::to_string_pretty(&cyclonedx(root, &version, epoch, &digest)?)?,
    )?;
    fs::write(out.join("digest"), format!("{digest}\n"))?;
    Ok(Built {
        layout,
        digest,
        sbom,
        version,
    })
}

/// `cargo build --release` of the operator for [`TARGET`] with `+crt-static`; checks the result has no ELF interpreter (nothing loaded at run
/// time).
pub fn build_static_binary(root: &Path, target_dir: &Path) -> Result<PathBuf> {
    // The same flags as the Dockerfile. (Machine paths, such as the checkout's, stay in
    // panic locations: two builds of one commit in one checkout are identical.)
    let rustflags = "-C target-feature=+crt-static";
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .env("RUSTFLAGS", rustflags)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "siths-operator",
            "--bin",
            "siths-operator",
            "--target",
            TARGET,
        ])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "static release build failed: {status}");
    let binary = target_dir.join(TARGET).join("release/siths-operator");
    let elf = fs::read(&binary)?;
    ensure!(
        !has_interpreter(&elf)?,
        "{} is dynamically linked (has an ELF interpreter)",
        binary.display()
    );
    Ok(binary)
}

/// Whether an ELF64 little-endian file has a PT_INTERP program header (a dynamic loader).
pub fn has_interpreter(elf: &[u8]) -> Result<bool> {
    ensure!(
        elf.len() > 64 && &elf[..4] == b"\x7fELF" && elf[4] == 2,
        "not an ELF64 file"
    );
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into()?) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    for i in 0..count {
        let o = phoff + i * size;
        let p_type = u32::from_le_bytes(elf.get(o..o + 4).context("program header")?.try_into()?);
        if p_type == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One tar entry: path, mode, content (`None`: a folder).
type Entry<'a> = (&'a str, u32, Option<&'a [u8]>);

/// The image's only layer: a POSIX (ustar) tar, entries sorted, root-owned, `mtime` for all.
pub fn layer_tar(binary: &[u8], mtime: u64) -> Result<Vec<u8>> {
    let (passwd, group) = (PASSWD, GROUP);
    let mut entries: Vec<Entry> = vec![
        ("etc/", 0o755, None),
        ("etc/group", 0o644, Some(group.as_bytes())),
        ("etc/passwd", 0o644, Some(passwd.as_bytes())),
        ("siths-operator", 0o755, Some(binary)),
        // Writable by anyone, sticky; the root filesystem itself is mounted read-only.
        ("tmp/", 0o1777, None),
    ];
    entries.sort_by_key(|e| e.0);
    let mut tar = Vec::new();
    for (name, mode, content) in entries {
        let mut h = [0u8; 512];
        let field = |h: &mut [u8; 512], at: usize, len: usize, value: u64| {
            let s = format!("{value:0width$o}", width = len - 1);
            h[at..at + len - 1].copy_from_slice(s.as_bytes());
        };
        ensure!(name.len() < 100, "tar name too long: {name}");
        h[..name.len()].copy_from_slice(name.as_bytes());
        field(&mut h, 100, 8, u64::from(mode));
        field(&mut h, 108, 8, 0);
        field(&mut h, 116, 8, 0);
        field(&mut h, 124, 12, content.map_or(0, |c| c.len() as u64));
        field(&mut h, 136, 12, mtime);
        h[156] = if content.is_some() { b'0' } else { b'5' };
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        tar.extend_from_slice(&h);
        if let Some(c) = content {
            tar.extend_from_slice(c);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
    }
    tar.resize(tar.len() + 1024, 0);
    Ok(tar)
}

/// A CycloneDX 1.5 SBOM of what the binary links: the operator package and its normal
/// (not build, not dev) dependencies for [`TARGET`], from `cargo metadata`.
fn cyclonedx(root: &Path, version: &str, epoch: u64, digest: &str) -> Result<serde_json::Value> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            TARGET,
        ])
        .output()?;
    ensure!(out.status.success(), "cargo metadata failed");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages: BTreeMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .context("packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .context("resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let operator = packages
        .values()
        .find(|p| p["name"] == "siths-operator")
        .and_then(|p| p["id"].as_str())
        .context("siths-operator package")?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![operator];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal && let Some(d) = dep["pkg"].as_str() {
                stack.push(d);
            }
        }
    }
    let purl = |p: &serde_json::Value| {
        format!(
            "pkg:cargo/{}@{}",
            p["name"].as_str().unwrap_or_default(),
            p["version"].as_str().unwrap_or_default()
        )
    };
    let mut components: Vec<serde_json::Value> = seen
        .iter()
        .filter(|id| **id != operator)
        .map(|id| {
            let p = packages[id];
            let mut c = serde_json::json!({
                "type": "library",
                "bom-ref": purl(p),
                "name": p["name"],
                "version": p["version"],
                "purl": purl(p),
            });
            if let Some(l) = p["license"].as_str() {
                c["licenses"] = serde_json::json!([{ "expression": l }]);
            }
            c
        })
        .collect();
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let timestamp = jiff::Timestamp::from_second(i64::try_from(epoch)?)?.to_string();
    let me = packages[operator];
    Ok(serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "component": {
                "type": "container",
                "bom-ref": format!("pkg:oci/siths-operator@{digest}"),
                "name": REPOSITORY,
                "version": version,
                "purl": format!("pkg:oci/siths-operator@{digest}?arch=amd64"),
                "components": [{
                    "type": "application",
                    "bom-ref": purl(me),
                    "name": me["name"],
                    "version": me["version"],
                    "purl": purl(me),
                    "licenses": [{ "expression": me["license"] }],
                }],
            },
        },
        "components": components,
    }))
}

/// Fails unless `dir` is an OCI image layout.
pub fn check_layout(dir: &Path) -> Result<()> {
    if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
        bail!("{} is not an OCI image layout", dir.display());
    }
    Ok(())
}

/// One entry of a tar file read by [`tar_entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Path inside the archive.
    pub name: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group ids.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Type flag (`b'0'` file, `b'5'` folder).
    pub kind: u8,
    /// Content of a file.
    pub content: Vec<u8>,
}

/// The entries of a ustar/PAX tar (PAX extended headers are skipped; names here are short).
pub fn tar_entries(tar: &[u8]) -> Result<Vec<TarEntry>> {
    let octal = |b: &[u8]| -> Result<u64> {
        let s = std::str::from_utf8(b)?.trim_matches(|c: char| c == '\0' || c == ' ');
        Ok(if s.is_empty() {
            0
        } else {
            u64::from_str_radix(s, 8)?
        })
    };
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let size = usize::try_from(octal(&h[124..136])?)?;
        let kind = h[156];
        let prefix = text(&h[345..500]);
        let name = text(&h[..100]);
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let body = tar
            .get(at + 512..at + 512 + size)
            .context("tar entry cut short")?;
        if kind != b'x' && kind != b'g' {
            out.push(TarEntry {
                name,
                mode: u32::try_from(octal(&h[100..108])?)?,
                uid: u32::try_from(octal(&h[108..116])?)?,
                gid: u32::try_from(octal(&h[116..124])?)?,
                mtime: octal(&h[136..148])?,
                kind,
                content: body.to_vec(),
            });
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    Ok(out)
}
