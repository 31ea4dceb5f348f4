//! Peak host memory of one GRPO update at Qwen's real vocabulary (151,936 tokens) on a shallow
//! model: the tiny committed Qwen3-VL checkpoint with its embedding table (tied to the output
//! projection) grown to the real vocabulary, 8 sequences of 16 prompt + `TOKENS` response
//! tokens; old and reference log-probs, the policy's chunked forward and backward, clipping
//! and AdamW — the path of the run loop. Memory is counted by a global allocator (ndarray keeps
//! every tensor on the heap); the figure is the peak above what was allocated before the step.
//!
//! ```text
//! cargo bench -p seethink-rl --bench grpo_memory                      # 8 × 1024, chunk 1024
//! SEETHINK_MEM_TOKENS=128 SEETHINK_MEM_CHUNK=1024 cargo bench -p seethink-rl --bench grpo_memory
//! SEETHINK_MEM_TOKENS=128 SEETHINK_MEM_CHUNK=0 ...                    # no chunking: all rows at once
//! SEETHINK_MEM_CHECKPOINT_LAYERS=1 ...                                # each layer recomputed in backward
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use seethink_models::AnyVlm;
use seethink_rl::config::ActorConfig;
use seethink_rl::learner::{inference_model, new_learner};
use seethink_rl::logprobs::Scoring;
use seethink_rl::policy::Sequence;

mod common;

use common::{grpo_update, Phase, B, I};

const VOCAB: usize = 151_936;
const SEQUENCES: usize = 8;
const PROMPT: usize = 16;

#[path = "../tests/counting_allocator/mod.rs"]
mod counting_allocator;

use counting_allocator::{IN_USE, PEAK};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The fixture checkpoint rewritten into `dir` with a `VOCAB`-row embedding table.
fn shallow_real_vocab_checkpoint(dir: &Path) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap()).unwrap();
    config["text_config"]["vocab_size"] = VOCAB.into();
    let hidden = config["text_config"]["hidden_size"].as_u64().unwrap() as usize;
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> = HashMap::new();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(&path).unwrap();
            for (name, view) in SafeTensors::deserialize(&bytes).unwrap().tensors() {
                tensors.insert(name, (view.dtype(), view.shape().to_vec(), view.data().to_vec()));
            }
        } else if path.extension().is_some_and(|e| e == "json" || e == "jinja")
            && !path.ends_with("config.json")
        {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let embed: Vec<u8> = (0..VOCAB * hidden)
        .flat_map(|i| half::bf16::from_f32(((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.04).to_le_bytes())
        .collect();
    tensors
        .insert("model.language_model.embed_tokens.weight".into(), (Dtype::BF16, vec![VOCAB, hidden], embed));
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    std::fs::remove_file(dir.join("model.safetensors.index.json")).ok();
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let tokens = env("SEETHINK_MEM_TOKENS", 1024);
    let chunk = match env("SEETHINK_MEM_CHUNK", 1024) {
        0 => SEQUENCES * tokens,
        c => c,
    };
    let dir = tempfile::tempdir().unwrap();
    shallow_real_vocab_checkpoint(dir.path());
    let model = AnyVlm::<B>::load(dir.path(), &Default::default()).unwrap();
    let mut learner = new_learner(model, &ActorConfig { lr: 1e-6, ..Default::default() }, 0);
    learner.lr_step();
    let reference = inference_model(&learner).unwrap();
    let sequences: Vec<Sequence<I>> = (0..SEQUENCES as u32)
        .map(|s| Sequence {
            prompt: (0..PROMPT as u32).map(|i| 1 + (i * 7 + s) % 250).collect(),
            response: (0..tokens as u32).map(|i| 1 + (i * 11 + 3 * s) % 250).collect(),
            images: None,
        })
        .collect();
    let checkpoint_layers = env("SEETHINK_MEM_CHECKPOINT_LAYERS", 0) == 1;
    let scoring = Scoring { pad_id: 0, chunk_tokens: chunk, temperature: 1.0, checkpoint_layers };
    let advantages: Vec<f32> = (0..SEQUENCES).map(|s| if s % 2 == 0 { 1.0 } else { -1.0 }).collect();

    let baseline = IN_USE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let started = Instant::now();
    let mut frozen_peak = 0;
    grpo_update(&mut learner, &reference, &sequences, &advantages, scoring, |phase| {
        if phase == Phase::Frozen {
            frozen_peak = PEAK.load(Ordering::Relaxed) - baseline;
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    let full = SEQUENCES * tokens * VOCAB * 4;
    println!(
        "GRPO update, vocab {VOCAB}, {SEQUENCES} x {tokens} response tokens, logits chunk {chunk} rows, \
         layer checkpoints {checkpoint_layers}: \
         peak {:.0} MiB above the model (old/ref passes {:.0} MiB); one [sequences, tokens, vocab] f32 \
         tensor is {:.0} MiB; {seconds:.1} s",
        mib(peak),
        mib(frozen_peak),
        mib(full)
    );
}
