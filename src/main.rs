//! The `seethink` command line.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use clap::{Parser, Subcommand};
use seethink::backend::BackendKind;
use seethink::models::QwenVl;

#[derive(Parser)]
#[command(
    name = "seethink",
    version,
    about = "Post-train vision-language models with RL and capability curricula"
)]
struct Cli {
    /// Backend to run on (ndarray, wgpu, cuda — those compiled in).
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { model } => seethink::with_backend!(cli.backend, B => inspect::<B>(&model)),
    }
}

fn inspect<B: burn::tensor::backend::Backend>(dir: &std::path::Path) -> Result<()> {
    let device = Default::default();
    let model = QwenVl::<B>::load(dir, &device)?;
    let c = &model.config;
    println!("family: {:?}", c.family);
    println!(
        "text: {} layers, hidden {}, heads {}/{} (q/kv), head_dim {}, vocab {}, rope {:?}, tied lm_head: {}",
        c.text.num_hidden_layers,
        c.text.hidden_size,
        c.text.num_attention_heads,
        c.text.num_key_value_heads,
        c.text.head_dim,
        c.text.vocab_size,
        c.text.rope,
        c.text.tie_word_embeddings
    );
    println!(
        "vision: {} blocks, hidden {}, heads {}, patch {}x{}x{}, merge {}",
        c.vision.depth,
        c.vision.hidden_size,
        c.vision.num_heads,
        c.vision.temporal_patch_size,
        c.vision.patch_size,
        c.vision.patch_size,
        c.vision.spatial_merge_size
    );
    println!(
        "parameters: {} total ({} vision, {} language model)",
        model.num_params(),
        model.visual.num_params(),
        model.language_model.num_params()
    );
    Ok(())
}
