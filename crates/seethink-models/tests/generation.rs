//! Incremental decoding with the KV cache equals the full forward pass, and generation is
//! consistent with it (greedy = argmax, log-probs = log-softmax, shared group prefill), for
//! every family on prompts with and without images.

mod common;

use burn::tensor::Tensor;
use common::{fixture_dir, greedy_is_the_argmax, Reference, B, FAMILIES};
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::{AnyVlm, ImageInput, QwenVl, TokenBatch, Vlm};

fn model(family: &str) -> QwenVl<B> {
    QwenVl::<B>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap()
}

/// The fixture's left-padded batch with its two images.
fn batch_case(family: &str) -> (TokenBatch, ImageInput<B>) {
    let (tokens, images) = Reference::open(family).case_inputs("batch");
    (tokens, images.expect("the batch case has images"))
}

fn columns(t: &TokenBatch, from: usize, to: usize) -> TokenBatch {
    let pick = |v: &[u32]| -> Vec<u32> {
        (0..t.batch).flat_map(|b| v[b * t.seq + from..b * t.seq + to].to_vec()).collect()
    };
    let mask = (0..t.batch).flat_map(|b| t.mask[b * t.seq + from..b * t.seq + to].to_vec()).collect();
    TokenBatch::new(pick(&t.ids), mask, t.batch, to - from).unwrap()
}

/// Max |Δ| between the logits of `tokens` in one forward pass and fed to the cache in pieces
/// (all but the last 5 positions, then 2, then one at a time), over the real tokens.
fn cached_against_full<M: Vlm<B>>(model: &M, tokens: &TokenBatch, images: Option<&ImageInput<B>>) -> f32 {
    let full: Vec<f32> = model.forward(tokens, images).unwrap().into_data().to_vec().unwrap();
    let split = tokens.seq - 5;
    let mut state = model.new_state();
    let mut pieces = vec![model.forward_cached(&columns(tokens, 0, split), images, &mut state).unwrap()];
    // two tokens at once, then one at a time
    pieces.push(model.forward_cached(&columns(tokens, split, split + 2), None, &mut state).unwrap());
    for s in split + 2..tokens.seq {
        pieces.push(model.forward_cached(&columns(tokens, s, s + 1), None, &mut state).unwrap());
    }
    let cached: Vec<f32> = Tensor::cat(pieces, 1).into_data().to_vec().unwrap();
    let vocab = model.vocab_size();
    let mut max_diff = 0f32;
    for (pos, valid) in tokens.mask.iter().enumerate() {
        if *valid {
            for v in 0..vocab {
                max_diff = max_diff.max((full[pos * vocab + v] - cached[pos * vocab + v]).abs());
            }
        }
    }
    max_diff
}

#[test]
fn cached_decoding_matches_full_forward() {
    for family in FAMILIES {
        let model = AnyVlm::<B>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        // the left-padded batch with images, and the text-only prompt
        let (batch, images) = Reference::open(family).case_inputs::<B>("batch");
        let pipeline = Reference::open_file(&fixture_dir(family).join("pipeline_reference.safetensors"));
        let (text, no_images) = pipeline.case_inputs::<B>("text");
        assert!(images.is_some() && no_images.is_none());
        for (case, tokens, images) in [("batch", batch, images), ("text", text, None)] {
            let max_diff = cached_against_full(&model, &tokens, images.as_ref());
            println!("{family}/{case}: cached vs full max|Δ| = {max_diff:e}");
            assert!(max_diff < 1e-4, "{family}/{case}: {max_diff}");
        }
    }
}

#[test]
fn greedy_generation_is_the_argmax_of_full_forwards() {
    greedy_is_the_argmax::<B>();
}

#[test]
fn group_samples_share_the_prefill_and_stop_on_eos() {
    let model = model("qwen3_vl");
    let (tokens, images) = batch_case("qwen3_vl");
    let rows: Vec<Vec<u32>> = (0..tokens.batch)
        .map(|b| {
            tokens
                .row(b)
                .iter()
                .zip(&tokens.mask[b * tokens.seq..])
                .filter(|(_, &m)| m)
                .map(|(&i, _)| i)
                .collect()
        })
        .collect();
    // split the batch's two images between the two prompts
    let first = images.grids[0].rows();
    let image = |k: usize| {
        let (start, len) = if k == 0 { (0, first) } else { (first, images.grids[1].rows()) };
        Some(ImageInput {
            pixel_values: images.pixel_values.clone().narrow(0, start, len),
            grids: vec![images.grids[k]],
            features: None,
        })
    };
    let prompts: Vec<Prompt<B>> =
        rows.into_iter().enumerate().map(|(k, ids)| Prompt { ids, images: image(k) }).collect();
    let greedy = SamplingConfig { max_new_tokens: 6, temperature: 0.0, ..Default::default() };
    let single = generate(&model, &prompts, 1, &greedy, &[], 0).unwrap();
    let grouped = generate(&model, &prompts, 3, &greedy, &[], 0).unwrap();
    assert_eq!(grouped.len(), 6);
    for (r, c) in grouped.iter().enumerate() {
        assert_eq!(c.prompt, r / 3);
        assert_eq!(c.ids, single[r / 3].ids);
    }
    // stopping: declare the second greedy token of prompt 0 a stop token
    let stop = single[0].ids[1];
    let stopped = generate(&model, &prompts, 1, &greedy, &[stop], 0).unwrap();
    let expected_len = single[0].ids.iter().position(|&t| t == stop).unwrap() + 1;
    assert_eq!(stopped[0].ids, single[0].ids[..expected_len].to_vec());
    assert!(stopped[0].stopped);
    // sampling is reproducible from the seed and differs across seeds
    let sampled = |seed| {
        let s =
            SamplingConfig { max_new_tokens: 6, temperature: 1.0, top_p: 0.95, seed, ..Default::default() };
        generate(&model, &prompts, 4, &s, &[], 0).unwrap()
    };
    assert_eq!(sampled(11), sampled(11));
    assert_ne!(sampled(11), sampled(12));
}

#[test]
fn every_sequence_has_its_own_random_stream() {
    let model = model("qwen3_vl");
    let prompt = Prompt::<B> { ids: vec![5, 17, 42, 99], images: None };
    let other = Prompt::<B> { ids: vec![7, 8, 9], images: None };
    let sampling = SamplingConfig { max_new_tokens: 8, temperature: 1.0, seed: 5, ..Default::default() };
    // two identical prompts in one call sample differently
    let both = generate(&model, &[prompt.clone(), prompt.clone()], 1, &sampling, &[], 0).unwrap();
    assert_ne!(both[0].ids, both[1].ids);
    // a sequence's samples depend on its seed and stream only, not on what else is batched
    let batched = generate(&model, &[other.clone(), prompt.clone()], 2, &sampling, &[], 0).unwrap();
    let alone_other = generate(&model, &[other], 2, &sampling, &[], 0).unwrap();
    let alone =
        generate(&model, &[prompt], 2, &SamplingConfig { stream: 2, ..sampling.clone() }, &[], 0).unwrap();
    assert_eq!(
        batched[..2].iter().map(|c| &c.ids).collect::<Vec<_>>(),
        alone_other.iter().map(|c| &c.ids).collect::<Vec<_>>()
    );
    assert_eq!(
        batched[2..].iter().map(|c| &c.ids).collect::<Vec<_>>(),
        alone.iter().map(|c| &c.ids).collect::<Vec<_>>()
    );
}

#[test]
fn a_row_that_stops_leaves_the_others_unchanged() {
    let model = model("qwen3_vl");
    let prompts: Vec<Prompt<B>> =
        [vec![305, 84, 82, 198, 39], vec![305, 84, 82, 198, 40, 41, 42], vec![305, 70, 198]]
            .into_iter()
            .map(|ids| Prompt { ids, images: None })
            .collect();
    let sampling = SamplingConfig { max_new_tokens: 12, temperature: 1.0, seed: 4, ..Default::default() };
    let free = generate(&model, &prompts, 4, &sampling, &[], 0).unwrap();
    // a token some completions produce early and others never: those stop, the rest go on
    let stop = (0..320u32)
        .find(|t| {
            let hits = free.iter().filter(|c| c.ids[..6].contains(t)).count();
            hits >= 2 && free.iter().any(|c| !c.ids.contains(t))
        })
        .expect("a token that stops some completions early");
    let stopped = generate(&model, &prompts, 4, &sampling, &[stop], 0).unwrap();
    let mut early = 0;
    for (a, b) in free.iter().zip(&stopped) {
        let end = a.ids.iter().position(|&t| t == stop).map_or(a.ids.len(), |p| p + 1);
        early += usize::from(end < a.ids.len());
        assert_eq!(b.ids, a.ids[..end], "the same tokens up to the stop");
        assert_eq!(b.logprobs, a.logprobs[..end], "the same log-probs up to the stop");
        assert_eq!(b.stopped, end < a.ids.len() || a.ids.last() == Some(&stop));
    }
    assert!(early >= 2, "{early} completions stopped early");
}

/// The host decodes with each prompt's KV cache kept once for its samples, read where it is
/// ([`Kernels::cached_attention`](seethink_models::kernels::Kernels::cached_attention)), and
/// each sample's own positions grown in blocks. Against every sample holding a copy of its
/// prompt and room for its longest response: the same tokens and the same log-probs to the
/// bit, greedy and sampled, with rows leaving the batch as they stop, on all four families,
/// with images and without, with own blocks small enough to grow many times.
#[test]
fn samples_reading_their_prompt_in_place_decode_to_the_bit_what_samples_holding_copies_do() {
    use seethink_models::generate::{generate_with, KvLayout, KV_BLOCK};
    for family in FAMILIES {
        let model = AnyVlm::<B>::load(fixture_dir(family).join("checkpoint"), &Default::default()).unwrap();
        let mut prompts: Vec<Prompt<B>> =
            common::pipeline_prompts::<B>(family).into_iter().map(|(_, p)| p).collect();
        prompts.push(Prompt { ids: vec![5, 17, 42, 99, 3, 250], images: None });
        for temperature in [0.0, 1.0] {
            let sampling = SamplingConfig { max_new_tokens: 40, temperature, seed: 7, ..Default::default() };
            let held = KvLayout { storage: None, shared_block: None, own_positions: None };
            let run = |kv| generate_with(&model, &prompts, 3, &sampling, &[3, 7, 11], 0, kv).unwrap();
            let held = run(held);
            if temperature > 0.0 {
                assert!(held.iter().any(|c| c.ids.len() < 40), "{family}: no row stopped early");
            }
            for block in [4, KV_BLOCK] {
                let shared = run(KvLayout { shared_block: Some(block), ..KvLayout::of::<B>(None) });
                for (h, s) in held.iter().zip(&shared) {
                    assert_eq!(h.ids, s.ids, "{family}, block {block}, T = {temperature}: tokens");
                    let bits = |c: &seethink_models::generate::Completion| {
                        c.logprobs.iter().map(|l| l.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(bits(h), bits(s), "{family}, block {block}, T = {temperature}: log-probs");
                }
            }
        }
    }
}
