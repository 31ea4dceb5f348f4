//! Attention under autodiff that keeps no scores: the generic path's (wgpu, cuda) training
//! attention, in burn tensor operations.
//!
//! Differentiating [`decomposed_attention`](super::decomposed_attention) keeps every block's
//! scores and probabilities for the backward pass, `B·H·Sq·Sk` values per layer: training
//! memory grows with tokens². Here the forward pass keeps only its inputs, its output and each
//! query row's log-sum-exp, and the backward pass recomputes the probabilities block by block
//! (FlashAttention's backward, in blocks of queries of at most
//! [`SCORES_PER_BLOCK`](super::attention::SCORES_PER_BLOCK) scores), so what a layer keeps grows
//! with tokens. The host kernels of ndarray do the same on the host.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorPrimitive};

use super::attention::{grouped_rows, grouped_scores, queries_per_block, ungrouped, SCORES_PER_BLOCK};

/// What the backward pass needs: the inputs, the output, each query row's
/// `lse = log Σ_j exp(s_j)`, the mask and the block size.
#[derive(Clone, Debug)]
struct Saved<B: Backend> {
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    out: Tensor<B, 4>,
    lse: Tensor<B, 4>,
    blocked: Option<Tensor<B, 4, Bool>>,
    scale: f64,
    block: usize,
}

/// `(out, lse)`: `out_i = Σ_j p_ij v_j` with `p_ij = exp(s_ij − lse_i)` and
/// `lse_i = m_i + log Σ_j exp(s_ij − m_i)`, `m_i = max_j s_ij`, block by block, the query heads
/// that share a key/value head computed as one ([`grouped_scores`]).
fn forward<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    blocked: Option<&Tensor<B, 4, Bool>>,
    scale: f64,
    block: usize,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [_, q_heads, q_len, _] = q.dims();
    let (outs, lses): (Vec<_>, Vec<_>) = (0..q_len)
        .step_by(block)
        .map(|start| {
            let scores = grouped_scores(q, k, blocked, scale, start, block.min(q_len - start));
            let max = scores.clone().max_dim(3);
            let exp = (scores - max.clone()).exp();
            let sum = exp.clone().sum_dim(3);
            let out = (exp / sum.clone()).matmul(v.clone());
            (ungrouped(out, q_heads), ungrouped(max + sum.log(), q_heads))
        })
        .unzip();
    (Tensor::cat(outs, 2), Tensor::cat(lses, 2))
}

/// `softmax(q·kᵀ·scale, blocked → −∞) · v` with grouped-query attention (shapes at
/// [`attention`](crate::nn::attention)), differentiated by [`RecomputedAttentionBackward`].
pub fn recomputed_attention<B: Backend, C: CheckpointStrategy>(
    q: Tensor<Autodiff<B, C>, 4>,
    k: Tensor<Autodiff<B, C>, 4>,
    v: Tensor<Autodiff<B, C>, 4>,
    blocked: Option<&Tensor<Autodiff<B, C>, 4, Bool>>,
    scale: f64,
) -> Tensor<Autodiff<B, C>, 4> {
    recomputed_in_blocks(q, k, v, blocked, scale, SCORES_PER_BLOCK)
}

/// [`recomputed_attention`] with at most `scores_per_block` scores at a time.
fn recomputed_in_blocks<B: Backend, C: CheckpointStrategy>(
    q: Tensor<Autodiff<B, C>, 4>,
    k: Tensor<Autodiff<B, C>, 4>,
    v: Tensor<Autodiff<B, C>, 4>,
    blocked: Option<&Tensor<Autodiff<B, C>, 4, Bool>>,
    scale: f64,
    scores_per_block: usize,
) -> Tensor<Autodiff<B, C>, 4> {
    let blocked = blocked.map(|m| m.clone().inner());
    // each input's reference count (`rc`) is held until the output's step is registered
    // (vendor/SEETHINK.md, burn-autodiff)
    let split = |t: Tensor<Autodiff<B, C>, 4>| {
        let t = t.into_primitive().tensor();
        (Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(t.primitive)), t.node, t.rc)
    };
    let ((q, q_node, q_rc), (k, k_node, k_rc), (v, v_node, v_rc)) = (split(q), split(k), split(v));
    let block = queries_per_block(&q, k.dims()[2], scores_per_block);
    let (out, lse) = forward(&q, &k, &v, blocked.as_ref(), scale, block);
    let primitive = out.clone().into_primitive().tensor();
    let output =
        match RecomputedAttentionBackward.prepare::<C>([q_node, k_node, v_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                prep.finish(Saved { q, k, v, out, lse, blocked, scale, block }, primitive)
            }
            OpsKind::UnTracked(prep) => prep.finish(primitive),
        };
    drop((q_rc, k_rc, v_rc));
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

#[derive(Debug)]
struct RecomputedAttentionBackward;

impl<B: Backend> Backward<B, 3> for RecomputedAttentionBackward {
    type State = Saved<B>;

    /// With `Δ_i = d_out_i·out_i`, `p_ij = exp(s_ij − lse_i)` recomputed per block and
    /// `ds_ij = scale · p_ij (d_out_i·v_j − Δ_i)`: `dq_i = Σ_j ds_ij k_j`,
    /// `dk_j = Σ_i ds_ij q_i`, `dv_j = Σ_i p_ij d_out_i`, the key/value gradients summed over
    /// the query heads sharing a key/value head (their rows, in grouped-query layout, are summed
    /// by the same product).
    fn backward(self, ops: Ops<Saved<B>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let Saved { q, k, v, out, lse, blocked, scale, block } = ops.state;
        let [_, q_heads, q_len, _] = q.dims();
        let kv_heads = k.dims()[1];
        let delta = (d_out.clone() * out).sum_dim(3);
        let (mut dk, mut dv) = (None, None);
        let mut dq = Vec::new();
        for start in (0..q_len).step_by(block) {
            let len = block.min(q_len - start);
            let rows = |t: &Tensor<B, 4>| grouped_rows(t, kv_heads, start, len);
            let scores = grouped_scores(&q, &k, blocked.as_ref(), scale, start, len);
            let p = (scores - rows(&lse)).exp();
            let d_out_rows = rows(&d_out);
            dv = accumulate(dv, p.clone().swap_dims(2, 3).matmul(d_out_rows.clone()));
            let dp = d_out_rows.matmul(v.clone().swap_dims(2, 3));
            let ds = p * (dp - rows(&delta)) * scale;
            dq.push(ungrouped(ds.clone().matmul(k.clone()), q_heads));
            // dk as (qᵀ·ds)ᵀ, not dsᵀ·q: the same sums, and the latter gave wrong key gradients
            // under burn's `fusion` for keys that two attentions read (docs/benchmarks.md, "burn's
            // fusion and autotune")
            dk = accumulate(dk, rows(&q).swap_dims(2, 3).matmul(ds).swap_dims(2, 3));
        }
        let gradients =
            [Tensor::cat(dq, 2), dk.unwrap_or_else(|| k.zeros_like()), dv.unwrap_or_else(|| v.zeros_like())];
        for (parent, grad) in ops.parents.into_iter().zip(gradients) {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, grad.into_primitive().tensor());
            }
        }
    }
}

/// `sum + term`, or `term` alone for the first block. Starting from a zeros tensor instead
/// gave wrong key gradients under burn's `fusion` (`zeros_like` of RoPE'd keys plus the first
/// block's product, at some sequence lengths; docs/benchmarks.md, "burn's fusion and autotune").
fn accumulate<B: Backend>(sum: Option<Tensor<B, 4>>, term: Tensor<B, 4>) -> Option<Tensor<B, 4>> {
    Some(match sum {
        Some(sum) => sum + term,
        None => term,
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;

    use super::recomputed_in_blocks;
    use crate::kernels::attention::tests::{tracked, tracked_qkv, A, BATCH, KEYS, QUERIES};
    use crate::kernels::attention::{causal_blocked, decomposed_attention};

    #[test]
    fn recomputed_attention_equals_burn_s_differentiated_attention_with_its_gradients() {
        let device = Default::default();
        let [q, k, v] = tracked_qkv(&device);
        // left padding in the second sequence's keys, a causal mask over a cache of 2 past keys
        let valid: Vec<bool> = (0..2 * KEYS).map(|i| i < KEYS || i % KEYS >= 3).collect();
        let blocked = causal_blocked::<A>(&valid, BATCH, QUERIES, 0, &device);
        let weights = tracked(q.dims(), &device).detach();
        let run = |attention: &dyn Fn() -> Tensor<A, 4>| {
            let out = attention();
            let grads = (out.clone() * weights.clone()).sum().backward();
            let values = |t: Tensor<A, 4>| t.into_data().to_vec::<f32>().unwrap();
            let grad = |t: &Tensor<A, 4>| t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            [values(out), grad(&q), grad(&k), grad(&v)]
        };
        let reference = run(&|| decomposed_attention(q.clone(), k.clone(), v.clone(), Some(&blocked), 0.5));
        // one block, blocks of 2 queries (2·4·9 scores each), one query per block
        for budget in [usize::MAX, 2 * 72, 1] {
            let recomputed =
                run(&|| recomputed_in_blocks(q.clone(), k.clone(), v.clone(), Some(&blocked), 0.5, budget));
            for (name, (a, b)) in ["output", "dq", "dk", "dv"].iter().zip(reference.iter().zip(&recomputed)) {
                let gap = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(gap < 1e-5, "{name}, budget {budget}: {gap}");
            }
        }
    }
}
