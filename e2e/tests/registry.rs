//! Installing as users do, through a real OCI registry (go-containerregistry's `registry`
//! on loopback): the image `cargo xtask image` builds (twice: one digest) is pushed with
//! crane, the packaged chart with `helm push`; `helm install oci://...` installs the chart
//! into the real apiserver pinned to the pushed digest; the image is pulled back, its
//! binary extracted and run as the operator (the chart's ServiceAccount), and a
//! local-CA ServiceCertificate becomes Ready.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{
    controlplane::OPERATOR_NAMESPACE,
    crane::{Registry, crane},
    helm::{RELEASE, chart_dir, helm},
    image::{self, REPOSITORY, UID, tar_entries},
    k8s::condition,
    operator::{OperatorProcess, target_dir},
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use siths_operator::api::ServiceCertificate;

/// The Dockerfile (the documented alternative) describes the image `cargo xtask image`
/// builds: the same files, user, entrypoint and labels.
#[test]
fn dockerfile_describes_the_same_image() -> Result<()> {
    let text = std::fs::read_to_string(e2e::controlplane::workspace_root().join("Dockerfile"))?;
    let printf = |s: &str| s.replace('\n', "\\n");
    for want in [
        "FROM scratch".to_string(),
        format!("USER {UID}:{UID}"),
        r#"ENTRYPOINT ["/siths-operator"]"#.to_string(),
        format!("printf '{}' > /rootfs/etc/passwd", printf(image::PASSWD)),
        format!("printf '{}' > /rootfs/etc/group", printf(image::GROUP)),
        "chmod 1777 /rootfs/tmp".to_string(),
        "/rootfs/siths-operator".to_string(),
        "+crt-static".to_string(),
    ] {
        ensure!(text.contains(&want), "the Dockerfile lacks {want:?}");
    }
    for label in image::LABELS {
        ensure!(text.contains(label), "the Dockerfile lacks label {label}");
    }
    // Nothing else is copied into the image.
    let copies: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("COPY --from"))
        .collect();
    ensure!(copies == ["COPY --from=build /rootfs/ /"], "{copies:?}");
    Ok(())
}

#[tokio::test]
async fn image_and_chart_install_from_an_oci_registry() -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("siths-registry-")
        .tempdir()?;
    let root = e2e::controlplane::workspace_root();

    // Two builds of one commit: one digest (fixed mtimes, sorted entries, no timestamps).
    let first = image::build(&root, &target_dir(), &work.path().join("image-1"))?;
    let second = image::build(&root, &target_dir(), &work.path().join("image-2"))?;
    ensure!(
        first.digest == second.digest,
        "two builds of one commit differ: {} and {}",
        first.digest,
        second.digest
    );
    image::check_layout(&first.layout)?;
    let sbom: serde_json::Value = serde_json::from_slice(&std::fs::read(&first.sbom)?)?;
    ensure!(sbom["bomFormat"] == "CycloneDX", "{sbom}");
    let components = sbom["components"].as_array().context("SBOM components")?;
    for linked in ["kube-client", "rustls", "aws-lc-rs", "webpki-roots"] {
        ensure!(
            components.iter().any(|c| c["name"] == linked),
            "SBOM lacks {linked}"
        );
    }

    // Push both artefacts to a real registry.
    let registry = Registry::start()?;
    let image_ref = format!("{}/{REPOSITORY}:{}", registry.host, first.version);
    crane(&[
        "push",
        "--insecure",
        &first.layout.to_string_lossy(),
        &image_ref,
    ])?;
    let pushed = crane(&["digest", "--insecure", &image_ref])?;
    ensure!(
        pushed.trim() == first.digest,
        "pushed {pushed} != built {}",
        first.digest
    );
    let packaged = helm(
        None,
        &[
            "package",
            &chart_dir().to_string_lossy(),
            "--destination",
            &work.path().to_string_lossy(),
        ],
    )?;
    let tgz = packaged
        .split_whitespace()
        .last()
        .context("helm package names the archive")?
        .to_string();
    let charts = format!("oci://{}/charts", registry.host);
    helm(None, &["push", &tgz, &charts, "--plain-http"])?;

    // Install from the registry, pinned to the pushed digest.
    let cp = e2e::shared();
    let repository = format!("{}/{REPOSITORY}", registry.host);
    helm(
        Some(&cp.kubeconfig),
        &[
            "install",
            RELEASE,
            &format!("{charts}/siths-operator"),
            "--version",
            env!("CARGO_PKG_VERSION"),
            "--plain-http",
            "--namespace",
            OPERATOR_NAMESPACE,
            "--set",
            &format!(
                "image.repository={repository},image.digest={}",
                first.digest
            ),
        ],
    )?;
    let admin = cp.client().await?;
    let deploy = Api::<Deployment>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .get(RELEASE)
        .await?;
    let pod = deploy
        .spec
        .and_then(|s| s.template.spec)
        .context("pod template")?;
    let container = &pod.containers[0];
    ensure!(
        container.image.as_deref() == Some(format!("{repository}@{}", first.digest).as_str()),
        "the Deployment runs {:?}",
        container.image
    );

    // What the image says about itself: user, entrypoint, platform, labels.
    let config: serde_json::Value =
        serde_json::from_str(&crane(&["config", "--insecure", &image_ref])?)?;
    ensure!(
        config["config"]["User"] == format!("{UID}:{UID}"),
        "{config}"
    );
    ensure!(
        config["config"]["Entrypoint"] == serde_json::json!(["/siths-operator"]),
        "{config}"
    );
    ensure!(
        config["os"] == "linux" && config["architecture"] == "amd64",
        "{config}"
    );
    let labels = &config["config"]["Labels"];
    for l in image::LABELS {
        ensure!(labels[l].is_string(), "label {l} missing: {labels}");
    }
    ensure!(
        labels["org.opencontainers.image.revision"] == e2e_git_head()?.as_str(),
        "revision label {labels}"
    );
    ensure!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.run_as_user)
            .is_none_or(|u| u == i64::from(UID)),
        "the chart runs another user than the image's"
    );

    // Pull it back and take the filesystem apart.
    let export = work.path().join("export.tar");
    crane(&[
        "export",
        "--insecure",
        &image_ref,
        &export.to_string_lossy(),
    ])?;
    let entries = tar_entries(&std::fs::read(&export)?)?;
    // (crane export writes folders without the trailing slash of the layer.)
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e.name.trim_end_matches('/'))
        .collect();
    ensure!(
        names == ["etc", "etc/group", "etc/passwd", "siths-operator", "tmp"],
        "image files: {names:?}"
    );
    for e in &entries {
        ensure!(e.uid == 0 && e.gid == 0, "{} is not root-owned", e.name);
    }
    let passwd = entries
        .iter()
        .find(|e| e.name == "etc/passwd")
        .context("passwd")?;
    ensure!(
        passwd.content == image::PASSWD.as_bytes(),
        "passwd: {}",
        String::from_utf8_lossy(&passwd.content)
    );
    let tmp = entries
        .iter()
        .find(|e| e.name.trim_end_matches('/') == "tmp")
        .context("tmp")?;
    ensure!(
        tmp.mode == 0o1777 && tmp.kind == b'5',
        "/tmp mode {:o}",
        tmp.mode
    );
    let binary = entries
        .iter()
        .find(|e| e.name == "siths-operator")
        .context("binary")?;
    ensure!(
        !image::has_interpreter(&binary.content)?,
        "the image's binary is dynamically linked"
    );
    let bin = work.path().join("siths-operator");
    std::fs::write(&bin, &binary.content)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    }

    // The pulled binary is the operator: as the chart's ServiceAccount, a local-CA
    // certificate becomes Ready.
    let kubeconfig = e2e::rbac::operator_kubeconfig(cp)?;
    let mut operator = OperatorProcess::start_with(cp, &bin, &kubeconfig, &[], "info")?;
    let ns = e2e::test_namespace(&admin, "registry").await?;
    e2e::fixtures::local_ca_scenario(&admin, &ns).await?;
    e2e::fixtures::server_certificate(
        &admin,
        &ns,
        "api",
        &format!("api.{ns}.region.se"),
        "SE2321000016-R1",
        &ns,
        "api-tls",
    )
    .await?;
    let certs = Api::<ServiceCertificate>::namespaced(admin.clone(), &ns);
    let ready = e2e::eventually(Duration::from_secs(90), "certificate api Ready", || async {
        let c = certs.get("api").await?;
        Ok(condition(&c, "Ready")
            .is_some_and(|(s, _, _)| s == "True")
            .then_some(()))
    })
    .await;
    if let Err(e) = ready {
        anyhow::bail!("{e:#}\noperator log:\n{}", operator.output());
    }
    let status = operator.terminate(Duration::from_secs(20)).await?;
    ensure!(status.success(), "operator exit {status}");
    Ok(())
}

fn e2e_git_head() -> Result<String> {
    let out = std::process::Command::new("git")
        .current_dir(e2e::controlplane::workspace_root())
        .args(["rev-parse", "HEAD"])
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}
