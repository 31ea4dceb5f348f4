//! Where a result comes from: the command's machine, the repository's state and the numerics
//! of the code, for the headers of committed results.

/// The numerics fingerprint of this code: the hash of the weights that `tests/cross_cpu.rs`'s
/// committed workload (two GRPO steps of the sandbox's base model) trains to, which that test
/// checks. A change that alters the arithmetic changes it, and with it every committed result's
/// standing: each result records the fingerprint of the code that made it (`numerics`), and
/// `tests/committed_results.rs` requires the docs to mark a result whose fingerprint is not
/// this one as "made at <commit>, before <change>" wherever they cite its figures.
pub const NUMERICS: &str = "884c877567e53cf0";

/// The trimmed standard output of a command, when it runs and succeeds.
pub fn run_text(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The commit of the working tree, `git rev-parse --short HEAD`, with ` + uncommitted changes`
/// when tracked files differ from it; `unknown` outside a repository. Read it when a run starts:
/// what is committed while it runs did not produce it.
pub fn commit() -> String {
    let Some(head) = run_text("git", &["rev-parse", "--short", "HEAD"]) else { return "unknown".into() };
    match run_text("git", &["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} + uncommitted changes"),
        _ => head,
    }
}

/// The CPU model, the cores this process may use and the memory, as far as `/proc` tells.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(String::new(), |kb| format!(", {:.0} GiB", kb / 1024.0 / 1024.0));
    format!("{cpu}, {cores} cores{memory}")
}

/// `path` as committed results record it, free of this machine's layout: relative to the
/// working directory (the project's root, where the commands run) when it lies under it,
/// else `…/` and its last component; a relative path as it is.
pub fn project_path(path: &std::path::Path) -> String {
    if path.is_relative() {
        return path.display().to_string();
    }
    let root = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(relative) = root.as_ref().and_then(|root| canonical.strip_prefix(root).ok()) {
        return match relative.as_os_str().is_empty() {
            true => ".".into(),
            false => relative.display().to_string(),
        };
    }
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!("…/{name}")
}

/// This process's command line as committed results record it: `program` (how a reader runs
/// it, e.g. `seethink` or `cargo run --release --example ablations --`) and the arguments, each
/// absolute path among them as [`project_path`] writes it (`--out=/x/y` too).
pub fn command_line(program: &str) -> String {
    let argument = |arg: String| match arg.split_once('=') {
        Some((key, value)) if key.starts_with("--") && value.starts_with('/') => {
            format!("{key}={}", project_path(std::path::Path::new(value)))
        }
        _ if arg.starts_with('/') => project_path(std::path::Path::new(&arg)),
        _ => arg,
    };
    std::iter::once(program.to_string())
        .chain(std::env::args().skip(1).map(argument))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::project_path;

    #[test]
    fn recorded_paths_are_the_project_s_or_just_their_name() {
        let inside = std::env::current_dir().unwrap().join("experiments/sandbox/base");
        assert_eq!(project_path(&inside), "experiments/sandbox/base");
        assert_eq!(project_path(Path::new("/nowhere/at/all/controls-new")), "…/controls-new");
        assert_eq!(project_path(Path::new("runs/pretrain7")), "runs/pretrain7");
    }
}
