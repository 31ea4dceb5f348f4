//! The rotary position embedding on the host, for the ndarray backend without autodiff
//! (decoding and scoring).
//!
//! burn computes it in six passes over `x`, each a new buffer ([`decomposed_rotary`]); while
//! decoding, where `x` is one position per row, those passes' overhead is most of its cost.
//! Here it is one pass that rounds each element as burn's ops do, so the bits are theirs.

use burn::tensor::{Tensor, TensorData, TensorPrimitive};

use super::{f32s, with_f32, Cpu};
use crate::kernels::decomposed_rotary;

/// [`decomposed_rotary`] in one pass: `y_j = x_j·cos_j + r_j·sin_j` with `r = [−x₂, x₁]`, each
/// product and the sum rounded to f32 (as burn's element-wise ops do), after adding the bias
/// as burn does; burn's ops for other types or table shapes.
pub(super) fn plain(
    x: Tensor<Cpu, 4>,
    bias: Option<Tensor<Cpu, 1>>,
    cos: Tensor<Cpu, 3>,
    sin: Tensor<Cpu, 3>,
) -> Tensor<Cpu, 4> {
    let [batch, heads, seq, dim] = x.dims();
    let [tables, table_seq, table_dim] = cos.dims();
    let fits = (tables == batch || tables == 1) && table_seq == seq && table_dim == dim && dim % 2 == 0;
    if !fits || sin.dims() != cos.dims() || !f32s(&[x.dtype(), cos.dtype(), sin.dtype()]) {
        return decomposed_rotary(x, bias, cos, sin);
    }
    let x = match bias {
        Some(bias) => x + bias.reshape([1, heads, 1, dim]),
        None => x,
    };
    let [x, cos, sin] =
        [x.into_primitive().tensor(), cos.into_primitive().tensor(), sin.into_primitive().tensor()];
    let values = with_f32(&x, |x| {
        with_f32(&cos, |cos| with_f32(&sin, |sin| rotate(x, cos, sin, [batch, heads, seq, dim], tables)))
    });
    Tensor::from_primitive(TensorPrimitive::Float(burn::backend::ndarray::NdArrayTensor::from_data(
        TensorData::new(values, [batch, heads, seq, dim]),
    )))
}

/// `y = x·cos + rotate_half(x)·sin` over `x [batch, heads, seq, dim]` row-major, the tables
/// `[tables, seq, dim]` (`tables` 1: one for every batch row).
fn rotate(
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    [batch, heads, seq, dim]: [usize; 4],
    tables: usize,
) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0.0f32; x.len()];
    let rows = out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)).enumerate();
    for (row, (y, x)) in rows.take(batch * heads * seq) {
        let (b, position) = (row / (heads * seq), row % seq);
        let table = (b % tables * seq + position) * dim;
        let (cos, sin) = (&cos[table..][..dim], &sin[table..][..dim]);
        for j in 0..half {
            y[j] = x[j] * cos[j] + -x[j + half] * sin[j];
            y[j + half] = x[j + half] * cos[j + half] + x[j] * sin[j + half];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// To the bit what burn's ops give, with one table for every row or one per row, with a
    /// bias and without, decoding (one position) and over a sequence.
    #[test]
    fn one_pass_gives_burn_s_bits() {
        let device = Default::default();
        let random =
            |shape: [usize; 3]| Tensor::<Cpu, 3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        for (batch, seq, tables, with_bias) in [(3, 1, 3, false), (2, 5, 1, true), (4, 7, 4, true)] {
            let x = Tensor::<Cpu, 4>::random([batch, 2, seq, 8], Distribution::Normal(0.0, 3.0), &device);
            let bias =
                with_bias.then(|| Tensor::<Cpu, 1>::random([16], Distribution::Normal(0.0, 1.0), &device));
            let (cos, sin) = (random([tables, seq, 8]), random([tables, seq, 8]));
            let bits = |t: Tensor<Cpu, 4>| {
                t.into_data().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let expected = decomposed_rotary(x.clone(), bias.clone(), cos.clone(), sin.clone());
            assert_eq!(
                bits(plain(x, bias, cos, sin)),
                bits(expected),
                "batch {batch}, seq {seq}, tables {tables}"
            );
        }
    }
}
