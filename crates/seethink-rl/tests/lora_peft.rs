//! LoRA against peft (`tests/fixtures/lora_peft.py`): on the tiny Qwen3-VL with peft's saved
//! adapters (r 4, alpha 8, q/k/v/o/gate/up/down), the logits of a fixed input, the PEFT adapter
//! directory written back (peft's file, bit for bit), the merged export's logits against
//! transformers on peft's merged model, and the adapters after one AdamW step on minus the mean
//! log-probability of the input's tokens.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use common::{checkpoint, tensors, B, I};
use seethink_models::checkpoint::{Dtype, ExportOptions};
use seethink_models::families::lora::peft_key;
use seethink_models::nn::{LoraAdapter, LoraConfig};
use seethink_models::{AnyVlm, TokenBatch, Vlm};
use seethink_rl::config::ActorConfig;
use seethink_rl::learner::{apply_update, new_learner};

type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/lora")
}

/// peft's `[rows, cols]` matrix `name` transposed (peft stores `xAᵀ`'s A; seethink `x·A`).
fn transposed(t: &Tensors, name: &str) -> Vec<f32> {
    let (shape, values) = &t[name];
    let (rows, cols) = (shape[0], shape[1]);
    (0..rows * cols).map(|i| values[(i % rows) * cols + i / rows]).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn lora_forward_and_one_adamw_step_match_peft() {
    let peft = tensors(fixture().join("adapter/adapter_model.safetensors"));
    let reference = tensors(fixture().join("reference.safetensors"));
    // the script's SETTINGS
    let config = LoraConfig { rank: 4, alpha: 8.0, ..Default::default() };
    let actor = ActorConfig { lr: 0.01, weight_decay: 0.01, adam_epsilon: 1e-3, ..Default::default() };

    let device = Default::default();
    let model = AnyVlm::<B>::load(checkpoint(), &device).unwrap().with_lora(&config).unwrap();
    let factor = |layer: usize, module: &str, f: char| {
        let name = peft_key(layer, module, f);
        let [rows, cols]: [usize; 2] = peft[&name].0.clone().try_into().unwrap();
        Tensor::from_data(TensorData::new(transposed(&peft, &name), [cols, rows]), &device)
    };
    let adapters: Vec<_> = model
        .adapters()
        .into_iter()
        .map(|(l, m, _)| (l, m, LoraAdapter::from_factors(factor(l, m, 'A'), factor(l, m, 'B'), &config)))
        .collect();
    assert_eq!(adapters.len() * 2, peft.len(), "every adapter peft saved, and no other");
    let model = model.with_adapters(adapters);

    // written back as a PEFT adapter directory: peft's own file, key for key and bit for bit
    // (LORA_PEFT_OUT keeps it for `tests/fixtures/check_peft_adapter.py`)
    let dir = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("LORA_PEFT_OUT").map_or(dir.path().to_path_buf(), PathBuf::from);
    model.save_peft_adapter(&dir, &config, "../../checkpoint").unwrap();
    assert_eq!(tensors(dir.join("adapter_model.safetensors")), peft);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture().join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    for key in
        ["peft_type", "r", "lora_alpha", "lora_dropout", "bias", "use_rslora", "base_model_name_or_path"]
    {
        assert_eq!(written[key], theirs[key], "{key}");
    }

    let ids: Vec<u32> = reference["input_ids"].1.iter().map(|&v| v as u32).collect();
    let logits = model.forward(&TokenBatch::single(ids.clone()), None).unwrap();
    let logits_err = max_abs(&logits.clone().into_data().to_vec::<f32>().unwrap(), &reference["logits"].1);
    println!("logits: max |seethink − peft| = {logits_err:e}");
    assert!(logits_err < 1e-5, "logits: {logits_err}");

    // minus the mean log-probability of tokens 1.. given their prefixes
    let [_, seq, vocab] = logits.dims();
    let logprobs = log_softmax(logits.slice([0..1, 0..seq - 1, 0..vocab]).reshape([seq - 1, vocab]), 1);
    let targets: Vec<i64> = ids[1..].iter().map(|&t| i64::from(t)).collect();
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [seq - 1, 1]), &device);
    let loss = logprobs.gather(1, targets).mean().neg();
    let loss_err = (loss.clone().into_scalar() - reference["loss"].1[0]).abs();
    assert!(loss_err < 1e-5, "loss: {loss_err}");

    // exported merged (in float32): transformers' logits of peft's merge_and_unload
    let exported = tempfile::tempdir().unwrap();
    let options = ExportOptions { dtype: Some(Dtype::F32), ..Default::default() };
    model.valid().save_pretrained(checkpoint(), exported.path(), options).unwrap();
    let merged = AnyVlm::<I>::load(exported.path(), &device).unwrap();
    let merged =
        merged.forward(&TokenBatch::single(ids.clone()), None).unwrap().into_data().to_vec::<f32>().unwrap();
    let merged_err = max_abs(&merged, &reference["merged_logits"].1);
    println!("merged export: max |seethink − transformers| = {merged_err:e}");
    assert!(merged_err < 1e-5, "merged export's logits: {merged_err}");

    let mut learner = new_learner(model, &actor, 0);
    learner.lr_step();
    let grads = GradientsParams::from_grads(loss.backward(), &learner.model());
    let stats = apply_update(&mut learner, grads, f64::INFINITY);
    assert!(!stats.skipped);
    let mut worst = 0.0f32;
    for (l, m, adapter) in learner.model().model.adapters() {
        for (f, value) in [('A', adapter.lora_a.val()), ('B', adapter.lora_b.val())] {
            let name = format!("updated.{}", peft_key(l, m, f));
            let err = max_abs(&value.into_data().to_vec::<f32>().unwrap(), &transposed(&reference, &name));
            worst = worst.max(err);
        }
    }
    println!("adapters after one AdamW step: max |seethink − torch| = {worst:e}");
    assert!(worst < 1e-5, "updated adapters: {worst}");
}
