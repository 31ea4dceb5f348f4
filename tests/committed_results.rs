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

/// The committed result folders, the longest path first (a citation belongs to the longest
/// folder it names), each with the files whose text records the commit and the numerics
/// fingerprint of the code that made it (`"commit": "…"` / `at commit …`, and
/// `"numerics": "…"` / ``numerics `…` ``), read in this order.
const RESULT_FOLDERS: [(&str, &[&str]); 10] = [
    ("experiments/results/verbose_staged_vs_merged", &["suite.json"]),
    ("experiments/results/staged_vs_merged_head", &["suite.json"]),
    ("experiments/results/staged_vs_merged", &["suite.json"]),
    ("experiments/results/test_suite_head", &["suite.json"]),
    ("experiments/results/verbose_seed0", &["suite.json"]),
    ("experiments/results/main_job_head", &["README.md"]),
    ("experiments/results/test_suite", &["suite.json"]),
    ("experiments/results/main_job", &["over_seeds.md", "README.md"]),
    ("experiments/results/controls", &["controls.md"]),
    ("experiments/results", &["suite.json"]),
];

/// The hexadecimal word (at least 7 digits) right after the first occurrence of `key` in
/// `text` that has one (past spaces, quotes, colons and backticks).
fn hex_after(text: &str, key: &str) -> Option<String> {
    text.match_indices(key).find_map(|(at, _)| {
        let rest = text[at + key.len()..].trim_start_matches([' ', '"', ':', '`']);
        let word: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (word.len() >= 7).then_some(word)
    })
}

/// A result folder as its files record it.
struct Recorded {
    folder: String,
    commit: Option<String>,
    numerics: Option<String>,
}

fn recorded(root: &Path, folder: &str, files: &[&str]) -> Recorded {
    let texts: Vec<String> =
        files.iter().filter_map(|f| std::fs::read_to_string(root.join(folder).join(f)).ok()).collect();
    let first = |keys: &[&str]| texts.iter().find_map(|t| keys.iter().find_map(|k| hex_after(t, k)));
    Recorded {
        folder: folder.to_string(),
        commit: first(&["\"commit\"", "at commit"]),
        numerics: first(&["\"numerics\"", "numerics"]),
    }
}

/// The paragraphs (blocks between blank lines) of `docs` (name, text) that give figures (a
/// number with a decimal point) of a result folder whose numerics are not `current`, without
/// the mark "made at <its commit>, before <the change>" (at least 7 hexadecimal digits each,
/// lines wrapping anywhere): one line each, naming the file, the folder and the paragraph's
/// start.
fn unmarked_citations(docs: &[(String, String)], results: &[Recorded], current: &str) -> Vec<String> {
    let has_figure = |p: &str| {
        p.as_bytes().windows(3).any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
    };
    let mut misses = Vec::new();
    for (name, text) in docs {
        // a paragraph's words joined by single spaces: a mark may wrap across lines
        let paragraphs = text.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "));
        for paragraph in paragraphs.filter(|p| has_figure(p.as_str())) {
            let paragraph = paragraph.as_str();
            // each occurrence of a folder's path belongs to the longest folder it names
            let mut cited: Vec<&Recorded> = Vec::new();
            for (at, _) in paragraph.match_indices("experiments/results") {
                // a folder's path ends where a name's characters do (`main_job` is not `main_job_head`)
                let names = |r: &&Recorded| {
                    paragraph[at..].starts_with(&r.folder)
                        && !paragraph[at + r.folder.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                };
                let own = results.iter().filter(names).max_by_key(|r| r.folder.len());
                if let Some(own) = own.filter(|own| !cited.iter().any(|c| c.folder == own.folder)) {
                    cited.push(own);
                }
            }
            for result in cited.into_iter().filter(|r| r.numerics.as_deref() != Some(current)) {
                let mark = format!(
                    "made at {}, before ",
                    result.commit.as_deref().unwrap_or("<no commit recorded>")
                );
                let marked = paragraph.match_indices(&mark).any(|(at, _)| {
                    paragraph[at + mark.len()..].chars().take_while(char::is_ascii_hexdigit).count() >= 7
                });
                if !marked {
                    let start: String = paragraph.trim().chars().take(70).collect();
                    misses.push(format!("{name}: {} (wants `{mark}<commit>`): {start}", result.folder));
                }
            }
        }
    }
    misses
}

/// Every committed result records the numerics of the code that made it, and where README.md
/// or docs/ give its figures while HEAD's numerics differ, they say it was made at its commit,
/// before the change: a stale figure is never presented as HEAD's.
#[test]
fn figures_of_results_from_other_numerics_are_marked_where_cited() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results: Vec<Recorded> = RESULT_FOLDERS.iter().map(|(f, files)| recorded(&root, f, files)).collect();
    for result in &results {
        assert!(result.commit.is_some(), "{}: no commit recorded in its header", result.folder);
    }
    let mut docs = vec![("README.md".to_string(), std::fs::read_to_string(root.join("README.md")).unwrap())];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            docs.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    let misses = unmarked_citations(&docs, &results, seethink::provenance::NUMERICS);
    assert!(
        misses.is_empty(),
        "figures of results made with other numerics, unmarked:\n{}",
        misses.join("\n")
    );
}

/// Every folder of `experiments/results/` is a listed result, so a citation of it is checked as
/// its own and not as the top-level suite's.
#[test]
fn every_result_folder_is_listed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("experiments/results")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let folder = path.strip_prefix(&root).unwrap().display().to_string();
            assert!(RESULT_FOLDERS.iter().any(|(f, _)| *f == folder), "{folder} is not in RESULT_FOLDERS");
        }
    }
}

#[test]
fn the_mark_check_finds_unmarked_stale_figures() {
    let result = |folder: &str, numerics: &str| Recorded {
        folder: folder.into(),
        commit: Some("1234567".into()),
        numerics: Some(numerics.into()),
    };
    let results =
        [result("experiments/results/main_job", "aaaaaaaa"), result("experiments/results", "cccccccc")];
    let doc = |text: &str| vec![("README.md".to_string(), text.to_string())];
    // stale, a figure, no mark: found; the longest folder owns the citation
    let unmarked = unmarked_citations(&doc("+0.023 (`experiments/results/main_job/`)"), &results, "cccccccc");
    assert_eq!(unmarked.len(), 1, "{unmarked:?}");
    assert!(unmarked[0].contains("experiments/results/main_job (wants `made at 1234567, before "));
    // marked, current, or without a figure: nothing to say
    let marked = "+0.023 (`experiments/results/main_job/`, made at 1234567, before 06289a8)";
    assert!(unmarked_citations(&doc(marked), &results, "cccccccc").is_empty());
    assert!(unmarked_citations(&doc("+0.023 (`experiments/results/main_job/`)"), &results, "aaaaaaaa")
        .iter()
        .all(|m| !m.contains("main_job")));
    assert!(unmarked_citations(&doc("see `experiments/results/main_job/`"), &results, "cccccccc").is_empty());
    // a mark for another commit, or without the change, does not count
    let other = "+0.023 (`experiments/results/main_job/`, made at 7654321, before 06289a8)";
    assert_eq!(unmarked_citations(&doc(other), &results, "cccccccc").len(), 1);
    let no_change = "+0.023 (`experiments/results/main_job/`, made at 1234567, before it)";
    assert_eq!(unmarked_citations(&doc(no_change), &results, "cccccccc").len(), 1);
    // a folder whose name extends a listed one's is not that one
    let longer =
        unmarked_citations(&doc("+0.023 (`experiments/results/main_job_head/`)"), &results, "aaaaaaaa");
    assert_eq!(longer.len(), 1, "{longer:?}");
    assert!(longer[0].contains("experiments/results (wants"), "{longer:?}");
    // the parent folder is its own result
    assert_eq!(
        unmarked_citations(&doc("0.5 in `experiments/results/tables.md`"), &results, "aaaaaaaa").len(),
        1
    );
    assert_eq!(hex_after("{\"commit\": \"3c3bdaa\"}", "\"commit\""), Some("3c3bdaa".into()));
    assert_eq!(hex_after("at commit 912be91 (release", "at commit"), Some("912be91".into()));
    assert_eq!(
        hex_after("current numerics\n\nat numerics `884c877567e53cf0`", "numerics"),
        Some("884c877567e53cf0".into())
    );
}
