//! The `seethink` command line.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use seethink::backend::BackendKind;
use seethink::cli;
use seethink::models::generate::SamplingConfig;
use seethink::models::processing::image::ImageBounds;
use seethink::rl::prompt::FormatPrompt;

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

#[derive(Parser)]
#[command(
    name = "seethink",
    version,
    about = "Post-train vision-language models with RL and capability curricula"
)]
struct Cli {
    /// Backend to run on: cuda, wgpu or ndarray, those compiled in (default: the first of them
    /// compiled in).
    #[arg(long, global = true, default_value = seethink::backend::BEST)]
    backend: BackendKind,
    /// Print every training step's metrics instead of a progress bar (full metrics are always
    /// in the run's metrics.jsonl).
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// One user message (image first, then text) to a checkpoint.
#[derive(Args)]
struct MessageArgs {
    /// HuggingFace checkpoint directory (config.json, safetensors, tokenizer, chat template).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long)]
    image: Option<PathBuf>,
}

/// How replies are sampled.
#[derive(Args)]
struct SamplingArgs {
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// 0 means greedy (argmax, lowest id wins a tie). Image/video placeholder tokens are never
    /// chosen: where transformers' plain greedy would take one, this gives its
    /// `suppress_tokens=[placeholders]` tokens.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SamplingArgs {
    fn config(&self) -> SamplingConfig {
        SamplingConfig {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: 0,
            seed: self.seed,
            stream: 0,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Load a checkpoint directory and print its architecture and parameter counts.
    Inspect {
        /// HuggingFace checkpoint directory (config.json + safetensors).
        #[arg(long)]
        model: PathBuf,
    },
    /// Run one user message through the chat template and the model; write `input_ids`
    /// (int64 [S]) and `logits` (float32 [S, V]) to a safetensors file.
    Forward {
        #[command(flatten)]
        message: MessageArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a reply to one user message.
    Generate {
        #[command(flatten)]
        message: MessageArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Print one JSON object with `input_ids`, `output_ids` and `text`.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a checkpoint on a task set: accuracy per capability and level, format rate,
    /// response length, pass@k, perception-error attribution; writes report.{json,md} and
    /// accuracy.svg to `--out`.
    Eval {
        #[arg(long)]
        model: PathBuf,
        /// A directory with tasks.jsonl (e.g. from `seethink data synth`), a .jsonl file, or a
        /// VLMEvalKit .tsv file.
        #[arg(long)]
        data: PathBuf,
        /// Samples per task (pass@k).
        #[arg(long, default_value_t = 1)]
        k: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Tasks per generation batch.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// Evaluate only the first N tasks.
        #[arg(long)]
        limit: Option<usize>,
        /// How answers are graded: `math` (the reference: format + last `\boxed{}`),
        /// `math-extended` (with the opt-in extensions) or `direct` (the whole reply). Default:
        /// the reward of the run that trained the model (its exported `seethink-train.ron`),
        /// else `math`.
        #[arg(long, value_parser = ["math", "math-extended", "direct"])]
        reward: Option<String>,
        /// Capability of records that have none (EasyR1's public data sets): perception,
        /// text_reasoning or visual_reasoning. Without it they are evaluated as one
        /// `unlabelled` group (rows of a .tsv file: visual_reasoning).
        #[arg(long, value_parser = ["perception", "text_reasoning", "visual_reasoning"])]
        capability: Option<String>,
        /// Evaluate `--data` (a VLMEvalKit .tsv) as this benchmark: VLMEvalKit's prompts, one
        /// answer per row, VLMEvalKit's scoring (mathvista, mathvision, mathverse, wemath,
        /// dynamath, a-okvqa, realworldqa, mmstar, pope); writes predictions.jsonl and
        /// report.{json,md} to `--out`.
        #[arg(long)]
        benchmark: Option<String>,
        /// The format prompt the questions are rendered through: `plain` (questions as they
        /// are), `paper` or a Jinja file.
        #[arg(long, default_value = "plain")]
        format_prompt: String,
        #[arg(long, default_value = "eval-out")]
        out: PathBuf,
    },
    /// Score predictions of a benchmark without a model: each `--benchmark NAME --data
    /// FILE.tsv --predictions FILE` triple (repeatable, in that order) is scored as VLMEvalKit
    /// scores it; prints the report with the paper's averages and writes report.{json,md} to
    /// `--out`. Predictions: JSONL (`{"index": …, "prediction": "…"}` per line) or a TSV with
    /// `index` and `prediction` columns (VLMEvalKit's output layout).
    Score {
        /// mathvista, mathvision, mathverse, wemath, dynamath, a-okvqa, realworldqa, mmstar or
        /// pope (case and `-`/`_` ignored).
        #[arg(long, required = true)]
        benchmark: Vec<String>,
        /// The benchmark's VLMEvalKit TSV file.
        #[arg(long, required = true)]
        data: Vec<PathBuf>,
        /// The predictions file (.jsonl, or .tsv).
        #[arg(long, required = true)]
        predictions: Vec<PathBuf>,
        /// Grade MathVista's and MathVision's free-form answers with the MATH grader (`5.0` is
        /// `5`) instead of VLMEvalKit's `post_check` and `is_equal`, the paper's rule.
        #[arg(long)]
        math_grader: bool,
        #[arg(long, default_value = "score-out")]
        out: PathBuf,
    },
    /// Train with GRPO or SFT from a RON config; resumes automatically from the last
    /// checkpoint in the run directory and exports the final model to `<out>/final`.
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Run directory (overrides `trainer.out`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config value, e.g. `--set actor.lr=1e-5 --set algorithm.trainer=Sft`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Device memory (e.g. `80GiB`): a run whose memory plan does not fit is refused. On
        /// CUDA, `nvidia-smi`'s figure when not given; on the host, no check unless given.
        #[arg(long)]
        memory: Option<String>,
    },
    /// Print a run's memory per component (weights, reference, optimizer state, rollout KV
    /// cache, activations, logits chunks) from the checkpoint's config.json and the run config,
    /// without loading weights; with `--memory`, whether it fits and which knob would make it
    /// fit (an error when it does not).
    Plan {
        #[arg(long)]
        config: PathBuf,
        /// Override a config value, as `train --set`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Device memory, e.g. `80GiB` (on CUDA, `nvidia-smi`'s figure when not given).
        #[arg(long)]
        memory: Option<String>,
        /// The device to plan for, `ndarray`, `wgpu` or `cuda`, compiled in or not (by default
        /// `--backend`'s).
        #[arg(long = "for", value_name = "DEVICE")]
        device: Option<seethink::plan::PlanDevice>,
        /// Plan one worker of a run on this many devices per machine (`trainer.devices`).
        #[arg(long)]
        devices: Option<usize>,
        /// Plan one worker of a run on this many machines (`trainer.nodes.count`).
        #[arg(long)]
        nodes: Option<usize>,
    },
    /// Serve burn-collective's global orchestrator for a multi-node run (`trainer.nodes`): start
    /// it once, anywhere the machines reach, then `seethink train` on every machine with
    /// `trainer.nodes.orchestrator` set to `ws://<this host>:<port>`. Runs until stopped.
    Collective {
        #[arg(long)]
        port: u16,
    },
    /// Estimate each task's pass rate (K samples of the model; the difficulty axis' input) and
    /// write the tasks with it to `--out` (`tasks.jsonl`, `images/`); resumable.
    Passrate {
        #[arg(long)]
        model: PathBuf,
        /// Tasks: a benchmark directory, .jsonl, .parquet or .tsv file.
        #[arg(long)]
        data: PathBuf,
        /// Samples per task.
        #[arg(long, default_value_t = 16)]
        k: usize,
        #[arg(long, default_value_t = 0.7)]
        temperature: f32,
        #[arg(long, default_value_t = 0.9)]
        top_p: f32,
        #[arg(long, default_value_t = 2048)]
        max_new_tokens: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tasks per generation call.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// How answers are graded (as `eval --reward`).
        #[arg(long, default_value = "math", value_parser = ["math", "math-extended", "direct"])]
        reward: String,
        /// The format prompt the questions are rendered through: `paper`, `plain` (questions as they are; `none` also) or a Jinja file.
        #[arg(long, default_value = "paper")]
        format_prompt: String,
        /// Leave images as they are instead of bringing them into EasyR1's pixel bounds.
        #[arg(long)]
        no_image_bounds: bool,
        /// Capability of records that have none.
        #[arg(long, value_parser = ["perception", "text_reasoning", "visual_reasoning"])]
        capability: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// The paper's stage-1 data from captioned images: a question model writes questions about
    /// each caption, those any caption model gets wrong from the caption alone are dropped, and
    /// so are those an image model (the policy's base model) answers from the image alone;
    /// writes the rest to `--out/tasks.jsonl` (EasyR1 JSONL) with `report.md`, `dropped.jsonl`
    /// and `questions.jsonl`. Resumable. Prompts: configs/perception_data/.
    PerceptionData {
        /// Captioned images: JSONL of `image` (relative to the file), `caption`, optional `id`.
        #[arg(long, required_unless_present = "questions", conflicts_with = "questions")]
        captions: Option<PathBuf>,
        /// The model writing the questions (text only); also the caption model unless
        /// `--caption-model` names others.
        #[arg(long, requires = "captions")]
        question_model: Option<PathBuf>,
        /// Questions written beforehand (JSONL, as this command's `questions.jsonl`) instead of
        /// generated.
        #[arg(long)]
        questions: Option<PathBuf>,
        /// A model answering from the caption alone (repeat for several; all must answer right).
        /// With `--questions` and none, the caption side is not checked.
        #[arg(long)]
        caption_model: Vec<PathBuf>,
        /// A model answering from the image alone, the policy's base model (repeat for several;
        /// all must fail).
        #[arg(long, required = true)]
        image_model: Vec<PathBuf>,
        /// New tokens the question model writes per caption (the reference code's: 512).
        #[arg(long, default_value_t = 512)]
        question_tokens: usize,
        /// New tokens of a check's answer (the paper's filter: 8).
        #[arg(long, default_value_t = 8)]
        answer_tokens: usize,
        /// Image-only samples per question.
        #[arg(long, default_value_t = 1)]
        k: usize,
        /// The image side's temperature (0: greedy, as the paper's filter).
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// The highest image-only pass rate a kept question may have (the paper: 0).
        #[arg(long, default_value_t = 0.0)]
        max_image_pass_rate: f64,
        /// Prompts per generation call.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// A directory whose template files replace the shipped ones (configs/perception_data/).
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Leave images as they are instead of bringing them into EasyR1's pixel bounds.
        #[arg(long)]
        no_image_bounds: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Pretrain the sandbox's base model: a small Qwen3-VL from random weights, SFT on
    /// procedural data (perception questions, captions, worked arithmetic, a little visual
    /// reasoning), then a held-out evaluation; writes the model with `provenance.json` to
    /// `--target`. Resumable; deterministic on the CPU.
    Pretrain {
        /// Run directory (corpus, checkpoints, evaluation).
        #[arg(long, default_value = "runs/pretrain")]
        out: PathBuf,
        /// Where the base model goes (default: the committed one, experiments/sandbox/base, or
        /// experiments/sandbox/base-verbose with `--verbosity varied`).
        #[arg(long)]
        target: Option<PathBuf>,
        /// SFT steps (default: the committed model's).
        #[arg(long)]
        steps: Option<usize>,
        /// Corpus examples per capability before captions: perception,text,visual (default: the
        /// committed model's).
        #[arg(long, value_delimiter = ',')]
        corpus: Option<Vec<usize>>,
        /// Steps of each first-look phase (one large object, then two or three objects of both
        /// sizes) before the corpus, a size curriculum; 0 for none (default: the committed
        /// model's).
        #[arg(long)]
        first_look: Option<usize>,
        /// Seed of the initial weights and the corpus.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// `varied`: about half of the corpus's worked solutions in an expanded form of the same
        /// steps, so that RL can move the base's response length (default target
        /// experiments/sandbox/base-verbose, evaluated with up to 192 new tokens); `terse`: the
        /// committed base's corpus.
        #[arg(long, default_value = "terse", value_parser = ["terse", "varied"])]
        verbosity: String,
    },
    /// Data sets: the procedural capability benchmark.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Write the procedural benchmark (perception, text reasoning, visual reasoning; levels
    /// cycling) as EasyR1 JSONL (`DIR/tasks.jsonl`) with PNG images (`DIR/images/`).
    Synth(Generated),
    /// Procedural scenes with captions from their ground truth and template questions: the
    /// input of `perception-data` in the sandbox (`captions.jsonl`, `questions.jsonl`, `images/`).
    Captions(Generated),
}

/// What `seethink data` generates: where, how many, from which seed.
#[derive(Args)]
struct Generated {
    #[arg(long)]
    out: PathBuf,
    /// Tasks per capability (`synth`) or scenes (`captions`).
    #[arg(long)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Ctrl-C or SIGTERM: a training run stops after its current step and checkpoints it; a second
/// one quits at once.
fn stop_on_signals() {
    let installed = ctrlc::set_handler(|| {
        if seethink::rl::interrupt::stop_requested() {
            std::process::exit(130);
        }
        seethink::rl::interrupt::request_stop();
        eprintln!("stopping after the current step (press Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        tracing::warn!(%e, "no signal handler: Ctrl-C ends the process at once");
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        // warnings (a skipped update, a dropped prompt) show unless RUST_LOG says otherwise
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    seethink::rl::progress::set_verbose(args.verbose);
    stop_on_signals();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error with its causes on one line, each cause left out when the text before already
/// says it (an I/O error's message usually repeats its source).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// Runs the command the arguments name.
fn run(args: Cli) -> Result<()> {
    match args.command {
        Command::Inspect { model } => seethink::with_backend!(args.backend, B => cli::inspect::<B>(&model)),
        Command::Forward { message: m, out } => {
            seethink::with_backend!(args.backend, B => cli::forward::<B>(&m.model, &m.prompt, m.image.as_deref(), &out))
        }
        Command::Generate { message: m, sampling, json } => {
            let sampling = sampling.config();
            seethink::with_backend!(args.backend, B => cli::generate::<B>(&m.model, &m.prompt, m.image.as_deref(), &sampling, json))
        }
        Command::Eval {
            model,
            data,
            k,
            sampling,
            batch_size,
            limit,
            reward,
            capability,
            benchmark,
            format_prompt,
            out,
        } => {
            let capability = parse_capability(capability)?;
            let benchmark = benchmark.map(|b| b.parse().map_err(anyhow::Error::msg)).transpose()?;
            let options = cli::EvalOptions {
                k,
                sampling: sampling.config(),
                batch_size,
                limit,
                reward,
                capability,
                benchmark,
                format_prompt: format_prompt_named(&format_prompt),
                out,
            };
            seethink::with_backend!(args.backend, B => cli::eval::<B>(&model, &data, &options))
        }
        Command::Score { benchmark, data, predictions, math_grader, out } => {
            anyhow::ensure!(
                benchmark.len() == data.len() && data.len() == predictions.len(),
                "give one --data and one --predictions per --benchmark (got {} --benchmark, {} --data, {} \
                 --predictions)",
                benchmark.len(),
                data.len(),
                predictions.len()
            );
            let inputs = benchmark
                .iter()
                .zip(data)
                .zip(predictions)
                .map(|((name, data), predictions)| {
                    let benchmark = name.parse().map_err(anyhow::Error::msg)?;
                    Ok(cli::ScoreInput { benchmark, data, predictions })
                })
                .collect::<Result<Vec<_>>>()?;
            cli::score(&inputs, seethink::eval::ScoreOptions { math_grader }, &out)
        }
        Command::Train { config, out, overrides, memory } => {
            let memory = memory.as_deref().map(seethink::plan::parse_bytes).transpose()?;
            let kind = args.backend;
            seethink::with_backend!(kind, B => cli::train::<B>(&config, out, &overrides, kind, memory))
        }
        Command::Plan { config, overrides, memory, device, devices, nodes } => {
            let memory = memory.as_deref().map(seethink::plan::parse_bytes).transpose()?;
            let device = device.unwrap_or_else(|| args.backend.into());
            let workers = seethink::plan::Workers { devices, nodes };
            seethink::plan::plan(&config, &overrides, workers, device, memory)
        }
        Command::Collective { port } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            eprintln!("burn-collective orchestrator on port {port} (ws://0.0.0.0:{port}); Ctrl-C stops it");
            runtime.block_on(burn_collective::start_global_orchestrator(port));
            Ok(())
        }
        Command::Passrate {
            model,
            data,
            k,
            temperature,
            top_p,
            max_new_tokens,
            seed,
            batch_size,
            reward,
            format_prompt,
            no_image_bounds,
            capability,
            out,
        } => {
            let options = seethink::passrate::PassRateOptions {
                k,
                sampling: SamplingConfig { max_new_tokens, temperature, top_p, top_k: 0, seed, stream: 0 },
                batch_size,
                reward: cli::reward_kind(&reward),
                format_prompt: format_prompt_named(&format_prompt),
                bounds: if no_image_bounds { ImageBounds::NONE } else { ImageBounds::default() },
                capability: parse_capability(capability)?,
                out,
            };
            seethink::with_backend!(args.backend, B => seethink::passrate::passrate::<B>(&model, &data, &options))
        }
        Command::PerceptionData {
            captions,
            question_model,
            questions,
            caption_model,
            image_model,
            question_tokens,
            answer_tokens,
            k,
            temperature,
            max_image_pass_rate,
            batch_size,
            templates,
            no_image_bounds,
            seed,
            out,
        } => {
            use seethink::perception_data::{Answerer, QuestionSource, Templates};
            let source = match (captions, question_model, questions) {
                (Some(captions), Some(model), None) => QuestionSource::Captions { captions, model },
                (None, None, Some(questions)) => QuestionSource::Written(questions),
                _ => anyhow::bail!("give --captions with --question-model, or --questions"),
            };
            let options = seethink::perception_data::PerceptionDataOptions {
                source,
                question_tokens,
                caption_side: caption_model.into_iter().map(Answerer::Checkpoint).collect(),
                image_side: image_model.into_iter().map(Answerer::Checkpoint).collect(),
                k,
                temperature,
                answer_tokens,
                max_image_pass_rate,
                batch_size,
                bounds: if no_image_bounds { ImageBounds::NONE } else { ImageBounds::default() },
                templates: Templates::shipped_or_from(templates.as_deref())?,
                seed,
                out,
            };
            seethink::with_backend!(args.backend, B => seethink::perception_data::perception_data::<B>(options).map(|_| ()))
        }
        Command::Pretrain { out, target, steps, corpus, first_look, seed, verbosity } => {
            let committed = match verbosity.as_str() {
                "varied" => seethink::sandbox::Pretrain::committed_verbose(out),
                _ => seethink::sandbox::Pretrain::committed(out),
            };
            let pretrain = seethink::sandbox::Pretrain {
                target: target.unwrap_or(committed.target.clone()),
                steps: steps.unwrap_or(committed.steps),
                corpus: match corpus.as_deref() {
                    None => committed.corpus,
                    Some(&[perception, text, visual]) => [perception, text, visual],
                    Some(other) => {
                        anyhow::bail!("--corpus: three counts (perception,text,visual), got {other:?}")
                    }
                },
                first_look_steps: first_look.unwrap_or(committed.first_look_steps),
                seed,
                ..committed
            };
            let command = seethink::provenance::command_line("seethink");
            let provenance = seethink::with_backend!(args.backend, B => pretrain.run::<B>(&command))?;
            println!("{}", serde_json::to_string_pretty(&provenance)?);
            Ok(())
        }
        Command::Data(DataCommand::Synth(Generated { out, n, seed })) => cli::synth(&out, n, seed),
        Command::Data(DataCommand::Captions(Generated { out, n, seed })) => {
            seethink::perception_data::captions(&out, n, seed)
        }
    }
}

/// The format prompt named on the command line: `paper`, `plain` (or `none`), else a Jinja file.
fn format_prompt_named(name: &str) -> FormatPrompt {
    match name {
        "paper" => FormatPrompt::Paper,
        "plain" | "none" => FormatPrompt::Plain,
        file => FormatPrompt::File(file.into()),
    }
}

/// The capability named on the command line.
fn parse_capability(name: Option<String>) -> Result<Option<seethink::data::Capability>> {
    name.map(|c| c.parse().map_err(|bad| anyhow::anyhow!("unknown capability `{bad}`"))).transpose()
}
