//! The models through the default [`Kernels`](seethink_models::kernels::Kernels) (burn's ops),
//! the path of every backend without kernels of its own (wgpu, cuda), here on `NdArray<f64>`:
//! logits against transformers on every Qwen case, greedy decoding with the KV cache, and frozen
//! weights stored in a narrower type (`nn::frozen`).
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::tensor::{DType, Distribution, Tensor, TensorData};
use common::{fixture_dir, greedy_is_the_argmax, logits_parity, Reference};
use seethink_models::nn::{store_frozen, weight_product, widen_trained, Linear, LoraAdapter, LoraConfig};
use seethink_models::{AnyVlm, QwenVl, Vlm};

type Generic = NdArray<f64>;
type Tracked = Autodiff<Generic>;

#[test]
fn logits_match_transformers_on_the_generic_path() {
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        for case in ["text", "image", "batch"] {
            let (diff, tolerance) = logits_parity::<Generic>(family, case);
            assert!(diff <= tolerance, "{family}/{case}: max|Δlogits| {diff:e} > {tolerance:e}");
        }
    }
}

#[test]
fn greedy_generation_is_the_argmax_on_the_generic_path() {
    greedy_is_the_argmax::<Generic>();
}

/// The types of a module's matrices.
fn matrix_types<M: Module<Generic>>(model: &M) -> Vec<DType> {
    struct Types(Vec<DType>);
    impl ModuleVisitor<Generic> for Types {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Generic, D>>) {
            if D == 2 {
                self.0.push(param.val().dtype());
            }
        }
    }
    let mut types = Types(Vec::new());
    model.visit(&mut types);
    types.0
}

#[test]
fn matrices_stored_in_f32_under_f64_compute_give_the_same_logits() {
    // the checkpoints are bf16, so f32 holds their values exactly, as bf16 holds a bf16
    // checkpoint's on a GPU: every matrix, the vision tower's and the tied embeddings' included
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        let dir = fixture_dir(family).join("checkpoint");
        let model = QwenVl::<Generic>::load(&dir, &Default::default()).unwrap();
        // cast after loading, or loaded so
        let stored = store_frozen(model.clone(), DType::F32);
        let loaded = QwenVl::<Generic>::load_in(&dir, DType::F32, &Default::default()).unwrap();
        let (tokens, images) = Reference::open(family).case_inputs("image");
        let logits = |m: &QwenVl<Generic>| m.forward(&tokens, images.as_ref()).unwrap().into_data();
        let wide = logits(&model);
        for narrow in [stored, loaded] {
            assert!(matrix_types(&narrow).iter().all(|t| *t == DType::F32), "{family}");
            let narrow = logits(&narrow);
            assert_eq!(narrow.dtype, DType::F64);
            assert_eq!(narrow, wide, "{family}: bitwise the same logits");
        }
    }
}

/// The rollout's KV cache kept in f32 under f64 compute (`rollout.kv_cache_dtype: Checkpoint`,
/// as bf16 under f32 on a GPU): the same greedy tokens as a cache in the compute type, with
/// log-probs within f32's rounding of the keys and values, on both Qwen families, with images
/// and without, several samples per prompt sharing their prefill.
#[test]
fn a_kv_cache_kept_narrower_generates_the_same_greedy_tokens() {
    use seethink_models::generate::{generate_keeping_kv_in, Prompt, SamplingConfig};
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        let model =
            QwenVl::<Generic>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        let (tokens, images) = Reference::open(family).case_inputs("image");
        let prompts = [
            Prompt::<Generic> { ids: tokens.ids.clone(), images },
            Prompt::<Generic> { ids: vec![5, 17, 42, 99, 3, 250], images: None },
        ];
        let sampling = SamplingConfig { max_new_tokens: 12, temperature: 0.0, ..Default::default() };
        let run = |kv| generate_keeping_kv_in(&model, &prompts, 2, &sampling, &[], 0, kv).unwrap();
        let (wide, narrow) = (run(None), run(Some(DType::F32)));
        for (w, n) in wide.iter().zip(&narrow) {
            assert_eq!(w.ids, n.ids, "{family}: greedy tokens");
            let gap = w.logprobs.iter().zip(&n.logprobs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(gap < 1e-4, "{family}: log-probs differ by {gap}");
        }
        // the cached keys and values are rounded to f32: the f64 logits of the step after a
        // prefill show it, within f32's rounding
        let (tokens, images) = Reference::open(family).case_inputs("image");
        let split = tokens.seq - 1;
        let pick = |from: usize, to: usize| {
            seethink_models::TokenBatch::new(
                tokens.ids[from..to].to_vec(),
                vec![true; to - from],
                1,
                to - from,
            )
            .unwrap()
        };
        let logits = |kv| {
            let mut state = model.new_state();
            state.kv = state.kv.stored_as(kv);
            model.forward_cached(&pick(0, split), images.as_ref(), &mut state).unwrap();
            let last = model.forward_cached(&pick(split, tokens.seq), None, &mut state).unwrap();
            last.into_data().to_vec::<f64>().unwrap()
        };
        let (in_f64, in_f32) = (logits(None), logits(Some(DType::F32)));
        let gap = in_f64.iter().zip(&in_f32).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max);
        assert!(gap > 0.0 && gap < 1e-5, "{family}: logits with the cache in f32 differ by {gap}");
        // a cache in the compute type is the one generate keeps
        let plain = seethink_models::generate::generate(&model, &prompts, 2, &sampling, &[], 0).unwrap();
        assert_eq!(plain, wide);
    }
}

/// A prompt's KV cache kept once for its samples and their own positions grown in blocks
/// (`KvLayout::shared_block`, the layout a GPU decodes with), against every sample holding the
/// prompt and room for its longest response (the host's): the same tokens, greedy and sampled,
/// with rows leaving the batch as they stop, on all four families, with images and without.
/// The keys and values each row attends to are the same, so the log-probs agree to f64's last
/// bits (attention's sums run over a different count of masked keys). And with the rows' own
/// positions bounded (`KvLayout::own_positions`) so tightly that most rows are preempted after
/// their first token and resumed from their prompt and tokens so far, several times over: the
/// same tokens again (their prefixes recomputed by a prefill, to f64's last bits).
#[test]
fn samples_sharing_their_prompt_s_cache_generate_what_samples_holding_it_do() {
    use seethink_models::generate::{generate_with, KvLayout, Prompt, SamplingConfig};
    for family in common::FAMILIES {
        let model =
            AnyVlm::<Generic>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        let mut prompts: Vec<Prompt<Generic>> =
            common::pipeline_prompts::<Generic>(family).into_iter().map(|(_, p)| p).collect();
        prompts.push(Prompt { ids: vec![5, 17, 42, 99, 3, 250], images: None });
        for temperature in [0.0, 1.0] {
            let sampling = SamplingConfig { max_new_tokens: 40, temperature, seed: 7, ..Default::default() };
            // a stop token common enough that rows stop at different steps
            let held = KvLayout { storage: None, shared_block: None, own_positions: None };
            let shared = KvLayout { shared_block: Some(4), ..held };
            // 4 rows of one block each, then fewer: the 12 or more rows preempted from the first step on
            let bounded = shared.bounded(Some(16));
            assert!(prompts.len() * 3 > 4);
            let run = |kv| generate_with(&model, &prompts, 3, &sampling, &[3, 7, 11], 0, kv).unwrap();
            let held = run(held);
            let lengths: Vec<usize> = held.iter().map(|c| c.ids.len()).collect();
            if temperature > 0.0 {
                assert!(lengths.iter().any(|&l| l < 40), "{family}: no row stopped early: {lengths:?}");
            }
            for (layout, kv) in [("shared", shared), ("bounded", bounded)] {
                for (h, s) in held.iter().zip(&run(kv)) {
                    assert_eq!(h.ids, s.ids, "{family}, {layout}, T = {temperature}: tokens");
                    let gap =
                        h.logprobs.iter().zip(&s.logprobs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(gap < 1e-6, "{family}, {layout}, T = {temperature}: log-probs differ by {gap}");
                }
            }
        }
    }
}

// Frozen weights stored in a narrower type (`nn::frozen`): f32 under f64 compute here, as bf16
// under f32 on a GPU.

#[test]
fn adapters_of_a_frozen_tower_stored_narrower_give_the_same_logits() {
    // LoRA on the vision tower and projector, then the tower frozen (a curriculum phase with
    // freeze_vision): its adapters take no gradient, so storage narrows them like any frozen matrix
    let dir = fixture_dir("qwen3_vl").join("checkpoint");
    let config = LoraConfig {
        rank: 2,
        vision_modules: vec!["qkv".into(), "linear_fc1".into()],
        projector: true,
        ..Default::default()
    };
    let adapted = AnyVlm::<Generic>::load(&dir, &Default::default()).unwrap().with_lora(&config).unwrap();
    // B = 0 at the start: nonzero values exact in f32, so that the adapters count in the logits
    let adapters = adapted
        .adapters()
        .into_iter()
        .map(|(path, a)| {
            let [r, d_out] = a.lora_b.dims();
            let b: Vec<f32> = (0..r * d_out).map(|i| ((i % 7) as f32 - 3.0) / 64.0).collect();
            let b = Tensor::from_data(TensorData::new(b, [r, d_out]), &Default::default());
            (path, LoraAdapter::from_factors(a.lora_a.val(), b, &config))
        })
        .collect();
    let model = adapted.with_adapters(adapters).freeze_vision();
    let stored = store_frozen(model.clone(), DType::F32);
    let frozen_adapter = |m: &AnyVlm<Generic>| {
        let (_, a) = m.adapters().into_iter().find(|(path, _)| path.starts_with("model.visual")).unwrap();
        (a.lora_a.val().dtype(), a.lora_b.val().dtype())
    };
    assert_eq!(frozen_adapter(&stored), (DType::F32, DType::F32));
    let (tokens, images) = Reference::open("qwen3_vl").case_inputs("image");
    let logits = |m: &AnyVlm<Generic>| m.forward(&tokens, images.as_ref()).unwrap().into_data();
    assert_eq!(logits(&stored), logits(&model), "bitwise the same logits");
    assert_ne!(logits(&model), logits(&model.without_lora()), "the adapters count");
    // and merged, in the compute type
    let merged = stored.merge_lora();
    assert!(matrix_types(&merged).contains(&DType::F64));
}

#[test]
fn only_matrices_without_gradients_are_cast() {
    let device = Default::default();
    let linear = || Linear::<Tracked> {
        weight: Param::from_tensor(Tensor::random([3, 2], Distribution::Default, &device)),
        bias: Some(Param::from_tensor(Tensor::zeros([2], &device))),
        lora: None,
    };
    let (frozen, trained) = (linear().no_grad(), linear());
    let (frozen, trained) = (store_frozen(frozen, DType::F32), store_frozen(trained, DType::F32));
    assert_eq!(frozen.weight.val().dtype(), DType::F32);
    assert_eq!(frozen.bias.unwrap().val().dtype(), DType::F64, "vectors keep their type");
    assert_eq!(trained.weight.val().dtype(), DType::F64, "trained matrices keep their type");
    let inference = store_frozen(linear().valid(), DType::F32);
    assert_eq!(inference.weight.val().dtype(), DType::F32, "without autodiff every matrix is frozen");
}

#[test]
fn trained_matrices_are_widened_into_leaves_and_frozen_ones_stay() {
    let device = Default::default();
    let narrow = || Linear::<Tracked> {
        weight: Param::from_tensor(
            Tensor::<Tracked, 2>::random([3, 2], Distribution::Default, &device).cast(DType::F32),
        ),
        bias: None,
        lora: None,
    };
    let (trained, frozen) = (widen_trained(narrow()), widen_trained(narrow().no_grad()));
    assert_eq!(frozen.weight.val().dtype(), DType::F32);
    assert_eq!(trained.weight.val().dtype(), DType::F64);
    let x = Tensor::<Tracked, 2>::ones([4, 3], &device);
    let grads = trained.forward(x).sum().backward();
    assert_eq!(trained.weight.val().grad(&grads).unwrap().dims(), [3, 2], "a leaf that takes its gradient");
}

#[test]
fn a_product_with_a_narrower_frozen_weight_is_the_product_with_its_values_and_their_gradient() {
    let device = Default::default();
    // values exact in f32, as a checkpoint's own values are in its stored type
    let exact = |t: Tensor<Generic, 2>| t.cast(DType::F32).cast(DType::F64);
    let w = exact(Tensor::random([5, 3], Distribution::Default, &device));
    let x = Tensor::<Tracked, 2>::from_inner(exact(Tensor::random([4, 5], Distribution::Default, &device)))
        .require_grad();
    let g = Tensor::<Tracked, 2>::from_inner(Tensor::random([4, 3], Distribution::Default, &device));
    let run = |w: Tensor<Tracked, 2>| {
        let y = weight_product(x.clone(), w);
        let grads = (y.clone() * g.clone()).sum().backward();
        (y.inner().into_data(), x.grad(&grads).unwrap().into_data())
    };
    let (y, dx) = run(Tensor::from_inner(w.clone()));
    let (y_frozen, dx_frozen) = run(Tensor::from_inner(w.cast(DType::F32)));
    assert_eq!(y_frozen.dtype, DType::F64);
    assert_eq!((y_frozen, dx_frozen), (y, dx), "the same values, bit for bit");
}
