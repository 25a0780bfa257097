//! Reading manifests for the offline commands: files, folders (recursively) and standard
//! input; multi-document YAML, JSON, and `List` output of `kubectl get -o yaml`.
//!
//! A folder is walked once per real file: symbolic links are followed, but a folder or
//! file reached twice (a link loop, `here -> .`, the same file given twice) is read once,
//! and a link to nothing is a warning, not an error. Objects are identified by
//! group/kind/namespace/name: the same object in two files counts once, and two files that
//! disagree about one object are reported (the later file wins, as with `kubectl apply`).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::audit::{Inventory, objects};

/// Extensions read from folders, as `kubectl apply -f DIR` does.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Adds every object of every source to `inv` and returns warnings for a person (dangling
/// links, objects defined twice with different content). `-` is standard input; a folder
/// is read recursively (`.yaml`, `.yml`, `.json`, in path order).
pub fn load(sources: &[PathBuf], inv: &mut Inventory) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    let mut seen_files = BTreeSet::new();
    let mut objects = Objects::default();
    for source in sources {
        if source.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            let text = manifest_text(&bytes, "standard input")?;
            objects.add_text(&text, "standard input", &mut notes)?;
            continue;
        }
        let meta =
            std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
        let files = if meta.is_dir() {
            files_below(source, &mut notes)?
        } else {
            vec![(source.clone(), canonical(source)?)]
        };
        for (file, real) in files {
            if !seen_files.insert(real) {
                continue;
            }
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let origin = file.display().to_string();
            let text = manifest_text(&bytes, &origin)?;
            objects.add_text(&text, &origin, &mut notes)?;
        }
    }
    for (origin, i, value) in objects.into_values() {
        inv.add_value(value)
            .with_context(|| format!("{origin}, document {i}"))?;
    }
    Ok(notes)
}

fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))
}

/// The manifest files below `dir`, each with its real path, sorted by the path shown.
/// Every folder is entered once (by its real path), so link loops end; a file reached
/// through two paths is listed once, under the first path in order.
fn files_below(dir: &Path, notes: &mut Vec<String>) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut visited = BTreeSet::from([canonical(dir)?]);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = entry?.path();
            let meta = match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                        notes.push(format!(
                            "{} is a symbolic link to something that does not exist ({e}); skipped",
                            p.display()
                        ));
                        continue;
                    }
                    return Err(e).with_context(|| format!("reading {}", p.display()));
                }
            };
            if meta.is_dir() {
                if visited.insert(canonical(&p)?) {
                    stack.push(p);
                }
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e))
            {
                let real = canonical(&p)?;
                found.push((p, real));
            }
        }
    }
    found.sort();
    let mut seen = BTreeSet::new();
    found.retain(|(_, real)| seen.insert(real.clone()));
    Ok(found)
}

/// The text of a manifest file, or an error that says what the bytes look like instead.
pub fn manifest_text(bytes: &[u8], origin: &str) -> anyhow::Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(_) if crate::pki::cert::looks_like_der(bytes) => bail!(
            "{origin} is binary, not a manifest: it looks like DER (a certificate or key in binary ASN.1 form). \
             -f reads YAML or JSON manifests; a CA certificate goes to --siths-ca (PEM or DER), and a DER \
             certificate converts to PEM with `openssl x509 -inform der -in FILE -out FILE.pem`"
        ),
        Err(e) => bail!(
            "{origin} is not text (not UTF-8 from byte {}): -f reads YAML or JSON manifests",
            e.valid_up_to()
        ),
    }
}

/// Objects by identity, in order of first appearance.
#[derive(Default)]
struct Objects {
    order: Vec<Key>,
    by_key: BTreeMap<Key, (String, usize, serde_json::Value)>,
    anonymous: usize,
}

/// group, kind, namespace (`default` when absent), name; or a running number for an
/// object without kind or name (left for `Inventory::add_value` to judge).
type Key = (String, String, String, String);

impl Objects {
    fn add_text(
        &mut self,
        text: &str,
        origin: &str,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        for (i, value) in documents_of(text, origin)?.into_iter().enumerate() {
            for value in objects::list_items(value) {
                self.add(value, origin, i + 1, notes);
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        value: serde_json::Value,
        origin: &str,
        index: usize,
        notes: &mut Vec<String>,
    ) {
        let text = |p: &str| {
            value
                .pointer(p)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let key = match (text("/apiVersion"), text("/kind"), text("/metadata/name")) {
            (Some(api_version), Some(kind), Some(name)) => (
                api_version
                    .split_once('/')
                    .map_or("", |(g, _)| g)
                    .to_string(),
                kind,
                text("/metadata/namespace")
                    .unwrap_or_else(|| objects::DEFAULT_NAMESPACE.to_string()),
                name,
            ),
            _ => {
                self.anonymous += 1;
                (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("#{}", self.anonymous),
                )
            }
        };
        match self.by_key.get_mut(&key) {
            None => {
                self.order.push(key.clone());
                self.by_key.insert(key, (origin.to_string(), index, value));
            }
            Some((first, first_index, old)) => {
                if *old != value {
                    let (group, kind, ns, name) = &key;
                    let group = if group.is_empty() {
                        String::new()
                    } else {
                        format!(".{group}")
                    };
                    // Cluster-scoped objects name no namespace.
                    let at = if value.pointer("/metadata/namespace").is_some() {
                        format!("{ns}/{name}")
                    } else {
                        name.clone()
                    };
                    notes.push(format!(
                        "{kind}{group} {at} is defined twice with different content: in {first} (document {first_index}) and in {origin} (document {index}); the one in {origin} is used"
                    ));
                    *first = origin.to_string();
                    *first_index = index;
                    *old = value;
                }
            }
        }
    }

    fn into_values(mut self) -> Vec<(String, usize, serde_json::Value)> {
        self.order
            .iter()
            .filter_map(|k| self.by_key.remove(k))
            .collect()
    }
}

/// Adds the objects of one text (JSON or multi-document YAML) named `origin` in errors.
pub fn add_text(text: &str, origin: &str, inv: &mut Inventory) -> anyhow::Result<()> {
    for (i, value) in documents_of(text, origin)?.into_iter().enumerate() {
        inv.add_value(value)
            .with_context(|| format!("{origin}, document {}", i + 1))?;
    }
    Ok(())
}

/// [`documents`], with an error that says what the text is when it is not a manifest.
fn documents_of(text: &str, origin: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let labels = pem_labels(text);
    if !labels.is_empty() && text.trim_start().starts_with("-----BEGIN ") {
        bail!("{}", pem_message(origin, &labels));
    }
    documents(text).map_err(|e| {
        if labels.is_empty() {
            e.context(format!("{origin} is neither JSON nor YAML"))
        } else {
            anyhow::anyhow!("{}", pem_message(origin, &labels))
        }
    })
}

fn pem_message(origin: &str, labels: &[String]) -> String {
    format!(
        "{origin} is a PEM file ({}), not a manifest: -f reads YAML or JSON manifests (Secrets, Ingresses, ServiceCertificates, ...); \
         give CA certificates with --siths-ca, and put a service's certificate into the Secret manifest that holds it",
        labels.join(", ")
    )
}

/// The labels of the PEM blocks in `text` (`CERTIFICATE`, `PRIVATE KEY`), never a body.
fn pem_labels(text: &str) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            // A key's label is not echoed either, in the project's usual words.
            let label = if label.contains("PRIVATE KEY") {
                "a private key"
            } else {
                label
            };
            if !labels.iter().any(|l| l == label) {
                labels.push(label.to_string());
            }
        }
    }
    labels
}

/// The documents of a text: a stream of JSON values, or YAML documents (null ones left out).
pub fn documents(text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
            match v? {
                serde_json::Value::Array(items) => out.extend(items),
                v => out.push(v),
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = serde_yaml::Value::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        let json = serde_json::to_value(&v)?;
        if !json.is_object() {
            bail!("a document is not an object");
        }
        out.push(json);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_streams_json_and_lists() {
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n";
        let mut inv = Inventory::default();
        add_text(yaml, "x", &mut inv).unwrap();
        assert_eq!(inv.namespaces.keys().collect::<Vec<_>>(), ["a", "b"]);
        let json = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}}
{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"d"}}"#;
        add_text(json, "y", &mut inv).unwrap();
        assert_eq!(inv.namespaces.len(), 4);
        let err = add_text("just: [unclosed", "bad.yaml", &mut inv).unwrap_err();
        assert!(
            format!("{err:#}").contains("bad.yaml is neither JSON nor YAML"),
            "{err:#}"
        );
        let err = add_text("a: 1\n", "nokind.yaml", &mut inv).unwrap_err();
        assert!(
            format!("{err:#}").contains("nokind.yaml, document 1"),
            "{err:#}"
        );
    }

    #[test]
    fn folders_are_read_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("sub/b.yml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.md"), "not read").unwrap();
        let mut inv = Inventory::default();
        load(&[dir.path().to_path_buf()], &mut inv).unwrap();
        assert_eq!(inv.namespaces.len(), 2);
        let err = load(&[dir.path().join("missing.yaml")], &mut inv).unwrap_err();
        assert!(format!("{err:#}").contains("missing.yaml"), "{err:#}");
    }

    const NS_A: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";

    #[test]
    fn a_symlink_loop_ends_and_every_file_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.yaml"), NS_A).unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("here")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("sub/up")).unwrap();
        std::os::unix::fs::symlink("a.yaml", dir.path().join("sub/again.yaml")).unwrap();
        let files = files_below(dir.path(), &mut Vec::new()).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        let mut inv = Inventory::default();
        // The folder twice and the file once more: still one object.
        let sources = [
            dir.path().to_path_buf(),
            dir.path().join("here/sub/a.yaml"),
            dir.path().to_path_buf(),
        ];
        let notes = load(&sources, &mut inv).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(inv.namespaces.len(), 1);
    }

    #[test]
    fn a_dangling_symlink_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), NS_A).unwrap();
        std::os::unix::fs::symlink("gone.yaml", dir.path().join("b.yaml")).unwrap();
        let mut inv = Inventory::default();
        let notes = load(&[dir.path().to_path_buf()], &mut inv).unwrap();
        assert_eq!(inv.namespaces.len(), 1);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("b.yaml is a symbolic link to something that does not exist"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn the_same_object_twice_counts_once_and_a_different_copy_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cert = |names: &str| {
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {{name: api, namespace: team}}\nspec: {{purpose: ServerToServer, hsaId: SE2321000016-A1, dnsNames: [{names}], secretName: api-tls, issuerRef: {{kind: SithsIssuer, name: region}}}}\n"
            )
        };
        std::fs::write(dir.path().join("a.yaml"), cert("a.region.se")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), cert("a.region.se")).unwrap();
        let mut inv = Inventory::default();
        let notes = load(&[dir.path().to_path_buf()], &mut inv).unwrap();
        assert_eq!(inv.service_certificates.len(), 1);
        assert!(
            notes.is_empty(),
            "identical copies are not worth a warning: {notes:?}"
        );
        // A copy that differs is reported, naming both files; the later one is used.
        std::fs::write(dir.path().join("c.yaml"), cert("b.region.se")).unwrap();
        let mut inv = Inventory::default();
        let notes = load(&[dir.path().to_path_buf()], &mut inv).unwrap();
        assert_eq!(inv.service_certificates.len(), 1);
        assert_eq!(inv.service_certificates[0].spec.dns_names, ["b.region.se"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("ServiceCertificate.siths-operator.io team/api is defined twice with different content"), "{}", notes[0]);
        assert!(
            notes[0].contains("a.yaml (document 1)")
                && notes[0].contains("the one in ")
                && notes[0].ends_with("c.yaml is used"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn der_and_pem_given_as_manifests_say_what_they_are() {
        let ca = crate::pki::testutil::ca();
        let der = ca.root_der();
        let err = manifest_text(der.as_ref(), "root.cer").unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("root.cer is binary, not a manifest: it looks like DER"),
            "{msg}"
        );
        assert!(msg.contains("openssl x509 -inform der"), "{msg}");
        let err = manifest_text(&[0xff, 0xfe, 0x00], "x.bin").unwrap_err();
        assert!(format!("{err:#}").contains("x.bin is not text"), "{err:#}");
        let mut inv = Inventory::default();
        let err = add_text(&ca.root_pem(), "root.pem", &mut inv).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("root.pem is a PEM file (CERTIFICATE), not a manifest"),
            "{msg}"
        );
        assert!(!msg.contains("neither JSON nor YAML"), "{msg}");
        // A key's label and body are not echoed.
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap().to_pem();
        let err = add_text(&format!("{key}{}", ca.root_pem()), "both.pem", &mut inv).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("(a private key, CERTIFICATE)"), "{msg}");
        assert!(
            !msg.contains("PRIVATE KEY") && !msg.contains(key.lines().nth(1).unwrap()),
            "{msg}"
        );
    }

    #[test]
    fn a_secret_that_is_not_base64_is_a_finding_for_that_secret() {
        let mut inv = Inventory::default();
        add_text("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: web-tls, namespace: n}\ndata:\n  tls.crt: \"not base64 at all\"\n  tls.key: \"\"\n---\n" , "s.yaml", &mut inv).unwrap();
        add_text(NS_A, "ns.yaml", &mut inv).unwrap();
        assert_eq!(inv.secrets.len(), 1);
        let u = &inv.secrets[0].unparseable;
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].key, "tls.crt");
        assert!(
            u[0].reason.starts_with("data.tls.crt is not valid base64"),
            "{}",
            u[0].reason
        );
        assert!(
            !u[0].reason.contains("not base64 at all"),
            "the value is not quoted"
        );
        assert_eq!(inv.namespaces.len(), 1, "the run goes on");
    }
}
