//! The suite's results folder, rewritten after every finished arm:
//!
//! ```text
//! runs.jsonl    one RunRecord per arm and seed
//! suite.json    command, commit, numerics, date, machine, seeds, settings, every process that
//!               wrote the folder
//! tables.md     the comparisons (mean and 95% interval over seeds)
//! curve_*.svg   reward, training accuracy per capability, response length
//! ```
//!
//! The folder holds the union of the runs of every process that shares its numerics
//! fingerprint and settings, each rewrite merging under a lock on the folder. So processes side
//! by side (`--seed-list`) write into one folder, a killed suite loses no finished arm, and a
//! folder kept between machines (committed mid-suite) resumes the suite on a fresh checkout:
//! only the arms it lacks run there. A folder made with other numerics or settings is replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

use super::tables::{comparison_tables, plot_curves};
use super::{write_atomically, Arm, RunRecord, Suite};
use crate::provenance::{machine, run_text, NUMERICS};

/// What a folder's runs must share with a suite to be kept: the suite's settings, recorded in
/// `suite.json` beside the numerics fingerprint of the code.
fn settings(suite: &Suite) -> serde_json::Value {
    serde_json::json!({
        "base": crate::provenance::project_path(&suite.base),
        "max_new_tokens": suite.max_new_tokens,
        "stage_steps": suite.stage_steps, "prompts_per_step": suite.prompts_per_step,
        "group_size": suite.group_size, "heldout_tasks_per_capability": suite.heldout_tasks,
        "heldout_seed": suite.heldout_seed,
        "passrate_k": suite.passrate_k, "eval_k": suite.eval_k,
    })
}

/// What the results folder holds for a suite.
pub(super) struct Folder {
    /// The finished runs (`runs.jsonl`), read back: `trained_here` is false.
    pub records: Vec<RunRecord>,
    /// The processes that wrote them (`suite.json`'s `processes`).
    processes: Vec<serde_json::Value>,
}

/// The folder's runs and processes when its `suite.json` records this code's numerics and
/// `suite`'s [`settings`]; nothing when it has no `suite.json` or other numerics or settings
/// (a re-run at other numerics trains every arm again). A damaged file is an error naming it.
pub(super) fn read(suite: &Suite) -> Result<Folder> {
    let nothing = Folder { records: Vec::new(), processes: Vec::new() };
    let path = suite.results.join("suite.json");
    if !path.exists() {
        return Ok(nothing);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let header: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if header["numerics"] != NUMERICS || header["settings"] != settings(suite) {
        eprintln!(
            "== ablations: {} was made with other numerics or settings; it is replaced",
            path.display()
        );
        return Ok(nothing);
    }
    let runs = suite.results.join("runs.jsonl");
    let text = std::fs::read_to_string(&runs).with_context(|| format!("reading {}", runs.display()))?;
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not a run record", runs.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    let processes = header["processes"].as_array().cloned().unwrap_or_default();
    Ok(Folder { records, processes })
}

/// Suites run by this process so far: with the process id, names a suite's entry in
/// `suite.json`'s `processes`.
static SUITES_RUN: AtomicUsize = AtomicUsize::new(0);

/// One call of [`run_suite`](super::run_suite), as `suite.json` lists it among the processes.
pub(super) struct ThisProcess {
    /// `<process id>.<suites run before in the process>`, with `started` what tells it apart.
    id: String,
    commit: String,
    /// The machine it runs on ([`machine`]), read once at its start.
    machine: String,
    /// UTC date and time of its start.
    started: String,
    clock: Instant,
}

impl ThisProcess {
    pub(super) fn start() -> ThisProcess {
        ThisProcess {
            id: format!("{}.{}", std::process::id(), SUITES_RUN.fetch_add(1, Ordering::Relaxed)),
            commit: crate::provenance::commit(),
            machine: machine(),
            started: utc_now(),
            clock: Instant::now(),
        }
    }

    /// Wall minutes since its start.
    pub(super) fn minutes(&self) -> f64 {
        self.clock.elapsed().as_secs_f64() / 60.0
    }

    /// `processes` with this one's entry, in place of its earlier one or appended: its command,
    /// commit, machine, start, wall minutes so far and the arms it trained (`trained`: those whose
    /// record took time in this process; the others it read back).
    fn listed_in(
        &self,
        suite: &Suite,
        mut processes: Vec<serde_json::Value>,
        records: &[RunRecord],
    ) -> Vec<serde_json::Value> {
        let trained: Vec<String> = records
            .iter()
            .filter(|r| r.trained_here)
            .map(|r| format!("{} (seed {})", r.arm, r.seed))
            .collect();
        let entry = serde_json::json!({
            "command": suite.command, "commit": self.commit, "machine": self.machine, "process": self.id,
            "started": self.started,
            "date": utc_now(), "minutes": (self.minutes() * 10.0).round() / 10.0, "trained": trained,
        });
        let is_this =
            |p: &serde_json::Value| p["process"] == self.id.as_str() && p["started"] == self.started.as_str();
        match processes.iter_mut().find(|p| is_this(p)) {
            Some(earlier) => *earlier = entry,
            None => processes.push(entry),
        }
        processes
    }
}

/// The machines of the processes that trained arms, each with how many did, in order of first
/// appearance: `AMD EPYC, 2 cores, 24 GiB (8 processes), Intel(R) Xeon(R) Processor, 2 cores,
/// 24 GiB (1 process)`. An entry written before processes recorded their machine counts as
/// `machine not recorded`.
fn machines_that_trained(processes: &[serde_json::Value]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let trained = processes.iter().filter(|p| p["trained"].as_array().is_some_and(|t| !t.is_empty()));
    for process in trained {
        let machine = process["machine"].as_str().unwrap_or("machine not recorded");
        match counts.iter_mut().find(|(m, _)| m == machine) {
            Some((_, n)) => *n += 1,
            None => counts.push((machine.to_string(), 1)),
        }
    }
    let listed: Vec<String> =
        counts.iter().map(|(m, n)| format!("{m} ({n} process{})", if *n == 1 { "" } else { "es" })).collect();
    if listed.is_empty() {
        "no process has trained an arm yet".into()
    } else {
        listed.join(", ")
    }
}

/// The UTC date and time, to the second (`unknown` without `date`).
fn utc_now() -> String {
    run_text("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).unwrap_or_else(|| "unknown".into())
}

/// `ours` and the folder's other runs (those of an arm and seed `ours` lacks), ordered by seed,
/// then by the arm's place in the suite, then in [`Arm::ALL`].
fn union(suite: &Suite, ours: &[RunRecord], folder: Vec<RunRecord>) -> Vec<RunRecord> {
    let others = folder.into_iter().filter(|f| !ours.iter().any(|r| r.arm == f.arm && r.seed == f.seed));
    let mut all: Vec<RunRecord> = ours.iter().cloned().chain(others).collect();
    let place = |key: &str, arms: &[Arm]| arms.iter().position(|a| a.key() == key).unwrap_or(arms.len());
    all.sort_by_cached_key(|r| (r.seed, place(&r.arm, &suite.arms), place(&r.arm, &Arm::ALL), r.arm.clone()));
    all
}

/// Rewrites the folder with `records` (this process's runs so far) and the runs other
/// processes left there ([`read`]), under an exclusive lock on the folder: `runs.jsonl`,
/// `suite.json`, `tables.md` and the curves. Returns the tables.
pub(super) fn write(suite: &Suite, records: &[RunRecord], this: &ThisProcess) -> Result<String> {
    let dir = &suite.results;
    let lock = std::fs::File::open(dir).with_context(|| format!("opening {} to lock it", dir.display()))?;
    lock.lock().with_context(|| format!("locking {}", dir.display()))?;
    let folder = read(suite)?;
    let processes = this.listed_in(suite, folder.processes, records);
    let records = union(suite, records, folder.records);
    let lines: Vec<String> = records.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
    write_atomically(&dir.join("runs.jsonl"), &(lines.join("\n") + "\n"))?;
    let mut seeds: Vec<u64> = records.iter().map(|r| r.seed).collect();
    seeds.dedup();
    let arms: Vec<Arm> = Arm::ALL.into_iter().filter(|a| records.iter().any(|r| r.arm == a.key())).collect();
    let header = serde_json::json!({
        "command": suite.command,
        "commit": this.commit,
        "numerics": NUMERICS,
        "date": utc_now(),
        "machine": this.machine,
        "seeds": seeds,
        "smoke": suite.smoke,
        "wall_minutes": (this.minutes() * 10.0).round() / 10.0,
        "arm_run_minutes": (records.iter().map(|r| r.seconds).sum::<f64>() / 6.0).round() / 10.0,
        "arm_step_minutes": (records.iter().map(|r| r.step_seconds).sum::<f64>() / 6.0).round() / 10.0,
        "wall_minutes_all_processes": (processes.iter().filter_map(|p| p["minutes"].as_f64()).sum::<f64>() * 10.0).round() / 10.0,
        "processes": processes,
        "arms": arms.iter().map(|a| serde_json::json!({
            "arm": a.key(), "label": a.label(), "description": a.description(),
        })).collect::<Vec<_>>(),
        "settings": settings(suite),
    });
    write_atomically(&dir.join("suite.json"), &serde_json::to_string_pretty(&header)?)?;
    let tables = format!(
        "# Ablation suite\n\n`{}` at commit {} on {}, {}; trained on {}; seeds {:?}; held-out set of seed {} ({}); {:.1} min in this process, {:.1} min in the {} processes that wrote these results, {:.1} min of training steps over all arms{}.\n\n{}",
        suite.command,
        this.commit,
        header["date"].as_str().unwrap_or_default(),
        header["machine"].as_str().unwrap_or_default(),
        machines_that_trained(header["processes"].as_array().map_or(&[], Vec::as_slice)),
        seeds,
        suite.heldout_seed,
        match suite.heldout_seed {
            crate::sandbox::TEST_SEED => "the test set",
            crate::sandbox::VALIDATION_SEED => "the validation set, where the settings were chosen",
            _ => "a set of its own",
        },
        this.minutes(),
        header["wall_minutes_all_processes"].as_f64().unwrap_or_default(),
        header["processes"].as_array().map_or(0, Vec::len),
        records.iter().map(|r| r.step_seconds).sum::<f64>() / 60.0,
        if suite.smoke { " (smoke configuration: checks that it runs, not what it finds)" } else { "" },
        comparison_tables(&records)
    );
    write_atomically(&dir.join("tables.md"), &tables)?;
    plot_curves(&records, dir)?;
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tables::tests::record;
    use super::*;

    /// The arm and seed of each record.
    fn keys(records: &[RunRecord]) -> Vec<(String, u64)> {
        records.iter().map(|r| (r.arm.clone(), r.seed)).collect()
    }

    fn suite(dir: &Path) -> Suite {
        Suite { command: "test".into(), ..Suite::full(2, dir.join("runs"), dir.join("results")) }
    }

    /// Processes from two machines, and one from before processes recorded theirs, are each
    /// named with their count; a process that trained nothing is not.
    #[test]
    fn the_machines_that_trained_are_named_with_their_counts() {
        let process = |machine: Option<&str>, trained: &[&str]| {
            let mut p = serde_json::json!({ "trained": trained });
            if let Some(m) = machine {
                p["machine"] = m.into();
            }
            p
        };
        let processes = [
            process(Some("AMD EPYC"), &["merged (seed 0)"]),
            process(None, &["staged (seed 0)"]),
            process(Some("Intel Xeon"), &[]),
            process(Some("AMD EPYC"), &["staged (seed 1)"]),
            process(Some("Intel Xeon"), &["reverse (seed 0)"]),
        ];
        assert_eq!(
            machines_that_trained(&processes),
            "AMD EPYC (2 processes), machine not recorded (1 process), Intel Xeon (1 process)"
        );
        assert_eq!(machines_that_trained(&processes[2..3]), "no process has trained an arm yet");
    }

    #[test]
    fn the_folder_keeps_every_process_s_runs_at_equal_numerics_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let suite = suite(dir.path());
        std::fs::create_dir_all(&suite.results).unwrap();
        assert!(read(&suite).unwrap().records.is_empty(), "an empty folder keeps nothing");
        // two processes side by side, each with its own runs
        let (first, second) = (ThisProcess::start(), ThisProcess::start());
        write(&suite, &[record(Arm::Merged, 1, 0.4)], &first).unwrap();
        write(&suite, &[record(Arm::Staged, 0, 0.3), record(Arm::Merged, 0, 0.2)], &second).unwrap();
        write(&suite, &[record(Arm::Merged, 1, 0.4), record(Arm::Staged, 1, 0.5)], &first).unwrap();
        let folder = read(&suite).unwrap();
        let want = |k: &[(&str, u64)]| k.iter().map(|(a, s)| (a.to_string(), *s)).collect::<Vec<_>>();
        assert_eq!(
            keys(&folder.records),
            want(&[("merged", 0), ("staged", 0), ("merged", 1), ("staged", 1)])
        );
        assert!(folder.records.iter().all(|r| !r.trained_here), "read back, not trained here");
        assert_eq!(folder.processes.len(), 2, "one entry per process: {:?}", folder.processes);
        assert_eq!(folder.processes[0]["trained"], serde_json::json!(["merged (seed 1)", "staged (seed 1)"]));
        assert_eq!(folder.processes[1]["trained"], serde_json::json!(["staged (seed 0)", "merged (seed 0)"]));
        let header: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(suite.results.join("suite.json")).unwrap())
                .unwrap();
        assert_eq!(header["seeds"], serde_json::json!([0, 1]));
        let tables = std::fs::read_to_string(suite.results.join("tables.md")).unwrap();
        assert!(tables.contains("seeds [0, 1]"), "{tables}");
        assert!(
            folder.processes.iter().all(|p| p["machine"] == machine().as_str()),
            "{:?}",
            folder.processes
        );
        assert!(tables.contains(&format!("trained on {} (2 processes);", machine())), "{tables}");

        // other settings, or other numerics: nothing is kept, and the next write replaces it
        let longer = Suite { max_new_tokens: suite.max_new_tokens * 2, ..suite.clone() };
        assert!(read(&longer).unwrap().records.is_empty());
        let path = suite.results.join("suite.json");
        let text = std::fs::read_to_string(&path).unwrap().replace(NUMERICS, "0123456789abcdef");
        std::fs::write(&path, text).unwrap();
        assert!(read(&suite).unwrap().records.is_empty());
        write(&suite, &[record(Arm::Staged, 0, 0.3)], &ThisProcess::start()).unwrap();
        let folder = read(&suite).unwrap();
        assert_eq!((keys(&folder.records), folder.processes.len()), (want(&[("staged", 0)]), 1));

        // a damaged line is named, not skipped
        std::fs::write(suite.results.join("runs.jsonl"), "{\"arm\": 3}\n").unwrap();
        let err = read(&suite).err().expect("a damaged runs.jsonl is refused");
        assert!(format!("{err:#}").contains("runs.jsonl line 1"), "{err:#}");
    }
}
