//! A whole GRPO update against PyTorch, on any training backend: the learning phase of a step (`Grpo::learn`: group
//! advantages, old and reference log-probs at the sampling temperature, the clip-higher +
//! dual-clip loss with the k3 KL, token-mean over two micro-batches per mini-batch, gradient
//! clipping, AdamW; two mini-batches = two updates) on a fixed rollout of the tiny Qwen3-VL
//! (an image prompt and a text prompt, transformers' own token ids and pixel values), against
//! the same update in transformers + torch autograd following EasyR1's formulas
//! (`tests/fixtures/grpo_update.py`, which wrote the case and the reference).

use std::collections::HashMap;
use std::path::PathBuf;

use super::common::{checkpoint, max_relative, tensors};
use burn::tensor::{Tensor, TensorData};
use seethink_models::checkpoint::{Dtype, ExportOptions, Layout};
use seethink_models::{AnyVlm, ImageInput};
use seethink_rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig};
use seethink_rl::grpo::{Grpo, GrpoStats, KlPenalty, Scored};
use seethink_rl::learner::{inference_model, new_learner};
use seethink_rl::logprobs::{response_logprobs, Scoring, Sequence};
use seethink_rl::optim::LrSchedule;
use seethink_rl::train_backend::TrainBackend;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// One GRPO learning phase on backend `Bk` against the PyTorch reference.
pub fn update_matches_pytorch<Bk: TrainBackend>() {
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("grpo_update_case.json")).unwrap())
            .unwrap();
    let reference = tensors(fixtures().join("grpo_update_reference.safetensors"));
    let inputs = tensors(fixtures().join("qwen3_vl/pipeline_reference.safetensors"));
    let f = |key: &str| case[key].as_f64().unwrap();
    let device = Default::default();

    // the rollout: transformers' prompt ids and pixels, the case's responses and rewards
    let mut rollout = Vec::new();
    for group in case["groups"].as_array().unwrap() {
        let name = group["prompt"].as_str().unwrap();
        let prompt: Vec<u32> = inputs[&format!("{name}.input_ids")].1.iter().map(|&x| x as u32).collect();
        let images = inputs.get(&format!("{name}.pixel_values")).map(|(shape, pixels)| {
            let grid = &inputs[&format!("{name}.image_grid_thw")].1;
            let pixels = Tensor::<Bk::InnerBackend, 2>::from_data(
                TensorData::new(pixels.clone(), [shape[0], shape[1]]),
                &device,
            );
            ImageInput::patches(pixels, vec![[grid[0] as usize, grid[1] as usize, grid[2] as usize]])
        });
        let responses = group["responses"].as_array().unwrap();
        for (response, reward) in responses.iter().zip(group["rewards"].as_array().unwrap()) {
            let response = response.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
            let sequence = Sequence { prompt: prompt.clone(), response, images: images.clone() };
            rollout.push(Scored { sequence, score: reward.as_f64().unwrap() as f32 });
        }
    }
    let groups = case["groups"].as_array().unwrap().len();
    let n = rollout.len() / groups;

    let actor = ActorConfig {
        lr: f("lr"),
        weight_decay: f("weight_decay"),
        max_grad_norm: f("max_grad_norm"),
        schedule: LrSchedule::Constant,
        mini_batches: groups,
        micro_batch_size: case["micro_batch_size"].as_u64().unwrap() as usize,
        clip_low: f("clip_low") as f32,
        clip_high: f("clip_high") as f32,
        dual_clip: f("dual_clip") as f32,
        // a few rows of logits at a time: the chunked backward is part of what is checked
        logits_chunk_tokens: 3,
        // the case's ε (1e-3, see grpo_update.py: well-conditioned weights to compare)
        adam_epsilon: f("eps"),
        ..Default::default()
    };
    let algorithm = AlgorithmConfig {
        kl_coef: f("kl_coef") as f32,
        use_kl_loss: true,
        kl_penalty: KlPenalty::LowVarKl,
        ..Default::default()
    };
    let rollout_config = RolloutConfig { n, temperature: f("temperature") as f32, ..Default::default() };
    let model = AnyVlm::<Bk>::load(checkpoint(), &device).unwrap();
    let mut learner = new_learner(model, &actor, 0);
    learner.lr_step();
    let mut grpo = Grpo::new(&learner, algorithm, actor, rollout_config);
    let export = |model: AnyVlm<Bk::InnerBackend>| {
        let out = tempfile::tempdir().unwrap();
        let options =
            ExportOptions { layout: Some(Layout::Current), dtype: Some(Dtype::F32), ..Default::default() };
        model.save_pretrained(checkpoint(), out.path(), options).unwrap();
        std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .flat_map(tensors)
            .collect::<HashMap<String, (Vec<usize>, Vec<f32>)>>()
    };
    let policy = inference_model(&learner).unwrap();
    let start = export(policy.clone());

    // the old log-probs (forward passes with and without the image, at the temperature)
    let scoring = Scoring {
        pad_id: 0,
        chunk_tokens: 3,
        temperature: f("temperature") as f32,
        checkpoint_layers: false,
    };
    for (i, scored) in rollout.iter().enumerate() {
        let logp = response_logprobs(&policy, std::slice::from_ref(&scored.sequence), scoring).unwrap().logp;
        let logp = logp.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let relative = max_relative(&logp, &reference[&format!("old_logp.{i}")].1, 1.0);
        assert!(relative < 1e-5, "old log-probs of sequence {i}: {relative:.2e}");
    }
    let mut stats = GrpoStats::default();
    grpo.learn(&mut learner, policy.clone(), rollout, 0, &mut stats).unwrap();

    // the update metrics are means over the two updates
    let mean = |key: &str| {
        (reference[&format!("update0.{key}")].1[0] + reference[&format!("update1.{key}")].1[0]) / 2.0
    };
    assert_eq!(stats.updates, 2);
    for (name, ours, theirs) in [
        ("grad norm", stats.grad_norm as f32, mean("grad_norm")),
        ("pg loss", stats.pg_loss as f32, mean("pg")),
        ("kl", stats.kl as f32, mean("kl")),
    ] {
        let relative = (ours - theirs).abs() / theirs.abs();
        println!("{name}: ours {ours}, PyTorch {theirs}, relative difference {relative:.2e}");
        assert!(relative < 1e-4, "{name}: {ours} vs {theirs}");
    }

    // every weight after both updates, compared through the update it took: per tensor,
    // ‖Δw_ours − Δw_torch‖ / ‖Δw_torch‖ with Δw = w_after − w_start
    let ours = export(inference_model(&learner).unwrap());
    let theirs: HashMap<&str, &(Vec<usize>, Vec<f32>)> =
        reference.iter().filter_map(|(k, v)| k.strip_prefix("weights.").map(|name| (name, v))).collect();
    assert_eq!(ours.len(), theirs.len(), "same tensors");
    let mut worst = (0.0_f32, String::new());
    for (name, (shape, after)) in &ours {
        let (their_shape, their_after) =
            theirs.get(name.as_str()).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(shape, their_shape, "{name}");
        let before = &start[name].1;
        let (mut diff, mut step) = (0.0_f64, 0.0_f64);
        for ((a, b), w) in after.iter().zip(their_after.iter()).zip(before) {
            diff += f64::from(a - b).powi(2);
            step += f64::from(b - w).powi(2);
        }
        let relative = (diff / step).sqrt() as f32;
        if relative > worst.0 {
            worst = (relative, name.clone());
        }
    }
    println!("weights: largest relative difference of a tensor's update {:.2e} ({})", worst.0, worst.1);
    // measured: worst 7.1e-6 on `NdArray<f32>`, 1.7e-5 through the default kernels (a vision
    // norm). Until the exact GELU got its exact derivative (`kernels::tracked_gelu`; burn 0.21's
    // differentiates the tanh approximation) the vision tower's were 2e-4–6e-4, under a bound
    // of 1e-3 that let it pass.
    assert!(worst.0 < 1e-4, "{}: {:.2e}", worst.1, worst.0);
}
