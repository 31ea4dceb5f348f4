//! A layer's cached keys and values as attention reads them, below both the KV cache that makes
//! them (`crate::decode`) and the kernels that read them.

use burn::tensor::{backend::Backend, DType, Int, Tensor};

/// One layer's keys and values as its attention reads them, from `KvCache::extend` (`crate::decode`), in the
/// cache's storage type: `computed` is the type attention computes in.
#[derive(Clone, Debug)]
pub enum CachedKv<B: Backend> {
    /// Every row's own keys and values, `[B, Hkv, S, D]` each.
    Whole { k: Tensor<B, 4>, v: Tensor<B, 4>, computed: DType },
    /// Rows continuing shared prompts ([`crate::decode::KvCache::sharing_prefixes`]): row `r` reads the prefix
    /// `prefix_*[rows[r]]` (`[prompts, Hkv, P, D]`) followed by its own, `own_*[own_rows[r]]`
    /// (`[held, Hkv, S, D]`; without `own_rows`, `own_*[r]`).
    Shared {
        prefix_k: Tensor<B, 4>,
        prefix_v: Tensor<B, 4>,
        rows: Tensor<B, 1, Int>,
        own_k: Tensor<B, 4>,
        own_v: Tensor<B, 4>,
        own_rows: Option<Tensor<B, 1, Int>>,
        computed: DType,
    },
}

impl<B: Backend> CachedKv<B> {
    /// Each row's keys and values whole, `[B, Hkv, P + S, D]` in the computed type: for shared
    /// prefixes a gather of the rows' prefixes and a concatenation, one layer's copy (and, once
    /// rows have left, a gather of the others' own positions before it: one layer's own
    /// positions copied once more, which the memory plan does not count; the host's and the
    /// cube's kernels read them in place).
    pub fn gathered(self) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (keys, values, computed) = match self {
            Self::Whole { k, v, computed } => (k, v, computed),
            Self::Shared { prefix_k, prefix_v, rows, own_k, own_v, own_rows, computed } => {
                let gathered = |shared: Tensor<B, 4>, own: Tensor<B, 4>| {
                    let own = match &own_rows {
                        Some(own_rows) => own.select(0, own_rows.clone()),
                        None => own,
                    };
                    Tensor::cat(vec![shared.select(0, rows.clone()), own], 2)
                };
                (gathered(prefix_k, own_k), gathered(prefix_v, own_v), computed)
            }
        };
        match keys.dtype() == computed {
            true => (keys, values),
            false => (keys.cast(computed), values.cast(computed)),
        }
    }
}
