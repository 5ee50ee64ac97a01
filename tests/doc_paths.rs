//! Every rustdoc example a user reads shows `resilience::` paths: a user depends on the facade,
//! and `use resilience_core::...` does not compile there.
//!
//! The runtime's and the config crate's doctests cannot name the facade (it depends on them),
//! so they alias it in a hidden line (`# use resilience_core as resilience;`) and show
//! `resilience::` paths. This test reads every doc comment's code blocks in the crates the
//! facade re-exports, and the README, and fails on a visible line naming a member crate.

use std::path::{Path, PathBuf};

/// The member crates' names, as a user must not see them in an example.
const MEMBERS: [&str; 3] = [
    "resilience_core::",
    "resilience_config::",
    "resilience_macros::",
];

/// The value rules and the byte-size syntax are the config crate's own (the macro crate's and
/// YAML's), not re-exported by the facade: their examples name the config crate.
const NOT_REEXPORTED: [&str; 2] = [
    "resilience-config/src/rules.rs",
    "resilience-config/src/size.rs",
];

/// Languages of code blocks that are not Rust.
const NOT_RUST: [&str; 8] = [
    "yaml", "text", "toml", "console", "sh", "bash", "json", "promql",
];

/// The visible lines of `source`'s code blocks that name a member crate, as `line: text`.
/// `doc_comments`: read only `///` and `//!` lines (a Rust file), else every line (Markdown).
fn member_paths(source: &str, doc_comments: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_rust_block = None;
    for (index, line) in source.lines().enumerate() {
        let text = if doc_comments {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed
                .strip_prefix("///")
                .or_else(|| trimmed.strip_prefix("//!"))
            else {
                in_rust_block = None;
                continue;
            };
            rest.strip_prefix(' ').unwrap_or(rest)
        } else {
            line
        };
        if let Some(fence) = text.trim_start().strip_prefix("```") {
            in_rust_block = match in_rust_block {
                Some(_) => None,
                None => {
                    let language = fence.split(',').next().unwrap_or("").trim();
                    Some(!NOT_RUST.contains(&language))
                }
            };
            continue;
        }
        let hidden = text.trim_start() == "#" || text.trim_start().starts_with("# ");
        if in_rust_block == Some(true) && !hidden && MEMBERS.iter().any(|m| text.contains(m)) {
            found.push(format!("{}: {}", index + 1, text.trim()));
        }
    }
    found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn rustdoc_examples_use_the_facade_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "resilience-core/src", "resilience-config/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root).expect("under the root");
        if NOT_REEXPORTED
            .iter()
            .any(|skip| relative == Path::new(skip))
        {
            continue;
        }
        let source = std::fs::read_to_string(file).expect("a source file");
        for line in member_paths(&source, true) {
            problems.push(format!("{}:{line}", relative.display()));
        }
    }
    for page in [
        "README.md",
        "docs/batch.md",
        "docs/redis.md",
        "docs/performance.md",
    ] {
        let text = std::fs::read_to_string(root.join(page)).expect("a documentation page");
        for line in member_paths(&text, false) {
            problems.push(format!("{page}:{line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "examples a user reads name a member crate; write `resilience::` and, in the runtime's \
         or config crate's doc comments, alias it in a hidden line \
         (`# use resilience_core as resilience;`):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_a_member_path_only_where_a_user_sees_it() {
    let source = "\
/// Prose may name `resilience_core::retry`.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::Retry;
/// use resilience_config::retry::RetrySpec;
/// ```
///
/// ```yaml
/// resilience_core::not_rust: true
/// ```
fn f() {}
// use resilience_core::Retry; (a plain comment)
";
    assert_eq!(
        member_paths(source, true),
        ["6: use resilience_config::retry::RetrySpec;"]
    );
    let markdown = "```rust\nuse resilience_core::Retry;\n```\n`resilience_core::` in prose\n";
    assert_eq!(
        member_paths(markdown, false),
        ["2: use resilience_core::Retry;"]
    );
}
