//! Whole-benchmark generation and writing.
//!
//! On disk a benchmark is a directory holding `tasks.jsonl` (EasyR1 format, default
//! [`JsonlKeys`], readable with [`crate::easyr1::load_jsonl`]) and `images/<id>.png`. Train and
//! test sets are separate benchmarks written with different seeds.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::family::{AnswerStyle, SynthTask, TaskSlot};
use super::scene::MAX_SCENE_LEVEL;
use super::text_reasoning::MAX_TEXT_STEPS;
use super::{perception, text_reasoning, visual_reasoning};
use crate::easyr1::{write_jsonl, JsonlKeys};
use crate::error::{DataError, Result};
use crate::task::{Capability, ImageRef, Task};

/// Name of the task file inside a benchmark directory.
pub const TASKS_FILE: &str = "tasks.jsonl";
/// Name of the image directory inside a benchmark directory.
pub const IMAGES_DIR: &str = "images";

/// How many tasks of one capability to generate, and at which levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilySpec {
    /// Number of tasks.
    pub count: usize,
    /// Lowest level (≥ 1).
    pub min_level: u32,
    /// Highest level (≤ 3 for perception and visual reasoning, ≤ 8 for text reasoning).
    pub max_level: u32,
}

/// Counts and levels per capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Perception tasks.
    pub perception: FamilySpec,
    /// Text-reasoning tasks.
    pub text_reasoning: FamilySpec,
    /// Visual-reasoning tasks.
    pub visual_reasoning: FamilySpec,
    /// How questions are asked and answered.
    #[serde(default)]
    pub answers: AnswerStyle,
}

impl SynthConfig {
    /// `n` tasks of each capability at levels 1–3, multiple-choice perception.
    pub fn uniform(n: usize) -> Self {
        let spec = FamilySpec { count: n, min_level: 1, max_level: 3 };
        SynthConfig {
            perception: spec,
            text_reasoning: spec,
            visual_reasoning: spec,
            answers: AnswerStyle::Choice,
        }
    }

    fn family(&self, capability: Capability) -> FamilySpec {
        match capability {
            Capability::Perception => self.perception,
            Capability::TextReasoning => self.text_reasoning,
            Capability::VisualReasoning => self.visual_reasoning,
        }
    }
}

/// Number of tasks of one capability and level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelCount {
    /// The capability.
    pub capability: Capability,
    /// The level (`None` for tasks without one).
    pub level: Option<u32>,
    /// Number of tasks.
    pub tasks: usize,
}

/// What [`write_tasks`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The JSONL file.
    pub tasks_file: PathBuf,
    /// Number of image files written.
    pub images_written: usize,
    /// Tasks per capability and level, sorted by capability then level.
    pub counts: Vec<LevelCount>,
}

/// Generates the benchmark of `config` from `seed`: perception, then text reasoning, then visual
/// reasoning tasks.
///
/// Task i of a capability has id `<per|txt|vis>-s<seed>-<i:05>`, level
/// `min_level + i mod (max_level − min_level + 1)` (levels cycle, so they are balanced), source
/// `seethink-synth/seed-<seed>`, and draws from its own random stream: ChaCha8 seeded with
/// `seed_from_u64(seed)`, stream `capability index · 2³² + i`. A task therefore depends only on
/// the seed, its capability and its index, not on the other counts.
pub fn generate(config: &SynthConfig, seed: u64) -> Result<Vec<SynthTask>> {
    let source = format!("seethink-synth/seed-{seed}");
    let mut tasks = Vec::new();
    for (family_index, capability) in Capability::ALL.into_iter().enumerate() {
        let spec = config.family(capability);
        let max = match capability {
            Capability::TextReasoning => MAX_TEXT_STEPS,
            _ => MAX_SCENE_LEVEL,
        };
        if spec.min_level < 1 || spec.min_level > spec.max_level || spec.max_level > max {
            return Err(DataError::Config(format!(
                "{capability}: levels {}..={} are not within 1..={max}",
                spec.min_level, spec.max_level
            )));
        }
        let span = (spec.max_level - spec.min_level + 1) as usize;
        for i in 0..spec.count {
            let level = spec.min_level + (i % span) as u32;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(((family_index as u64) << 32) | i as u64);
            let id = format!("{}-s{seed}-{i:05}", tag(capability));
            let slot = TaskSlot { id: &id, level, style: config.answers, source: &source };
            let task = match capability {
                Capability::Perception => perception::generate(&slot, &mut rng),
                Capability::TextReasoning => text_reasoning::generate(&slot, &mut rng),
                Capability::VisualReasoning => visual_reasoning::generate(&slot, &mut rng),
            }?;
            tasks.push(task);
        }
    }
    Ok(tasks)
}

/// Writes `tasks` as a benchmark directory `out_dir` (created if needed): each in-memory image
/// to `images/<id>.<ext>` (`<id>-<i>.<ext>` when a task has several; the extension from the
/// bytes' format), then `tasks.jsonl` referring to them. Images already on disk stay where they
/// are.
pub fn write_tasks(out_dir: &Path, tasks: &[Task]) -> Result<Summary> {
    let images_dir = out_dir.join(IMAGES_DIR);
    fs::create_dir_all(&images_dir).map_err(|source| DataError::Io { path: images_dir.clone(), source })?;
    let mut written = Vec::with_capacity(tasks.len());
    let mut images_written = 0;
    let mut counts: BTreeMap<(Capability, Option<u32>), usize> = BTreeMap::new();
    for task in tasks {
        let mut task = task.clone();
        let several = task.images.len() > 1;
        for (i, image) in task.images.iter_mut().enumerate() {
            let ImageRef::Bytes(bytes) = image else {
                continue;
            };
            let ext = image::guess_format(bytes)
                .ok()
                .and_then(|f| f.extensions_str().first().copied())
                .ok_or_else(|| DataError::Unwritable {
                    id: task.id.clone(),
                    reason: format!("image {i} bytes are in no known image format"),
                })?;
            let name = if several { format!("{}-{i}.{ext}", task.id) } else { format!("{}.{ext}", task.id) };
            let path = images_dir.join(name);
            fs::write(&path, bytes.as_slice())
                .map_err(|source| DataError::Io { path: path.clone(), source })?;
            *image = ImageRef::Path(path);
            images_written += 1;
        }
        *counts.entry((task.capability, task.level)).or_default() += 1;
        written.push(task);
    }
    let tasks_file = out_dir.join(TASKS_FILE);
    write_jsonl(&tasks_file, &written, &JsonlKeys::default())?;
    Ok(Summary {
        tasks_file,
        images_written,
        counts: counts
            .into_iter()
            .map(|((capability, level), tasks)| LevelCount { capability, level, tasks })
            .collect(),
    })
}

/// Generates `n_per_capability` tasks of each capability at levels 1–3 from `seed`
/// ([`SynthConfig::uniform`], [`generate`]) and writes them to `out_dir` ([`write_tasks`]).
pub fn write_benchmark(out_dir: &Path, n_per_capability: usize, seed: u64) -> Result<Summary> {
    let tasks: Vec<Task> =
        generate(&SynthConfig::uniform(n_per_capability), seed)?.into_iter().map(|t| t.task).collect();
    write_tasks(out_dir, &tasks)
}

fn tag(capability: Capability) -> &'static str {
    match capability {
        Capability::Perception => "per",
        Capability::TextReasoning => "txt",
        Capability::VisualReasoning => "vis",
    }
}
