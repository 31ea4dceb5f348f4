//! `seethink passrate`: the difficulty axis' input. Each task is answered K times by the
//! starting model and `pass_rate = c / K` (c = correct answers) is written onto it, as the
//! paper estimates difficulty (K = 16, temperature 0.7, top-p 0.9).
//!
//! Resumable: every finished task is appended to `<out>/passrate-cache.jsonl` (whose first line
//! records the settings), a rerun answers only the tasks not there, and task `t` (in data
//! order) always samples from random streams `t·K … t·K + K − 1`, so an interrupted and resumed
//! estimate equals an uninterrupted one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::jsonl_cache::{unfinished_runs, JsonlCache};
use crate::models::generate::SamplingConfig;
use crate::models::processing::image::ImageBounds;
use crate::models::processing::Processor;
use crate::models::AnyVlm;
use crate::rl::config::{RewardKind, TrainConfig};
use crate::rl::prompt::FormatPrompt;
use crate::rl::train_backend::KernelBackend;

/// The cache file inside the output directory.
pub const CACHE_FILE: &str = "passrate-cache.jsonl";

/// Options of `seethink passrate`.
pub struct PassRateOptions {
    pub k: usize,
    pub sampling: SamplingConfig,
    /// Tasks per generation call.
    pub batch_size: usize,
    pub reward: RewardKind,
    pub format_prompt: FormatPrompt,
    pub bounds: ImageBounds,
    pub capability: Option<crate::data::Capability>,
    pub out: PathBuf,
}

impl PassRateOptions {
    /// Rating tasks as `config` trains on them, `k` samples each, into `out`: the run's reward,
    /// format prompt, image bounds and response budget, sampling at temperature 0.7 and top-p
    /// 0.9 from `config.rollout.seed`, 64 tasks per generation call.
    pub fn for_run(config: &TrainConfig, k: usize, out: PathBuf) -> Self {
        PassRateOptions {
            k,
            sampling: SamplingConfig {
                max_new_tokens: config.rollout.max_new_tokens,
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                seed: config.rollout.seed,
                stream: 0,
            },
            batch_size: 64,
            reward: config.algorithm.reward,
            format_prompt: config.data.format_prompt.clone(),
            bounds: config.data.image_bounds(),
            capability: None,
            out,
        }
    }
}

/// Estimates every task's pass rate and writes the tasks with it (`pass_rate`) as a benchmark
/// directory (`tasks.jsonl`, `images/`) in `options.out`; prints the pass-rate histogram.
pub fn passrate<B: KernelBackend>(model_dir: &Path, data: &Path, options: &PassRateOptions) -> Result<()> {
    anyhow::ensure!(options.k >= 1 && options.batch_size >= 1, "--k and --batch-size must be at least 1");
    let tasks = crate::data::load_tasks(data, options.capability)?;
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let header = serde_json::json!({
        "model": model_dir, "data": data, "k": options.k, "temperature": options.sampling.temperature,
        "top_p": options.sampling.top_p, "max_new_tokens": options.sampling.max_new_tokens,
        "seed": options.sampling.seed, "reward": format!("{:?}", options.reward),
        "format_prompt": format!("{:?}", options.format_prompt),
    });
    let cache_path = options.out.join(CACHE_FILE);
    let ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let in_data = |record: &serde_json::Value| record["id"].as_str().is_some_and(|id| ids.contains(id));
    let (mut cache, records) = JsonlCache::open(&cache_path, &header, in_data)?;
    let mut correct = HashMap::new();
    for record in records {
        let Some(c) = record["correct"].as_u64() else {
            bail!("{}: a record without `correct`: {record}", cache_path.display());
        };
        correct.insert(record["id"].as_str().unwrap_or_default().to_string(), c as usize);
    }
    // generation sees the rendered questions; the written tasks keep their own
    let mut prompted = tasks.clone();
    options.format_prompt.apply(&mut prompted, data)?;
    let reward = options.reward.reward();
    let device = Default::default();
    let model = AnyVlm::<B>::load(model_dir, &device)?;
    let processor = Processor::from_dir(model_dir)?;
    let todo: Vec<usize> = (0..tasks.len()).filter(|&t| !correct.contains_key(&tasks[t].id)).collect();
    eprintln!("passrate: {} tasks, {} cached, K = {}", tasks.len(), tasks.len() - todo.len(), options.k);
    let mut answered = tasks.len() - todo.len();
    let progress = crate::eval::progress::Progress::new("passrate", "task", answered + 1, tasks.len());
    for run in unfinished_runs(&todo, options.batch_size) {
        let batch = &prompted[run.clone()];
        // task t samples from streams t·K …: the same whatever the batching
        let sampling = SamplingConfig { stream: (run.start * options.k) as u64, ..options.sampling.clone() };
        let mut responder =
            crate::eval::ModelResponder::new(&model, &processor, sampling, batch.len(), device.clone())?
                .within(options.bounds)
                .quiet();
        let report = crate::eval::evaluate(&mut responder, batch, reward.as_ref(), options.k)?;
        for result in &report.tasks {
            cache.append(&serde_json::json!({ "id": result.id, "correct": result.correct }))?;
            correct.insert(result.id.clone(), result.correct);
        }
        answered += batch.len();
        let mean = correct.values().sum::<usize>() as f64 / (correct.len() * options.k).max(1) as f64;
        let mean = format!("mean pass rate {mean:.3}");
        progress.update(answered, &mean, &mean);
    }
    let rated: Vec<_> = tasks
        .into_iter()
        .map(|mut t| {
            t.pass_rate = Some(correct[&t.id] as f64 / options.k as f64);
            t
        })
        .collect();
    let summary = crate::data::synth::write_tasks(&options.out, &rated)?;
    println!("wrote {} with pass rates (K = {})", summary.tasks_file.display(), options.k);
    println!("| pass rate | tasks |\n|---|---|");
    for c in 0..=options.k {
        let n = rated.iter().filter(|t| t.pass_rate == Some(c as f64 / options.k as f64)).count();
        println!("| {c}/{} | {n} |", options.k);
    }
    Ok(())
}
