//! Shared helpers of the integration tests: fixture paths and reference tensors.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use seethink_models::generate::{generate, Prompt};
use seethink_models::kernels::Kernels;
use seethink_models::sampling::{log_softmax_at, SamplingConfig};
use seethink_models::{ImageInput, QwenVl, TokenBatch, Vlm};

pub type B = NdArray<f32>;

/// `tests/fixtures/<family>` at the repository root.
pub fn fixture_dir(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(family)
}

/// The tensors of a fixture's `reference.safetensors`.
pub struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    pub fn open(family: &str) -> Self {
        Self::open_file(&fixture_dir(family).join("reference.safetensors"))
    }

    pub fn open_file(path: &std::path::Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes }
    }

    pub fn has(&self, name: &str) -> bool {
        SafeTensors::deserialize(&self.bytes).unwrap().tensor(name).is_ok()
    }

    fn raw(&self, name: &str, dtype: Dtype) -> (Vec<u8>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("reference tensor {name} missing"));
        assert_eq!(t.dtype(), dtype, "{name}");
        (t.data().to_vec(), t.shape().to_vec())
    }

    pub fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let (data, shape) = self.raw(name, Dtype::F32);
        let values = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        (values, shape)
    }

    pub fn i64(&self, name: &str) -> (Vec<i64>, Vec<usize>) {
        let (data, shape) = self.raw(name, Dtype::I64);
        let values = data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        (values, shape)
    }
}

/// A temporary copy of a fixture checkpoint directory, for tests that damage it.
pub fn copy_checkpoint(family: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(family).join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

/// All tensors of a single-file safetensors checkpoint as (name, dtype, shape, bytes).
pub fn read_tensors(path: &std::path::Path) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes tensors as a safetensors file.
pub fn write_tensors(path: &std::path::Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (name.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

impl Reference {
    /// The token batch (mask from `<case>.attention_mask`, all ones without it) and images
    /// (if `<case>.pixel_values` exists) of reference case `case`.
    pub fn case_inputs<Bk: Backend>(&self, case: &str) -> (TokenBatch, Option<ImageInput<Bk>>) {
        let (ids, shape) = self.i64(&format!("{case}.input_ids"));
        let (batch, seq) = (shape[0], shape[1]);
        let mask: Vec<bool> = if self.has(&format!("{case}.attention_mask")) {
            self.i64(&format!("{case}.attention_mask")).0.iter().map(|&m| m == 1).collect()
        } else {
            vec![true; batch * seq]
        };
        let tokens = TokenBatch::new(ids.iter().map(|&i| i as u32).collect(), mask, batch, seq).unwrap();
        let images = self.has(&format!("{case}.pixel_values")).then(|| {
            let (pixels, pshape) = self.f32(&format!("{case}.pixel_values"));
            ImageInput::patches(
                Tensor::<Bk, 2>::from_data(
                    TensorData::new(pixels, [pshape[0], pshape[1]]),
                    &Default::default(),
                ),
                self.grids(case),
            )
        });
        (tokens, images)
    }

    /// `<case>.image_grid_thw` as `[t, h, w]` triples.
    pub fn grids(&self, case: &str) -> Vec<[usize; 3]> {
        let (grid, _) = self.i64(&format!("{case}.image_grid_thw"));
        grid.chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect()
    }
}

/// One end-to-end case of a fixture's `pipeline_cases.json`: the prompt and image files given to
/// transformers' processor, and the chat template's rendering.
pub struct Case {
    pub name: String,
    pub prompt: String,
    pub images: Vec<String>,
    pub rendered: String,
}

/// The end-to-end cases of fixture `family`.
pub fn cases(family: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixture_dir(family).join("pipeline_cases.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            prompt: c["prompt"].as_str().unwrap().into(),
            images: c["images"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().into()).collect(),
            rendered: c["rendered"].as_str().unwrap().into(),
        })
        .collect()
}

/// Logits of reference case `case` of `family` on backend `Bk` against transformers': (max |Δ|
/// over non-padding positions, tolerance 1e-4 · max(1, max |reference|)).
pub fn logits_parity<Bk: Kernels>(family: &str, case: &str) -> (f32, f32) {
    let device = Default::default();
    let model = QwenVl::<Bk>::load(fixture_dir(family).join("checkpoint"), &device).unwrap();
    let reference = Reference::open(family);
    let (tokens, images) = reference.case_inputs(case);
    let logits = model.forward(&tokens, images.as_ref()).unwrap();
    let (expected, eshape) = reference.f32(&format!("{case}.logits"));
    assert_eq!(logits.dims().to_vec(), eshape);
    let actual = logits.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let vocab = eshape[2];
    let mut max_diff = 0f32;
    let mut max_ref = 0f32;
    for (pos, valid) in tokens.mask.iter().enumerate() {
        if !valid {
            continue;
        }
        for v in 0..vocab {
            let i = pos * vocab + v;
            max_diff = max_diff.max((actual[i] - expected[i]).abs());
            max_ref = max_ref.max(expected[i].abs());
        }
    }
    let tolerance = 1e-4 * max_ref.max(1.0);
    println!("{family}/{case}: max|Δ| = {max_diff:.3e}, max|ref| = {max_ref:.3}, tolerance {tolerance:.3e}");
    (max_diff, tolerance)
}

/// Greedy decoding on backend `Bk` picks the argmax of full forward passes.
pub fn greedy_is_the_argmax<Bk: Kernels>() {
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        let model = QwenVl::<Bk>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        let prompts = vec![
            Prompt::<Bk> { ids: vec![5, 17, 42, 99, 3, 250], images: None },
            Prompt::<Bk> { ids: vec![7, 8], images: None },
        ];
        let sampling = SamplingConfig { max_new_tokens: 8, temperature: 0.0, ..Default::default() };
        let out = generate(&model, &prompts, 1, &sampling, &[], 0).unwrap();
        for (completion, prompt) in out.iter().zip(&prompts) {
            assert_eq!(completion.ids.len(), 8);
            let mut ids = prompt.ids.clone();
            ids.extend(&completion.ids);
            let logits: Vec<f32> = model
                .forward(&TokenBatch::single(ids.clone()), None)
                .unwrap()
                .into_data()
                .convert::<f32>()
                .to_vec()
                .unwrap();
            let vocab = model.vocab_size();
            for (k, &token) in completion.ids.iter().enumerate() {
                let pos = prompt.ids.len() - 1 + k;
                // generation never samples the image/video placeholders
                let full = logits[pos * vocab..(pos + 1) * vocab].to_vec();
                let mut row = full.clone();
                for t in model.input_only_tokens() {
                    row[t as usize] = f32::NEG_INFINITY;
                }
                let best = row.iter().enumerate().fold(0, |b, (i, &l)| if l > row[b] { i } else { b });
                assert_eq!(token as usize, best, "{family} step {k}");
                // its log-prob is over the whole vocabulary, as EasyR1's actor scores it
                assert!((completion.logprobs[k] - log_softmax_at(&full, token as usize)).abs() < 1e-4);
            }
        }
    }
}
