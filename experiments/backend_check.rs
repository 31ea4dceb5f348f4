//! A second backend that runs, checked against ndarray: a forward pass with an image, a greedy
//! generation (two samples of one prompt) and one whole GRPO update (old and reference
//! log-probs, clipped loss with the KL, two AdamW updates) of the tiny committed Qwen3-VL, on
//! `--backend` and on ndarray in the same process. Passes when the logits agree within 1e-3
//! (relative to the largest), the greedy tokens are the same, and the update's metrics and
//! every weight's change agree within 1e-2 (GPU reductions sum in another order; the change is
//! about 1e-4 of a weight).
//!
//! ```text
//! cargo run --release --features wgpu --example backend_check -- --backend wgpu
//! cargo run --release --features cuda --example backend_check -- --backend cuda
//! ```
//! Run it from the repository root (it reads `tests/fixtures/`).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use clap::Parser;
use seethink::backend::BackendKind;
use seethink::models::generate::{generate, Prompt, SamplingConfig};
use seethink::models::processing::image::load_image;
use seethink::models::processing::Processor;
use seethink::models::{AnyVlm, TokenBatch, Vlm};
use seethink::rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig};
use seethink::rl::grpo::{Grpo, GrpoStats, Scored};
use seethink::rl::learner::{inference_model, new_learner};
use seethink::rl::policy::Sequence;
use seethink::rl::train_backend::{KernelBackend, TrainBackend};

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

#[derive(Parser)]
#[command(about = "Forward, generation and a GRPO update on a second backend, against ndarray")]
struct Args {
    /// The backend to check (`wgpu` or `cuda`, compiled in with the feature of that name).
    #[arg(long)]
    backend: BackendKind,
    /// Checkpoint directory.
    #[arg(long, default_value = "tests/fixtures/qwen3_vl/checkpoint")]
    model: PathBuf,
    /// The image of the prompt.
    #[arg(long, default_value = "tests/fixtures/images/square.png")]
    image: PathBuf,
}

/// What one backend produced.
struct Outcome {
    logits: Vec<f32>,
    greedy: Vec<u32>,
    /// grad norm, pg loss, kl of the update
    metrics: [f64; 3],
    /// every parameter before and after the update, flattened in module order
    before: Vec<f32>,
    after: Vec<f32>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let reference = outcome::<Autodiff<burn::backend::NdArray<f32>>>(&args.model, &args.image)?;
    let checked =
        seethink::with_backend!(args.backend, B => outcome::<Autodiff<B>>(&args.model, &args.image))?;
    let largest = reference.logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let logits = max_difference(&checked.logits, &reference.logits) / largest;
    println!("logits: largest difference {logits:.2e} of the largest logit");
    println!("greedy: {:?} on {}, {:?} on ndarray", checked.greedy, args.backend, reference.greedy);
    // pg loss and kl are means of terms of both signs, close to 0: relative to at least 1e-3
    let metrics: Vec<f64> = checked
        .metrics
        .iter()
        .zip(&reference.metrics)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
        .collect();
    println!(
        "update: grad norm, pg loss, kl {:?} on {}, {:?} on ndarray; differences {metrics:?}",
        checked.metrics, args.backend, reference.metrics
    );
    let change = |o: &Outcome| o.after.iter().zip(&o.before).map(|(a, b)| a - b).collect::<Vec<f32>>();
    let (ours, theirs) = (change(&checked), change(&reference));
    let norm = |x: &[f32]| x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let diff: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| a - b).collect();
    let weights = norm(&diff) / norm(&theirs);
    println!("update: ‖Δw − Δw_ndarray‖ / ‖Δw_ndarray‖ = {weights:.2e}");
    ensure!(logits < 1e-3, "logits differ by {logits:.2e}");
    ensure!(checked.greedy == reference.greedy, "greedy tokens differ");
    ensure!(metrics.iter().all(|m| *m < 1e-2), "update metrics differ: {metrics:?}");
    ensure!(weights < 1e-2, "weight updates differ: {weights:.2e}");
    println!("{}: passes", args.backend);
    Ok(())
}

/// The forward, generation and update of one backend.
fn outcome<B: TrainBackend>(dir: &Path, image: &Path) -> Result<Outcome> {
    let device = Default::default();
    let processor = Processor::from_dir(dir)?;
    let model = AnyVlm::<B::InnerBackend>::load(dir, &device)?;
    let prompt: Prompt<B::InnerBackend> =
        processor.user_prompt("How many red circles are there?", &[load_image(image)?], &device)?;
    let logits = model.forward(&TokenBatch::single(prompt.ids.clone()), prompt.images.as_ref())?;
    let logits = logits.into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits");
    let greedy = SamplingConfig { max_new_tokens: 12, temperature: 0.0, ..Default::default() };
    let tokenizer = &processor.tokenizer;
    // two samples of the prompt: on a GPU both read the prompt's one KV cache
    // (`Kernels::shares_prompt_cache`), and greedy samples are the same tokens
    let completions = generate(&model, std::slice::from_ref(&prompt), 2, &greedy, &[], tokenizer.pad_id)?;
    let [completion, twin] = &completions[..] else { bail!("{} completions of 2", completions.len()) };
    ensure!(
        completion.ids == twin.ids,
        "greedy samples of one prompt differ: {:?}, {:?}",
        completion.ids,
        twin.ids
    );

    // one GRPO update on a fixed rollout: the prompt with three responses, and a text prompt
    let text: Prompt<B::InnerBackend> =
        processor.user_prompt("Solve: 12 plus 30 equals what?", &[], &device)?;
    let responses = [vec![17, 42, 99, 5], vec![8, 8, 8], vec![201, 13, 77, 64, 3]];
    let rollout = [(&prompt, [1.0, 0.0, 0.5]), (&text, [0.0, 1.0, 0.0])]
        .into_iter()
        .flat_map(|(prompt, scores)| {
            responses.iter().zip(scores).map(|(response, score)| Scored {
                sequence: Sequence {
                    prompt: prompt.ids.clone(),
                    response: response.clone(),
                    images: prompt.images.clone(),
                },
                score,
            })
        })
        .collect();
    // Adam's ε at 1e-3 (as tests/fixtures/grpo_update.py does): with 1e-8, a weight whose
    // gradient is ~0 moves by ±lr whatever the rounding of its gradient, so weights would not
    // compare
    let actor = ActorConfig {
        lr: 1e-3,
        mini_batches: 2,
        micro_batch_size: 2,
        adam_epsilon: 1e-3,
        ..Default::default()
    };
    let algorithm = AlgorithmConfig { kl_coef: 0.1, ..Default::default() };
    let mut learner = new_learner(AnyVlm::<B>::load(dir, &device)?, &actor, 0);
    learner.lr_step();
    let mut grpo = Grpo::new(&learner, algorithm, actor, RolloutConfig { n: 3, ..Default::default() });
    let policy = inference_model(&learner)?;
    let before = flat(&policy);
    let mut stats = GrpoStats::default();
    grpo.learn(&mut learner, policy, rollout, tokenizer.pad_id, &mut stats)?;
    Ok(Outcome {
        logits,
        greedy: completion.ids.clone(),
        metrics: [stats.grad_norm, stats.pg_loss, stats.kl],
        before,
        after: flat(&inference_model(&learner)?),
    })
}

/// Every float parameter of `model`, flattened in module order.
fn flat<B: KernelBackend>(model: &AnyVlm<B>) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().convert::<f32>().to_vec::<f32>().expect("f32 weights"));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// `max_i |a_i − b_i|`.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
