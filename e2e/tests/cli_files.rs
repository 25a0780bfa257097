//! `sithsctl` on bad files, run as the built binary (no cluster needed): link loops and
//! dangling links, the same object in two files, a Secret that is not base64, DER and PEM
//! where manifests belong, and an ordinary error with `RUST_BACKTRACE=1`. Each case is a
//! row of docs/bad-input.md ("sithsctl on bad files").

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use base64::Engine as _;

const NOW: &str = "2026-06-01T00:00:00Z";

fn root() -> PathBuf {
    e2e::controlplane::workspace_root()
}

/// Runs sithsctl with `args` (and `RUST_BACKTRACE=1`, as a developer's shell may have it);
/// kills it after 60 s, so that a walk that never ends fails the test instead of hanging it.
fn sithsctl(args: &[&str]) -> Result<Output> {
    let mut child = Command::new(e2e::k8s::sithsctl_binary()?)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("KUBECONFIG", "/nonexistent-kubeconfig")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill()?;
            bail!("sithsctl {} did not finish within 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output()?)
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder with the region-production example (one ServerToServer certificate on a
/// manual Production issuer: 1 to issue, 3 500 SEK).
fn example_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let src = root().join("examples/region-production");
    for entry in std::fs::read_dir(&src)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap()))?;
        }
    }
    Ok(dir)
}

fn plan(dir: &Path) -> Result<(i32, String, String)> {
    Ok(text(&sithsctl(&[
        "plan",
        "-f",
        &dir.display().to_string(),
        "--now",
        NOW,
    ])?))
}

#[test]
fn a_symlink_loop_ends_and_counts_every_manifest_once() -> Result<()> {
    let dir = example_dir()?;
    let (code, out, err) = plan(dir.path())?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 to issue, 0 blocked, estimated cost 3 500 SEK"),
        "{out}"
    );
    std::os::unix::fs::symlink(".", dir.path().join("here"))?;
    std::fs::create_dir(dir.path().join("sub"))?;
    std::os::unix::fs::symlink("..", dir.path().join("sub/up"))?;
    let (code, out, err) = plan(dir.path())?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 to issue, 0 blocked, estimated cost 3 500 SEK"),
        "{out}"
    );
    let audit = text(&sithsctl(&[
        "audit",
        "-f",
        &dir.path().display().to_string(),
        "--now",
        NOW,
    ])?);
    assert_eq!(audit.0, 0, "{}", audit.2);
    Ok(())
}

#[test]
fn a_dangling_symlink_is_reported_and_the_rest_is_read() -> Result<()> {
    let dir = example_dir()?;
    std::os::unix::fs::symlink("moved-away.yaml", dir.path().join("old.yaml"))?;
    let (code, out, err) = plan(dir.path())?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 to issue"), "{out}");
    assert!(
        err.contains("old.yaml is a symbolic link to something that does not exist"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_same_object_in_two_files_counts_once_and_a_changed_copy_is_reported() -> Result<()> {
    let dir = example_dir()?;
    let cert = std::fs::read_to_string(dir.path().join("servicecertificate.yaml"))?;
    std::fs::write(dir.path().join("copy.yaml"), &cert)?;
    let (code, out, err) = plan(dir.path())?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 to issue, 0 blocked, estimated cost 3 500 SEK"),
        "{out}"
    );
    assert!(
        !err.contains("defined twice"),
        "an identical copy is no news: {err}"
    );
    std::fs::write(
        dir.path().join("copy.yaml"),
        cert.replace("size: 3072", "size: 2048"),
    )?;
    let (code, out, err) = plan(dir.path())?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 to issue, 0 blocked, estimated cost 3 500 SEK"),
        "{out}"
    );
    assert!(
        err.contains(
            "ServiceCertificate.siths-operator.io integration/patientjournal-link is defined twice with different content"
        ),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_secret_that_is_not_base64_is_a_finding_for_that_secret() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("secrets.yaml"),
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: web-tls, namespace: web}\ndata:\n  tls.crt: \"this is not base64\"\n  tls.key: \"\"\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n",
    )?;
    let (code, out, err) = text(&sithsctl(&[
        "audit",
        "-f",
        &dir.path().display().to_string(),
        "--now",
        NOW,
        "-o",
        "json",
    ])?);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out)?;
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "UNPARSEABLE_CERTIFICATE")
        .unwrap_or_else(|| panic!("{out}"));
    let f = finding.to_string();
    assert!(
        f.contains("web-tls") && f.contains("data.tls.crt is not valid base64"),
        "{f}"
    );
    assert!(
        !f.contains("this is not base64"),
        "the value is not echoed: {f}"
    );
    Ok(())
}

/// The stand-in production root CA of the migration example (the last certificate of its
/// anchor file), as PEM and as DER.
fn ca_pem_and_der() -> Result<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(
        root().join("examples/migration/anchors/stand-in-production-ca.pem"),
    )?;
    let begin = text
        .rfind("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let pem = text[begin..].to_string();
    let body: String = pem
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body)?;
    Ok((pem, der))
}

#[test]
fn der_and_pem_where_a_manifest_belongs_say_what_they_are() -> Result<()> {
    let (pem, der) = ca_pem_and_der()?;
    let dir = tempfile::tempdir()?;
    let der_path = dir.path().join("ca.cer");
    std::fs::write(&der_path, &der)?;
    let (code, _, err) = text(&sithsctl(&[
        "audit",
        "-f",
        &der_path.display().to_string(),
    ])?);
    assert_eq!(code, 1);
    assert!(
        err.contains("ca.cer is binary, not a manifest: it looks like DER"),
        "{err}"
    );
    assert!(err.contains("openssl x509 -inform der"), "{err}");
    assert!(!err.contains("stream did not contain valid UTF-8"), "{err}");
    let pem_path = dir.path().join("ca.pem");
    std::fs::write(&pem_path, &pem)?;
    let (code, _, err) = text(&sithsctl(&["plan", "-f", &pem_path.display().to_string()])?);
    assert_eq!(code, 1);
    assert!(
        err.contains("ca.pem is a PEM file (CERTIFICATE), not a manifest"),
        "{err}"
    );
    assert!(err.contains("--siths-ca"), "{err}");
    assert!(!err.contains("neither JSON nor YAML"), "{err}");
    Ok(())
}

#[test]
fn der_is_accepted_by_siths_ca_like_pem() -> Result<()> {
    let (pem, der) = ca_pem_and_der()?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ca.cer"), &der)?;
    std::fs::write(dir.path().join("ca.pem"), &pem)?;
    let export = root().join("examples/migration/cluster-export.yaml");
    let run = |anchor: &str| -> Result<(i32, String, String)> {
        Ok(text(&sithsctl(&[
            "audit",
            "-f",
            &export.display().to_string(),
            "--now",
            NOW,
            "-o",
            "json",
            "--siths-ca",
            &dir.path().join(anchor).display().to_string(),
        ])?))
    };
    let (code_der, out_der, err_der) = run("ca.cer")?;
    let (code_pem, out_pem, err_pem) = run("ca.pem")?;
    assert_eq!(code_der, 0, "{err_der}");
    assert_eq!(code_pem, 0, "{err_pem}");
    assert_eq!(out_der, out_pem, "DER and PEM anchors give the same report");
    Ok(())
}

#[test]
fn an_ordinary_error_prints_one_line_and_no_backtrace() -> Result<()> {
    let (code, out, err) = text(&sithsctl(&["plan", "-f", "/nonexistent/deploy.yaml"])?);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: reading /nonexistent/deploy.yaml: "),
        "{err}"
    );
    assert!(
        !err.contains("Stack backtrace") && !err.contains("stack backtrace"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    Ok(())
}
