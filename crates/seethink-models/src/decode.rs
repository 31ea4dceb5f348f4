//! What incremental decoding carries between calls: the KV cache of every layer and the
//! [`DecodeState`] around it (padding of cached positions, position offsets).

use burn::tensor::{backend::Backend, DType, Tensor};

use crate::error::{ModelError, Result};
use crate::positions::TokenBatch;

/// Keys and values of every layer for the tokens seen so far, `[B, Hkv, S_past, D]` each.
///
/// Kept outside the modules so the model stays a plain burn `Module`. After
/// [`KvCache::reserve`], each layer's keys and values live in buffers with room for more
/// positions, new ones are written into them in place (a uniquely held buffer is not copied
/// by `slice_assign`), and attention runs over the whole buffers with the unfilled positions
/// masked ([`KvCache::room_after`]); without room, new positions are concatenated.
///
/// [`KvCache::stored_as`] keeps them in a narrower float type (bf16 where the checkpoint is
/// stored so, as vLLM keeps a bf16 model's cache): half the bytes of f32. Attention still
/// computes in the backend's type, on each layer's keys and values cast back for the call.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<LayerCache<B>>>,
    /// The type the keys and values are kept in; `None`: as computed.
    storage: Option<DType>,
}

/// One layer's keys and values: `[B, Hkv, capacity, D]` buffers whose first `len` positions
/// are filled.
#[derive(Clone, Debug)]
struct LayerCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    len: usize,
}

impl<B: Backend> LayerCache<B> {
    fn capacity(&self) -> usize {
        self.k.dims()[2]
    }

    /// The filled positions of the keys and values.
    fn filled(&self) -> (Tensor<B, 4>, Tensor<B, 4>) {
        match self.len == self.capacity() {
            true => (self.k.clone(), self.v.clone()),
            false => (self.k.clone().narrow(2, 0, self.len), self.v.clone().narrow(2, 0, self.len)),
        }
    }

    /// `f` applied to both buffers.
    fn map(&self, f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>) -> Self {
        Self { k: f(self.k.clone()), v: f(self.v.clone()), len: self.len }
    }
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a decoder with `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self { layers: vec![None; num_layers], storage: None }
    }

    /// This cache keeping its keys and values in `storage` (`None`: as computed).
    pub fn stored_as(self, storage: Option<DType>) -> Self {
        Self { storage, ..self }
    }

    /// Each batch row repeated `n` times in place (`[B, …] → [B·n, …]`).
    pub fn repeat_interleave(&self, n: usize) -> Self {
        let repeat = |t: Tensor<B, 4>| {
            let [b, h, s, d] = t.dims();
            t.unsqueeze_dim::<5>(1).expand([b, n, h, s, d]).reshape([b * n, h, s, d])
        };
        Self {
            layers: self.layers.iter().map(|l| l.as_ref().map(|l| l.map(repeat))).collect(),
            storage: self.storage,
        }
    }

    /// Only the batch rows `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let pick = |t: Tensor<B, 4>| {
            let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            let idx = Tensor::<B, 1, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(idx, [rows.len()]),
                &t.device(),
            );
            t.select(0, idx)
        };
        Self {
            layers: self.layers.iter().map(|l| l.as_ref().map(|l| l.map(pick))).collect(),
            storage: self.storage,
        }
    }

    /// Makes room for `extra` more positions in every filled layer, so the next `extra`
    /// positions are written in place instead of concatenated (generation reserves its
    /// `max_new_tokens` after the prefill).
    pub fn reserve(&mut self, extra: usize) {
        for layer in self.layers.iter_mut().flatten() {
            let [b, h, capacity, d] = layer.k.dims();
            if capacity - layer.len >= extra {
                continue;
            }
            let (k, v) = layer.filled();
            let room = Tensor::<B, 4>::zeros([b, h, extra, d], &k.device()).cast(k.dtype());
            layer.k = Tensor::cat(vec![k, room.clone()], 2);
            layer.v = Tensor::cat(vec![v, room], 2);
        }
    }

    /// The unfilled positions the keys and values attended over will have once `new`
    /// positions are added: the room left in the buffers if they fit, else 0 (they are
    /// concatenated).
    pub fn room_after(&self, new: usize) -> usize {
        match self.layers.iter().flatten().next() {
            Some(layer) if layer.len + new <= layer.capacity() => layer.capacity() - layer.len - new,
            _ => 0,
        }
    }

    /// Appends this step's keys/values to layer `layer` and returns the keys and values to
    /// attend over: the filled positions, followed by [`KvCache::room_after`] unfilled ones, in
    /// the type `k` and `v` came in (kept in the cache's storage type, [`KvCache::stored_as`]).
    pub(crate) fn extend(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let computed = k.dtype();
        let (k, v) = match self.storage {
            Some(storage) if storage != computed => (k.cast(storage), v.cast(storage)),
            _ => (k, v),
        };
        let new = k.dims()[2];
        let cache = match self.layers[layer].take() {
            None => LayerCache { k, v, len: new },
            Some(past) if past.len + new <= past.capacity() => {
                let [b, h, _, d] = past.k.dims();
                let at = [0..b, 0..h, past.len..past.len + new, 0..d];
                let len = past.len + new;
                LayerCache { k: past.k.slice_assign(at.clone(), k), v: past.v.slice_assign(at, v), len }
            }
            Some(past) => {
                let (past_k, past_v) = past.filled();
                LayerCache {
                    k: Tensor::cat(vec![past_k, k], 2),
                    v: Tensor::cat(vec![past_v, v], 2),
                    len: past.len + new,
                }
            }
        };
        let attended = match cache.k.dtype() == computed {
            true => (cache.k.clone(), cache.v.clone()),
            false => (cache.k.clone().cast(computed), cache.v.clone().cast(computed)),
        };
        self.layers[layer] = Some(cache);
        attended
    }
}

/// What incremental decoding remembers: keys/values, which cached positions are real tokens
/// (not padding), and per row the offset that continues positions after the prompt.
#[derive(Clone, Debug)]
pub struct DecodeState<B: Backend> {
    pub kv: KvCache<B>,
    /// `[batch][cached positions]`, true for real tokens.
    pub key_valid: Vec<Vec<bool>>,
    /// Per row: the position of cached index i is `i + offset` after the prompt (Qwen-VL:
    /// M-RoPE's rope delta, on every axis).
    pub position_offsets: Vec<i64>,
}

impl<B: Backend> DecodeState<B> {
    /// An empty state for a decoder of `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self { kv: KvCache::new(num_layers), key_valid: Vec::new(), position_offsets: Vec::new() }
    }

    /// Number of cached positions (prompt padding included).
    pub fn len(&self) -> usize {
        self.key_valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each row repeated `n` times in place (row b becomes rows b·n … b·n+n−1): one prefilled
    /// prompt shared by the n samples of its group.
    pub fn repeat_interleave(&self, n: usize) -> Self {
        let repeat = |v: &[Vec<bool>]| v.iter().flat_map(|r| std::iter::repeat_n(r.clone(), n)).collect();
        Self {
            kv: self.kv.repeat_interleave(n),
            key_valid: repeat(&self.key_valid),
            position_offsets: self.position_offsets.iter().flat_map(|&d| std::iter::repeat_n(d, n)).collect(),
        }
    }

    /// Only the batch rows `rows`, in that order (rows that finished decoding are dropped).
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        Self {
            kv: self.kv.select_rows(rows),
            key_valid: rows.iter().map(|&r| self.key_valid[r].clone()).collect(),
            position_offsets: rows.iter().map(|&r| self.position_offsets[r]).collect(),
        }
    }

    /// Readies the state for new tokens left-padded by `pads[b]` positions in row b: their
    /// positions move back by the padding, so each row's first real token takes the position
    /// right after what the row has seen, as without padding (the padding is masked out as
    /// keys by [`DecodeState::extend_keys`]).
    pub fn left_pad_next(&mut self, pads: &[usize]) {
        for (offset, &pad) in self.position_offsets.iter_mut().zip(pads) {
            *offset -= pad as i64;
        }
    }

    /// Records the new tokens' padding mask and returns the key-validity of every cached
    /// position, `[batch · cached]` row-major (the input of the causal mask).
    pub fn extend_keys(&mut self, tokens: &TokenBatch) -> Vec<bool> {
        self.key_valid.resize(tokens.batch, Vec::new());
        for (b, row) in self.key_valid.iter_mut().enumerate() {
            row.extend_from_slice(&tokens.mask[b * tokens.seq..(b + 1) * tokens.seq]);
        }
        self.key_valid.concat()
    }

    /// Positions of decoded tokens: new token i of row b is at `cached + i + offset[b]`,
    /// laid out `[batch][new tokens]`.
    pub fn continued_positions(&self, tokens: &TokenBatch) -> Result<Vec<i64>> {
        if tokens.batch != self.position_offsets.len() {
            return Err(ModelError::Input(format!(
                "decoding {} rows but the state holds {}",
                tokens.batch,
                self.position_offsets.len()
            )));
        }
        let past = self.len() as i64;
        Ok((0..tokens.batch)
            .flat_map(|b| (0..tokens.seq as i64).map(move |i| past + i + self.position_offsets[b]))
            .collect())
    }
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{DType, Distribution, Tensor};

    use super::KvCache;

    type B = NdArray<f32>;

    fn random(positions: usize) -> Tensor<B, 4> {
        Tensor::random([2, 1, positions, 3], Distribution::Normal(0.0, 1.0), &Default::default())
    }

    /// (The rounding to a narrower type is checked on the generic path, `NdArray<f64>`
    /// keeping f32: `tests/generic_path.rs`; here f32 is kept in f64, which holds it exactly.)
    #[test]
    fn a_cache_stored_in_another_type_keeps_it_and_returns_the_compute_type() {
        let mut cache = KvCache::<B>::new(1).stored_as(Some(DType::F64));
        let (k1, v1) = (random(4), random(4));
        cache.extend(0, k1.clone(), v1.clone());
        // written in place after a reservation
        cache.reserve(2);
        let (k2, v2) = (random(1), random(1));
        let (keys, values) = cache.extend(0, k2.clone(), v2.clone());
        let layer = cache.layers[0].as_ref().unwrap();
        assert_eq!((layer.k.dtype(), layer.v.dtype(), layer.len), (DType::F64, DType::F64, 5));
        assert_eq!((keys.dtype(), keys.dims()), (DType::F32, [2, 1, 6, 3]));
        assert_eq!(keys.narrow(2, 0, 5).into_data(), Tensor::cat(vec![k1, k2], 2).into_data());
        assert_eq!(values.narrow(2, 0, 5).into_data(), Tensor::cat(vec![v1, v2], 2).into_data());
        // rows picked and repeated keep the storage
        let picked = cache.select_rows(&[1]).repeat_interleave(2);
        assert_eq!(picked.storage, Some(DType::F64));
    }
}
