//! Where a result comes from: the command's machine and the repository's state, for the
//! headers of committed results.

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
