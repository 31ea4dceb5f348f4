//! Fused attention on the host, for the ndarray backend with and without autodiff.
//!
//! The generic [`attention`](super::attention) builds `[B, H, Sq, Sk]` scores, masks them,
//! and runs a softmax of five element-wise passes, each a new buffer; under autodiff every
//! one of them is kept for the backward pass. Here blocks of query rows go through matrix
//! products that stop at the block's last attendable key (so a causal mask about halves the
//! work) and a masked softmax in place; only the output and each row's log-sum-exp are kept,
//! and the backward pass recomputes the probabilities from them (as FlashAttention does).
//! Batch × key/value heads are spread over the cores the process may use. On a rollout of 40 sequences of ~340 tokens this took the
//! learning phase of a GRPO step from most of its time to a small part (`docs/benchmarks.md`).

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::Autodiff;
use burn::tensor::TensorMetadata;
use burn::tensor::{Bool, Int, Tensor, TensorData, TensorPrimitive};

use super::{exp, f32s, host_f32, map_cores, row_major_f32, sum, with_f32, Cpu, Tracked};
use crate::kernels::cached_kv::CachedKv;
use crate::kernels::{Kernels, HOST_ROW_BY_ROW};

/// The dimensions of one attention call: `q [batch, q_heads, q_len, dim]`,
/// `k, v [batch, kv_heads, k_len, dim]`, `blocked [mask_batch, 1, q_len, k_len]` with
/// `mask_batch` 1 or `batch` (0: no mask).
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    q_heads: usize,
    kv_heads: usize,
    q_len: usize,
    k_len: usize,
    dim: usize,
    mask_batch: usize,
}

impl Dims {
    fn groups(&self) -> usize {
        self.q_heads / self.kv_heads
    }

    /// The row of the mask that query row `i` of batch `b` uses (`None`: no mask).
    fn mask_row(&self, b: usize, i: usize) -> Option<usize> {
        match self.mask_batch {
            0 => None,
            1 => Some(i),
            _ => Some(b * self.q_len + i),
        }
    }
}

/// One call's inputs on the host: copies kept for the backward pass, or (without autodiff)
/// the tensors' own row-major elements, borrowed.
#[derive(Clone, Debug)]
struct Problem<'a> {
    dims: Dims,
    scale: f32,
    q: Cow<'a, [f32]>,
    kv: KeyValues<'a>,
    blocked: Vec<bool>,
    /// Per mask row, one past its last attendable key (found once, used by every block).
    live: Vec<usize>,
}

/// A call's keys and values, `[batch, kv_heads, k_len, dim]` each as attention reads them.
#[derive(Clone, Debug)]
enum KeyValues<'a> {
    /// Every batch row's own, row-major.
    Whole { k: Cow<'a, [f32]>, v: Cow<'a, [f32]> },
    /// Batch row b's are prefix `rows[b]` of `prefix_k, prefix_v`
    /// (`[prefixes, kv_heads, prefix_len, dim]`) followed by its own, row `own_rows[b]` of
    /// `own_k, own_v` (`[held, kv_heads, k_len − prefix_len, dim]`), read where they are
    /// ([`CachedKv::Shared`]).
    Shared {
        prefix_k: &'a [f32],
        prefix_v: &'a [f32],
        prefix_len: usize,
        rows: Vec<usize>,
        own_k: &'a [f32],
        own_v: &'a [f32],
        own_rows: Vec<usize>,
    },
}

impl KeyValues<'_> {
    /// The keys and the values task `task` (batch row `task / kv_heads`, key/value head
    /// `task % kv_heads`) attends over, each as runs of rows that follow one another.
    fn runs(&self, task: usize, d: Dims) -> ([&[f32]; 2], [&[f32]; 2]) {
        // (first element, elements) of block `index` of blocks of `len` rows
        let span = |index: usize, len: usize| (index * len * d.dim, len * d.dim);
        match self {
            Self::Whole { k, v } => {
                let (at, size) = span(task, d.k_len);
                ([&k[at..][..size], &[]], [&v[at..][..size], &[]])
            }
            Self::Shared { prefix_k, prefix_v, prefix_len, rows, own_k, own_v, own_rows } => {
                let (row, head) = (task / d.kv_heads, task % d.kv_heads);
                let (p_at, p_size) = span(rows[row] * d.kv_heads + head, *prefix_len);
                let (o_at, o_size) = span(own_rows[row] * d.kv_heads + head, d.k_len - prefix_len);
                (
                    [&prefix_k[p_at..][..p_size], &own_k[o_at..][..o_size]],
                    [&prefix_v[p_at..][..p_size], &own_v[o_at..][..o_size]],
                )
            }
        }
    }
}

impl Problem<'_> {
    /// Which keys query row `i` of batch `b` may not attend, and how many keys up to its last
    /// attendable one (`None`: no mask).
    fn mask(&self, b: usize, i: usize) -> Option<(&[bool], usize)> {
        let row = self.dims.mask_row(b, i)?;
        Some((&self.blocked[row * self.dims.k_len..][..self.dims.k_len], self.live[row]))
    }

    /// One past the last key any of the task rows `rows` (query row `row % q_len`) of batch
    /// `b` may attend: the keys a block's products need.
    fn key_limit(&self, b: usize, rows: std::ops::Range<usize>) -> usize {
        let d = self.dims;
        let live = |row: usize| self.mask(b, row % d.q_len).map_or(d.k_len, |(_, live)| live);
        rows.map(live).max().filter(|&n| n > 0).unwrap_or(d.k_len)
    }
}

/// What the backward pass needs besides the inputs: the output and each row's
/// `lse = log Σ_j exp(s_j)`.
#[derive(Clone, Debug)]
struct Saved {
    problem: Problem<'static>,
    out: Vec<f32>,
    lse: Vec<f32>,
}

/// The dimensions of a call, the mask's rows and each row's attendable keys.
fn setup(
    [batch, q_heads, q_len, dim]: [usize; 4],
    [_, kv_heads, k_len, _]: [usize; 4],
    blocked: Option<&NdArrayTensor>,
) -> (Dims, Vec<bool>, Vec<usize>) {
    // `[mask_batch, 1, q_len, k_len]`
    let blocked = blocked.map(host_bool).unwrap_or_default();
    let mask_batch = blocked.len() / (q_len * k_len).max(1);
    let dims = Dims { batch, q_heads, kv_heads, q_len, k_len, dim, mask_batch };
    let live = blocked.chunks(k_len).map(|row| row.iter().rposition(|&b| !b).map_or(0, |j| j + 1)).collect();
    (dims, blocked, live)
}

/// The output `[batch, q_heads, q_len, dim]` as an ndarray tensor.
fn primitive(out: Vec<f32>, d: Dims) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(out, [d.batch, d.q_heads, d.q_len, d.dim]))
}

/// The fused kernel on the tensors' own row-major elements (borrowed, nothing kept).
pub(super) fn plain(
    q: Tensor<Cpu, 4>,
    k: Tensor<Cpu, 4>,
    v: Tensor<Cpu, 4>,
    blocked: Option<&Tensor<Cpu, 4, Bool>>,
    scale: f64,
) -> Tensor<Cpu, 4> {
    let mask = blocked.map(|m| m.clone().into_primitive());
    let (dims, blocked, live) = setup(q.dims(), k.dims(), mask.as_ref());
    let (q, k, v) = (q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor());
    let (out, _) = with_f32(&q, |q| {
        with_f32(&k, |k| {
            with_f32(&v, |v| {
                let kv = KeyValues::Whole { k: Cow::Borrowed(k), v: Cow::Borrowed(v) };
                forward(&Problem { dims, scale: scale as f32, q: Cow::Borrowed(q), kv, blocked, live })
            })
        })
    });
    Tensor::from_primitive(TensorPrimitive::Float(primitive(out, dims)))
}

/// [`plain`] over a layer's cached keys and values ([`Kernels::cached_attention`]): shared
/// prefixes read where they are when each key/value head has at most [`HOST_ROW_BY_ROW`] query rows
/// (decoding), which go through the products row by row; otherwise on their gathered copy.
/// Either way each row's keys are its prefix's then its own, in order, so the result is the
/// one of the gathered copy to the bit.
pub(super) fn cached(
    q: Tensor<Cpu, 4>,
    kv: CachedKv<Cpu>,
    blocked: &Tensor<Cpu, 4, Bool>,
    scale: f64,
) -> Tensor<Cpu, 4> {
    let [batch, q_heads, q_len, dim] = q.dims();
    let (prefix_k, prefix_v, rows, own_k, own_v, own_rows) = match kv {
        CachedKv::Shared { prefix_k, prefix_v, rows, own_k, own_v, own_rows, computed }
            if f32s(&[q.dtype(), prefix_k.dtype(), own_k.dtype(), computed])
                && q_heads / own_k.dims()[1] * q_len <= HOST_ROW_BY_ROW =>
        {
            (prefix_k, prefix_v, rows, own_k, own_v, own_rows)
        }
        kv => {
            let (k, v) = kv.gathered();
            return <Cpu as Kernels>::attention(q, k, v, Some(blocked), scale);
        }
    };
    let ([_, kv_heads, prefix_len, _], own_len) = (prefix_k.dims(), own_k.dims()[2]);
    let host_rows = |rows: Tensor<Cpu, 1, Int>| rows.into_data().iter::<i64>().map(|r| r as usize).collect();
    let rows: Vec<usize> = host_rows(rows);
    let own_rows: Vec<usize> = own_rows.map_or_else(|| (0..batch).collect(), host_rows);
    let (dims, blocked, live) = setup(
        [batch, q_heads, q_len, dim],
        [batch, kv_heads, prefix_len + own_len, dim],
        Some(&blocked.clone().into_primitive()),
    );
    let tensors = [q, prefix_k, prefix_v, own_k, own_v].map(|t| t.into_primitive().tensor());
    let [q, prefix_k, prefix_v, own_k, own_v] = tensors.each_ref().map(row_major_f32);
    let kv = KeyValues::Shared {
        prefix_k: &prefix_k,
        prefix_v: &prefix_v,
        prefix_len,
        rows,
        own_k: &own_k,
        own_v: &own_v,
        own_rows,
    };
    let (out, _) = forward(&Problem { dims, scale: scale as f32, q, kv, blocked, live });
    Tensor::from_primitive(TensorPrimitive::Float(primitive(out, dims)))
}

/// [`plain`] under autodiff: the inputs are copied and kept with the output's log-sum-exp for
/// the backward pass of [`FusedAttentionBackward`].
pub(super) fn tracked<C: CheckpointStrategy>(
    q: Tensor<Autodiff<Cpu, C>, 4>,
    k: Tensor<Autodiff<Cpu, C>, 4>,
    v: Tensor<Autodiff<Cpu, C>, 4>,
    blocked: Option<&Tensor<Autodiff<Cpu, C>, 4, Bool>>,
    scale: f64,
) -> Tensor<Autodiff<Cpu, C>, 4> {
    // Autodiff<NdArray>'s bool tensors are ndarray's
    let mask = blocked.map(|m| m.clone().into_primitive());
    let (dims, blocked, live) = setup(q.dims(), k.dims(), mask.as_ref());
    // each input's reference count (`rc`) is held until the output's step is registered
    // (vendor/SEETHINK.md, burn-autodiff)
    let split = |t: Tensor<Autodiff<Cpu, C>, 4>| {
        let t: Tracked = t.into_primitive().tensor();
        (Cow::Owned(host_f32(&t.primitive)), t.node, t.rc)
    };
    let ((q, q_node, q_rc), (k, k_node, k_rc), (v, v_node, v_rc)) = (split(q), split(k), split(v));
    let problem = Problem { dims, scale: scale as f32, q, kv: KeyValues::Whole { k, v }, blocked, live };
    let (out, lse) = forward(&problem);
    let output =
        match FusedAttentionBackward.prepare::<C>([q_node, k_node, v_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                prep.finish(Saved { problem, out: out.clone(), lse }, primitive(out, dims))
            }
            OpsKind::UnTracked(prep) => prep.finish(primitive(out, dims)),
        };
    drop((q_rc, k_rc, v_rc));
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The elements of an ndarray bool tensor in row-major order.
fn host_bool(tensor: &NdArrayTensor) -> Vec<bool> {
    match tensor {
        NdArrayTensor::Bool(storage) => {
            storage.view().as_standard_layout().as_slice().expect("row-major").to_vec()
        }
        other => unreachable!("masks are bool tensors, not {:?}", other.dtype()),
    }
}

#[derive(Debug)]
struct FusedAttentionBackward;

impl Backward<Cpu, 3> for FusedAttentionBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<Cpu>(&ops.node);
        let saved = ops.state;
        let Dims { batch, q_heads, kv_heads, q_len, k_len, dim, .. } = saved.problem.dims;
        let (dq, dk, dv) = with_f32(&d_out, |d_out| backward(&saved, d_out));
        let shapes =
            [[batch, q_heads, q_len, dim], [batch, kv_heads, k_len, dim], [batch, kv_heads, k_len, dim]];
        for ((parent, grad), shape) in ops.parents.into_iter().zip([dq, dk, dv]).zip(shapes) {
            if let Some(parent) = parent {
                let grad = Tensor::<Cpu, 4>::from_data(TensorData::new(grad, shape), &Default::default());
                grads.register::<Cpu>(parent.id, grad.into_primitive().tensor());
            }
        }
    }
}

/// Query rows per block: a block's scores, `[ROWS, Sk]`, stay in the core's cache.
const ROWS: usize = 128;

/// `out_i = Σ_j p_ij v_j` with `p_ij = exp(s_ij − lse_i)`, `s_ij = scale · q_i·k_j` over the
/// keys j row i may attend, `lse_i = log Σ_j exp(s_ij)`; returns `(out, lse)`. Per batch and
/// key/value head, blocks of query rows (every query head of the group) take `S = scale·Q·Kᵀ`
/// and `out = P·V` as matrix products over the keys up to the block's last attendable one.
fn forward(p: &Problem<'_>) -> (Vec<f32>, Vec<f32>) {
    let d = p.dims;
    let (rows, dim) = (d.groups() * d.q_len, d.dim);
    let mut out = vec![0.0; d.batch * d.q_heads * d.q_len * dim];
    let mut lse = vec![0.0; d.batch * d.q_heads * d.q_len];
    let tasks: Vec<_> = out.chunks_mut(rows * dim).zip(lse.chunks_mut(rows)).enumerate().collect();
    let cost = tasks.len() * rows * d.k_len * dim; // multiply-adds
    map_cores(tasks, cost, |(task, (out, lse))| {
        let b = task / d.kv_heads;
        let (keys, values) = p.kv.runs(task, d);
        let queries = &p.q[task * rows * dim..][..rows * dim];
        let mut scores = vec![0.0; ROWS.min(rows) * d.k_len];
        for start in (0..rows).step_by(ROWS) {
            let m = ROWS.min(rows - start);
            let n = p.key_limit(b, start..start + m);
            let probs = &mut scores[..m * n];
            gemm([m, dim, n], p.scale, (rows_of(queries, start, m, dim), false), (&keys, true), 0.0, probs);
            for (r, row) in probs.chunks_mut(n).enumerate() {
                let live = mask_scores(row, p.mask(b, (start + r) % d.q_len));
                let max = live.iter().fold(f32::NEG_INFINITY, |max, &s| if s > max { s } else { max });
                live.iter_mut().for_each(|s| *s = exp(*s - max));
                let sum = sum(live);
                live.iter_mut().for_each(|s| *s /= sum);
                lse[start + r] = max + sum.ln();
            }
            gemm([m, n, dim], 1.0, (probs, false), (&values, false), 0.0, &mut out[start * dim..][..m * dim]);
        }
    });
    (out, lse)
}

/// Gradients of the loss given `d_out = ∂L/∂out`: with `Δ_i = d_out_i·out_i` and
/// `ds_ij = scale · p_ij (d_out_i·v_j − Δ_i)`, `dq_i = Σ_j ds_ij k_j`, `dk_j = Σ_i ds_ij q_i`,
/// `dv_j = Σ_i p_ij d_out_i` (sums over the query heads sharing a key/value head too), with
/// `p` recomputed from the saved `lse`; returns `(dq, dk, dv)`.
fn backward(s: &Saved, d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let p = &s.problem;
    let d = p.dims;
    let (rows, dim, kv_size) = (d.groups() * d.q_len, d.dim, d.k_len * d.dim);
    // the saved inputs are copies ([`tracked`]), never shared prefixes
    let KeyValues::Whole { k, v } = &p.kv else { unreachable!("a tracked call's keys are its own") };
    let mut dq = vec![0.0; p.q.len()];
    let mut dk = vec![0.0; k.len()];
    let mut dv = vec![0.0; v.len()];
    let tasks: Vec<_> = dq
        .chunks_mut(rows * dim)
        .zip(dk.chunks_mut(kv_size))
        .zip(dv.chunks_mut(kv_size))
        .enumerate()
        .collect();
    let cost = tasks.len() * 5 * rows * d.k_len * dim; // multiply-adds
    map_cores(tasks, cost, |(task, ((dq, dk), dv))| {
        let b = task / d.kv_heads;
        let (keys, values) = (&k[task * kv_size..][..kv_size], &v[task * kv_size..][..kv_size]);
        let first = task * rows;
        let mut probs = vec![0.0; ROWS.min(rows) * d.k_len];
        let mut d_scores = vec![0.0; ROWS.min(rows) * d.k_len];
        for start in (0..rows).step_by(ROWS) {
            let m = ROWS.min(rows - start);
            let n = p.key_limit(b, start..start + m);
            let at = first + start;
            let (queries, out, d_out) =
                (rows_of(&p.q, at, m, dim), rows_of(&s.out, at, m, dim), rows_of(d_out, at, m, dim));
            let (probs, d_scores) = (&mut probs[..m * n], &mut d_scores[..m * n]);
            gemm([m, dim, n], p.scale, (queries, false), (&[&keys[..n * dim]], true), 0.0, probs);
            gemm([m, dim, n], 1.0, (d_out, false), (&[&values[..n * dim]], true), 0.0, d_scores);
            for (r, (row, d_row)) in probs.chunks_mut(n).zip(d_scores.chunks_mut(n)).enumerate() {
                let live = mask_scores(row, p.mask(b, (start + r) % d.q_len));
                let (lse, delta) =
                    (s.lse[first + start + r], dot(&d_out[r * dim..][..dim], &out[r * dim..][..dim]));
                live.iter_mut().for_each(|s| *s = exp(*s - lse));
                let (d_live, d_dead) = d_row.split_at_mut(live.len());
                d_dead.fill(0.0);
                d_live
                    .iter_mut()
                    .zip(live.iter())
                    .for_each(|(ds, prob)| *ds = p.scale * prob * (*ds - delta));
            }
            gemm(
                [m, n, dim],
                1.0,
                (d_scores, false),
                (&[&keys[..n * dim]], false),
                0.0,
                &mut dq[start * dim..][..m * dim],
            );
            gemm([n, m, dim], 1.0, (d_scores, true), (&[queries], false), 1.0, &mut dk[..n * dim]);
            gemm([n, m, dim], 1.0, (probs, true), (&[d_out], false), 1.0, &mut dv[..n * dim]);
        }
    });
    (dq, dk, dv)
}

/// Prepares a row of scores for exponentiation given its mask row and live length
/// ([`Problem::mask`]): −∞ where blocked, and the part past the last attendable key set to 0
/// (a probability of 0, never exponentiated); returns the rest.
fn mask_scores<'r>(row: &'r mut [f32], mask: Option<(&[bool], usize)>) -> &'r mut [f32] {
    let Some((blocked, live)) = mask else { return row };
    let (live, dead) = row.split_at_mut(live.min(row.len()));
    dead.fill(0.0);
    live.iter_mut().zip(blocked).for_each(|(s, &blocked)| {
        if blocked {
            *s = f32::NEG_INFINITY
        }
    });
    live
}

/// Rows `start..start + m` of a row-major matrix with `dim` columns.
fn rows_of(x: &[f32], start: usize, m: usize, dim: usize) -> &[f32] {
    &x[start * dim..][..m * dim]
}

/// `c ← alpha · A·B + beta · c` for `[m, k, n]`: `A` m×k and `B` k×n, each given row-major
/// either as is (`false`) or transposed (`true`: the slice holds `Aᵀ`), `c` m×n row-major.
/// `B` is given as runs of its rows (of `Bᵀ`'s when transposed) that follow one another: one
/// run, or with few rows of `A` (below) a shared prefix's keys and a row's own.
///
/// Up to [`HOST_ROW_BY_ROW`] rows of a non-transposed `A` into a zeroed `c` (decoding, a response
/// continuing a cached prompt) go row by row ([`rows_times_rows`], [`rows_weighing_rows`]):
/// packing `B`, as a blocked product does, would cost more than the product.
fn gemm(
    [m, k, n]: [usize; 3],
    alpha: f32,
    a: (&[f32], bool),
    b: (&[&[f32]], bool),
    beta: f32,
    c: &mut [f32],
) {
    let b_len: usize = b.0.iter().map(|run| run.len()).sum();
    assert!(a.0.len() >= m * k && b_len >= k * n && c.len() >= m * n, "gemm operands too short");
    if m <= HOST_ROW_BY_ROW && !a.1 && beta == 0.0 {
        return match b.1 {
            true => rows_times_rows([m, k, n], a.0, b.0, alpha, c),
            false => rows_weighing_rows([m, k, n], a.0, b.0, alpha, c),
        };
    }
    let b_run = b.0.first().copied().unwrap_or_default();
    assert!(b_run.len() >= k * n, "a blocked product takes B in its first run");
    let (rsa, csa) = if a.1 { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if b.1 { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the assert above keeps every index the strides reach inside the slices, and `c`
    // is a distinct mutable slice.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.0.as_ptr(),
            rsa,
            csa,
            b_run.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `c_rj = 0 + alpha · a_r·b_j` for the `m` rows `a_r` of `a` (row-major m×k) and the first
/// `n` rows `b_j` of the runs `b` (each row `k` long), `c` m×n row-major: [`KEYS`] rows `b_j` at
/// a time ([`dots`]), each block read once, for every `a_r` in turn; each `a_r·b_j` is summed as
/// [`dot`] sums it. (The `0 +` is that of a product added to zeroed `c`, kept so the bits do
/// not depend on which way [`gemm`] went.)
fn rows_times_rows([m, k, n]: [usize; 3], a: &[f32], b: &[&[f32]], alpha: f32, c: &mut [f32]) {
    let mut j = 0;
    for run in b {
        let rows = (run.len() / k).min(n - j);
        // KEYS rows of B at a time, the last block shorter
        for block in run[..rows * k].chunks(KEYS * k) {
            let keys = block.len() / k;
            for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)).take(m) {
                let c_block = &mut c_row[j..j + keys];
                match keys {
                    KEYS => {
                        c_block.iter_mut().zip(dots(a_row, block)).for_each(|(c, sum)| *c = 0.0 + alpha * sum)
                    }
                    _ => c_block
                        .iter_mut()
                        .zip(block.chunks_exact(k))
                        .for_each(|(c, b_row)| *c = 0.0 + alpha * dot(a_row, b_row)),
                }
            }
            j += keys;
        }
    }
}

/// Rows of `B` whose dot products with one row of `A` [`rows_times_rows`] sums side by side.
const KEYS: usize = 4;

/// `[dot(a, y_0), …, dot(a, y_3)]` for the [`KEYS`] rows `y_i` of `keys` (each `a.len()` long),
/// with the same bits: each `y_i`'s eight lanes `l_0 … l_7` summed as [`dot`] sums them,
/// `((l_0 + l_1) + …) + l_7 + tail`, for the four rows in one vector (a 4×4 transpose of the
/// lanes, then seven vector additions), rather than one row's lanes after another.
#[cfg(target_arch = "x86_64")]
fn dots(a: &[f32], keys: &[f32]) -> [f32; KEYS] {
    use std::arch::x86_64::{__m128, _mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_setzero_ps, _mm_storeu_ps};
    let k = a.len();
    let body = k - k % 8;
    assert!(keys.len() >= KEYS * k, "dots: {} keys' elements, need {}", keys.len(), KEYS * k);
    let tails: [f32; KEYS] = std::array::from_fn(|key| {
        let row = &keys[key * k..][..k];
        a[body..].iter().zip(&row[body..]).map(|(x, y)| x * y).sum()
    });
    let mut sums = [0.0f32; KEYS];
    // SAFETY: SSE is part of every x86_64 CPU; each load reads 4 floats at `a[t..t + 8]` or
    // `keys[key·k + t..][..8]` with `t + 8 ≤ body ≤ k`, inside the slices (the assert above).
    unsafe {
        let mut low = [_mm_setzero_ps(); KEYS]; // lanes 0–3 of each key
        let mut high = low; // lanes 4–7
        for t in (0..body).step_by(8) {
            let (x_low, x_high) = (_mm_loadu_ps(a.as_ptr().add(t)), _mm_loadu_ps(a.as_ptr().add(t + 4)));
            for key in 0..KEYS {
                let y = keys.as_ptr().add(key * k + t);
                low[key] = _mm_add_ps(low[key], _mm_mul_ps(x_low, _mm_loadu_ps(y)));
                high[key] = _mm_add_ps(high[key], _mm_mul_ps(x_high, _mm_loadu_ps(y.add(4))));
            }
        }
        let lanes: [__m128; 8] = {
            let ([l0, l1, l2, l3], [l4, l5, l6, l7]) = (transpose(low), transpose(high));
            [l0, l1, l2, l3, l4, l5, l6, l7]
        };
        let sum = lanes[1..].iter().fold(lanes[0], |sum, &lane| _mm_add_ps(sum, lane));
        _mm_storeu_ps(sums.as_mut_ptr(), _mm_add_ps(sum, _mm_loadu_ps(tails.as_ptr())));
    }
    sums
}

/// Rows `r_0 … r_3` of a 4×4 matrix → its columns.
#[cfg(target_arch = "x86_64")]
fn transpose([r0, r1, r2, r3]: [std::arch::x86_64::__m128; 4]) -> [std::arch::x86_64::__m128; 4] {
    use std::arch::x86_64::{_mm_movehl_ps, _mm_movelh_ps, _mm_unpackhi_ps, _mm_unpacklo_ps};
    // SAFETY: SSE shuffles of registers, part of every x86_64 CPU.
    unsafe {
        let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3));
        let (t2, t3) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3));
        [_mm_movelh_ps(t0, t1), _mm_movehl_ps(t1, t0), _mm_movelh_ps(t2, t3), _mm_movehl_ps(t3, t2)]
    }
}

/// `[dot(a, y_0), …, dot(a, y_3)]` for the [`KEYS`] rows `y_i` of `keys`, one after another.
#[cfg(not(target_arch = "x86_64"))]
fn dots(a: &[f32], keys: &[f32]) -> [f32; KEYS] {
    std::array::from_fn(|key| dot(a, &keys[key * a.len()..][..a.len()]))
}

/// Columns of `c` that [`rows_weighing_rows`] sums in registers at a time.
const LANES: usize = 32;

/// `c_r = Σ_i (alpha · a_ri) · b_i`, summed from 0 in the order of `i`, for the `m` rows `a_r`
/// of `a` (row-major m×k) and the first `k` rows `b_i` of the runs `b` (each row `n` long), `c`
/// m×n row-major: [`LANES`] columns of a row of `c` summed in registers at a time, over every
/// `b_i`.
fn rows_weighing_rows([m, k, n]: [usize; 3], a: &[f32], b: &[&[f32]], alpha: f32, c: &mut [f32]) {
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)).take(m) {
        for (start, c_part) in (0..n).step_by(LANES).zip(c_row.chunks_mut(LANES)) {
            let lanes = c_part.len();
            let mut sums = [0.0f32; LANES];
            let mut weights = a_row;
            for run in b {
                let rows = (run.len() / n).min(weights.len());
                for (&weight, b_row) in weights[..rows].iter().zip(run.chunks_exact(n)) {
                    let scaled = alpha * weight;
                    let part = &b_row[start..start + lanes];
                    match <&[f32; LANES]>::try_from(part) {
                        Ok(part) => (0..LANES).for_each(|l| sums[l] += scaled * part[l]),
                        Err(_) => sums.iter_mut().zip(part).for_each(|(sum, &y)| *sum += scaled * y),
                    }
                }
                weights = &weights[rows..];
            }
            c_part.copy_from_slice(&sums[..lanes]);
        }
    }
}

/// `Σ_i a_i b_i` in eight independent lanes (so the compiler vectorises it): lane `l` sums
/// `a_i b_i` for `i ≡ l (mod 8)` in order, then `((l_0 + l_1) + …) + l_7`, plus the tail past
/// the last multiple of 8 (summed in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks.remainder().iter().zip(b_blocks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use burn::tensor::backend::Backend;
    use burn::tensor::Distribution;

    use super::*;
    use crate::kernels::{causal_blocked, decomposed_attention, Kernels};

    type CpuAutodiff = Autodiff<Cpu>;

    fn random<B: Backend>(shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    fn fused<B: Kernels>(
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Option<&Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 4> {
        <B as Kernels>::attention(q, k, v, mask, 0.3)
    }

    fn max_difference<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
        (a - b).abs().max().into_data().convert::<f32>().to_vec::<f32>().expect("f32")[0]
    }

    /// `q, k, v` and the mask of one test case.
    type Case<B> = (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 4, Bool>>);

    /// The cases: grouped heads with a causal + padding mask over a cache (Sq < Sk), one
    /// shared mask, no mask, single-row decoding, and rows enough for several blocks and
    /// threads.
    fn cases<B: Backend>(device: &B::Device) -> Vec<Case<B>> {
        let mut valid = vec![true; 2 * 9];
        valid[0] = false; // left padding in row 0
        valid[1] = false;
        valid[9 + 4] = false; // padding inside row 1
        let padded = causal_blocked::<B>(&valid, 2, 7, 0, device);
        let shared = causal_blocked::<B>(&[true; 9], 1, 9, 0, device);
        let decode = causal_blocked::<B>(&valid, 2, 1, 0, device);
        // decoding over a cache with 3 unfilled positions after the 9 real ones
        let decode_with_room = causal_blocked::<B>(&valid, 2, 1, 3, device);
        let long: Vec<bool> = (0..2 * 150).map(|j| j % 150 >= 3 * (j / 150)).collect();
        let long_mask = causal_blocked::<B>(&long, 2, 150, 0, device);
        vec![
            (
                random([2, 4, 7, 16], device),
                random([2, 2, 9, 16], device),
                random([2, 2, 9, 16], device),
                Some(padded),
            ),
            (
                random([3, 2, 9, 12], device),
                random([3, 2, 9, 12], device),
                random([3, 2, 9, 12], device),
                Some(shared),
            ),
            (random([5, 3, 6, 8], device), random([5, 1, 6, 8], device), random([5, 1, 6, 8], device), None),
            (
                random([2, 6, 1, 16], device),
                random([2, 3, 9, 16], device),
                random([2, 3, 9, 16], device),
                Some(decode),
            ),
            (
                random([2, 6, 1, 16], device),
                random([2, 3, 12, 16], device),
                random([2, 3, 12, 16], device),
                Some(decode_with_room),
            ),
            (
                random([2, 4, 150, 8], device),
                random([2, 2, 150, 8], device),
                random([2, 2, 150, 8], device),
                Some(long_mask),
            ),
        ]
    }

    #[test]
    fn fused_forward_equals_the_decomposed_one() {
        let device = Default::default();
        for (q, k, v, mask) in cases::<Cpu>(&device) {
            let expected = decomposed_attention(q.clone(), k.clone(), v.clone(), mask.as_ref(), 0.3);
            let got = fused(q, k, v, mask.as_ref());
            assert!(max_difference(expected, got) < 1e-5);
        }
    }

    #[test]
    fn fused_gradients_equal_the_decomposed_ones() {
        let device = Default::default();
        for (q, k, v, mask) in cases::<CpuAutodiff>(&device) {
            let weights = random::<CpuAutodiff>(q.dims(), &device);
            let gradients = |use_fused: bool| {
                let (q, k, v) =
                    (q.clone().require_grad(), k.clone().require_grad(), v.clone().require_grad());
                let out = match use_fused {
                    true => fused(q.clone(), k.clone(), v.clone(), mask.as_ref()),
                    false => decomposed_attention(q.clone(), k.clone(), v.clone(), mask.as_ref(), 0.3),
                };
                let grads = (out.clone() * weights.clone()).sum().backward();
                let grad = |t: &Tensor<CpuAutodiff, 4>| t.grad(&grads).expect("tracked input");
                [out.inner(), grad(&q), grad(&k), grad(&v)]
            };
            for (expected, got) in gradients(false).into_iter().zip(gradients(true)) {
                assert!(max_difference(expected, got) < 1e-4);
            }
        }
    }

    #[test]
    fn keys_side_by_side_give_the_bits_of_one_key_at_a_time() {
        let mut state = 0x2545f491u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match state % 11 {
                0 => 0.0,
                1 => -0.0,
                _ => (state >> 8) as f32 / (1 << 24) as f32 - 0.5,
            }
        };
        for (m, k, n) in [(1, 32, 9), (2, 32, 37), (3, 5, 11), (8, 37, 64), (2, 8, 4), (1, 3, 2)] {
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            // a shared prefix's keys, then a row's own with room past the n-th
            let (prefix, own): (Vec<f32>, Vec<f32>) = (
                (0..(n / 3) * k).map(|_| next()).collect(),
                (0..(n - n / 3 + 2) * k).map(|_| next()).collect(),
            );
            let mut got = vec![1.0; m * n];
            rows_times_rows([m, k, n], &a, &[&prefix, &own], 0.3, &mut got);
            let keys: Vec<&[f32]> = prefix.chunks_exact(k).chain(own.chunks_exact(k)).take(n).collect();
            for (r, a_row) in a.chunks_exact(k).enumerate() {
                for (j, key) in keys.iter().enumerate() {
                    let expected = 0.0 + 0.3 * dot(a_row, key);
                    assert_eq!(
                        got[r * n + j].to_bits(),
                        expected.to_bits(),
                        "m {m}, k {k}, n {n}: [{r}, {j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn exp_is_within_two_ten_millionths_of_libm() {
        let worst = (0..=200_000)
            .map(|i| -88.0 + 96.0 * i as f32 / 200_000.0)
            .filter(|x| *x >= -87.0)
            .map(|x| ((exp(x) - x.exp()) / x.exp()).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 2e-7, "{worst}");
        assert_eq!((exp(f32::NEG_INFINITY), exp(-100.0), exp(0.0)), (0.0, 0.0, 1.0));
        assert!(exp(f32::NAN).is_nan());
    }
}
