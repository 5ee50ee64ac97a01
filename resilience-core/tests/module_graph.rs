//! The import graph of `resilience-core`'s top-level modules has no circle: each module's
//! imports point down (STYLE.md, "Imports point down").
//!
//! Reads the sources under `src/` as text: every `crate::name` a file mentions outside
//! comments and outside its `#[cfg(test)] mod tests` is an edge from the file's top-level
//! module to `name`'s (an item the root re-exports counts as the module it comes from).
//! A circle fails the test with the lines in it; `--nocapture` prints the modules layer by
//! layer, lowest first.
//!
//! Run alone: `cargo test -p resilience-core --test module_graph -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges allowed although they close a circle: (from, to, the only items it may name there).
/// None is left since the spec and patch types moved to `resilience-config` (issue 16, step
/// 1); an edge listed here that is gone must leave this list.
const PENDING: &[(&str, &str, &[&str])] = &[];

/// What a module imports from another: the first `file:line`, and the items named.
#[derive(Debug, Default)]
struct Edge {
    at: String,
    items: BTreeSet<String>,
}

/// Module -> module it imports -> how.
type Graph = BTreeMap<String, BTreeMap<String, Edge>>;

#[test]
fn top_level_modules_import_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = graph(&src);
    let mut problems = String::new();
    for (from, to, allowed) in PENDING {
        match graph.get_mut(*from).and_then(|edges| edges.remove(*to)) {
            None => problems.push_str(&format!("{from} -> {to} is gone: remove it from PENDING\n")),
            Some(edge) => {
                let extra: Vec<&String> = edge
                    .items
                    .iter()
                    .filter(|item| !allowed.contains(&item.as_str()))
                    .collect();
                if !extra.is_empty() {
                    problems.push_str(&format!(
                        "{from} -> {to} at {} names {extra:?}, beyond the pending {allowed:?}\n",
                        edge.at
                    ));
                }
            }
        }
    }
    for (depth, layer) in layers(&graph).iter().enumerate() {
        println!("layer {depth}: {}", layer.join(" "));
    }
    for circle in circles(&graph) {
        let members: Vec<&str> = circle.iter().map(String::as_str).collect();
        problems.push_str(&format!("circle through {}:\n", members.join(" ")));
        for (module, edges) in graph.iter().filter(|(module, _)| circle.contains(*module)) {
            for (target, edge) in edges.iter().filter(|(target, _)| circle.contains(*target)) {
                problems.push_str(&format!("  {module} -> {target} at {}\n", edge.at));
            }
        }
    }
    println!("{problems}");
    assert!(problems.is_empty(), "resilience-core imports:\n{problems}");
}

/// The edges between top-level modules, read from every source file.
fn graph(src: &Path) -> Graph {
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let modules = declared_modules(&lib);
    assert!(!modules.is_empty(), "no `mod` in {}", src.display());
    let reexports = root_reexports(&lib, &modules);
    let mut graph: Graph = modules
        .iter()
        .map(|module| (module.clone(), BTreeMap::new()))
        .collect();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let parts: Vec<String> = relative
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        let Some(first) = parts.first() else { continue };
        let owner = first.trim_end_matches(".rs").to_string();
        let Some(edges) = graph.get_mut(&owner) else {
            continue;
        };
        // How many `super::` reach the crate root from this file.
        let depth = match parts.last().map(String::as_str) {
            Some("mod.rs") => parts.len() - 1,
            _ => parts.len(),
        };
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in code_lines(&text) {
            for (name, items) in root_paths(line, depth) {
                let (target, items) = match reexports.get(&name) {
                    Some(module) => (module.clone(), vec![name]),
                    None => (name, items),
                };
                if target != owner && modules.contains(&target) {
                    let edge = edges.entry(target).or_insert_with(|| Edge {
                        at: format!("{}:{number}", relative.display()),
                        items: BTreeSet::new(),
                    });
                    edge.items.extend(items);
                }
            }
        }
    }
    graph
}

/// `mod name;` and `pub mod name;` in `lib.rs`.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub ").unwrap_or(line);
            let rest = rest.strip_prefix("pub(crate) ").unwrap_or(rest);
            let name = rest.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// Items `lib.rs` re-exports from its own modules (`pub use retry::{Backoff, ..}`): item ->
/// module.
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code: String = code_lines(lib)
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    for statement in code.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_start_matches("crate::");
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        if modules.contains(module) {
            for item in names_at(items.trim()) {
                map.insert(item, module.to_string());
            }
        }
    }
    map
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's lines (numbered from 1) without comments, up to its unit tests.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|pair| pair[0] == "#[cfg(test)]" && pair[1].starts_with("mod "))
        .unwrap_or(lines.len());
    lines
        .into_iter()
        .take(end)
        .enumerate()
        .filter_map(|(index, line)| {
            let code = match line.find("//") {
                // `"redis://host"` is a string, not a comment.
                Some(at) if !line[..at].ends_with(':') => &line[..at],
                Some(_) | None => line,
            };
            (!code.trim().is_empty()).then_some((index + 1, code))
        })
}

/// The crate-root names a line reaches, each with the items it names below them:
/// `crate::name::Item`, each `name` of `crate::{a, b::c}`, and `super::` chains that climb
/// to the root from a file `depth` modules down.
fn root_paths(line: &str, depth: usize) -> Vec<(String, Vec<String>)> {
    let mut paths = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            paths.extend(paths_at(rest));
        }
    }
    let supers = "super::".repeat(depth);
    let mut rest = line;
    while let Some(at) = rest.find(&supers) {
        rest = &rest[at + supers.len()..];
        if !rest.starts_with("super::") {
            paths.extend(paths_at(rest));
        }
    }
    paths
}

/// `retry::Backoff` -> (`retry`, [`Backoff`]); `{retry::{Backoff, Jitter}, observe}` ->
/// (`retry`, [`Backoff`, `Jitter`]), (`observe`, []).
fn paths_at(path: &str) -> Vec<(String, Vec<String>)> {
    let parts = match path.strip_prefix('{') {
        Some(group) => group_parts(group),
        None => vec![path],
    };
    parts
        .into_iter()
        .map(|part| {
            let name = ident(part);
            let below = part.trim_start()[name.len()..].strip_prefix("::");
            (name, below.map(names_at).unwrap_or_default())
        })
        .collect()
}

/// The first name of each path in `text`: `Backoff` or `{Backoff, jitter::Jitter}`.
fn names_at(text: &str) -> Vec<String> {
    match text.strip_prefix('{') {
        Some(group) => group_parts(group).into_iter().map(ident).collect(),
        None => vec![ident(text)],
    }
}

/// The comma-separated parts of a `{...}` group (its opening brace already taken), up to its
/// closing brace.
fn group_parts(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut nesting, mut start) = (0usize, 0);
    for (index, c) in group.char_indices() {
        match c {
            '{' => nesting += 1,
            '}' if nesting == 0 => {
                parts.push(&group[start..index]);
                return parts
                    .into_iter()
                    .filter(|part| !part.trim().is_empty())
                    .collect();
            }
            '}' => nesting -= 1,
            ',' if nesting == 0 => {
                parts.push(&group[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .collect()
}

fn ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every circle: each strongly connected component with more than one module.
fn circles(graph: &Graph) -> Vec<BTreeSet<String>> {
    let mut circles = Vec::new();
    let mut seen = BTreeSet::new();
    for start in graph.keys() {
        if seen.contains(start) {
            continue;
        }
        let component: BTreeSet<String> = graph
            .keys()
            .filter(|other| reaches(graph, start, other) && reaches(graph, other, start))
            .cloned()
            .collect();
        seen.extend(component.iter().cloned());
        if component.len() > 1 {
            circles.push(component);
        }
    }
    circles
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut pending = vec![from.to_string()];
    let mut visited = BTreeSet::new();
    while let Some(module) = pending.pop() {
        if module == to {
            return true;
        }
        if visited.insert(module.clone()) {
            pending.extend(
                graph
                    .get(&module)
                    .into_iter()
                    .flat_map(|edges| edges.keys().cloned()),
            );
        }
    }
    false
}

/// The modules in layers: each imports only from the layers before it (modules in a circle
/// are left out).
fn layers(graph: &Graph) -> Vec<Vec<String>> {
    let mut placed = BTreeSet::new();
    let mut layers = Vec::new();
    loop {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(module, edges)| {
                !placed.contains(*module) && edges.keys().all(|target| placed.contains(target))
            })
            .map(|(module, _)| module.clone())
            .collect();
        if layer.is_empty() {
            return layers;
        }
        placed.extend(layer.iter().cloned());
        layers.push(layer);
    }
}
