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
use seethink_models::{AnyVlm, ImageInput, QwenVl, TokenBatch, Vlm};

pub type B = NdArray<f32>;

/// Every family's fixture: Qwen2.5-VL, Qwen3-VL, InternVL3, InternVL3.5.
pub const FAMILIES: [&str; 4] = ["qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5"];

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
        (tokens, self.case_images(case))
    }

    /// The images of reference case `case`, if it has `<case>.pixel_values`: Qwen-VL patches
    /// (`[patches, patch_dim]` with `<case>.image_grid_thw`) or InternVL tiles (`[tiles, 3, side,
    /// side]` with `<case>.num_patches`, the tiles of each image).
    pub fn case_images<Bk: Backend>(&self, case: &str) -> Option<ImageInput<Bk>> {
        self.has(&format!("{case}.pixel_values")).then(|| {
            let (pixels, shape) = self.f32(&format!("{case}.pixel_values"));
            let rows = [shape[0], shape[1..].iter().product()];
            let pixels = Tensor::<Bk, 2>::from_data(TensorData::new(pixels, rows), &Default::default());
            match self.has(&format!("{case}.num_patches")) {
                true => {
                    let tiles = self.i64(&format!("{case}.num_patches")).0;
                    ImageInput::tiles(pixels, tiles.iter().map(|&n| n as usize).collect())
                }
                false => ImageInput::patches(pixels, self.grids(case)),
            }
        })
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

/// The prompts of fixture `family`'s end-to-end cases (`pipeline_cases.json`), named: the token
/// ids transformers' processor made and, for the image cases, its pixel values.
pub fn pipeline_prompts<Bk: Backend>(family: &str) -> Vec<(String, Prompt<Bk>)> {
    let reference = Reference::open_file(&fixture_dir(family).join("pipeline_reference.safetensors"));
    cases(family)
        .into_iter()
        .map(|case| {
            let ids =
                reference.i64(&format!("{}.input_ids", case.name)).0.iter().map(|&i| i as u32).collect();
            let images = reference.case_images(&case.name);
            (case.name, Prompt { ids, images })
        })
        .collect()
}

/// Index of the largest value, the lowest index winning a tie (the greedy rule).
fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, &l)| if l > row[best] { i } else { best })
}

/// Greedy decoding with the KV cache on backend `Bk` picks, at every step, the argmax of an
/// uncached forward pass over the prompt and the tokens so far, the input-only tokens
/// (image/video placeholders) set aside, and scores it with that pass's log-softmax; for
/// every family, on its end-to-end prompts (text-only and with images) and two short text
/// prompts, each decoded alone and all together in one left-padded batch. Each step is
/// checked given the tokens before it, so a tie within 1e-4 (which the batch's padding may
/// break the other way) is accepted. At least one step must have a placeholder as the
/// unrestricted argmax (InternVL3.5's `placeholder` case), where transformers' plain greedy
/// takes it.
pub fn greedy_is_the_argmax<Bk: Kernels>() {
    const NEW: usize = 12;
    let mut placeholder_steps = Vec::new();
    for family in FAMILIES {
        let model = AnyVlm::<Bk>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        let mut named = pipeline_prompts::<Bk>(family);
        named.push(("six ids".into(), Prompt { ids: vec![5, 17, 42, 99, 3, 250], images: None }));
        named.push(("two ids".into(), Prompt { ids: vec![7, 8], images: None }));
        let (names, prompts): (Vec<String>, Vec<Prompt<Bk>>) = named.into_iter().unzip();
        assert!(prompts.iter().any(|p| p.images.is_none()) && prompts.iter().any(|p| p.images.is_some()));
        let sampling = SamplingConfig { max_new_tokens: NEW, temperature: 0.0, ..Default::default() };
        let together = generate(&model, &prompts, 1, &sampling, &[], 0).unwrap();
        let alone = prompts
            .iter()
            .map(|p| generate(&model, std::slice::from_ref(p), 1, &sampling, &[], 0).unwrap().remove(0));
        let input_only = model.input_only_tokens();
        let vocab = model.vocab_size();
        for (how, completions) in [("alone", alone.collect::<Vec<_>>()), ("in a batch", together)] {
            for ((completion, prompt), name) in completions.iter().zip(&prompts).zip(&names) {
                assert_eq!(completion.ids.len(), NEW, "{family}/{name}");
                let mut ids = prompt.ids.clone();
                ids.extend(&completion.ids);
                let logits: Vec<f32> = model
                    .forward(&TokenBatch::single(ids), prompt.images.as_ref())
                    .unwrap()
                    .into_data()
                    .convert::<f32>()
                    .to_vec()
                    .unwrap();
                for (k, &token) in completion.ids.iter().enumerate() {
                    let label = format!("{family}/{name} ({how}), new token {k}");
                    let pos = prompt.ids.len() - 1 + k;
                    let full = &logits[pos * vocab..(pos + 1) * vocab];
                    let mut row = full.to_vec();
                    for &t in &input_only {
                        row[t as usize] = f32::NEG_INFINITY;
                    }
                    let best = argmax(&row);
                    assert!(
                        token as usize == best || row[token as usize] >= row[best] - 1e-4,
                        "{label}: cached greedy took {token} ({}), the uncached argmax is {best} ({})",
                        row[token as usize],
                        row[best]
                    );
                    if input_only.contains(&(argmax(full) as u32)) {
                        placeholder_steps.push(label.clone());
                    }
                    // its log-prob is over the whole vocabulary, as EasyR1's actor scores it
                    let expected = log_softmax_at(full, token as usize);
                    assert!((completion.logprobs[k] - expected).abs() < 1e-4, "{label}: log-prob");
                }
            }
        }
    }
    assert!(!placeholder_steps.is_empty(), "no step had a placeholder as its argmax");
    println!("steps whose unrestricted argmax is a placeholder: {placeholder_steps:?}");
}
