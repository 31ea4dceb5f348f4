//! A run's evaluation points (the start and each phase's end of a curriculum, a single run's
//! end): the held-out tasks of the eval section, graded with the run's reward, and its
//! benchmarks ([`crate::benchmarks`]), answered by one model loaded once, prompted as the run
//! trains (format prompt, image bounds) and sampled with the eval section's settings.
//!
//! ```text
//! <dir>/report.json, report.md    the held-out report
//! <dir>/benchmarks/               the benchmarks' predictions and report (eval.benchmarks)
//! ```
//! A finished held-out evaluation (its `report.json`) is read back instead of run again; the
//! benchmarks keep their predictions files.

use std::path::Path;

use seethink_eval::{attribute_errors, evaluate, EvalReport, SuiteReport};
use seethink_models::kernels::Kernels;
use seethink_reward::Reward;

use crate::benchmarks::{evaluate_benchmarks, BENCHMARKS_DIR};
use crate::config::{HeldOutConfig, TrainConfig};
use crate::error::{io, Result, TrainError};
use crate::eval_model::LoadedModel;

/// What one evaluation point measured.
#[derive(Clone, Debug)]
pub struct PointReport {
    /// The held-out tasks' report.
    pub heldout: EvalReport,
    /// The benchmarks' report (`None` without `eval.benchmarks`).
    pub benchmarks: Option<SuiteReport>,
}

/// Evaluates the model in `model` at one point of a run: the held-out tasks of `heldout`,
/// prompted as `config` trains (format prompt, image bounds), graded by `reward`, with the
/// error attribution when asked, into `dir` (`report.json`, `report.md`; read back when
/// `report.json` exists), then its benchmarks into `dir/benchmarks` ([`crate::benchmarks`]).
/// The model is loaded only when something is left to answer.
pub fn evaluate_point<B: Kernels>(
    config: &TrainConfig,
    heldout: &HeldOutConfig,
    model: &Path,
    reward: &dyn Reward,
    dir: &Path,
    device: &B::Device,
) -> Result<PointReport> {
    let mut loaded = LoadedModel::<B>::new(model, device);
    let report = held_out(config, heldout, &mut loaded, reward, dir)?;
    let benchmarks = evaluate_benchmarks(config, heldout, &mut loaded, &dir.join(BENCHMARKS_DIR))?;
    Ok(PointReport { heldout: report, benchmarks })
}

/// Evaluates `model` on `heldout`'s tasks, prompted as `config` trains (format prompt, image
/// bounds), graded by `reward`, with the error attribution when asked; writes `report.json` and
/// `report.md` into `dir`, or reads them back when `report.json` exists.
fn held_out<B: Kernels>(
    config: &TrainConfig,
    heldout: &HeldOutConfig,
    model: &mut LoadedModel<'_, B>,
    reward: &dyn Reward,
    dir: &Path,
) -> Result<EvalReport> {
    let report_path = dir.join("report.json");
    if report_path.exists() {
        let text = std::fs::read_to_string(&report_path).map_err(io(&report_path))?;
        return serde_json::from_str(&text).map_err(|source| TrainError::Json { path: report_path, source });
    }
    let mut tasks = seethink_data::load_tasks(&heldout.data, heldout.capability)?;
    config.data.format_prompt.apply(&mut tasks, &heldout.data)?;
    let started = std::time::Instant::now();
    let mut responder = model.responder(config, heldout)?;
    let mut report = evaluate(&mut responder, &tasks, reward, heldout.k)?;
    if heldout.attribute_errors {
        report.attribution = Some(attribute_errors(&mut responder, &tasks, &report.tasks, reward)?);
    }
    eprintln!(
        "held-out evaluation of {}: {} tasks, accuracy {:.3} ({:.0} s)",
        model.dir.display(),
        tasks.len(),
        report.overall.accuracy,
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, report.to_markdown()).map_err(io(&markdown))?;
    write_json(&report_path, &report)?;
    Ok(report)
}

/// Writes `value` as pretty JSON to `path` (through a temporary file: never half-written).
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|source| TrainError::Json { path: path.into(), source })?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}
