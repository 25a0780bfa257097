//! Reading manifests for the offline commands: files, folders (recursively) and standard
//! input; multi-document YAML, JSON, and `List` output of `kubectl get -o yaml`.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::audit::Inventory;

/// Extensions read from folders, as `kubectl apply -f DIR` does.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Adds every object of every source to `inv`. `-` is standard input; a folder is read
/// recursively (`.yaml`, `.yml`, `.json`, in path order).
pub fn load(sources: &[PathBuf], inv: &mut Inventory) -> anyhow::Result<()> {
    for source in sources {
        if source.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            add_text(&text, "standard input", inv)?;
        } else if source.is_dir() {
            for file in files_below(source)? {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                add_text(&text, &file.display().to_string(), inv)?;
            }
        } else {
            let text = std::fs::read_to_string(source)
                .with_context(|| format!("reading {}", source.display()))?;
            add_text(&text, &source.display().to_string(), inv)?;
        }
    }
    Ok(())
}

fn files_below(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Adds the objects of one text (JSON or multi-document YAML) named `origin` in errors.
pub fn add_text(text: &str, origin: &str, inv: &mut Inventory) -> anyhow::Result<()> {
    for (i, value) in documents(text)
        .with_context(|| format!("{origin} is neither JSON nor YAML"))?
        .into_iter()
        .enumerate()
    {
        inv.add_value(value)
            .with_context(|| format!("{origin}, document {}", i + 1))?;
    }
    Ok(())
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
}
