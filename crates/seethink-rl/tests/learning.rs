//! SFT and GRPO really learn: on the tiny committed Qwen3-VL checkpoint, a short SFT warm-up
//! gives the policy some signal, then GRPO raises the sampled accuracy of a verifiable task.

mod common;

use burn::module::AutodiffModule;
use common::{checkpoint, text_prompts, B, I};
use seethink_data::Task;
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::processing::TextTokenizer;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::grpo::{Grpo, GrpoConfig, GrpoLossConfig, RolloutPrompt};
use seethink_rl::optim::LrSchedule;
use seethink_rl::sft::sft_step;
use seethink_rl::supervised::{train_supervised, SftItem, SupervisedSftConfig};
use seethink_rl::trainer::{Learner, OptimConfig, Sequence};

/// Accuracy 1 when the reply starts with the task's answer.
struct StartsWithAnswer;

impl Reward for StartsWithAnswer {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let accuracy = if response.trim_start().starts_with(&task.answer) { 1.0 } else { 0.0 };
        RewardBreakdown { overall: accuracy, format: 0.0, accuracy }
    }
}

/// "Pick A:" … "Pick D:", answered by the letter.
fn pick_prompts(tokenizer: &TextTokenizer) -> Vec<RolloutPrompt<I>> {
    text_prompts(
        tokenizer,
        &[("A", "Pick A:", "A"), ("B", "Pick B:", "B"), ("C", "Pick C:", "C"), ("D", "Pick D:", "D")],
    )
}

/// SFT targets: each prompt followed by its answer.
fn answer_sequences(tokenizer: &TextTokenizer, prompts: &[RolloutPrompt<I>]) -> Vec<Sequence<I>> {
    prompts
        .iter()
        .map(|p| Sequence {
            prompt: p.prompt.ids.clone(),
            response: tokenizer.encode(&p.task.answer).unwrap(),
            images: None,
        })
        .collect()
}

/// Mean accuracy of `samples` sampled replies per prompt.
fn sampled_accuracy(
    model: &AnyVlm<I>,
    prompts: &[RolloutPrompt<I>],
    tokenizer: &TextTokenizer,
    seed: u64,
) -> f32 {
    let sampling = SamplingConfig { max_new_tokens: 2, temperature: 1.0, top_p: 1.0, top_k: 0, seed };
    let batch: Vec<Prompt<I>> = prompts.iter().map(|p| p.prompt.clone()).collect();
    let out = generate(model, &batch, 16, &sampling, &tokenizer.stop_ids, tokenizer.pad_id).unwrap();
    let hits: f32 = out
        .iter()
        .map(|c| {
            StartsWithAnswer.score(&prompts[c.prompt].task, &tokenizer.decode(&c.ids, true).unwrap()).accuracy
        })
        .sum();
    hits / out.len() as f32
}

#[test]
fn sft_warm_up_then_grpo_raises_accuracy() {
    let device = Default::default();
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = AnyVlm::<B>::load(checkpoint(), &device).unwrap();
    let prompts = pick_prompts(&tokenizer);
    let optim = OptimConfig { lr: 3e-3, weight_decay: 0.0, ..Default::default() };
    let mut learner = Learner::new(model, optim);
    let before = sampled_accuracy(&learner.inference_model(), &prompts, &tokenizer, 1);

    // SFT warm-up on the answers (a few updates only, so RL has room to improve)
    let sequences = answer_sequences(&tokenizer, &prompts);
    let first = sft_step(&mut learner, &sequences, 2, tokenizer.pad_id).unwrap();
    let mut last = first;
    for _ in 0..3 {
        last = sft_step(&mut learner, &sequences, 2, tokenizer.pad_id).unwrap();
    }
    assert!(last.loss < first.loss, "SFT loss {} → {}", first.loss, last.loss);
    let warm = sampled_accuracy(&learner.inference_model(), &prompts, &tokenizer, 2);

    let config = GrpoConfig {
        group_size: 8,
        mini_batches: 2,
        micro_batch_size: 16,
        sampling: SamplingConfig { max_new_tokens: 2, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 7 },
        loss: GrpoLossConfig { kl_coef: 0.0, ..Default::default() },
        ..Default::default()
    };
    // GRPO: a higher rate decaying with a cosine over its 40 updates (after the 4 SFT ones)
    learner.config.lr = 1e-2;
    learner.config.schedule = LrSchedule::Cosine { warmup: 0, total: 44, min_ratio: 0.05 };
    let mut grpo = Grpo::new(learner, config);
    for _ in 0..20 {
        let stats = grpo.step(&prompts, &StartsWithAnswer, &tokenizer).unwrap();
        println!(
            "grpo: reward {:.3} grad-norm {:.3} clip {:.3} entropy {:.3}",
            stats.reward.accuracy, stats.grad_norm, stats.clip_fraction, stats.entropy
        );
    }
    let after = sampled_accuracy(&grpo.learner.inference_model(), &prompts, &tokenizer, 3);
    println!("accuracy: base {before:.3}, after SFT warm-up {warm:.3}, after GRPO {after:.3}");
    assert!(warm < 0.5, "warm-up should leave room for RL: {warm}");
    assert!(after > 0.8 && after > warm + 0.3, "GRPO: {warm} → {after}");
}

#[test]
fn sft_alone_learns_the_task() {
    let device = Default::default();
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = AnyVlm::<B>::load(checkpoint(), &device).unwrap();
    let prompts = pick_prompts(&tokenizer);
    let sequences = answer_sequences(&tokenizer, &prompts);
    let mut learner = Learner::new(model, OptimConfig { lr: 3e-3, weight_decay: 0.0, ..Default::default() });
    let before = sampled_accuracy(&learner.inference_model(), &prompts, &tokenizer, 4);
    let mut losses = Vec::new();
    for _ in 0..25 {
        losses.push(sft_step(&mut learner, &sequences, 2, tokenizer.pad_id).unwrap().loss);
    }
    let after = sampled_accuracy(&learner.inference_model(), &prompts, &tokenizer, 5);
    println!("SFT: loss {:.3} → {:.3}, accuracy {before:.3} → {after:.3}", losses[0], losses[24]);
    assert!(before < 0.3 && after > 0.8, "SFT accuracy {before} → {after}");
}

#[test]
fn sft_on_burn_train_supervised_training_learns_the_task() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap();
    let prompts = pick_prompts(&tokenizer);
    let items: Vec<SftItem> = answer_sequences(&tokenizer, &prompts)
        .into_iter()
        .map(|s| SftItem { prompt: s.prompt, response: s.response, images: None })
        .collect();
    let train: Vec<SftItem> = items.iter().cycle().take(32).cloned().collect();
    let before = sampled_accuracy(&model.valid(), &prompts, &tokenizer, 6);
    let dir = tempfile::tempdir().unwrap();
    let config = SupervisedSftConfig {
        epochs: 5,
        batch_size: 4,
        lr: 3e-3,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        seed: 0,
        pad_id: tokenizer.pad_id,
    };
    let trained = train_supervised(model, train, items, &config, dir.path());
    let after = sampled_accuracy(&trained, &prompts, &tokenizer, 7);
    println!("burn-train SFT: accuracy {before:.3} → {after:.3}");
    assert!(before < 0.3 && after > 0.8, "{before} → {after}");
    assert!(dir.path().join("experiment.log").exists(), "burn-train's run directory is used");
}
