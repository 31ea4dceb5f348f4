//! Sampling on the device ([`pick_on_device`], the generic path's default) against the host's
//! ([`pick_on_host`]): the same tokens and log-probs from the same random streams; top-k and
//! top-p keep only the likeliest tokens. Its own test binary: it runs on `NdArray<f64>`, whose
//! tensors would fix the CPU device's default float type for the `f32` tests beside it.

use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_models::device_sampling::pick_on_device;
use seethink_models::sampling::{pick_on_host, SamplingConfig};

type D = burn::backend::NdArray<f64>;

fn streams(rows: usize, seed: u64) -> Vec<ChaCha8Rng> {
    (0..rows)
        .map(|r| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(r as u64);
            rng
        })
        .collect()
}

#[test]
fn the_device_picks_the_host_s_tokens_and_log_probs_with_the_same_random_numbers() {
    let (rows, vocab) = (48, 307);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // flat and peaked rows, so that top-p cuts at different depths; every other row rounded to
    // quarters, so that many logits tie (as bf16 logits do) and ties are taken by increasing id
    let values: Vec<f32> = (0..rows * vocab)
        .map(|i| {
            let (row, x) = (i / vocab, rng.random::<f32>() * 4.0 * (1 + (i / vocab) % 4) as f32 - 2.0);
            match row % 2 {
                0 => x,
                _ => (x * 4.0).round() / 4.0,
            }
        })
        .collect();
    let logits = Tensor::<D, 2>::from_data(TensorData::new(values, [rows, vocab]), &Default::default());
    // the rows without ties alone too: every cut then takes its first tie, which the device
    // finds without the bisection on ids
    let untied = logits.clone().reshape([rows / 2, 2, vocab]).narrow(1, 0, 1).reshape([rows / 2, vocab]);
    let input_only = [7, 299];
    let settings = [
        (0.0, 1.0, 0),
        (1.0, 1.0, 0),
        (0.7, 0.9, 0),
        (1.3, 0.5, 0),
        (1.0, 1.0, 5),
        (0.6, 0.95, 40),
        (0.9, 1.0, 299),
        // only the likeliest token kept: the lowest id among tied maxima, without the bisection
        (1.0, 1.0, 1),
    ];
    for (logits, (temperature, top_p, top_k)) in
        [logits, untied].iter().flat_map(|logits| settings.map(|setting| (logits, setting)))
    {
        let rows = logits.dims()[0];
        let sampling = SamplingConfig { temperature, top_p, top_k, ..Default::default() };
        let (mut host_rngs, mut device_rngs) = (streams(rows, 11), streams(rows, 11));
        let host = pick_on_host(logits.clone(), &mut host_rngs, &input_only, &sampling).unwrap();
        let device = pick_on_device(logits.clone(), &mut device_rngs, &input_only, &sampling).unwrap();
        let setting = format!("{rows} rows, T {temperature}, top-p {top_p}, top-k {top_k}");
        for (r, ((h, hl), (d, dl))) in host.iter().zip(&device).enumerate() {
            assert_eq!(h, d, "{setting}: row {r}");
            assert!((hl - dl).abs() < 1e-5, "{setting}: row {r}: log-prob {hl} vs {dl}");
            assert!(!input_only.contains(d), "{setting}: an input-only token was sampled");
        }
        // both consumed the same random numbers
        assert_eq!(host_rngs[0].random::<u64>(), device_rngs[0].random::<u64>(), "{setting}");
    }
}

#[test]
fn a_cut_between_two_logits_one_ulp_apart_is_found() {
    // per row, two likely tokens whose logits are adjacent f32 values, the rest unlikely: the
    // bisection's bracket still holds both after its first steps, so it must go on
    let (rows, vocab) = (32, 40);
    let (low, high) = (1.0e-3f32, f32::from_bits(1.0e-3f32.to_bits() + 1));
    let values: Vec<f32> = (0..rows * vocab)
        .map(|i| match (i / vocab % 2, i % vocab) {
            (0, 3) | (1, 9) => low,
            (0, 9) | (1, 3) => high,
            (_, j) => -20.0 - j as f32,
        })
        .collect();
    let logits = Tensor::<D, 2>::from_data(TensorData::new(values, [rows, vocab]), &Default::default());
    for top_k in [0, 1] {
        let sampling = SamplingConfig { temperature: 1.0, top_k, ..Default::default() };
        let host = pick_on_host(logits.clone(), &mut streams(rows, 2), &[], &sampling).unwrap();
        let device = pick_on_device(logits.clone(), &mut streams(rows, 2), &[], &sampling).unwrap();
        let tokens = |picks: &[(u32, f32)]| picks.iter().map(|(t, _)| *t).collect::<Vec<u32>>();
        assert_eq!(tokens(&device), tokens(&host), "top-k {top_k}");
        if top_k == 1 {
            assert!(tokens(&host).iter().enumerate().all(|(r, &t)| t == [9, 3][r % 2]), "the larger logit");
        }
    }
}

#[test]
fn top_k_and_top_p_keep_only_the_likeliest_tokens() {
    // row: token 0 has mass ~0.64, token 1 ~0.24, the rest share ~0.12
    let mut values = [0.0f32; 50];
    (values[0], values[1]) = (5.0, 4.0);
    let logits =
        Tensor::<D, 2>::from_data(TensorData::new(values.repeat(200), [200, 50]), &Default::default());
    let draw = |top_p: f32, top_k: usize| {
        let sampling = SamplingConfig { temperature: 1.0, top_p, top_k, ..Default::default() };
        let picks = pick_on_device(logits.clone(), &mut streams(200, 5), &[], &sampling).unwrap();
        picks.into_iter().map(|(t, _)| t).collect::<std::collections::BTreeSet<u32>>()
    };
    assert_eq!(draw(0.5, 0), [0].into());
    assert_eq!(draw(0.8, 0), [0, 1].into());
    assert_eq!(draw(1.0, 2), [0, 1].into());
    assert!(draw(1.0, 0).len() > 2, "without truncation the tail is sampled too");
}
