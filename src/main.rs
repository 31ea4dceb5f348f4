//! The `seethink` command line.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use seethink::backend::BackendKind;
use seethink::cli;

#[derive(Parser)]
#[command(
    name = "seethink",
    version,
    about = "Post-train vision-language models with RL and capability curricula"
)]
struct Cli {
    /// Backend to run on (those compiled in: see `--help` of the build's features).
    #[arg(long, global = true, default_value = seethink::backend::AVAILABLE[0])]
    backend: BackendKind,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a checkpoint directory and print its architecture and parameter counts.
    Inspect {
        /// HuggingFace checkpoint directory (config.json + safetensors).
        #[arg(long)]
        model: PathBuf,
    },
    /// Run one user message (image first, then text) through the chat template and the model;
    /// write `input_ids` (int64 [S]) and `logits` (float32 [S, V]) to a safetensors file.
    Forward {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a reply to one user message (image first, then text).
    Generate {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long, default_value_t = 256)]
        max_new_tokens: usize,
        /// 0 means greedy (argmax, lowest id wins a tie).
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
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
        #[arg(long, default_value_t = 512)]
        max_new_tokens: usize,
        /// 0 means greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tasks per generation batch.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// Evaluate only the first N tasks.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value = "eval-out")]
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
    },
    /// Data sets: the procedural capability benchmark.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Write the procedural benchmark (perception, text reasoning, visual reasoning; levels
    /// cycling) as EasyR1 JSONL (`DIR/tasks.jsonl`) with PNG images (`DIR/images/`).
    Synth {
        #[arg(long)]
        out: PathBuf,
        /// Tasks per capability.
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    match args.command {
        Command::Inspect { model } => seethink::with_backend!(args.backend, B => cli::inspect::<B>(&model)),
        Command::Forward { model, prompt, image, out } => {
            seethink::with_backend!(args.backend, B => cli::forward::<B>(&model, &prompt, image.as_deref(), &out))
        }
        Command::Generate { model, prompt, image, max_new_tokens, temperature, top_p, seed, json } => {
            let sampling = seethink::models::generate::SamplingConfig {
                max_new_tokens,
                temperature,
                top_p,
                top_k: 0,
                seed,
            };
            seethink::with_backend!(args.backend, B => cli::generate::<B>(&model, &prompt, image.as_deref(), &sampling, json))
        }
        Command::Data(DataCommand::Synth { out, n, seed }) => cli::synth(&out, n, seed),
        Command::Train { config, out, overrides } => {
            seethink::with_backend!(args.backend, B => cli::train::<B>(&config, out, &overrides))
        }
        Command::Eval {
            model,
            data,
            k,
            max_new_tokens,
            temperature,
            top_p,
            seed,
            batch_size,
            limit,
            out,
        } => {
            let sampling = seethink::models::generate::SamplingConfig {
                max_new_tokens,
                temperature,
                top_p,
                top_k: 0,
                seed,
            };
            let options = cli::EvalOptions { k, sampling, batch_size, limit, out };
            seethink::with_backend!(args.backend, B => cli::eval::<B>(&model, &data, &options))
        }
    }
}
