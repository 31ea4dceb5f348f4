//! The fused cubecl kernels (`kernels::cube`) on wgpu against their defaults (burn's ops) on
//! `NdArray<f64>`: RMSNorm with and without the residual add, the rotary embedding on a strided
//! view with and without a bias, SwiGLU, decoding attention with grouped heads, left padding,
//! keys read through a cache's narrowed view, more keys than one pass takes and shared prompt
//! prefixes read in place (the rows' own picked by an index or not), the KV cache's write to
//! rows picked by an index, and the sampling rule (greedy and from the whole softmax). Runs where wgpu finds an adapter (a GPU, or Mesa's lavapipe
//! on a CPU); built only with `--features wgpu`.
#![cfg(all(feature = "wgpu", not(feature = "fusion")))]

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{NdArray, Wgpu};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seethink_models::decode::CachedKv;
use seethink_models::device_sampling::pick_on_device;
use seethink_models::kernels::Kernels;
use seethink_models::sampling::SamplingConfig;

type G = Wgpu;
type H = NdArray<f64>;

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn both<const D: usize>(shape: [usize; D], seed: u64) -> (Tensor<G, D>, Tensor<H, D>) {
    let values = random(shape, seed);
    (
        Tensor::from_data(TensorData::new(values.clone(), shape), &WgpuDevice::default()),
        Tensor::from_data(TensorData::new(values, shape), &Default::default()),
    )
}

/// The largest difference between the two results, which must be within `tolerance`.
fn assert_close<const D: usize>(fused: Tensor<G, D>, reference: Tensor<H, D>, tolerance: f64, what: &str) {
    assert_eq!(fused.dims(), reference.dims(), "{what}: shapes");
    let fused = fused.into_data().convert::<f64>().to_vec::<f64>().unwrap();
    let reference = reference.into_data().to_vec::<f64>().unwrap();
    let worst = fused.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= tolerance, "{what}: off by {worst:e} (tolerance {tolerance:e})");
}

#[test]
fn rms_norm_equals_burn_s_ops() {
    for (rows, dim) in [(3, 16), (5, 600), (1, 2048)] {
        let (x, xr) = both([rows, 2, dim], 1);
        let (w, wr) = both([dim], 2);
        assert_close(
            G::rms_norm(x.clone(), w.clone(), 1e-6),
            H::rms_norm(xr.clone(), wr.clone(), 1e-6),
            2e-6,
            "rms_norm",
        );
        let (delta, deltar) = both([rows, 2, dim], 3);
        let (sum, normed) = G::add_rms_norm(x, delta, w, 1e-6);
        let (sumr, normedr) = H::add_rms_norm(xr, deltar, wr, 1e-6);
        assert_close(sum, sumr, 1e-6, "the residual add");
        assert_close(normed, normedr, 2e-6, "rms_norm after the add");
    }
}

#[test]
fn rotary_equals_burn_s_ops_on_a_strided_view() {
    let (batch, seq, heads, dim) = (2, 3, 4, 16);
    let (x, xr) = both([batch, seq, heads, dim], 3);
    let (cos, cosr) = both([batch, seq, dim], 4);
    let (sin, sinr) = both([batch, seq, dim], 5);
    // the heads as the attention reads them: [B, S, H, D] with the middle axes swapped, a view
    let fused = G::rotary(x.clone().swap_dims(1, 2), None, cos.clone(), sin.clone());
    let reference = H::rotary(xr.clone().swap_dims(1, 2), None, cosr.clone(), sinr.clone());
    assert_close(fused, reference, 1e-6, "rotary");
    let (bias, biasr) = both([heads * dim], 9);
    let fused = G::rotary(x.swap_dims(1, 2), Some(bias), cos, sin);
    assert_close(fused, H::rotary(xr.swap_dims(1, 2), Some(biasr), cosr, sinr), 1e-6, "rotary with a bias");
    // tables shared by every row of the batch
    let (x, xr) = both([batch, heads, seq, dim], 6);
    let (cos, cosr) = both([1, seq, dim], 7);
    let (sin, sinr) = both([1, seq, dim], 8);
    assert_close(
        G::rotary(x, None, cos, sin),
        H::rotary(xr, None, cosr, sinr),
        1e-6,
        "rotary, shared tables",
    );
}

#[test]
fn swiglu_equals_burn_s_ops() {
    let (gate, gater) = both([3, 5, 70], 9);
    let (up, upr) = both([3, 5, 70], 10);
    assert_close(G::swiglu(gate.mul_scalar(4.0), up), H::swiglu(gater.mul_scalar(4.0), upr), 1e-6, "swiglu");
}

/// `blocked [B, 1, 1, keys]`: row `b` has its first `pads[b]` keys padded.
fn padding<B: Backend>(pads: &[usize], keys: usize, device: &B::Device) -> Tensor<B, 4, Bool> {
    let flags: Vec<bool> = pads.iter().flat_map(|&p| (0..keys).map(move |j| j < p)).collect();
    Tensor::from_data(TensorData::new(flags, [pads.len(), 1, 1, keys]), device)
}

#[test]
fn decoding_attention_equals_burn_s_ops() {
    // (batch, query heads, key heads, queries, keys, head dim): grouped heads, one query and a
    // few, and more keys than one pass of 1,024
    for (batch, heads, kv_heads, queries, keys, dim) in
        [(2, 4, 2, 1, 37, 16), (3, 6, 2, 2, 300, 64), (1, 2, 1, 1, 1500, 128), (2, 2, 2, 1, 5, 8)]
    {
        let (q, qr) = both([batch, heads, queries, dim], 11);
        // the cache holds room beyond the keys: read through a narrowed view, as decoding does
        let (k, kr) = both([batch, kv_heads, keys + 7, dim], 12);
        let (v, vr) = both([batch, kv_heads, keys + 7, dim], 13);
        let (k, kr, v, vr) =
            (k.narrow(2, 0, keys), kr.narrow(2, 0, keys), v.narrow(2, 0, keys), vr.narrow(2, 0, keys));
        let pads: Vec<usize> = (0..batch).map(|b| (b * 3).min(keys - 1)).collect();
        let blocked = padding::<G>(&pads, keys, &WgpuDevice::default());
        let blocked_r = padding::<H>(&pads, keys, &Default::default());
        let scale = (dim as f64).powf(-0.5);
        let fused = G::attention(q.mul_scalar(3.0), k, v, Some(&blocked), scale);
        let reference = H::attention(qr.mul_scalar(3.0), kr, vr, Some(&blocked_r), scale);
        assert_close(fused, reference, 2e-6, &format!("attention with {keys} keys"));
    }
}

/// `values` as an index on `B`'s default device.
fn index<B: Backend>(values: &[i64]) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &Default::default())
}

/// Rows continuing shared prompts, as [`CachedKv::Shared`] holds them: row `r` continues prompt
/// `continues[r]` and holds row `own_rows[r]` of the own buffers (row `r` without).
fn shared<B: Backend>(
    [pk, pv, ok, ov]: [Tensor<B, 4>; 4],
    continues: &[i64],
    own_rows: Option<&[i64]>,
    computed: DType,
) -> CachedKv<B> {
    let (rows, own_rows) = (index(continues), own_rows.map(index));
    CachedKv::Shared { prefix_k: pk, prefix_v: pv, rows, own_k: ok, own_v: ov, own_rows, computed }
}

#[test]
fn decoding_attention_reads_shared_prefixes_in_place() {
    // 5 rows continuing 2 prompts of 9 positions, each row 4 positions of its own (room for 6),
    // held in rows of their own or, after rows left, picked from 7 rows
    let (rows, prompts, kv_heads, heads, prefix, own, dim) = (5, 2, 2, 4, 9, 6, 32);
    for own_rows in [None, Some([6, 0, 3, 2, 5].as_slice())] {
        let held = own_rows.map_or(rows, |_| 7);
        let (q, qr) = both([rows, heads, 1, dim], 21);
        let (pk, pkr) = both([prompts, kv_heads, prefix, dim], 22);
        let (pv, pvr) = both([prompts, kv_heads, prefix, dim], 23);
        let (ok, okr) = both([held, kv_heads, own, dim], 24);
        let (ov, ovr) = both([held, kv_heads, own, dim], 25);
        let continues = [0, 0, 1, 1, 1];
        // left padding of the prompts, and the rows' unfilled own positions, blocked
        let flags: Vec<bool> =
            (0..rows).flat_map(|r| (0..prefix + own).map(move |j| j < r % 2 || j >= prefix + 4)).collect();
        let shape = [rows, 1, 1, prefix + own];
        let gpu = WgpuDevice::default();
        let blocked = Tensor::from_data(TensorData::new(flags.clone(), shape), &gpu);
        let kv = shared([pk, pv, ok, ov], &continues, own_rows, DType::F32);
        let fused = G::cached_attention(q, kv, &blocked, 0.3);
        let blocked = Tensor::from_data(TensorData::new(flags, shape), &Default::default());
        let kv = shared([pkr, pvr, okr, ovr], &continues, own_rows, DType::F64);
        let reference = H::cached_attention(qr, kv, &blocked, 0.3);
        assert_close(
            fused,
            reference,
            2e-6,
            &format!("attention over shared prefixes, own rows {own_rows:?}"),
        );
    }
}

#[test]
fn a_cache_write_to_indexed_rows_equals_burn_s_ops() {
    // 3 rows written into 5 held rows at position 4 of 6: in place into a buffer held once, and
    // into a copy of one also held elsewhere, which keeps its values
    let (held, heads, capacity, dim, at) = (5, 2, 6, 8, 4);
    let picked = [3, 0, 4];
    let (values, values_r) = both([picked.len(), heads, 1, dim], 42);
    let (_, buffer_r) = both([held, heads, capacity, dim], 41);
    let reference = H::write_positions(buffer_r.clone(), Some(index(&picked)), values_r, at);
    for shared in [false, true] {
        let (buffer, _) = both([held, heads, capacity, dim], 41);
        let elsewhere = shared.then(|| buffer.clone());
        let fused = G::write_positions(buffer, Some(index(&picked)), values.clone(), at);
        // the rows written, every position, exactly; the others as they were
        let rows = |t: Tensor<G, 4>, rows: &[i64]| t.select(0, index::<G>(rows));
        let reference_rows = |t: Tensor<H, 4>, rows: &[i64]| t.select(0, index::<H>(rows));
        let what = if shared { "a buffer held elsewhere" } else { "a buffer held once" };
        assert_close(rows(fused.clone(), &picked), reference_rows(reference.clone(), &picked), 0.0, what);
        assert_close(rows(fused, &[1, 2]), reference_rows(buffer_r.clone(), &[1, 2]), 0.0, what);
        if let Some(elsewhere) = elsewhere {
            assert_close(elsewhere, buffer_r.clone(), 0.0, "the buffer's other holder");
        }
    }
}

/// `values [rows, vocab]` as logits on `B`'s default device.
fn logits<B: Backend>(values: &[f32], rows: usize, vocab: usize) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, vocab]), &Default::default())
}

#[test]
fn the_fused_sampling_rule_picks_the_default_s_tokens() {
    let (rows, vocab) = (12, 1003);
    // peaked and flat rows; every third rounded to quarters, so that logits tie
    let values: Vec<f32> = random([rows, vocab], 31)
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let x = x * (1 + (i / vocab) % 4) as f32 * 3.0;
            if (i / vocab) % 3 == 0 {
                (x * 4.0).round() / 4.0
            } else {
                x
            }
        })
        .collect();
    for temperature in [0.0, 1.0, 0.7] {
        let sampling = SamplingConfig { temperature, ..Default::default() };
        for step in 0..4u64 {
            let streams = || -> Vec<ChaCha8Rng> {
                (0..rows as u64)
                    .map(|r| {
                        let mut rng = ChaCha8Rng::seed_from_u64(step);
                        rng.set_stream(r);
                        rng
                    })
                    .collect()
            };
            let input_only = [5, 1000];
            let fused =
                G::pick_tokens(logits(&values, rows, vocab), &mut streams(), &input_only, &sampling).unwrap();
            let reference =
                pick_on_device::<H>(logits(&values, rows, vocab), &mut streams(), &input_only, &sampling)
                    .unwrap();
            for (row, ((token, log_p), (want, want_log_p))) in fused.iter().zip(&reference).enumerate() {
                assert_eq!(token, want, "temperature {temperature}, step {step}, row {row}");
                assert!((log_p - want_log_p).abs() < 1e-4, "log-prob {log_p} against {want_log_p}");
                assert!(!input_only.contains(token));
            }
        }
    }
}
