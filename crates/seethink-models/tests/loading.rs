//! Checkpoint and config variants load to the same model; bad input gives errors that name
//! the file, key, tensor or shape at fault.

mod common;

use std::path::Path;

use common::{copy_checkpoint, fixture_dir, read_tensors, write_tensors, B};
use seethink_models::config::RopeMode;
use seethink_models::qwen_vl::{QwenVlConfig, KEYS};
use seethink_models::{ModelError, QwenVl, TokenBatch, Vlm};
use serde_json::{json, Value};

fn load(dir: &Path) -> Result<QwenVl<B>, ModelError> {
    QwenVl::<B>::load(dir, &Default::default())
}

fn config_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn parse(config: &Value) -> Result<QwenVlConfig, ModelError> {
    QwenVlConfig::from_json_str(&config.to_string(), Path::new("config.json"))
}

fn text_logits(model: &QwenVl<B>) -> Vec<f32> {
    let tokens = TokenBatch::single(vec![5, 17, 42, 99, 3]);
    model.forward(&tokens, None).unwrap().into_data().to_vec().unwrap()
}

#[test]
fn legacy_and_current_key_layouts_give_identical_logits() {
    // The Qwen2.5-VL fixture is stored with legacy keys (`visual.*`, `model.*`).
    let legacy = fixture_dir("qwen2_5_vl").join("checkpoint");
    let tensors = read_tensors(&legacy.join("model.safetensors"));
    assert!(tensors.iter().any(|t| t.0.starts_with("visual.")));
    let renamed: Vec<_> =
        tensors.into_iter().map(|(name, d, s, b)| (KEYS.canonical_name(&name), d, s, b)).collect();
    let current = copy_checkpoint("qwen2_5_vl");
    write_tensors(&current.path().join("model.safetensors"), &renamed);
    assert_eq!(text_logits(&load(&legacy).unwrap()), text_logits(&load(current.path()).unwrap()));
}

#[test]
fn flat_text_keys_and_v5_rope_parameters_parse_identically() {
    let original = config_json(&fixture_dir("qwen2_5_vl").join("checkpoint"));
    let expected = parse(&original).unwrap();
    assert_eq!(expected.text.rope, RopeMode::Sectioned([2, 3, 3]));

    // Older Qwen2.5-VL files: text keys at the top level, no text_config.
    let mut flat = original.clone();
    let text = flat.as_object_mut().unwrap().remove("text_config").unwrap();
    for (k, v) in text.as_object().unwrap() {
        flat.as_object_mut().unwrap().entry(k.clone()).or_insert(v.clone());
    }
    assert_eq!(parse(&flat).unwrap(), expected);

    // transformers 5: `rope_parameters` holds rope_theta and mrope_section.
    let mut v5 = original.clone();
    let text = v5["text_config"].as_object_mut().unwrap();
    let mut rope = text.remove("rope_scaling").unwrap();
    rope["rope_theta"] = text.remove("rope_theta").unwrap();
    text.insert("rope_parameters".into(), rope);
    assert_eq!(parse(&v5).unwrap(), expected);
}

#[test]
fn qwen3_vl_config_is_interleaved_with_explicit_head_dim() {
    let c = parse(&config_json(&fixture_dir("qwen3_vl").join("checkpoint"))).unwrap();
    assert_eq!(c.text.rope, RopeMode::Interleaved([2, 3, 3]));
    assert_eq!(c.text.head_dim, 16);
    assert_ne!(c.text.head_dim, c.text.hidden_size / c.text.num_attention_heads);
    assert!(c.text.tie_word_embeddings && c.text.qk_norm && !c.text.qkv_bias);
    assert_eq!(c.vision.deepstack_visual_indexes, vec![0, 1]);
}

fn error_of(result: Result<impl Sized, ModelError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_model_type_is_named() {
    let mut c = config_json(&fixture_dir("qwen3_vl").join("checkpoint"));
    c["model_type"] = json!("llava");
    let msg = error_of(parse(&c));
    assert!(msg.contains("unknown model_type `llava`"), "{msg}");
}

#[test]
fn bad_config_values_name_the_key() {
    let base = config_json(&fixture_dir("qwen3_vl").join("checkpoint"));
    let mut c = base.clone();
    c["text_config"]["hidden_size"] = json!("big");
    let msg = error_of(parse(&c));
    assert!(msg.contains("text_config.hidden_size") && msg.contains("non-negative integer"), "{msg}");

    let mut c = base.clone();
    c["text_config"].as_object_mut().unwrap().remove("num_hidden_layers");
    let msg = error_of(parse(&c));
    assert!(msg.contains("text_config.num_hidden_layers`: missing"), "{msg}");

    let mut c = base.clone();
    c["text_config"]["rope_scaling"]["mrope_section"] = json!([4, 4, 4]);
    let msg = error_of(parse(&c));
    assert!(msg.contains("mrope_section") && msg.contains("head_dim/2 = 8"), "{msg}");

    let mut c = base.clone();
    c["text_config"]["rope_scaling"]["rope_type"] = json!("yarn");
    let msg = error_of(parse(&c));
    assert!(msg.contains("rope_scaling.rope_type") && msg.contains("`yarn` is not supported"), "{msg}");

    let mut c = base.clone();
    c["vision_config"]["hidden_act"] = json!("relu6");
    let msg = error_of(parse(&c));
    assert!(msg.contains("vision_config.hidden_act") && msg.contains("relu6"), "{msg}");

    let mut c = base.clone();
    c["text_config"]["num_key_value_heads"] = json!(3);
    let msg = error_of(parse(&c));
    assert!(msg.contains("num_key_value_heads") && msg.contains("divide num_attention_heads = 4"), "{msg}");

    for family in ["qwen2_5_vl", "qwen3_vl"] {
        let mut c = config_json(&fixture_dir(family).join("checkpoint"));
        c["text_config"]["num_attention_heads"] = json!(0);
        let msg = error_of(parse(&c));
        assert!(
            msg.contains("text_config.num_attention_heads") && msg.contains("at least 1, got 0"),
            "{msg}"
        );
    }

    let mut c = base.clone();
    c["vision_config"]["num_heads"] = json!(3);
    let msg = error_of(parse(&c));
    assert!(msg.contains("vision_config.num_heads"), "{msg}");

    let mut c = base;
    c["vision_config"]["deepstack_visual_indexes"] = json!([0, 7]);
    let msg = error_of(parse(&c));
    assert!(msg.contains("block 7 >= depth 3"), "{msg}");
}

#[test]
fn malformed_json_names_the_file() {
    let dir = copy_checkpoint("qwen2_5_vl");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": ").unwrap();
    let msg = error_of(load(dir.path()));
    assert!(msg.contains("malformed JSON") && msg.contains("config.json"), "{msg}");
}

#[test]
fn unreadable_files_are_named() {
    let missing = Path::new("/nonexistent/seethink-checkpoint");
    let msg = error_of(load(missing));
    assert!(msg.contains("cannot read /nonexistent/seethink-checkpoint/config.json"), "{msg}");

    let dir = copy_checkpoint("qwen2_5_vl");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let msg = error_of(load(dir.path()));
    assert!(msg.contains("model.safetensors"), "{msg}");

    let dir = copy_checkpoint("qwen3_vl");
    std::fs::remove_file(dir.path().join("model-00002-of-00003.safetensors")).unwrap();
    let msg = error_of(load(dir.path()));
    assert!(msg.contains("model-00002-of-00003.safetensors"), "{msg}");
}

#[test]
fn truncated_safetensors_is_reported() {
    let dir = copy_checkpoint("qwen2_5_vl");
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = error_of(load(dir.path()));
    assert!(msg.contains("invalid safetensors file") && msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_checkpoint("qwen2_5_vl");
    let path = dir.path().join("model.safetensors");
    let tensors: Vec<_> =
        read_tensors(&path).into_iter().filter(|t| t.0 != "visual.blocks.1.attn.qkv.bias").collect();
    write_tensors(&path, &tensors);
    let msg = error_of(load(dir.path()));
    assert!(msg.contains("missing tensor `model.visual.blocks.1.attn.qkv.bias`"), "{msg}");
}

#[test]
fn non_finite_weights_are_named() {
    let dir = copy_checkpoint("qwen2_5_vl");
    let path = dir.path().join("model.safetensors");
    let tensors: Vec<_> = read_tensors(&path)
        .into_iter()
        .map(|(name, d, shape, mut bytes)| {
            if name == "model.layers.1.mlp.up_proj.weight" {
                // the qwen2_5_vl fixture is float32: one NaN and one infinity
                bytes[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
                bytes[8..12].copy_from_slice(&f32::INFINITY.to_le_bytes());
            }
            (name, d, shape, bytes)
        })
        .collect();
    write_tensors(&path, &tensors);
    let msg = error_of(load(dir.path()));
    assert!(
        msg.contains("model.safetensors")
            && msg.contains("`model.layers.1.mlp.up_proj.weight` holds 2 NaN or infinite"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_expected_and_found() {
    let dir = copy_checkpoint("qwen2_5_vl");
    let path = dir.path().join("model.safetensors");
    let tensors: Vec<_> = read_tensors(&path)
        .into_iter()
        .map(|(name, d, shape, bytes)| {
            if name == "model.layers.0.self_attn.k_proj.weight" {
                (name, d, vec![shape[1], shape[0]], bytes)
            } else {
                (name, d, shape, bytes)
            }
        })
        .collect();
    write_tensors(&path, &tensors);
    let msg = error_of(load(dir.path()));
    assert!(
        msg.contains("model.layers.0.self_attn.k_proj.weight")
            && msg.contains("shape [64, 32], expected [32, 64]"),
        "{msg}"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let model = load(&fixture_dir("qwen3_vl").join("checkpoint")).unwrap();
    let msg = error_of(model.forward(&TokenBatch::single(vec![1, 320]), None));
    assert!(msg.contains("token id 320 is outside the vocabulary of 320"), "{msg}");
    // image tokens without images
    let msg = error_of(model.forward(&TokenBatch::single(vec![1, 302, 300, 300, 303]), None));
    assert!(msg.contains("more images in the tokens than the 0 given grids"), "{msg}");
    let msg = error_of(TokenBatch::new(vec![1, 2, 3], vec![true; 3], 2, 2));
    assert!(msg.contains("needs 4 ids"), "{msg}");
}
