//! One writer per run directory, and the debris of interrupted runs cleaned on the next start.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::complete_checkpoints;
use crate::error::{io, Result, TrainError};

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = ".seethink.lock";

/// `<dir>/.seethink.lock`, holding the id of the process that writes the run; removed when
/// dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of run directory `dir` (which must exist). Another live process holding it
    /// is an error naming that process; a lock left by a process that is gone is taken over.
    /// Where process liveness cannot be told (no `/proc`), a lock is taken as held.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        for _ in 0..2 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).map_err(io(&path))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    let pid = holder.trim().parse::<u32>().ok();
                    if pid.is_some_and(is_alive) {
                        return Err(TrainError::Locked {
                            dir: dir.to_path_buf(),
                            holder: holder.trim().into(),
                        });
                    }
                    eprintln!(
                        "{}: taking over the lock of a run that is gone (process {})",
                        dir.display(),
                        holder.trim()
                    );
                    fs::remove_file(&path).map_err(io(&path))?;
                }
                Err(e) => return Err(TrainError::Io { path, source: e }),
            }
        }
        Err(TrainError::Locked { dir: dir.to_path_buf(), holder: "another process, racing for it".into() })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether process `pid` is running (Linux: `/proc/<pid>` exists; elsewhere: assumed).
fn is_alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes what interrupted runs leave in run directory `dir` (call with its [`RunLock`] held):
/// `final.tmp-*` and `final.old-*` (a killed export), files in `checkpoint/.partial/` (a killed
/// save) and checkpoint files of steps without a complete set (a killed save or pruning).
/// Returns how many entries went.
pub fn clean_debris(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let remove = |path: &Path| -> Result<()> {
        match path.is_dir() {
            true => fs::remove_dir_all(path),
            false => fs::remove_file(path),
        }
        .map_err(io(path))
    };
    for entry in fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("final.tmp-") || name.starts_with("final.old-") {
            remove(&entry.path())?;
            removed += 1;
        }
    }
    let checkpoints = dir.join("checkpoint");
    let partial = checkpoints.join(".partial");
    if let Ok(entries) = fs::read_dir(&partial) {
        for entry in entries.flatten() {
            remove(&entry.path())?;
            removed += 1;
        }
    }
    let complete = complete_checkpoints(&checkpoints);
    if let Ok(entries) = fs::read_dir(&checkpoints) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let step = name
                .split_once('-')
                .and_then(|(_, rest)| rest.split_once('.'))
                .and_then(|(n, _)| n.parse().ok());
            if step.is_some_and(|s: usize| !complete.contains(&s)) {
                remove(&entry.path())?;
                removed += 1;
            }
        }
    }
    if removed > 0 {
        eprintln!("{}: removed {removed} leftovers of an interrupted run", dir.display());
    }
    Ok(removed)
}
