//! Scaled dot-product attention with grouped key/value heads and boolean masks.

use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor, TensorData};

/// `softmax(q·kᵀ·scale, blocked → −∞) · v` with grouped-query attention.
///
/// Shapes: `q [B, Hq, Sq, D]`, `k, v [B, Hkv, Sk, D]` with `Hq` a multiple of `Hkv` (each
/// key/value head serves `Hq/Hkv` consecutive query heads), `blocked [B or 1, 1, Sq, Sk]`
/// (true = may not attend). Every query row must allow at least one key.
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    let [batch, q_heads, q_len, _] = q.dims();
    let kv_heads = k.dims()[1];
    let k = repeat_kv(k, q_heads / kv_heads);
    let v = repeat_kv(v, q_heads / kv_heads);
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
    if let Some(blocked) = blocked {
        let k_len = scores.dims()[3];
        let blocked = blocked.clone().expand([batch, q_heads, q_len, k_len]);
        scores = scores.mask_fill(blocked, f32::NEG_INFINITY);
    }
    softmax(scores, 3).matmul(v)
}

/// `[B, Hkv, S, D] → [B, Hkv·groups, S, D]`, each head repeated `groups` times in place.
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, groups: usize) -> Tensor<B, 4> {
    if groups == 1 {
        return x;
    }
    let [batch, heads, seq, dim] = x.dims();
    x.unsqueeze_dim::<5>(2).expand([batch, heads, groups, seq, dim]).reshape([
        batch,
        heads * groups,
        seq,
        dim,
    ])
}

/// Causal mask with key padding, `[B, 1, Sq, Sk]`: query i (absolute position `past + i`) is
/// blocked from key j if `j > past + i`, or if key j is padding (`key_valid[b·Sk + j]` false)
/// and `j ≠ past + i` (a padding query still sees itself, so no row is empty).
pub fn causal_blocked<B: Backend>(
    key_valid: &[bool],
    batch: usize,
    q_len: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let k_len = key_valid.len() / batch;
    let past = k_len - q_len;
    let mut blocked = Vec::with_capacity(batch * q_len * k_len);
    for b in 0..batch {
        for i in 0..q_len {
            let pos = past + i;
            for j in 0..k_len {
                blocked.push(j > pos || (!key_valid[b * k_len + j] && j != pos));
            }
        }
    }
    Tensor::from_data(TensorData::new(blocked, [batch, 1, q_len, k_len]), device)
}

/// Block-diagonal mask `[1, 1, N, N]`: token i may attend token j iff `segment[i] == segment[j]`.
pub fn block_diagonal_blocked<B: Backend>(segment: &[usize], device: &B::Device) -> Tensor<B, 4, Bool> {
    let n = segment.len();
    let blocked: Vec<bool> = segment.iter().flat_map(|si| segment.iter().map(move |sj| si != sj)).collect();
    Tensor::from_data(TensorData::new(blocked, [1, 1, n, n]), device)
}
