//! The module rules of the operator crate, checked on its source:
//!
//! 1. no import cycle between the crate's top-level modules (`policy`, `pki`, `controllers`,
//!    `audit`, `acme`, ...);
//! 2. the pure layers (`api`, `policy`, `pki`, `vocabulary`) import nothing that does I/O
//!    (`controllers`, `acme`, `audit`, `cli`, `run`, `server`, `leader`, `events`,
//!    `keypool`);
//! 3. no import cycle between sibling files of one folder (for example two controllers);
//!    the folder's `mod.rs` is their shared parent and is not counted as a sibling.
//!
//! Imports are read from `use` declarations and `crate::`/`super::`/child-module paths in
//! code; `pub use` re-exports and `#[cfg(test)] mod tests` are not dependencies.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// Modules that must stay pure.
const PURE: &[&str] = &["api", "policy", "pki", "vocabulary"];
/// Modules that do I/O.
const EFFECTFUL: &[&str] = &[
    "controllers",
    "acme",
    "audit",
    "cli",
    "run",
    "server",
    "leader",
    "events",
    "keypool",
];

/// A module by its path below the crate root (`["controllers", "public_route"]`).
type Module = Vec<String>;

/// Reads every module of the crate in `src` and returns the rule violations, one line each.
pub fn check(src: &Path) -> Result<Vec<String>> {
    let modules = collect(src)?;
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file)?;
        let targets = imports(module, &code_of(&text), &known);
        edges.insert(module.clone(), targets);
    }
    Ok(violations(&edges))
}

/// The violations of the rules in `edges` (module -> modules it imports).
fn violations(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let mut out = Vec::new();
    // Rule 2: pure layers.
    for (from, targets) in edges {
        let Some(top) = from.first() else { continue };
        if !PURE.contains(&top.as_str()) {
            continue;
        }
        for to in targets {
            if to.first().is_some_and(|t| EFFECTFUL.contains(&t.as_str())) {
                out.push(format!(
                    "{} imports {}: `{top}` is pure and must not import `{}`",
                    show(from),
                    show(to),
                    to[0]
                ));
            }
        }
    }
    // Rule 1: top-level modules.
    let mut top: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, targets) in edges {
        let (Some(f), true) = (from.first(), !from.is_empty()) else {
            continue;
        };
        for to in targets {
            if let Some(t) = to.first()
                && t != f
            {
                top.entry(vec![f.clone()])
                    .or_default()
                    .insert(vec![t.clone()]);
            }
        }
    }
    for cycle in cycles(&top) {
        out.push(format!("import cycle between top-level modules: {cycle}"));
    }
    // Rule 3: siblings in one folder.
    let mut siblings: BTreeMap<Module, BTreeMap<Module, BTreeSet<Module>>> = BTreeMap::new();
    for (from, targets) in edges {
        if from.len() < 2 {
            continue;
        }
        let parent = from[..from.len() - 1].to_vec();
        for to in targets {
            // The sibling module `to` belongs to (a file of the same folder, or below one).
            if to.len() > parent.len() && to[..parent.len()] == parent[..] {
                let sibling = to[..=parent.len()].to_vec();
                if sibling != *from {
                    siblings
                        .entry(parent.clone())
                        .or_default()
                        .entry(from.clone())
                        .or_default()
                        .insert(sibling);
                }
            }
        }
    }
    for graph in siblings.values() {
        for cycle in cycles(graph) {
            out.push(format!("import cycle between sibling modules: {cycle}"));
        }
    }
    out
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Every strongly connected component of more than one module, as `a -> b -> a`.
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    // Kosaraju: order by finish time, then collect on the reversed graph.
    let nodes: BTreeSet<&Module> = graph
        .iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v.iter()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in &nodes {
        visit(n, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, targets) in graph {
        for to in targets {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        if assigned.contains(n) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![*n];
        while let Some(m) = stack.pop() {
            if !assigned.insert(m) {
                continue;
            }
            component.push(m);
            stack.extend(reversed.get(m).into_iter().flatten().copied());
        }
        if component.len() > 1 {
            component.sort();
            let mut names: Vec<String> = component.iter().map(|m| show(m)).collect();
            names.push(names[0].clone());
            out.push(names.join(" <-> "));
        }
    }
    out
}

fn visit<'a>(
    n: &'a Module,
    graph: &'a BTreeMap<Module, BTreeSet<Module>>,
    seen: &mut BTreeSet<&'a Module>,
    order: &mut Vec<&'a Module>,
) {
    if !seen.insert(n) {
        return;
    }
    for m in graph.get(n).into_iter().flatten() {
        visit(m, graph, seen, order);
    }
    order.push(n);
}

/// Every module file below `src` (binaries under `src/bin/` excluded).
fn collect(src: &Path) -> Result<BTreeMap<Module, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src)?;
            let mut module: Module = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if module.last().is_some_and(|l| l == "mod" || l == "lib") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    if out.is_empty() {
        bail!("no Rust modules below {}", src.display());
    }
    Ok(out)
}

/// The code of a file without comments, string contents, `#[cfg(test)] mod tests` and
/// `pub use` re-exports.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    // `pub use ...;` re-exports are not dependencies of the module.
    let mut cleaned = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest
        .find("pub use ")
        .or_else(|| rest.find("pub(crate) use "))
    {
        cleaned.push_str(&rest[..i]);
        rest = rest[i..].find(';').map_or("", |j| &rest[i + j + 1..]);
    }
    cleaned.push_str(rest);
    cleaned
}

/// The modules `module`'s `code` refers to, resolved against the `known` modules (the
/// longest known prefix of each path).
fn imports(module: &Module, code: &str, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    // `use` trees, expanded.
    let mut rest = code;
    while let Some(i) = find_word(rest, "use ") {
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        expand(&after[..end], Vec::new(), &mut paths);
        rest = &after[end..];
    }
    // Paths in code: `crate::a::b`, `super::a`, `self::a`, `child::a`.
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let start_ok = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if start_ok && (bytes[i].is_alphabetic() || bytes[i] == '_') {
            let mut j = i;
            let mut segments = Vec::new();
            loop {
                let s = j;
                while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
                    j += 1;
                }
                segments.push(bytes[s..j].iter().collect::<String>());
                if j + 2 < bytes.len()
                    && bytes[j] == ':'
                    && bytes[j + 1] == ':'
                    && (bytes[j + 2].is_alphabetic() || bytes[j + 2] == '_')
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segments.len() > 1 {
                paths.push(segments);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    let children: BTreeSet<&str> = known
        .iter()
        .filter(|m| m.len() == module.len() + 1 && m[..module.len()] == module[..])
        .map(|m| m[module.len()].as_str())
        .collect();
    let mut out = BTreeSet::new();
    for path in paths {
        let absolute: Option<Module> = match path.first().map(String::as_str) {
            Some("crate") => Some(path[1..].to_vec()),
            Some("super") => {
                let mut base = module.clone();
                let mut segs = path.as_slice();
                while segs.first().is_some_and(|s| s == "super") {
                    base.pop();
                    segs = &segs[1..];
                }
                base.extend(segs.iter().cloned());
                Some(base)
            }
            Some("self") => {
                let mut base = module.clone();
                base.extend(path[1..].iter().cloned());
                Some(base)
            }
            Some(first) if children.contains(first) => {
                let mut base = module.clone();
                base.extend(path.iter().cloned());
                Some(base)
            }
            _ => None,
        };
        let Some(absolute) = absolute else { continue };
        // The longest known module that prefixes the path.
        let target = (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].to_vec())
            .find(|m| known.contains(m));
        if let Some(t) = target
            && t != *module
            && !t.is_empty()
        {
            out.insert(t);
        }
    }
    out
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Expands a use tree (`a::{b, c::{d}}`) below `prefix` into full paths.
fn expand(tree: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let close = tree.rfind('}').unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let mut base = prefix;
        base.extend(head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], base.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], base, out);
    } else if !tree.is_empty() {
        let mut path = prefix;
        let item = tree.split(" as ").next().unwrap_or(tree);
        path.extend(
            item.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self")
                .map(String::from),
        );
        out.push(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str) -> Module {
        if path.is_empty() {
            Vec::new()
        } else {
            path.split("::").map(String::from).collect()
        }
    }

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(m(a)).or_default().insert(m(b));
        }
        g
    }

    #[test]
    fn use_trees_and_paths_resolve_to_modules() {
        let known: BTreeSet<Module> = [
            "",
            "policy",
            "policy::gates",
            "controllers",
            "controllers::public_route",
            "controllers::service_certificate",
            "vocabulary",
        ]
        .iter()
        .map(|p| m(p))
        .collect();
        let code = code_of(
            "use super::{Context, public_route::{self, x}};\nuse crate::{policy::gates::{self, evaluate}, vocabulary::reason};\n// crate::api::Nothing in a comment\nfn f() { let _ = \"crate::audit\"; crate::policy::rfc3339(t); }\npub use crate::controllers::Thing;\n#[cfg(test)]\nmod tests { use crate::cli::x; }\n",
        );
        let got = imports(&m("controllers::service_certificate"), &code, &known);
        let want: BTreeSet<Module> = [
            "controllers",
            "controllers::public_route",
            "policy::gates",
            "vocabulary",
            "policy",
        ]
        .iter()
        .map(|p| m(p))
        .collect();
        assert_eq!(got, want);
        // A mod.rs naming its child by a relative path.
        let got = imports(
            &m("controllers"),
            &code_of("fn f() { public_route::go() }"),
            &known,
        );
        assert_eq!(got, [m("controllers::public_route")].into());
    }

    #[test]
    fn cycles_and_impure_imports_are_reported() {
        let ok = graph(&[
            (
                "controllers::service_certificate",
                "controllers::public_route",
            ),
            ("controllers::public_route", "controllers"),
            ("controllers", "controllers::public_route"),
            ("controllers::public_route", "policy::gates"),
            ("audit::plan", "policy::gates"),
        ]);
        assert_eq!(violations(&ok), Vec::<String>::new());
        let bad = graph(&[
            (
                "controllers::service_certificate",
                "controllers::public_route",
            ),
            (
                "controllers::public_route",
                "controllers::service_certificate",
            ),
            ("policy::ingress", "controllers"),
            ("acme", "controllers"),
            ("controllers::x", "acme::http01"),
        ]);
        let v = violations(&bad);
        assert!(
            v.iter()
                .any(|l| l.contains("sibling") && l.contains("public_route")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|l| l.contains("policy::ingress imports controllers")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|l| l.contains("top-level")
                && l.contains("acme")
                && l.contains("controllers")),
            "{v:?}"
        );
        assert_eq!(v.len(), 3, "{v:?}");
    }
}
