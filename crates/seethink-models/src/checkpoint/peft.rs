//! Writing LoRA adapters as a PEFT adapter directory (`adapter_config.json` and
//! `adapter_model.safetensors`, the two files peft's `save_pretrained` writes and
//! `PeftModel.from_pretrained` reads).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;

use super::{Dtype, HfTensor};
use crate::error::{ModelError, Result};
use crate::nn::LoraConfig;

/// Writes `tensors` (peft's key names and shapes, float32) and `config` as a PEFT LoRA adapter
/// directory `out_dir` (created if needed). `target_modules` is peft's regex (a full match on
/// module names); `base_model_name_or_path` is where peft looks for the base model.
pub fn write_peft_adapter(
    out_dir: &Path,
    config: &LoraConfig,
    target_modules: &str,
    base_model_name_or_path: &str,
    tensors: &[HfTensor],
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let adapter_config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": null,
        "base_model_name_or_path": base_model_name_or_path,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "use_rslora": config.rslora,
        "target_modules": target_modules,
        "bias": "none",
        "fan_in_fan_out": false,
        "init_lora_weights": true,
        "inference_mode": true,
    });
    let path = out_dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&adapter_config).expect("a JSON value serialises");
    std::fs::write(&path, text).map_err(io(&path))?;

    let path = out_dir.join("adapter_model.safetensors");
    let encoded: Vec<(&str, &[usize], Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| (name.as_str(), shape.as_slice(), Dtype::F32.encode(values)))
        .collect();
    let st_error = |e: safetensors::SafeTensorError| ModelError::Safetensors {
        path: path.clone(),
        message: e.to_string(),
    };
    let views = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((*name, TensorView::new(Dtype::F32.safetensors(), shape.to_vec(), bytes).map_err(st_error)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &path).map_err(st_error)
}
