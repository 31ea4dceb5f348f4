//! Scaled dot-product attention with grouped key/value heads and boolean masks.

use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};

use crate::kernels::Kernels;

/// `softmax(q·kᵀ·scale, blocked → −∞) · v` with grouped-query attention.
///
/// Shapes: `q [B, Hq, Sq, D]`, `k, v [B, Hkv, Sk, D]` with `Hq` a multiple of `Hkv` (each
/// key/value head serves `Hq/Hkv` consecutive query heads), `blocked [B or 1, 1, Sq, Sk]`
/// (true = may not attend). Every query row must allow at least one key.
///
/// The backend's kernel computes it ([`Kernels::attention`]): on `NdArray<f32>` (with or
/// without autodiff) the fused host kernel, elsewhere by default
/// [`decomposed_attention`](crate::kernels::decomposed_attention).
pub fn attention<B: Kernels>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    <B as Kernels>::attention(q, k, v, blocked, scale)
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
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;

    type B = NdArray<f32>;

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
