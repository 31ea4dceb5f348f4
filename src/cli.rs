//! The commands behind the `seethink` binary, generic over the backend.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::models::generate::{generate as sample, Prompt, SamplingConfig};
use crate::models::processing::image::load_image;
use crate::models::processing::Processor;
use crate::models::{AnyVlm, TokenBatch, Vlm};
use crate::rl::config::{RewardKind, TrainConfig};
use crate::rl::train_backend::KernelBackend;

/// Loads model and processor of a checkpoint directory (any supported family).
fn load<B: KernelBackend>(dir: &Path) -> Result<(AnyVlm<B>, Processor)> {
    let device = Default::default();
    let started = std::time::Instant::now();
    let model = AnyVlm::<B>::load(dir, &device)?;
    let processor = Processor::from_dir(dir)?;
    tracing::info!(dir = %dir.display(), seconds = started.elapsed().as_secs_f32(), "loaded checkpoint");
    Ok((model, processor))
}

/// One user message: the image (if any) first, then the text.
fn user_prompt<B: KernelBackend>(
    processor: &Processor,
    text: &str,
    image: Option<&Path>,
) -> Result<Prompt<B>> {
    let images = image.map(load_image).transpose()?.into_iter().collect::<Vec<_>>();
    Ok(processor.user_prompt(text, &images, &Default::default())?)
}

/// `seethink inspect`: architecture and parameter counts.
pub fn inspect<B: KernelBackend>(dir: &Path) -> Result<()> {
    let model = AnyVlm::<B>::load(dir, &Default::default())?;
    println!("{}", model.describe());
    let (vision, language) = model.param_split();
    println!("parameters: {} total ({vision} vision, {language} language model)", model.num_params());
    Ok(())
}

/// `seethink forward`: writes `input_ids` (int64 [S]) and `logits` (float32 [S, V]).
pub fn forward<B: KernelBackend>(dir: &Path, text: &str, image: Option<&Path>, out: &Path) -> Result<()> {
    let (model, processor) = load::<B>(dir)?;
    let prompt = user_prompt::<B>(&processor, text, image)?;
    let logits = model.forward(&TokenBatch::single(prompt.ids.clone()), prompt.images.as_ref())?;
    let [_, seq, vocab] = logits.dims();
    let logits: Vec<f32> = logits.into_data().convert::<f32>().to_vec().expect("f32 data");
    let ids: Vec<u8> = prompt.ids.iter().flat_map(|&i| i64::from(i).to_le_bytes()).collect();
    let values: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = vec![
        ("input_ids", TensorView::new(Dtype::I64, vec![seq], &ids)?),
        ("logits", TensorView::new(Dtype::F32, vec![seq, vocab], &values)?),
    ];
    safetensors::serialize_to_file(tensors, None, out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote input_ids [{seq}] and logits [{seq}, {vocab}] to {}", out.display());
    Ok(())
}

/// `seethink generate`: prints the reply, or with `json` the ids and text as one JSON object.
pub fn generate<B: KernelBackend>(
    dir: &Path,
    text: &str,
    image: Option<&Path>,
    sampling: &SamplingConfig,
    json: bool,
) -> Result<()> {
    let (model, processor) = load::<B>(dir)?;
    let prompt = user_prompt::<B>(&processor, text, image)?;
    let input_ids = prompt.ids.clone();
    let tokenizer = &processor.tokenizer;
    let started = std::time::Instant::now();
    let completion = sample(&model, &[prompt], 1, sampling, &tokenizer.stop_ids, tokenizer.pad_id)?
        .pop()
        .expect("one prompt, one sample");
    let seconds = started.elapsed().as_secs_f32();
    tracing::info!(tokens = completion.ids.len(), seconds, "generated");
    let reply = tokenizer.decode(&completion.ids, true)?;
    if json {
        let object =
            serde_json::json!({ "input_ids": input_ids, "output_ids": completion.ids, "text": reply });
        println!("{object}");
    } else {
        println!("{reply}");
    }
    Ok(())
}

/// `seethink data synth`: writes the benchmark and prints how many tasks per capability/level.
pub fn synth(out: &Path, n: usize, seed: u64) -> Result<()> {
    anyhow::ensure!(n > 0, "--n: at least 1 task per capability, got 0");
    let summary = crate::data::synth::write_benchmark(out, n, seed)?;
    println!("wrote {} ({} images)", summary.tasks_file.display(), summary.images_written);
    println!("| capability | level | tasks |\n|---|---|---|");
    for c in &summary.counts {
        let level = c.level.map_or("-".to_string(), |l| l.to_string());
        println!("| {} | {level} | {} |", c.capability, c.tasks);
    }
    Ok(())
}

/// Options of `seethink eval`.
pub struct EvalOptions {
    pub k: usize,
    pub sampling: SamplingConfig,
    pub batch_size: usize,
    pub limit: Option<usize>,
    /// `math`, `math-extended` or `direct`; `None`: the training run's reward (see [`eval_reward`]).
    pub reward: Option<String>,
    /// Capability of records without one; `None`: they are evaluated as one `unlabelled`
    /// group.
    pub capability: Option<crate::data::Capability>,
    /// Evaluate `data` as this VLMEvalKit benchmark (prompts and scores as VLMEvalKit's).
    pub benchmark: Option<crate::eval::Benchmark>,
    /// The format prompt questions are rendered through.
    pub format_prompt: crate::rl::prompt::FormatPrompt,
    pub out: std::path::PathBuf,
}

/// The reward `seethink eval` grades with: the one asked for, else the one of the run that
/// trained `model` (its exported training config), else the reference math reward.
fn eval_reward(model: &Path, asked: Option<&str>) -> Result<RewardKind> {
    let trained_with = model.join(crate::rl::run::TRAINING_CONFIG);
    Ok(match asked {
        Some(name) => reward_kind(name),
        None if trained_with.exists() => TrainConfig::load(&trained_with, &[])?.algorithm.reward,
        None => RewardKind::Math,
    })
}

/// The reward named `direct`, `math-extended` or (anything else) `math`.
pub fn reward_kind(name: &str) -> RewardKind {
    match name {
        "direct" => RewardKind::Direct,
        "math-extended" => RewardKind::MathExtended,
        _ => RewardKind::Math,
    }
}

/// `seethink eval`: the report (markdown on stdout; JSON, markdown and SVG in `out`); records
/// without a capability form the `unlabelled` group unless `options.capability` gives theirs;
/// with a benchmark, [`eval_benchmark`].
pub fn eval<B: KernelBackend>(dir: &Path, data: &Path, options: &EvalOptions) -> Result<()> {
    seethink_lab::writable_dir(&options.out)?;
    if let Some(benchmark) = options.benchmark {
        return eval_benchmark::<B>(dir, benchmark, data, options);
    }
    let (model, processor) = load::<B>(dir)?;
    // records without a capability are one `unlabelled` group unless `--capability` names
    // theirs; until the report groups them, the first capability stands in for it
    let stand_in = options.capability.unwrap_or(crate::data::Capability::Perception);
    let loaded = crate::data::load_tasks_noting_defaults(data, Some(stand_in))?;
    let mut tasks = loaded.tasks;
    let unlabelled: std::collections::HashSet<String> = match options.capability {
        Some(_) => Default::default(),
        None => loaded.without_capability.iter().map(|&i| tasks[i].id.clone()).collect(),
    };
    if let Some(limit) = options.limit {
        tasks.truncate(limit);
    }
    options.format_prompt.apply(&mut tasks, data)?;
    let kind = eval_reward(dir, options.reward.as_deref())?;
    println!("graded with the {kind:?} reward");
    let reward = kind.reward();
    let mut responder = crate::eval::ModelResponder::new(
        &model,
        &processor,
        options.sampling.clone(),
        options.batch_size,
        Default::default(),
    )?;
    let started = std::time::Instant::now();
    let mut report = crate::eval::evaluate(&mut responder, &tasks, reward.as_ref(), options.k)?
        .with_unlabelled(&unlabelled.iter().map(String::as_str).collect())?;
    report.attribution =
        Some(crate::eval::attribute_errors(&mut responder, &tasks, &report.tasks, reward.as_ref())?);
    tracing::info!(tasks = tasks.len(), seconds = started.elapsed().as_secs_f32(), "evaluated");
    report.write_json(&options.out.join("report.json"))?;
    let markdown = report.to_markdown();
    std::fs::write(options.out.join("report.md"), &markdown)
        .with_context(|| format!("writing {}", options.out.join("report.md").display()))?;
    crate::eval::plot_accuracy(&report, &options.out.join("accuracy.svg"))?;
    println!("{markdown}");
    Ok(())
}

/// `seethink eval --benchmark`: answers every row of a VLMEvalKit benchmark once with the
/// model (its prompts as VLMEvalKit builds them, through the format prompt), writes the
/// responses to `predictions.jsonl` and scores them as [`score`] does.
fn eval_benchmark<B: KernelBackend>(
    dir: &Path,
    benchmark: crate::eval::Benchmark,
    data: &Path,
    options: &EvalOptions,
) -> Result<()> {
    use crate::eval::benchmarks::predictions::{answer_rows, write_predictions};
    anyhow::ensure!(options.k == 1, "--benchmark answers each row once (as VLMEvalKit does): --k must be 1");
    let mut benchmark_data = benchmark.load(data)?;
    if let Some(limit) = options.limit {
        benchmark_data.rows.truncate(limit);
    }
    let mut tasks = benchmark_data.tasks();
    options.format_prompt.apply(&mut tasks, data)?;
    let (model, processor) = load::<B>(dir)?;
    let mut responder = crate::eval::ModelResponder::new(
        &model,
        &processor,
        options.sampling.clone(),
        options.batch_size,
        Default::default(),
    )?;
    let predictions = answer_rows(&mut responder, &tasks)?;
    write_predictions(&options.out.join("predictions.jsonl"), &benchmark_data, &predictions)?;
    let suite = crate::eval::SuiteReport::new(vec![benchmark_data.score(&predictions)?])?;
    suite.write(&options.out)?;
    println!("{}", suite.to_markdown());
    Ok(())
}

/// One benchmark to score offline: the benchmark, its TSV file and a predictions file.
pub struct ScoreInput {
    pub benchmark: crate::eval::Benchmark,
    pub data: std::path::PathBuf,
    pub predictions: std::path::PathBuf,
}

/// `seethink score`: scores predictions files without a model (each against its benchmark,
/// with `options`), prints the markdown report with the paper's averages and writes
/// `report.json` and `report.md` to `out`.
pub fn score(inputs: &[ScoreInput], options: crate::eval::ScoreOptions, out: &Path) -> Result<()> {
    use crate::eval::benchmarks::predictions::{match_rows, read_predictions};
    seethink_lab::writable_dir(out)?;
    let reports = inputs
        .iter()
        .map(|input| {
            let data = input.benchmark.load(&input.data)?;
            let predictions = read_predictions(&input.predictions)?;
            data.score_with(&match_rows(&data, &predictions)?, options)
        })
        .collect::<crate::eval::Result<Vec<_>>>()?;
    let suite = crate::eval::SuiteReport::new(reports)?;
    suite.write(out)?;
    println!("{}", suite.to_markdown());
    Ok(())
}

/// Before a run from a config file (`seethink train`, `staged_qwen3 --config`, `ablations
/// --config`): its inputs exist ([`inputs_exist`]) and, on a GPU backend or with `memory`
/// given, its memory plan fits the device ([`crate::plan::refuse_unfit`], which also sets
/// `rollout.batch_size: 0` to as many as fit).
pub fn ready_to_run(
    config: &mut TrainConfig,
    config_path: &Path,
    kind: crate::backend::BackendKind,
    memory: Option<u64>,
) -> Result<()> {
    inputs_exist(config, config_path)?;
    crate::plan::refuse_unfit(config, config_path, kind, memory)
}

/// Checks that the model, data and benchmark paths of a training config exist, before anything
/// is loaded.
/// Relative paths are taken from the current directory (as the shipped configs expect: they
/// are run from the repository root), so the error says where they were looked for; a model
/// given as a Hugging Face hub id (`Org/Name`) gets told how to download it.
pub fn inputs_exist(config: &TrainConfig, config_path: &Path) -> Result<()> {
    if !config.model.exists() {
        if let Some(id) = hub_id(&config.model) {
            anyhow::bail!(
                "{}: model = {id} looks like a Hugging Face hub id; seethink reads a local checkpoint \
                 directory (config.json, safetensors, tokenizer.json) and downloads nothing. Download \
                 it, e.g. `huggingface-cli download {id} --local-dir checkpoints/{name}`, then point \
                 `model` at that directory (or pass `--set 'model=\"checkpoints/{name}\"'`)",
                config_path.display(),
                name = id.rsplit('/').next().unwrap_or(&id),
            );
        }
    }
    let mut inputs = vec![("model".to_string(), &config.model)];
    if config.data.train != Path::new("in-memory") {
        inputs.push(("data.train".to_string(), &config.data.train));
    }
    inputs.extend(config.data.sources.iter().map(|s| ("data.sources".to_string(), &s.path)));
    inputs.extend(config.eval.iter().map(|e| ("eval.data".to_string(), &e.data)));
    for entry in config.eval.iter().flat_map(|e| &e.benchmarks) {
        inputs.push((format!("eval.benchmarks ({})", entry.name), &entry.file));
    }
    for (key, path) in inputs {
        if !path.exists() {
            let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            let config_dir = config_path.parent().map(|d| d.display().to_string()).unwrap_or_default();
            anyhow::bail!(
                "{}: {key} = {}: no such file or directory (relative paths are taken from the current \
                 directory {cwd}, not from the config's directory `{config_dir}`)",
                config_path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// `path` as a hub id when it has the shape of one (`Org/Name`: two non-empty parts of letters,
/// digits, `-`, `_` and `.`, not starting with `.`, the first naming no local directory).
fn hub_id(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let parts: Vec<&str> = text.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let local = Path::new(parts[0]).exists();
    (parts.len() == 2 && parts.iter().all(|p| part_ok(p)) && !local).then(|| text.to_string())
}

/// `seethink train`: runs (or resumes) the run of a RON config.
pub fn train<B: KernelBackend>(
    config: &Path,
    out: Option<std::path::PathBuf>,
    overrides: &[String],
    kind: crate::backend::BackendKind,
    memory: Option<u64>,
) -> Result<()> {
    let config_path = config;
    let mut config = crate::rl::config::TrainConfig::load(config, overrides)?;
    if let Some(out) = out {
        config.trainer.out = out;
    }
    ready_to_run(&mut config, config_path, kind, memory)?;
    let run = crate::rl::train::train::<burn::backend::Autodiff<B>>(&config, &Default::default())?;
    match config.curriculum {
        None => println!("run directory: {} (final model in {})", run.display(), run.join("final").display()),
        Some(_) => println!("run directory: {} (each phase's model in NN-<phase>/final)", run.display()),
    }
    Ok(())
}
