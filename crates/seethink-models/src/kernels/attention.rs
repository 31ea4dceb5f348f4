//! Attention in burn tensor operations, the default of
//! [`Kernels::attention`](super::Kernels::attention), the grouped-query layout it and
//! [`recomputed_attention`](super::recomputed_attention) compute in, and the causal mask with
//! key padding that the models give the attention kernels.

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
/// The query heads that share a key/value head are computed as one ([`grouped_scores`]), so
/// each key and value is read once per layer and never copied per query head.
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
    let [_, q_heads, q_len, _] = q.dims();
    let block = queries_per_block(&q, k.dims()[2], scores_per_block);
    let mut blocks: Vec<Tensor<B, 4>> = (0..q_len)
        .step_by(block)
        .map(|start| {
            let scores = grouped_scores(&q, &k, blocked, scale, start, block.min(q_len - start));
            ungrouped(softmax(scores, 3).matmul(v.clone()), q_heads)
        })
        .collect();
    match blocks.len() {
        1 => blocks.remove(0),
        _ => Tensor::cat(blocks, 2),
    }
}

/// Queries per block: at most `scores_per_block` scores (`B·Hq·len·Sk`) at once, at least one.
pub(super) fn queries_per_block(q: &Tensor<impl Backend, 4>, k_len: usize, scores_per_block: usize) -> usize {
    let [batch, heads, _, _] = q.dims();
    (scores_per_block / (batch * heads * k_len).max(1)).max(1)
}

/// Rows `start..start + len` of `x [B, Hkv·G, Sq, W]` (queries, or a per-query quantity) in
/// grouped-query layout `[B, Hkv, G·len, W]`: the `G` query heads that share key/value head `h`
/// (heads `h·G..(h+1)·G`) stacked along the rows, so one product with `k [B, Hkv, Sk, D]` serves
/// them all. Free (a view) for the whole of a contiguous `x`; a copy of the rows otherwise.
pub(super) fn grouped_rows<B: Backend>(
    x: &Tensor<B, 4>,
    kv_heads: usize,
    start: usize,
    len: usize,
) -> Tensor<B, 4> {
    let [batch, heads, rows, width] = x.dims();
    let groups = heads / kv_heads;
    if groups == 1 && len == rows {
        return x.clone();
    }
    let x = x.clone().reshape([batch, kv_heads, groups, rows, width]);
    let x = if len == rows { x } else { x.narrow(3, start, len) };
    x.reshape([batch, kv_heads, groups * len, width])
}

/// The inverse of [`grouped_rows`]: `[B, Hkv, G·len, W]` → `[B, Hkv·G, len, W]`, a view.
pub(super) fn ungrouped<B: Backend>(x: Tensor<B, 4>, q_heads: usize) -> Tensor<B, 4> {
    let [batch, kv_heads, rows, width] = x.dims();
    if kv_heads == q_heads {
        return x;
    }
    x.reshape([batch, q_heads, rows / (q_heads / kv_heads), width])
}

/// The scores `s = scale·q·kᵀ` of the queries `start..start + len` in grouped-query layout
/// ([`grouped_rows`]), `[B, Hkv, G·len, Sk]`, the blocked ones `−∞`. The mask's rows
/// (`blocked [B or 1, 1, Sq or 1, Sk]` cut or broadcast to `len`) are repeated for the `G` heads
/// of a group (`G·len·Sk` flags per sequence, `4·Hkv` times fewer bytes than the f32 scores)
/// and broadcast over `Hkv`.
pub(super) fn grouped_scores<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
    start: usize,
    len: usize,
) -> Tensor<B, 4> {
    let [batch, kv_heads, k_len, _] = k.dims();
    let [_, q_heads, q_len, _] = q.dims();
    let scores = grouped_rows(q, kv_heads, start, len).matmul(k.clone().swap_dims(2, 3)) * scale;
    let Some(blocked) = blocked else {
        return scores;
    };
    let [mask_batch, _, mask_rows, _] = blocked.dims();
    let rows = match mask_rows == q_len {
        true => blocked.clone().narrow(2, start, len),
        false => blocked.clone().expand([mask_batch, 1, len, k_len]),
    };
    let groups = q_heads / kv_heads;
    let grouped = match groups {
        1 => rows,
        _ => rows
            .reshape([mask_batch, 1, 1, len, k_len])
            .expand([mask_batch, 1, groups, len, k_len])
            .reshape([mask_batch, 1, groups * len, k_len]),
    };
    scores.mask_fill(grouped.expand([batch, kv_heads, groups * len, k_len]), f32::NEG_INFINITY)
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
    fn each_query_head_attends_its_own_key_value_head_under_every_mask_shape() {
        let device = Default::default();
        let [q, k, v] = tracked_qkv(&device).map(|t| t.inner());
        let valid: Vec<bool> = (0..BATCH * KEYS).map(|i| i < KEYS || i % KEYS >= 3).collect();
        let causal = causal_blocked::<B>(&valid, BATCH, QUERIES, 0, &device);
        let one_row = Tensor::<B, 1, Bool>::from_data(
            TensorData::new(vec![false, true, true, false, false, true, false, false, false], [KEYS]),
            &device,
        )
        .reshape([1, 1, 1, KEYS]);
        // query head h over key/value head h / 2, one head at a time
        let per_head = |blocked: &Tensor<B, 4, Bool>| {
            let heads: Vec<Tensor<B, 4>> = (0..4)
                .map(|h| {
                    let scores =
                        q.clone().narrow(1, h, 1).matmul(k.clone().narrow(1, h / 2, 1).swap_dims(2, 3)) * 0.5;
                    let scores = scores
                        .mask_fill(blocked.clone().expand([BATCH, 1, QUERIES, KEYS]), f32::NEG_INFINITY);
                    softmax(scores, 3).matmul(v.clone().narrow(1, h / 2, 1))
                })
                .collect();
            Tensor::cat(heads, 1).into_data().to_vec::<f32>().unwrap()
        };
        for blocked in [causal, one_row] {
            let expected = per_head(&blocked);
            for budget in [usize::MAX, 2 * 72, 1] {
                let out = attention_in_blocks(q.clone(), k.clone(), v.clone(), Some(&blocked), 0.5, budget);
                let out = out.into_data().to_vec::<f32>().unwrap();
                let gap = out.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(gap < 1e-6, "mask {:?}, budget {budget}: {gap}", blocked.dims());
            }
        }
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
