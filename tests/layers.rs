//! The module layering of docs/architecture.md, checked: no module of `src/` uses a module in
//! its own layer or above it (its tests, at the end of each file, may use anything).

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules and their layers, lowest first. A module may use modules of lower layers
/// only. Keep in step with docs/architecture.md.
const LAYERS: &[(u32, &[&str])] = &[
    (
        10,
        &[
            "clock", "codes", "cookies", "error", "format", "metrics", "model", "status",
        ],
    ),
    (11, &["device_list"]),
    (12, &["changes"]),
    (20, &["wechatpay"]),
    (25, &["db"]),
    (30, &["simulator", "sync"]),
    (32, &["replicas"]),
    (35, &["history"]),
    (40, &["query"]),
    (50, &["i18n"]),
    (60, &["view"]),
    (70, &["guard"]),
    (71, &["auth"]),
    (80, &["api", "export", "ops"]),
    (90, &["ui"]),
    (91, &["app"]),
    (95, &["cli"]),
    (100, &["server", "lib", "main"]),
];

fn layer_of(module: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(_, names)| names.contains(&module))
        .map(|(l, _)| *l)
}

/// The top-level module a file belongs to (`src/sync/fetch.rs` → `sync`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without its test section (`#[cfg(test)]` followed by `mod`).
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(i) = text[at..].find("#[cfg(test)]") {
        let start = at + i;
        let after = text[start + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

/// The top-level modules a piece of code names through `crate::`.
fn uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        // Not part of a longer path such as `wxpay_devices::crate::` or `other_crate::`.
        if code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_one_in_its_layer_or_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&root, file);
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` has no layer",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(without_tests(&text)) {
            if used == module {
                continue;
            }
            graph
                .entry(module.clone())
                .or_default()
                .insert(used.clone());
            match layer_of(&used) {
                Some(l) if l < own => {}
                Some(l) => problems.push(format!(
                    "{}: `{module}` (layer {own}) uses `{used}` (layer {l})",
                    file.strip_prefix(&root).unwrap().display()
                )),
                None => problems.push(format!(
                    "{}: `{used}` has no layer",
                    file.strip_prefix(&root).unwrap().display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Sanity: the check sees real dependencies.
    assert!(graph["sync"].contains("wechatpay"), "{graph:?}");
    assert!(graph["server"].len() > 5, "{graph:?}");
}

#[test]
fn the_checker_reads_paths_and_groups_and_skips_tests() {
    assert_eq!(
        uses("use crate::a::b;\nlet x = crate::c::d(); use crate::{e, f::g};"),
        ["a", "c", "e", "f"]
    );
    assert_eq!(uses("my_crate::x"), Vec::<String>::new());
    assert_eq!(
        without_tests("code\n#[cfg(test)]\nfn helper() {}\n#[cfg(test)]\nmod tests { crate::x }"),
        "code\n#[cfg(test)]\nfn helper() {}\n"
    );
}
