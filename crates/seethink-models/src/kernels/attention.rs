//! Attention in burn tensor operations, the default of
//! [`Kernels::attention`](super::Kernels::attention), and the causal mask with key padding that
//! the models give the attention kernels.

use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor, TensorData};

/// Most attention scores (`batch · heads · queries · keys`) computed at once by
/// [`decomposed_attention`]: 2²⁶ (256 MiB in f32); longer inputs are taken in blocks of queries.
pub const SCORES_PER_BLOCK: usize = 1 << 26;

/// [`attention`](super::Kernels::attention) from burn tensor operations: scores, mask, softmax,
/// weighted values, in blocks of queries of at most [`SCORES_PER_BLOCK`] scores. A query's
/// output depends on its own row of scores only, so the blocks give the same result as one pass;
/// without autodiff (generation, old and reference log-probs) the scores then take
/// `SCORES_PER_BLOCK` elements at a time instead of `B·H·Sq·Sk` (at 4,096 tokens × 32 heads,
/// 2 GiB per sequence and layer); under autodiff every block's softmax is kept for the backward
/// pass (the autodiff kernels use [`recomputed_attention`](super::recomputed_attention) instead).
pub fn decomposed_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    attention_in_blocks(q, k, v, blocked, scale, SCORES_PER_BLOCK)
}

/// [`decomposed_attention`] with at most `scores_per_block` scores at a time (at least one query).
fn attention_in_blocks<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
    scores_per_block: usize,
) -> Tensor<B, 4> {
    let [batch, q_heads, q_len, _] = q.dims();
    let kv_heads = k.dims()[1];
    let k = repeat_kv(k, q_heads / kv_heads);
    let v = repeat_kv(v, q_heads / kv_heads);
    let per_query = batch * q_heads * k.dims()[2];
    let block = (scores_per_block / per_query.max(1)).max(1);
    if block >= q_len {
        return attend(q, k, v, blocked, scale);
    }
    let blocks: Vec<Tensor<B, 4>> = (0..q_len)
        .step_by(block)
        .map(|start| {
            let len = block.min(q_len - start);
            let rows = |m: &Tensor<B, 4, Bool>| match m.dims()[2] == q_len {
                true => m.clone().narrow(2, start, len),
                false => m.clone(),
            };
            let blocked = blocked.map(rows);
            attend(q.clone().narrow(2, start, len), k.clone(), v.clone(), blocked.as_ref(), scale)
        })
        .collect();
    Tensor::cat(blocks, 2)
}

/// `softmax(q·kᵀ·scale, blocked → −∞) · v` for heads already repeated to the queries'.
fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    let [batch, q_heads, q_len, _] = q.dims();
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
    if let Some(blocked) = blocked {
        let k_len = scores.dims()[3];
        let blocked = blocked.clone().expand([batch, q_heads, q_len, k_len]);
        scores = scores.mask_fill(blocked, f32::NEG_INFINITY);
    }
    softmax(scores, 3).matmul(v)
}

/// `[B, Hkv, S, D] → [B, Hkv·groups, S, D]`, each head repeated `groups` times in place.
pub(super) fn repeat_kv<B: Backend>(x: Tensor<B, 4>, groups: usize) -> Tensor<B, 4> {
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

/// Causal mask with key padding, `[B, 1, Sq, Sk + room]`: query i (absolute position
/// `past + i`) is blocked from key j if `j > past + i`, or if key j is padding
/// (`key_valid[b·Sk + j]` false) and `j ≠ past + i` (a padding query still sees itself, so no
/// row is empty). The `room` keys after the `Sk` real ones (a KV cache's unfilled positions)
/// are all blocked.
pub fn causal_blocked<B: Backend>(
    key_valid: &[bool],
    batch: usize,
    q_len: usize,
    room: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let k_len = key_valid.len() / batch;
    let past = k_len - q_len;
    let width = k_len + room;
    let mut blocked = Vec::with_capacity(batch * q_len * width);
    for b in 0..batch {
        for i in 0..q_len {
            let pos = past + i;
            for j in 0..width {
                blocked.push(j > pos || (!key_valid[b * k_len + j] && j != pos));
            }
        }
    }
    Tensor::from_data(TensorData::new(blocked, [batch, 1, q_len, width]), device)
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;

    type B = NdArray<f32>;
    pub(crate) type A = burn::backend::Autodiff<B>;

    /// The attention tests' shape: batch 2, 4 query heads over 2 key/value heads, 7 queries,
    /// 9 keys, head size 3.
    pub(crate) const BATCH: usize = 2;
    pub(crate) const QUERIES: usize = 7;
    pub(crate) const KEYS: usize = 9;

    /// Random normal `shape`, tracked by autodiff.
    pub(crate) fn tracked(shape: [usize; 4], device: &burn::backend::ndarray::NdArrayDevice) -> Tensor<A, 4> {
        Tensor::<A, 4>::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
    }

    /// Random q `[2, 4, 7, 3]`, k and v `[2, 2, 9, 3]`, tracked by autodiff.
    pub(crate) fn tracked_qkv(device: &burn::backend::ndarray::NdArrayDevice) -> [Tensor<A, 4>; 3] {
        let kv = [BATCH, 2, KEYS, 3];
        [tracked([BATCH, 4, QUERIES, 3], device), tracked(kv, device), tracked(kv, device)]
    }

    #[test]
    fn attention_in_blocks_of_queries_equals_one_pass_with_its_gradients() {
        let device = Default::default();
        let [q, k, v] = tracked_qkv(&device);
        let blocked = causal_blocked::<A>(&[true; 18], BATCH, QUERIES, 0, &device);
        let values = |t: Tensor<A, 4>| t.into_data().to_vec::<f32>().unwrap();
        let run = |budget: usize| {
            let out = attention_in_blocks(q.clone(), k.clone(), v.clone(), Some(&blocked), 0.5, budget);
            let grads = (out.clone() * out.clone()).sum().backward();
            let grad = |t: &Tensor<A, 4>| t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            (values(out), grad(&q), grad(&k), grad(&v))
        };
        let whole = run(usize::MAX);
        // 2·4·9 scores per query: blocks of 2 queries (7 = 2 + 2 + 2 + 1), and of one
        for budget in [2 * 72, 1] {
            let blocks = run(budget);
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
            assert!(close(&whole.0, &blocks.0), "output, budget {budget}");
            assert!(close(&whole.1, &blocks.1) && close(&whole.2, &blocks.2) && close(&whole.3, &blocks.3));
        }
    }
}
