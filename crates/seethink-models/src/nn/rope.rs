//! Rotary position embeddings in the HF half-split ("rotate_half") convention.
//!
//! Tables are computed on the host in f32, the way transformers does: an angle is one f32
//! product `position · inv_freq[j]`, and `emb = [angles, angles]` over the head dimension.

use burn::tensor::{backend::Backend, DType, Tensor, TensorData};

use crate::config::RopeMode;
use crate::kernels::Kernels;

/// cos and sin tables of shape `[batch, seq, head_dim]`.
#[derive(Clone, Debug)]
pub struct Rope<B: Backend> {
    pub cos: Tensor<B, 3>,
    pub sin: Tensor<B, 3>,
}

impl<B: Backend> Rope<B> {
    /// The tables in `dtype`, the type of the activations they rotate (transformers casts them
    /// to the query's type; [`crate::nn::precision`]). No copy when they are of it already.
    pub fn cast(self, dtype: DType) -> Self {
        Self { cos: self.cos.cast(dtype), sin: self.sin.cast(dtype) }
    }
}

/// Inverse frequencies `inv_freq[j] = 1 / theta^(2j/dim)`, j < dim/2.
pub fn inv_freq(dim: usize, theta: f64) -> Vec<f32> {
    (0..dim / 2).map(|j| (1.0 / theta.powf((2 * j) as f64 / dim as f64)) as f32).collect()
}

/// Which position axis (0 = t, 1 = h, 2 = w) drives each of the `slots` frequency slots.
///
/// Default: all t. Sectioned `[s0,s1,s2]`: slots `[0,s0)` t, `[s0,s0+s1)` h, the rest w.
/// Interleaved: slot j uses h if `j%3==1 && j<3·s1`, w if `j%3==2 && j<3·s2`, else t.
pub fn slot_axes(mode: &RopeMode, slots: usize) -> Vec<usize> {
    (0..slots)
        .map(|j| match mode {
            RopeMode::Default => 0,
            RopeMode::Sectioned([s0, s1, _]) => {
                if j < *s0 {
                    0
                } else if j < s0 + s1 {
                    1
                } else {
                    2
                }
            }
            RopeMode::Interleaved([_, s1, s2]) => {
                if j % 3 == 1 && j < 3 * s1 {
                    1
                } else if j % 3 == 2 && j < 3 * s2 {
                    2
                } else {
                    0
                }
            }
        })
        .collect()
}

/// Builds `[rows, seq, 2·angles_per_token]` cos/sin tables from per-token angle lists.
fn tables<B: Backend>(angles: Vec<f32>, rows: usize, seq: usize, device: &B::Device) -> Rope<B> {
    let half = angles.len() / (rows * seq);
    let mut cos = Vec::with_capacity(angles.len() * 2);
    let mut sin = Vec::with_capacity(angles.len() * 2);
    for token in angles.chunks_exact(half) {
        for _ in 0..2 {
            cos.extend(token.iter().map(|a| a.cos()));
            sin.extend(token.iter().map(|a| a.sin()));
        }
    }
    let shape = [rows, seq, 2 * half];
    Rope {
        cos: Tensor::from_data(TensorData::new(cos, shape), device),
        sin: Tensor::from_data(TensorData::new(sin, shape), device),
    }
}

/// Text RoPE tables from `positions` laid out `[3][batch][seq]` (axes t, h, w):
/// `angle[b,s,j] = positions[axis(j)][b][s] · inv_freq[j]`.
pub fn text_rope<B: Backend>(
    positions: &[i64],
    batch: usize,
    seq: usize,
    head_dim: usize,
    theta: f64,
    mode: &RopeMode,
    device: &B::Device,
) -> Rope<B> {
    let inv = inv_freq(head_dim, theta);
    let axes = slot_axes(mode, head_dim / 2);
    let plane = batch * seq;
    let mut angles = Vec::with_capacity(plane * inv.len());
    for token in 0..plane {
        for (j, f) in inv.iter().enumerate() {
            angles.push(positions[axes[j] * plane + token] as f32 * f);
        }
    }
    tables(angles, batch, seq, device)
}

/// Vision 2D RoPE for patches at `(row, col)`: with `inv_freq` over `head_dim/2`,
/// `angles = [row·inv_freq, col·inv_freq]` (head_dim/2 values) and tables `[1, N, head_dim]`.
pub fn vision_rope<B: Backend>(rows_cols: &[(usize, usize)], head_dim: usize, device: &B::Device) -> Rope<B> {
    let inv = inv_freq(head_dim / 2, 10_000.0);
    let mut angles = Vec::with_capacity(rows_cols.len() * 2 * inv.len());
    for &(row, col) in rows_cols {
        angles.extend(inv.iter().map(|f| row as f32 * f));
        angles.extend(inv.iter().map(|f| col as f32 * f));
    }
    tables(angles, 1, rows_cols.len(), device)
}

/// `x·cos + rotate_half(x)·sin` for `x: [batch, heads, seq, head_dim]`, where
/// `rotate_half([a, b]) = [−b, a]` over the two halves of the head dimension
/// ([`Kernels::rotary`]).
pub fn apply_rotary<B: Kernels>(x: Tensor<B, 4>, rope: &Rope<B>) -> Tensor<B, 4> {
    B::rotary(x, None, rope.cos.clone(), rope.sin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sectioned_axes_follow_sections() {
        let axes = slot_axes(&RopeMode::Sectioned([2, 3, 3]), 8);
        assert_eq!(axes, vec![0, 0, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn interleaved_axes_cycle_within_limits() {
        // Qwen3-VL's real section [24, 20, 20] over 64 slots: h/w interleave up to 60, then t.
        let axes = slot_axes(&RopeMode::Interleaved([24, 20, 20]), 64);
        assert_eq!(&axes[..6], &[0, 1, 2, 0, 1, 2]);
        assert_eq!(&axes[57..], &[0, 1, 2, 0, 0, 0, 0]);
        assert_eq!(axes.iter().filter(|&&a| a == 0).count(), 24);
        assert_eq!(axes.iter().filter(|&&a| a == 1).count(), 20);
    }

    #[test]
    fn inv_freq_matches_formula() {
        let inv = inv_freq(8, 10_000.0);
        assert_eq!(inv.len(), 4);
        assert!((inv[0] - 1.0).abs() < 1e-7);
        assert!((inv[2] - 0.01).abs() < 1e-7);
    }
}
