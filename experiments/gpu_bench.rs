//! What a lent GPU is asked to measure, at a real model's shape with random weights, nothing
//! downloaded (`benches/gpu.sh` runs it after `backend_check`):
//! - **generation**: new tokens per second for 1 prompt and for `--prompts` × `--samples`
//!   sequences, each prompt an image and a question;
//! - **a GRPO step** with LoRA and with full fine-tuning, as `seethink train` runs it (frozen
//!   matrices in the checkpoint's type, rollout, old and reference log-probs, the clipped loss,
//!   AdamW) with the settings of `--run` (`benches/gpu.ron`): step time, tokens per second
//!   (prompt and response tokens of every sequence over the step's time, EasyR1's
//!   `perf/throughput` on one GPU), and peak memory against `seethink plan`'s prediction.
//!
//! Each measurement runs in a process of its own, so each peak is its own: on CUDA the device's
//! peak is `nvidia-smi`'s memory in use, polled every 50 ms, above what was in use before; on
//! the host it is the process's peak resident memory (`VmHWM`). A GRPO row also splits its last
//! step into the rollout and the update, each with what cubecl's pools hold at its end on CUDA
//! (bytes of live tensors, bytes reserved: [`BackendKind::pooled_memory`]), and the update at
//! its [`step_marks`] points (old and reference log-probs, each mini-batch's weights, each
//! micro-batch's gradients, each optimizer step), each with the most the pools held there;
//! `--release-memory` hands the pools' unused memory back after each phase
//! (`Backend::memory_cleanup`). The results
//! are a markdown table with the device and the commit.
//!
//! The model is the architecture of `--config`'s `config.json` (default: Qwen2.5-VL-3B) with
//! the tokenizer, chat template and image processor of `--side-files` (a tiny checkpoint of the
//! same family): its special-token ids are written into the config and its patch sizes into the
//! image processor, so a real-shape model runs without its real tokenizer.
//!
//! ```text
//! cargo run --release --features cuda --example gpu_bench -- --backend cuda --out gpu.md
//! cargo run --release --example gpu_bench -- --config tests/fixtures/qwen2_5_vl/checkpoint  # tiny, CPU
//! ```
//! Run it from the repository root.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::{DType, Tensor};
use clap::{Parser, ValueEnum};
use image::{DynamicImage, Rgb, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seethink::backend::{BackendKind, PooledMemory};
use seethink::models::checkpoint::stored_dtype;
use seethink::models::generate::{generate, KvLayout, Prompt, SamplingConfig};
use seethink::models::kernels::Kernels;
use seethink::models::nn::frozen::{float_dtype, frozen_dtype, widen_trained};
use seethink::models::nn::precision::for_compute;
use seethink::models::processing::Processor;
use seethink::models::{AnyVlm, ImageInput, TokenBatch, Vlm};
use seethink::plan::{device_memory, fit_batch_size, plans_of, PlanDevice};
use seethink::provenance::run_text;
use seethink::rl::config::TrainConfig;
use seethink::rl::grpo::{prompts_per_call, Grpo, GrpoStats, Scored};
use seethink::rl::learner::{new_learner, resolved_compute_dtype};
use seethink::rl::plan::gib;
use seethink::rl::policy::Sequence;
use seethink::rl::step_marks;
use seethink::rl::train_backend::TrainBackend;
use serde::{Deserialize, Serialize};

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

#[derive(Parser, Clone)]
#[command(
    about = "Generation and GRPO steps at a real model's shape: speed and peak memory against the plan"
)]
struct Args {
    /// The backend to measure (compiled in with the feature of that name).
    #[arg(long, default_value = seethink::backend::BEST)]
    backend: BackendKind,
    /// Directory with the `config.json` of the architecture to build, with random weights.
    #[arg(long, default_value = "tests/fixtures/real_configs/qwen2_5_vl_3b")]
    config: PathBuf,
    /// A checkpoint of the same family whose tokenizer, chat template and image processor run.
    #[arg(long, default_value = "tests/fixtures/qwen2_5_vl/checkpoint")]
    side_files: PathBuf,
    /// The run config of the GRPO steps (its `model` and `data` are not read).
    #[arg(long, default_value = "benches/gpu.ron")]
    run: PathBuf,
    /// Overrides of the run config, `key=value` as `seethink train --set`.
    #[arg(long)]
    set: Vec<String>,
    /// Side of each prompt's square image, in pixels.
    #[arg(long, default_value_t = 448)]
    image_side: u32,
    /// Distinct prompts of the batched generation.
    #[arg(long, default_value_t = 8)]
    prompts: usize,
    /// Samples per prompt of the batched generation.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// New tokens per generated sequence (no stop token ends one early).
    #[arg(long, default_value_t = 32)]
    new_tokens: usize,
    /// GRPO steps per measurement (the first also compiles the backend's kernels).
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// After each phase of a GRPO step (rollout, update), hand the memory the backend's pools
    /// keep for reuse back to the driver (`Backend::memory_cleanup`).
    #[arg(long)]
    release_memory: bool,
    /// Seconds after which a measurement's process is stopped and reported as timed out.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// What to measure, in this order (repeat the flag; by default everything), each in a
    /// process of its own.
    #[arg(long, value_enum)]
    measure: Vec<Measure>,
    /// Measure only this (in this process).
    #[arg(long, value_enum)]
    only: Option<Measure>,
    /// Where `--only` writes its result (JSON).
    #[arg(long)]
    report: Option<PathBuf>,
    /// The markdown table is appended to this file, row by row (and printed).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum Measure {
    /// Generation for one prompt.
    GenerateOne,
    /// Generation for `--prompts` × `--samples` sequences in one call.
    GenerateBatch,
    /// A decoding step's time split into the decoder's and the sampling rule's, for 1 sequence
    /// and for `--prompts` × `--samples`.
    DecodeSplit,
    /// A GRPO step training LoRA adapters (`--run` with `actor.lora` set when it has none).
    GrpoLora,
    /// A GRPO step training every weight.
    GrpoFull,
}

impl Measure {
    const ALL: [Measure; 5] =
        [Self::GenerateOne, Self::GenerateBatch, Self::DecodeSplit, Self::GrpoLora, Self::GrpoFull];
}

/// What one measurement's process reports.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    /// What ran, in words (sizes and settings).
    what: String,
    /// Seconds of the timed part (the last step of a GRPO measurement).
    seconds: f64,
    /// Tokens per second of the timed part (see the module's doc for which tokens).
    tokens_per_second: f64,
    /// Every step's seconds (GRPO).
    step_seconds: Vec<f64>,
    /// The plan's peak (GRPO), bytes.
    plan_peak: Option<u64>,
    /// The plan's largest component (GRPO): name and bytes.
    plan_largest: Option<(String, u64)>,
    /// The process's peak resident memory, bytes.
    host_peak: Option<u64>,
    /// The last GRPO step's phases, in order.
    phases: Vec<Phase>,
    /// The last GRPO step's update at its marks, in the order first reached.
    marks: Vec<Mark>,
}

/// One phase of a GRPO step: the rollout, or the update ([`Grpo::learn`]: old and reference
/// log-probs, losses, gradients and the optimiser step).
#[derive(Debug, Serialize, Deserialize)]
struct Phase {
    name: String,
    seconds: f64,
    /// What the GPU's pools hold at its end (after `--release-memory`'s release); `None` off CUDA.
    pooled: Option<PooledMemory>,
}

/// One of [`step_marks`]' points in a GRPO update: how often the update reached it, seconds
/// into the update at its last reach, and the most the GPU's pools held (live tensors, and
/// reserved, each its own maximum) at any reach; `None` off CUDA.
#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    name: String,
    reaches: usize,
    at: f64,
    pooled: Option<PooledMemory>,
}

/// Adds a reach of `point`, `at` seconds into the update with the pools holding `pooled`, to
/// `marks`.
fn record(marks: &mut Vec<Mark>, point: &str, at: f64, pooled: Option<PooledMemory>) {
    let index = match marks.iter().position(|m| m.name == point) {
        Some(index) => index,
        None => {
            marks.push(Mark { name: point.into(), reaches: 0, at, pooled });
            marks.len() - 1
        }
    };
    let mark = &mut marks[index];
    mark.reaches += 1;
    mark.at = at;
    mark.pooled = match (mark.pooled, pooled) {
        (Some(held), Some(now)) => Some(PooledMemory {
            in_use: held.in_use.max(now.in_use),
            reserved: held.reserved.max(now.reserved),
        }),
        (held, now) => held.or(now),
    };
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.only {
        Some(measure) => {
            let outcome =
                seethink::with_backend!(args.backend, B => measure_one::<Autodiff<B>>(&args, measure))?;
            let text = serde_json::to_string(&outcome)?;
            match &args.report {
                Some(path) => {
                    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
                }
                None => {
                    println!("{text}");
                    Ok(())
                }
            }
        }
        None => measure_all(&args),
    }
}

/// Every measurement in a process of its own, with the device's memory polled around it: the
/// markdown table's header, then each row as soon as it is measured, printed and appended to
/// `--out`, so a run stopped part-way keeps what it measured.
fn measure_all(args: &Args) -> Result<()> {
    let write = |text: &str| -> Result<()> {
        print!("{text}");
        if let Some(path) = &args.out {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            file.write_all(text.as_bytes())?;
        }
        Ok(())
    };
    write(&header(args))?;
    let exe = std::env::current_exe()?;
    let scratch = tempfile::tempdir()?;
    let measures = match args.measure.is_empty() {
        true => Measure::ALL.to_vec(),
        false => args.measure.clone(),
    };
    for measure in measures {
        let report = scratch.path().join(format!("{measure:?}.json"));
        let mut command = Command::new(&exe);
        command.args(std::env::args_os().skip(1)).arg("--only").arg(measure_name(measure));
        command.arg("--report").arg(&report);
        let poll = MemoryPoll::start();
        let started = Instant::now();
        let mut child = command.spawn().context("starting a measurement")?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(args.timeout) {
                child.kill().ok();
                child.wait().ok();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let device_peak = poll.stop();
        let outcome = match status {
            Some(s) if s.success() => {
                Ok(serde_json::from_str::<Outcome>(&std::fs::read_to_string(&report)?)?)
            }
            Some(s) => Err(format!("failed ({s})")),
            None => Err(format!("timed out after {} s", args.timeout)),
        };
        write(&row(measure, &outcome, device_peak))?;
    }
    Ok(())
}

/// `--only`'s kebab-case name of `measure`.
fn measure_name(measure: Measure) -> String {
    measure.to_possible_value().expect("every measure has a name").get_name().to_string()
}

/// The table's header: the device, the commit (`$SEETHINK_COMMIT` where the checkout has no
/// git history), the date and the settings.
fn header(args: &Args) -> String {
    let device = gpu_name().unwrap_or_else(|| format!("{} on the host", args.backend));
    let commit = std::env::var("SEETHINK_COMMIT").unwrap_or_else(|_| seethink::provenance::commit());
    let date = run_text("date", &["-u", "+%Y-%m-%d"]).unwrap_or_default();
    format!(
        "\n**{device}**, backend {}, commit {}, {date}; architecture of `{}`, random weights; GRPO settings `{}`{}\n\n\
         | measurement | what | time | tokens/s | peak memory | plan's peak | plan's largest | last step's phases |\n\
         |---|---|---|---|---|---|---|---|\n",
        args.backend,
        commit,
        args.config.display(),
        args.run.display(),
        if args.set.is_empty() { String::new() } else { format!(" with {}", args.set.join(", ")) },
    )
}

/// One measurement's row.
fn row(measure: Measure, outcome: &std::result::Result<Outcome, String>, device_peak: Option<u64>) -> String {
    let name = measure_name(measure);
    let o = match outcome {
        Err(why) => return format!("| {name} | {why} | | | | | | |\n"),
        Ok(o) => o,
    };
    let peak = match (device_peak, o.host_peak) {
        (Some(bytes), _) => format!("{:.2} GiB (device)", gib(bytes)),
        (None, Some(bytes)) => format!("{:.2} GiB (host)", gib(bytes)),
        (None, None) => "unknown".into(),
    };
    let steps = match o.step_seconds.len() > 1 {
        true => {
            let each: Vec<String> = o.step_seconds.iter().map(|s| format!("{s:.1}")).collect();
            format!(" (steps: {})", each.join(", "))
        }
        false => String::new(),
    };
    let plan = o.plan_peak.map(|b| format!("{:.2} GiB", gib(b))).unwrap_or_default();
    let largest =
        o.plan_largest.as_ref().map(|(n, b)| format!("{n}, {:.2} GiB", gib(*b))).unwrap_or_default();
    let pools = |m: Option<PooledMemory>| match m {
        Some(m) => format!(", pools {:.2} GiB in use of {:.2} reserved", gib(m.in_use), gib(m.reserved)),
        None => String::new(),
    };
    let mut phases: Vec<String> =
        o.phases.iter().map(|p| format!("{} {}{}", p.name, duration(p.seconds), pools(p.pooled))).collect();
    phases.extend(o.marks.iter().map(|m| {
        let most = if m.pooled.is_some() && m.reaches > 1 { " at most" } else { "" };
        format!("update/{} ×{}, last at {}{most}{}", m.name, m.reaches, duration(m.at), pools(m.pooled))
    }));
    format!(
        "| {name} | {} | {}{steps} | {:.0} | {peak} | {plan} | {largest} | {} |\n",
        o.what,
        duration(o.seconds),
        o.tokens_per_second,
        phases.join("; ")
    )
}

/// `seconds` in seconds from one second up, else in milliseconds.
fn duration(seconds: f64) -> String {
    match seconds >= 1.0 {
        true => format!("{seconds:.2} s"),
        false => format!("{:.1} ms", seconds * 1e3),
    }
}

/// The first GPU's name from `nvidia-smi`, if it runs.
fn gpu_name() -> Option<String> {
    let names = run_text("nvidia-smi", &["--query-gpu=name,driver_version", "--format=csv,noheader"])?;
    names.lines().next().map(|line| line.replace(", ", " (driver ") + ")")
}

/// `nvidia-smi`'s memory in use on the first GPU, polled every 50 ms: the peak above the
/// first reading. Nothing when `nvidia-smi` does not run.
struct MemoryPoll {
    child: Option<std::process::Child>,
    peak_mib: Arc<AtomicU64>,
    first_mib: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl MemoryPoll {
    fn start() -> Self {
        let (peak_mib, first_mib) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(u64::MAX)));
        let spawned = Command::new("nvidia-smi")
            .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-lms", "50"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            return Self { child: None, peak_mib, first_mib, reader: None };
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (peak, first) = (peak_mib.clone(), first_mib.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Ok(mib) = line.trim().parse::<u64>() {
                    first.fetch_min(mib, Ordering::Relaxed);
                    peak.fetch_max(mib, Ordering::Relaxed);
                }
            }
        });
        // the reading before the measurement starts is the baseline
        let waited = Instant::now();
        while first_mib.load(Ordering::Relaxed) == u64::MAX && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child: Some(child), peak_mib, first_mib, reader: Some(reader) }
    }

    /// The peak above the first reading, bytes; `None` without `nvidia-smi`.
    fn stop(mut self) -> Option<u64> {
        let mut child = self.child.take()?;
        child.kill().ok();
        child.wait().ok();
        self.reader.take().map(|r| r.join());
        let (peak, first) = (self.peak_mib.load(Ordering::Relaxed), self.first_mib.load(Ordering::Relaxed));
        (first != u64::MAX).then(|| peak.saturating_sub(first) << 20)
    }
}

/// One measurement on backend `B` (generation on its inner backend), in this process.
fn measure_one<B: TrainBackend>(args: &Args, measure: Measure) -> Result<Outcome> {
    let scratch = tempfile::tempdir()?;
    let dir = real_shape_dir(&args.config, &args.side_files, scratch.path())?;
    let processor = Processor::from_dir(&dir)?;
    let device = Default::default();
    let mut overrides = args.set.clone();
    overrides.push(format!("model={:?}", dir.display().to_string()));
    let mut config = TrainConfig::load(&args.run, &overrides)?;
    // as `seethink train` holds them: frozen matrices in the checkpoint's type (bf16 on CUDA),
    // every pass in `actor.mixed_precision`'s type
    let frozen = frozen_dtype::<B>(stored_dtype(&config.model)?, &device);
    let compute = resolved_compute_dtype::<B>(&config.actor, &device, true);
    let mut outcome = match measure {
        Measure::GenerateOne | Measure::GenerateBatch => {
            let (prompts, samples) = match measure {
                Measure::GenerateOne => (1, 1),
                _ => (args.prompts, args.samples),
            };
            let model = AnyVlm::<B::InnerBackend>::random_in(&dir, 0, frozen, &device)?;
            let model = for_compute(model, compute.unwrap_or_else(float_dtype::<B>));
            measure_generation(args, model, &processor, prompts, samples, &device)?
        }
        Measure::DecodeSplit => {
            let model = AnyVlm::<B::InnerBackend>::random_in(&dir, 0, frozen, &device)?;
            let model = for_compute(model, compute.unwrap_or_else(float_dtype::<B>));
            measure_decode_split(args, model, &processor, &device)?
        }
        Measure::GrpoLora | Measure::GrpoFull => {
            match measure {
                Measure::GrpoFull => config.actor.lora = None,
                _ => {
                    config.actor.lora.get_or_insert_with(|| seethink::models::nn::LoraConfig {
                        rank: 64,
                        alpha: 128.0,
                        ..Default::default()
                    });
                }
            }
            measure_grpo::<B>(args, config, (frozen, compute), &processor, &device)?
        }
    };
    outcome.host_peak = resident_peak();
    Ok(outcome)
}

/// New tokens per second of `model`'s generation call for `prompts` prompts × `samples`
/// samples, after an untimed call of 2 tokens (which compiles the backend's kernels).
fn measure_generation<B: Kernels>(
    args: &Args,
    model: AnyVlm<B>,
    processor: &Processor,
    prompts: usize,
    samples: usize,
    device: &B::Device,
) -> Result<Outcome> {
    let compute = model.decoder().0.dtype();
    let prompts = image_prompts::<B>(processor, prompts, args.image_side, device)?;
    let pad = processor.tokenizer.pad_id;
    let sampling = SamplingConfig { max_new_tokens: 2, temperature: 1.0, ..Default::default() };
    generate(&model, &prompts[..1], 1, &sampling, &[], pad)?;
    let sampling = SamplingConfig { max_new_tokens: args.new_tokens, ..sampling };
    let started = Instant::now();
    let completions = generate(&model, &prompts, samples, &sampling, &[], pad)?;
    let seconds = started.elapsed().as_secs_f64();
    let tokens: usize = completions.iter().map(|c| c.ids.len()).sum();
    Ok(Outcome {
        what: format!(
            "{} × {samples} sequences, {}-token prompts, {} new tokens each, {compute:?} compute",
            prompts.len(),
            prompts[0].ids.len(),
            args.new_tokens
        ),
        seconds,
        tokens_per_second: tokens as f64 / seconds,
        step_seconds: vec![],
        plan_peak: None,
        plan_largest: None,
        host_peak: None,
        phases: vec![],
        marks: vec![],
    })
}

/// Where a decoding step's time goes, for 1 sequence and for `--prompts` × `--samples`
/// ([`decoding_split`], run twice per batch, the first to compile the backend's kernels for
/// its shapes): the prefill, then per step the decoder's pass and the sampling rule. The row's
/// time and tokens/s are those of a step of the larger batch.
fn measure_decode_split<B: Kernels>(
    args: &Args,
    model: AnyVlm<B>,
    processor: &Processor,
    device: &B::Device,
) -> Result<Outcome> {
    ensure!(args.new_tokens > 0, "--new-tokens must be at least 1 to time a decoding step");
    let compute = model.decoder().0.dtype();
    let prompts = image_prompts::<B>(processor, args.prompts, args.image_side, device)?;
    let mut phases = Vec::new();
    let mut largest_step = (0, 0.0);
    let pad = processor.tokenizer.pad_id;
    for (prompts, samples) in [(&prompts[..1], 1), (&prompts[..], args.samples)] {
        decoding_split(&model, prompts, samples, args.new_tokens, pad)?;
        let (prefill, decoder, sampling) = decoding_split(&model, prompts, samples, args.new_tokens, pad)?;
        let rows = prompts.len() * samples;
        phases.push(Phase { name: format!("batch of {rows}: prefill"), seconds: prefill, pooled: None });
        phases.push(Phase { name: "step: decoder".into(), seconds: decoder, pooled: None });
        phases.push(Phase { name: "sampling".into(), seconds: sampling, pooled: None });
        largest_step = (rows, decoder + sampling);
    }
    let (rows, step) = largest_step;
    Ok(Outcome {
        what: format!(
            "a decoding step for 1 and {rows} sequences, {}-token prompts, {} new tokens, {compute:?} compute",
            prompts[0].ids.len(),
            args.new_tokens
        ),
        seconds: step,
        tokens_per_second: rows as f64 / step,
        step_seconds: vec![],
        plan_peak: None,
        plan_largest: None,
        host_peak: None,
        phases,
        marks: vec![],
    })
}

/// Seconds of generation's parts for `prompts` × `samples` sequences and `new_tokens` tokens,
/// as [`generate`] runs them (sampled at temperature 1): the prefill with the first token's
/// logits, then per decoding step the mean of the decoder's pass (until its logits are
/// computed: one of them is read back) and of [`Kernels::pick_tokens`] on those logits.
fn decoding_split<B: Kernels>(
    model: &AnyVlm<B>,
    prompts: &[Prompt<B>],
    samples: usize,
    new_tokens: usize,
    pad: u32,
) -> Result<(f64, f64, f64)> {
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
    let tokens = TokenBatch::left_padded(&ids, pad);
    let images = ImageInput::concat(prompts.iter().filter_map(|p| p.images.as_ref()));
    let sampling = SamplingConfig { max_new_tokens: new_tokens, temperature: 1.0, ..Default::default() };
    let mut rngs: Vec<ChaCha8Rng> =
        (0..(prompts.len() * samples) as u64).map(ChaCha8Rng::seed_from_u64).collect();
    let input_only = model.input_only_tokens();
    // until `logits`' values exist: one of them read back
    let computed = |logits: &Tensor<B, 2>| logits.clone().narrow(0, 0, 1).narrow(1, 0, 1).into_data();
    let started = Instant::now();
    let mut state = model.new_state();
    let last = model.forward_at(&tokens, images.as_ref(), &mut state, &[tokens.seq - 1])?;
    let [batch, _, vocab] = last.dims();
    let mut logits =
        last.reshape([batch, 1, vocab]).expand([batch, samples, vocab]).reshape([batch * samples, vocab]);
    computed(&logits);
    let prefill = started.elapsed().as_secs_f64();
    state = state.for_samples(samples, KvLayout::of::<B>(None).shared_block, new_tokens);
    let (mut decoder, mut sampling_seconds) = (0.0, 0.0);
    for _ in 0..new_tokens {
        let started = Instant::now();
        let picks = B::pick_tokens(logits, &mut rngs, &input_only, &sampling)?;
        sampling_seconds += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let next = picks.into_iter().map(|(token, _)| token).collect::<Vec<_>>();
        let rows = next.len();
        let step = TokenBatch::new(next, vec![true; rows], rows, 1)?;
        logits = model.forward_cached(&step, None, &mut state)?.reshape([rows, vocab]);
        computed(&logits);
        decoder += started.elapsed().as_secs_f64();
    }
    Ok((prefill, decoder / new_tokens as f64, sampling_seconds / new_tokens as f64))
}

/// `args.steps` GRPO steps of `config` as the run loop makes them (see `run.rs`): the model
/// with its frozen matrices in `frozen` (the checkpoint's type), every pass in `compute`
/// (`None`: the float type), LoRA when configured, a rollout of
/// `trainer.prompts_per_step` image prompts × `rollout.n` samples in `rollout.batch_size`
/// calls, scores that vary within each group, and [`Grpo::learn`].
fn measure_grpo<B: TrainBackend>(
    args: &Args,
    mut config: TrainConfig,
    (frozen, compute): (DType, Option<DType>),
    processor: &Processor,
    device: &B::Device,
) -> Result<Outcome> {
    let prompts = image_prompts::<B::InnerBackend>(
        processor,
        config.trainer.prompts_per_step,
        args.image_side,
        device,
    )?;
    let prompt_tokens = prompts[0].ids.len();
    config.data.max_prompt_length = Some(prompt_tokens);
    // `rollout.batch_size: 0` as `seethink train` makes it concrete on this device
    let plan_device = PlanDevice::from(args.backend);
    fit_batch_size(&mut config, plan_device, device_memory(plan_device, None))?;
    let plans = plans_of(&config, plan_device)?;
    let (_, plan) = plans.first().context("the run config's plan")?;
    let largest = plan.components.iter().max_by_key(|c| c.bytes).map(|c| (c.name.to_string(), c.bytes));

    let mut model = AnyVlm::<B>::random_in(&config.model, 0, frozen, device)?;
    if let Some(lora) = &config.actor.lora {
        model = model.with_lora(lora)?;
    }
    if config.actor.freeze_vision {
        model = model.freeze_vision();
    }
    let pad = processor.tokenizer.pad_id;
    let mut learner = new_learner(widen_trained(model), &config.actor, pad)
        .with_frozen_storage(frozen)
        .with_compute_dtype(compute);
    let mut grpo =
        Grpo::new(&learner, config.algorithm.clone(), config.actor.clone(), config.rollout.clone());
    let n = config.rollout.n;
    let per_call = prompts_per_call(config.rollout.batch_size, n, prompts.len(), 1);
    let mut step_seconds = Vec::new();
    let mut tokens = 0;
    let (mut phases, mut marks) = (Vec::new(), Vec::new());
    // a phase's end: its time since `started`, and what the pools hold then
    let phase_end = |name: &str, started: Instant| {
        if args.release_memory {
            B::memory_cleanup(device);
        }
        Phase {
            name: name.into(),
            seconds: started.elapsed().as_secs_f64(),
            pooled: args.backend.pooled_memory(),
        }
    };
    for step in 0..args.steps {
        let started = Instant::now();
        learner.lr_step();
        let policy = learner.compute_policy()?.valid().model;
        let sampling = config.rollout.sampling(step);
        let mut completions = Vec::new();
        for chunk in prompts.chunks(per_call) {
            completions.extend(generate(&policy, chunk, n, &sampling, &[], pad)?);
        }
        ensure!(completions.len() == prompts.len() * n, "rollout: {} completions", completions.len());
        phases = vec![phase_end("rollout", started)];
        let update_started = Instant::now();
        tokens = completions.iter().map(|c| prompt_tokens + c.ids.len()).sum::<usize>();
        let rollout = completions
            .into_iter()
            .enumerate()
            .map(|(i, c)| Scored {
                sequence: Sequence {
                    prompt: prompts[i / n].ids.clone(),
                    response: c.ids,
                    images: prompts[i / n].images.clone(),
                },
                score: (i % n) as f32 / n as f32,
            })
            .collect();
        let mut stats = GrpoStats::default();
        let reached = Rc::new(RefCell::new(Vec::new()));
        let log = reached.clone();
        let backend = args.backend;
        step_marks::observe(
            move |point| {
                let at = update_started.elapsed().as_secs_f64();
                record(&mut log.borrow_mut(), point, at, backend.pooled_memory())
            },
            || grpo.learn(&mut learner, policy, rollout, pad, &mut stats),
        )?;
        marks = reached.take();
        ensure!(stats.grad_norm.is_finite(), "step {step}: gradient norm {}", stats.grad_norm);
        phases.push(phase_end("update", update_started));
        step_seconds.push(started.elapsed().as_secs_f64());
    }
    let seconds = *step_seconds.last().context("--steps must be at least 1")?;
    let a = &config.actor;
    Ok(Outcome {
        what: format!(
            "{} prompts × {n}, {prompt_tokens}-token prompts, {} new tokens, {} rows per generation call, micro-batch {}, {} update(s){}, {:?} compute{}{}",
            prompts.len(),
            config.rollout.max_new_tokens,
            per_call * n,
            a.micro_batch_size,
            a.mini_batches * a.ppo_epochs,
            match &a.lora {
                Some(l) => format!(", LoRA rank {}", l.rank),
                None => ", all weights".into(),
            },
            learner.compute_dtype(),
            match a.activation_checkpointing {
                true => ", layers recomputed",
                false => "",
            },
            match args.release_memory {
                true => ", pools released after each phase",
                false => "",
            }
        ),
        seconds,
        tokens_per_second: tokens as f64 / seconds,
        step_seconds,
        plan_peak: Some(plan.peak()),
        plan_largest: largest,
        host_peak: None,
        phases,
        marks,
    })
}

/// `count` prompts, each a distinct `side` × `side` image (colour bands that shift with the
/// prompt's index) and one question, through the checkpoint's processor.
fn image_prompts<B: burn::tensor::backend::Backend>(
    processor: &Processor,
    count: usize,
    side: u32,
    device: &B::Device,
) -> Result<Vec<Prompt<B>>> {
    (0..count)
        .map(|i| {
            let image = RgbImage::from_fn(side, side, |x, y| {
                let band = ((x + y + 7 * i as u32) / 16 % 8) as u8;
                Rgb([band * 30, 255 - band * 30, (i % 256) as u8])
            });
            let prompt = processor.user_prompt(
                "Describe every shape in the image, its colour and its size.",
                &[DynamicImage::ImageRgb8(image)],
                device,
            )?;
            Ok(prompt)
        })
        .collect()
}

/// A checkpoint directory in `scratch` with `config`'s architecture and `side`'s tokenizer,
/// chat template and image processor: `side`'s special-token ids replace the config's, and the
/// architecture's patch sizes and `image_side`-free pixel bounds the image processor's. When
/// `config` and `side` are the same directory, it is that directory.
fn real_shape_dir(config: &Path, side: &Path, scratch: &Path) -> Result<PathBuf> {
    if config.canonicalize()? == side.canonicalize()? {
        return Ok(config.to_path_buf());
    }
    let read = |path: PathBuf| -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let mut architecture = read(config.join("config.json"))?;
    let tokens = read(side.join("config.json"))?;
    let Some(vision) = architecture.get("vision_config").cloned() else {
        bail!(
            "{}: no vision_config (gpu_bench builds Qwen-VL architectures)",
            config.join("config.json").display()
        );
    };
    for key in [
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "image_token_id",
        "video_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    ] {
        if let Some(id) = tokens.get(key) {
            architecture[key] = id.clone();
            if architecture.get("text_config").is_some_and(|t| t.get(key).is_some()) {
                architecture["text_config"][key] = id.clone();
            }
        }
    }
    let mut images = read(side.join("preprocessor_config.json"))?;
    for (ours, theirs) in [
        ("patch_size", "patch_size"),
        ("merge_size", "spatial_merge_size"),
        ("temporal_patch_size", "temporal_patch_size"),
    ] {
        let value = vision.get(theirs).with_context(|| format!("vision_config.{theirs}"))?;
        images[ours] = value.clone();
    }
    // bounds wide enough for any prompt image: its size sets its tokens
    images["min_pixels"] = 1.into();
    images["max_pixels"] = (1u64 << 40).into();
    images["size"] = serde_json::json!({ "shortest_edge": 1, "longest_edge": 1u64 << 40 });
    for entry in std::fs::read_dir(side)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let weights = name.starts_with("model.safetensors");
        if path.is_file() && !weights && name != "config.json" && name != "preprocessor_config.json" {
            std::fs::copy(&path, scratch.join(name))?;
        }
    }
    std::fs::write(scratch.join("config.json"), architecture.to_string())?;
    std::fs::write(scratch.join("preprocessor_config.json"), images.to_string())?;
    Ok(scratch.to_path_buf())
}

/// This process's peak resident memory (`VmHWM` of `/proc/self/status`), where Linux reports it.
fn resident_peak() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}
