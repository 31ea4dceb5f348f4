//! Scaled dot-product attention with grouped key/value heads and boolean masks.

use burn::tensor::{activation::softmax, backend::Backend, Bool, Int, Tensor, TensorData};

use crate::kernels::Kernels;

/// `softmax(q·kᵀ·scale, blocked → −∞) · v` with grouped-query attention.
///
/// Shapes: `q [B, Hq, Sq, D]`, `k, v [B, Hkv, Sk, D]` with `Hq` a multiple of `Hkv` (each
/// key/value head serves `Hq/Hkv` consecutive query heads), `blocked [B or 1, 1, Sq, Sk]`
/// (true = may not attend). Every query row must allow at least one key.
///
/// The backend's kernel computes it ([`Kernels::attention`]): on `NdArray<f32>` (with or
/// without autodiff) the fused host kernel, elsewhere by default [`decomposed_attention`].
pub fn attention<B: Kernels>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    <B as Kernels>::attention(q, k, v, blocked, scale)
}

/// Most attention scores (`batch · heads · queries · keys`) computed at once by
/// [`decomposed_attention`]: 2²⁶ (256 MiB in f32); longer inputs are taken in blocks of queries.
pub const SCORES_PER_BLOCK: usize = 1 << 26;

/// [`attention`] from burn tensor operations: scores, mask, softmax, weighted values, in
/// blocks of queries of at most [`SCORES_PER_BLOCK`] scores. A query's output depends on its
/// own row of scores only, so the blocks give the same result as one pass; without autodiff
/// (generation, old and reference log-probs) the scores then take `SCORES_PER_BLOCK` elements at
/// a time instead of `B·H·Sq·Sk` (at 4,096 tokens × 32 heads, 2 GiB per sequence and layer);
/// under autodiff every block's softmax is kept for the backward pass (the autodiff kernels
/// use [`recomputed_attention`](super::recomputed_attention) instead).
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

/// Attention restricted to contiguous segments of rows (images, frames or windows of a vision
/// tower): row i attends row j iff both lie in the same segment. Segments of equal length are
/// stacked into one batch, `[count, H, len, D]`, one unmasked [`attention`] per distinct length,
/// so time and memory are `O(Σ len²)` instead of the `O(N²)` of a block-diagonal mask over all
/// `N` rows (which, for a rollout of 36 images of 256 patches, is a 9216² score matrix per head).
pub struct Segments<B: Backend> {
    /// One entry per distinct segment length.
    groups: Vec<SegmentGroup<B>>,
    /// Row r of the input is row `inverse[r]` of the groups' outputs stacked in order; `None`
    /// when that is the identity (a single group).
    inverse: Option<Tensor<B, 1, Int>>,
}

/// The segments of one length.
struct SegmentGroup<B: Backend> {
    len: usize,
    count: usize,
    /// The rows of its segments, in order; `None` when the group holds every row.
    rows: Option<Tensor<B, 1, Int>>,
}

impl<B: Kernels> Segments<B> {
    /// The segments of `segment_ids` (one id per row; a segment is a run of equal ids).
    pub fn new(segment_ids: &[usize], device: &B::Device) -> Self {
        let mut runs: Vec<(usize, usize)> = Vec::new(); // (start, len)
        for (row, id) in segment_ids.iter().enumerate() {
            match runs.last_mut() {
                Some((start, len)) if segment_ids[*start] == *id => *len += 1,
                _ => runs.push((row, 1)),
            }
        }
        let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
        for (start, len) in runs {
            by_len.entry(len).or_default().push(start);
        }
        let index = |rows: Vec<usize>| {
            let n = rows.len();
            Tensor::<B, 1, Int>::from_data(
                TensorData::new(rows.into_iter().map(|r| r as i64).collect(), [n]),
                device,
            )
        };
        if by_len.len() <= 1 {
            let groups = by_len
                .into_iter()
                .map(|(len, starts)| SegmentGroup { len, count: starts.len(), rows: None })
                .collect();
            return Self { groups, inverse: None };
        }
        let mut stacked = Vec::with_capacity(segment_ids.len());
        let mut groups = Vec::with_capacity(by_len.len());
        for (len, starts) in by_len {
            let rows: Vec<usize> = starts.iter().flat_map(|&s| s..s + len).collect();
            stacked.extend_from_slice(&rows);
            groups.push(SegmentGroup { len, count: starts.len(), rows: Some(index(rows)) });
        }
        let mut inverse = vec![0; stacked.len()];
        for (position, &row) in stacked.iter().enumerate() {
            inverse[row] = position;
        }
        Self { groups, inverse: Some(index(inverse)) }
    }

    /// `q, k, v [1, H, N, D]` → `[1, H, N, D]`, each row attending within its segment.
    pub fn attention(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, scale: f64) -> Tensor<B, 4> {
        let [_, heads, _, dim] = q.dims();
        let outputs: Vec<Tensor<B, 4>> = self
            .groups
            .iter()
            .map(|g| {
                // [1, H, count·len, D] → [count, H, len, D]
                let stack = |x: Tensor<B, 4>| {
                    let x = match &g.rows {
                        Some(rows) => x.select(2, rows.clone()),
                        None => x,
                    };
                    x.reshape([heads, g.count, g.len, dim]).swap_dims(0, 1)
                };
                let out = attention(stack(q.clone()), stack(k.clone()), stack(v.clone()), None, scale);
                out.swap_dims(0, 1).reshape([1, heads, g.count * g.len, dim])
            })
            .collect();
        let stacked = Tensor::cat(outputs, 2);
        match &self.inverse {
            Some(inverse) => stacked.select(2, inverse.clone()),
            None => stacked,
        }
    }
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

    #[test]
    fn segmented_attention_equals_a_block_diagonal_mask() {
        let device = Default::default();
        // segments of lengths 3, 2, 3, 1, 2: three groups, not in length order
        for ids in [vec![0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4], vec![7, 7, 7, 7, 9, 9, 9, 9]] {
            let n = ids.len();
            let qkv: Vec<Tensor<B, 4>> = (0..3)
                .map(|_| Tensor::random([1, 2, n, 4], Distribution::Normal(0.0, 1.0), &device))
                .collect();
            let mask: Vec<bool> = ids.iter().flat_map(|i| ids.iter().map(move |j| i != j)).collect();
            let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(mask, [1, 1, n, n]), &device);
            let expected = attention(qkv[0].clone(), qkv[1].clone(), qkv[2].clone(), Some(&mask), 0.5);
            let got =
                Segments::new(&ids, &device).attention(qkv[0].clone(), qkv[1].clone(), qkv[2].clone(), 0.5);
            let (expected, got) =
                (expected.into_data().to_vec::<f32>().unwrap(), got.into_data().to_vec::<f32>().unwrap());
            assert!(expected.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-5), "{ids:?}");
        }
    }
}
