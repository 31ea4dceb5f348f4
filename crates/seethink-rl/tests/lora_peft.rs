//! LoRA against peft. On tiny checkpoints with peft's saved adapters (r 4, alpha 8): the logits
//! of a fixed input, the PEFT adapter directory written back (peft's file, bit for bit), the
//! merged export's logits against transformers on peft's merged model, and the adapters after
//! one AdamW step on minus the mean log-probability of the input's tokens.
//!
//! - the decoder's q/k/v/o/gate/up/down on the tiny Qwen3-VL, a text input
//!   (`tests/fixtures/lora_peft.py`);
//! - the decoder's q/v, every linear layer of the vision tower's blocks and of the projector on
//!   the tiny Qwen2.5-VL, Qwen3-VL and InternVL3, an image input
//!   (`tests/fixtures/lora_vision_peft.py`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use common::{tensors, B, I};
use seethink_models::checkpoint::{Dtype, ExportOptions};
use seethink_models::families::lora::peft_key;
use seethink_models::kernels::Kernels;
use seethink_models::nn::{LoraAdapter, LoraConfig};
use seethink_models::{AnyVlm, ImageInput, TokenBatch, Vlm};
use seethink_rl::config::ActorConfig;
use seethink_rl::data_parallel::Worker;
use seethink_rl::learner::{apply_update, new_learner};

type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
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

/// The input of a case: its token ids and, for an image case, its images.
struct Input {
    ids: Vec<u32>,
    images: Option<(Vec<f32>, Vec<usize>, Images)>,
}

/// How an image case's pixels are grouped.
#[derive(Clone)]
enum Images {
    /// Qwen-VL patches with their `[t, h, w]` grids.
    Patches(Vec<[usize; 3]>),
    /// InternVL tiles, per image.
    Tiles(Vec<usize>),
}

impl Input {
    /// Case `case` of the tensors `t` (`{case}.input_ids`, and `{case}.pixel_values` with
    /// `{case}.image_grid_thw` or `{case}.num_patches` when present).
    fn of(t: &Tensors, case: &str) -> Self {
        let ids = t[&format!("{case}.input_ids")].1.iter().map(|&v| v as u32).collect();
        let images = t.get(&format!("{case}.pixel_values")).map(|(shape, pixels)| {
            let grouping = match t.get(&format!("{case}.image_grid_thw")) {
                Some((_, g)) => Images::Patches(
                    g.chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect(),
                ),
                None => {
                    Images::Tiles(t[&format!("{case}.num_patches")].1.iter().map(|&n| n as usize).collect())
                }
            };
            (pixels.clone(), shape.clone(), grouping)
        });
        Self { ids, images }
    }

    /// The logits `[1, S, V]` of `model` on this input.
    fn logits<Bk: Kernels>(&self, model: &AnyVlm<Bk>) -> Tensor<Bk, 3> {
        let images = self.images.as_ref().map(|(pixels, shape, grouping)| {
            let rows = [shape[0], shape[1..].iter().product()];
            let pixels = Tensor::from_data(TensorData::new(pixels.clone(), rows), &Default::default());
            match grouping.clone() {
                Images::Patches(grids) => ImageInput::patches(pixels, grids),
                Images::Tiles(counts) => ImageInput::tiles(pixels, counts),
            }
        });
        model.forward(&TokenBatch::single(self.ids.clone()), images.as_ref()).unwrap()
    }
}

/// The adapted model `family`'s checkpoint with the adapters of peft's `adapter/` in `dir`
/// (set by `config`), checked against peft's reference in `dir` on `input`; returns the model.
fn check_against_peft(family: &str, dir: &str, config: &LoraConfig, input: &Input) -> AnyVlm<B> {
    let checkpoint = fixtures().join(family).join("checkpoint");
    let fixture = fixtures().join(family).join(dir);
    let peft = tensors(fixture.join("adapter/adapter_model.safetensors"));
    let reference = tensors(fixture.join("reference.safetensors"));
    // the scripts' SETTINGS
    let actor = ActorConfig { lr: 0.01, weight_decay: 0.01, adam_epsilon: 1e-3, ..Default::default() };

    let device = Default::default();
    let model = AnyVlm::<B>::load(&checkpoint, &device).unwrap().with_lora(config).unwrap();
    let factor = |path: &str, f: char| {
        let name = peft_key(path, f);
        let (shape, _) = peft.get(&name).unwrap_or_else(|| panic!("{family}: peft has no {name}"));
        let [rows, cols]: [usize; 2] = shape.clone().try_into().unwrap();
        Tensor::from_data(TensorData::new(transposed(&peft, &name), [cols, rows]), &device)
    };
    let adapters: Vec<_> = model
        .adapters()
        .into_iter()
        .map(|(path, _)| {
            let adapter = LoraAdapter::from_factors(factor(&path, 'A'), factor(&path, 'B'), config);
            (path, adapter)
        })
        .collect();
    assert_eq!(adapters.len() * 2, peft.len(), "{family}: every adapter peft saved, and no other");
    let model = model.with_adapters(adapters);

    // written back as a PEFT adapter directory: peft's own file, key for key and bit for bit
    // (LORA_PEFT_OUT=D keeps it in D/<family>-<dir> for `tests/fixtures/check_peft_adapter.py`)
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("LORA_PEFT_OUT")
        .map_or(tmp.path().to_path_buf(), |d| PathBuf::from(d).join(format!("{family}-{dir}")));
    model.save_peft_adapter(&out, config, "../../checkpoint").unwrap();
    assert_eq!(tensors(out.join("adapter_model.safetensors")), peft, "{family}");
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (written, theirs) =
        (json(out.join("adapter_config.json")), json(fixture.join("adapter/adapter_config.json")));
    for key in
        ["peft_type", "r", "lora_alpha", "lora_dropout", "bias", "use_rslora", "base_model_name_or_path"]
    {
        assert_eq!(written[key], theirs[key], "{family}: {key}");
    }

    let logits = input.logits(&model);
    let logits_err = max_abs(&logits.clone().into_data().to_vec::<f32>().unwrap(), &reference["logits"].1);
    println!("{family}/{dir}: logits max |seethink − peft| = {logits_err:e}");
    assert!(logits_err < 1e-5, "{family}: logits: {logits_err}");

    // minus the mean log-probability of tokens 1.. given their prefixes
    let [_, seq, vocab] = logits.dims();
    let logprobs = log_softmax(logits.slice([0..1, 0..seq - 1, 0..vocab]).reshape([seq - 1, vocab]), 1);
    let targets: Vec<i64> = input.ids[1..].iter().map(|&t| i64::from(t)).collect();
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [seq - 1, 1]), &device);
    let loss = logprobs.gather(1, targets).mean().neg();
    let loss_err = (loss.clone().into_scalar() - reference["loss"].1[0]).abs();
    assert!(loss_err < 1e-5, "{family}: loss: {loss_err}");

    // exported merged (in float32): transformers' logits of peft's merge_and_unload
    let exported = tempfile::tempdir().unwrap();
    let options = ExportOptions { dtype: Some(Dtype::F32), ..Default::default() };
    model.valid().save_pretrained(&checkpoint, exported.path(), options).unwrap();
    let merged = AnyVlm::<I>::load(exported.path(), &device).unwrap();
    let merged = input.logits(&merged).into_data().to_vec::<f32>().unwrap();
    let merged_err = max_abs(&merged, &reference["merged_logits"].1);
    println!("{family}/{dir}: merged export: max |seethink − transformers| = {merged_err:e}");
    assert!(merged_err < 1e-5, "{family}: merged export's logits: {merged_err}");

    let mut learner = new_learner(model.clone(), &actor, 0);
    learner.lr_step();
    let grads = GradientsParams::from_grads(loss.backward(), &learner.model());
    let stats = apply_update(&mut learner, grads, f64::INFINITY, &Worker::alone()).unwrap();
    assert!(!stats.skipped);
    let mut worst = 0.0f32;
    for (path, adapter) in learner.model().model.adapters() {
        for (f, value) in [('A', adapter.lora_a.val()), ('B', adapter.lora_b.val())] {
            let name = format!("updated.{}", peft_key(&path, f));
            let err = max_abs(&value.into_data().to_vec::<f32>().unwrap(), &transposed(&reference, &name));
            worst = worst.max(err);
        }
    }
    println!("{family}/{dir}: adapters after one AdamW step: max |seethink − torch| = {worst:e}");
    assert!(worst < 1e-5, "{family}: updated adapters: {worst}");
    model
}

#[test]
fn decoder_lora_matches_peft() {
    // text case of qwen3_vl/reference.safetensors, kept in the LoRA reference as `input_ids`
    let reference = tensors(fixtures().join("qwen3_vl/lora/reference.safetensors"));
    let input = Input { ids: reference["input_ids"].1.iter().map(|&v| v as u32).collect(), images: None };
    let config = LoraConfig { rank: 4, alpha: 8.0, ..Default::default() };
    check_against_peft("qwen3_vl", "lora", &config, &input);
}

/// lora_vision_peft.py's settings: q/v of the decoder, `vision` of the vision tower, the projector.
fn vision_config(vision: &[&str]) -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        target_modules: vec!["q_proj".into(), "v_proj".into()],
        vision_modules: vision.iter().map(|s| s.to_string()).collect(),
        projector: true,
        ..Default::default()
    }
}

/// The vision case of `family`: peft's parity, then with the vision tower frozen
/// ([`AnyVlm::freeze_vision`] after the adapters, as a run does), gradients reach the decoder's
/// adapters only.
fn check_vision(family: &str, case_file: &str, case: &str, vision: &[&str]) {
    let input = Input::of(&tensors(fixtures().join(family).join(case_file)), case);
    assert!(input.images.is_some());
    let model = check_against_peft(family, "lora_vision", &vision_config(vision), &input);
    let decoder = model.adapters().iter().filter(|(path, _)| path.contains(".layers.")).count();
    assert!(decoder > 0 && decoder < model.adapters().len());
    let frozen = model.freeze_vision();
    let grads = GradientsParams::from_grads(input.logits(&frozen).powi_scalar(2).mean().backward(), &frozen);
    assert_eq!(grads.len(), 2 * decoder, "{family}: a frozen tower's adapters take no gradient");
}

#[test]
fn vision_and_projector_lora_match_peft_on_qwen2_5_vl() {
    check_vision(
        "qwen2_5_vl",
        "reference.safetensors",
        "image",
        &["qkv", "proj", "gate_proj", "up_proj", "down_proj"],
    );
}

#[test]
fn vision_and_projector_lora_match_peft_on_qwen3_vl() {
    check_vision("qwen3_vl", "reference.safetensors", "image", &["qkv", "proj", "linear_fc1", "linear_fc2"]);
}

#[test]
fn vision_and_projector_lora_match_peft_on_internvl3() {
    let vision = ["q_proj", "k_proj", "v_proj", "projection_layer", "fc1", "fc2"];
    check_vision("internvl3", "pipeline_reference.safetensors", "wide", &vision);
}

#[test]
fn vision_module_names_are_the_model_s_own() {
    let dir = fixtures().join("internvl3/original");
    let model = AnyVlm::<I>::load(&dir, &Default::default()).unwrap();
    let err = model.clone().with_lora(&vision_config(&["q_proj"])).unwrap_err().to_string();
    assert!(
        err.contains("vision_modules: unknown module `q_proj`") && err.contains("qkv, proj, fc1, fc2"),
        "{err}"
    );
    // the original release's adapters train and merge, but its PEFT directory is refused
    let adapted = model.with_lora(&vision_config(&["qkv"])).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err =
        adapted.save_peft_adapter(tmp.path(), &vision_config(&["qkv"]), "base").unwrap_err().to_string();
    assert!(err.contains("original release"), "{err}");
}
