//! Committed results, docs and notebooks name no path of the machine that made them: commands
//! and directories are recorded relative to the project (`seethink::provenance::project_path`),
//! so a reader's checkout shows what a reader can run.

use std::path::{Path, PathBuf};

/// Directories whose files a reader sees as results or docs, and the extensions checked.
const PLACES: [&str; 5] = ["experiments", "docs", "notebooks", "configs", "benches"];
const EXTENSIONS: [&str; 7] = ["md", "json", "jsonl", "ipynb", "ron", "csv", "sh"];

/// Roots of a machine's own directories; a path starting with one of them after a space,
/// quote, backtick, parenthesis or `=` is an absolute path into a machine.
const MACHINE_ROOTS: [&str; 7] = ["/root/", "/home/", "/work/", "/tmp/", "/Users/", "/var/", "/mnt/"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
}

/// The lines of `text` holding an absolute path into a machine.
fn machine_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            MACHINE_ROOTS.iter().any(|root| {
                line.match_indices(root)
                    .any(|(at, _)| at == 0 || line[..at].ends_with([' ', '"', '\'', '`', '(', '=']))
            })
        })
        .map(|line| line.chars().take(160).collect())
        .collect()
}

#[test]
fn committed_results_name_no_path_of_the_machine_that_made_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![root.join("README.md")];
    for place in PLACES {
        files(&root.join(place), &mut all);
    }
    assert!(all.len() > 20, "{} files", all.len());
    let found: Vec<String> = all
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let shown = path.strip_prefix(&root).unwrap().display().to_string();
            machine_paths(&text).into_iter().map(move |line| format!("{shown}: {line}"))
        })
        .collect();
    assert!(found.is_empty(), "absolute paths of a machine:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_the_paths_it_looks_for() {
    assert_eq!(machine_paths(r#""command": "/root/.cache/t/release/seethink pretrain""#).len(), 1);
    assert_eq!(machine_paths("--out /tmp/controls-new").len(), 1);
    assert_eq!(machine_paths("`/work/main/x`").len(), 1);
    assert!(machine_paths("experiments/sandbox/base and runs/tmp/x").is_empty());
}
