//! What incremental decoding carries between calls: the KV cache of every layer and the
//! [`DecodeState`] around it (padding of cached positions, position offsets).

use burn::tensor::{backend::Backend, DType, Int, Tensor};

use crate::error::{ModelError, Result};
pub use crate::kernels::cached_kv::CachedKv;
use crate::kernels::Kernels;
use crate::positions::TokenBatch;

/// Keys and values of every layer for the tokens seen so far, `[B, Hkv, S_past, D]` each.
///
/// Kept outside the modules so the model stays a plain burn `Module`. After
/// [`KvCache::reserve`], each layer's keys and values live in buffers with room for more
/// positions, new ones are written into them in place (a uniquely held buffer is not copied
/// by `slice_assign`), and attention runs over the whole buffers with the unfilled positions
/// masked ([`KvCache::room_after`]); without room, new positions are concatenated.
///
/// [`KvCache::sharing_prefixes`] changes how rows are held for decoding: rows that continue one
/// prefilled prompt (the `n` samples of a GRPO group) read it from one copy, and each row's own
/// positions grow in blocks of a few positions as it decodes, instead of every row holding the
/// prompt and room for the longest response from the start. Each layer's attention reads them
/// as [`CachedKv::Shared`]: gathered for the call ([`CachedKv::gathered`], a buffer that lives
/// for that call only) unless its kernel reads them in place
/// ([`crate::kernels::Kernels::cached_attention`]). Rows that stop decoding leave without a
/// copy of the others' own positions: their own rows stay in the buffers, unread, and each
/// remaining row reads and writes its own through an index (`OwnRows`) until the buffers next
/// grow, when they are copied anyway and the rows that left are dropped.
///
/// [`KvCache::stored_as`] keeps them in a narrower float type (bf16 where the checkpoint is
/// stored so, as vLLM keeps a bf16 model's cache): half the bytes of f32. Attention still
/// computes in the backend's type, on each layer's keys and values cast back for the call.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    /// The type the keys and values are kept in; `None`: as computed.
    storage: Option<DType>,
    /// With shared prefixes: the positions a row's own buffers grow by at a time.
    block: Option<usize>,
    /// With shared prefixes, once rows share them: the prefix (row of every layer's `prefix`)
    /// that batch row r continues is `prefix_rows[r]`.
    prefix_rows: Vec<usize>,
    /// `prefix_rows` on the prefixes' device, made when the rows change rather than by every
    /// layer's attention call.
    prefix_index: Option<Tensor<B, 1, Int>>,
}

/// One layer's keys and values: the prefixes rows share, and each row's own positions.
#[derive(Clone, Debug)]
struct LayerCache<B: Backend> {
    prefix: Option<Positions<B>>,
    own: Option<Positions<B>>,
    /// Which rows of `own` the batch rows hold since rows left (`None`: row r's is row r).
    own_rows: Option<OwnRows<B>>,
}

/// Batch row r's own keys and values are row `at[r]` of a layer's own buffers (rows that left
/// decoding keep theirs there, unread, until the buffers grow); `index` is `at` on the
/// buffers' device.
#[derive(Clone, Debug)]
struct OwnRows<B: Backend> {
    at: Vec<usize>,
    index: Tensor<B, 1, Int>,
}

impl<B: Backend> OwnRows<B> {
    /// The rows `at` of buffers of `held` rows, unless that is every row in order (`None`).
    fn of(at: Vec<usize>, held: usize, device: &B::Device) -> Option<Self> {
        match at.len() == held && at.iter().enumerate().all(|(r, &row)| r == row) {
            true => None,
            false => Some(Self { index: index::<B>(&at, device), at }),
        }
    }
}

/// Keys and values in `[rows, Hkv, capacity, D]` buffers whose first `len` positions are filled.
#[derive(Clone, Debug)]
struct Positions<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    len: usize,
}

impl<B: Backend> Positions<B> {
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

    /// Only the filled positions of the buffers' rows `rows`, in that order (a copy).
    fn kept(&self, rows: &Tensor<B, 1, Int>) -> Self {
        let (k, v) = self.filled();
        Self { k: k.select(0, rows.clone()), v: v.select(0, rows.clone()), len: self.len }
    }
}

impl<B: Kernels> Positions<B> {
    /// `k` and `v` (`[rows, Hkv, new, D]`) written after the filled positions: in place when
    /// they fit (row r into the buffers' row `rows[r]`, [`Kernels::write_positions`]), else
    /// into new buffers of `capacity` positions (the filled ones, the new ones, then unfilled
    /// room), where batch row r must be the buffers' row r.
    fn extended(self, k: Tensor<B, 4>, v: Tensor<B, 4>, capacity: usize, rows: Option<&OwnRows<B>>) -> Self {
        let new = k.dims()[2];
        let len = self.len + new;
        if len <= self.capacity() {
            let rows = rows.map(|r| r.index.clone());
            return Self {
                k: B::write_positions(self.k, rows.clone(), k, self.len),
                v: B::write_positions(self.v, rows, v, self.len),
                len,
            };
        }
        let (past_k, past_v) = self.filled();
        Self {
            k: with_room(vec![past_k, k], capacity - len),
            v: with_room(vec![past_v, v], capacity - len),
            len,
        }
    }
}

/// The concatenation of `parts` along the positions, followed by `room` zero positions.
fn with_room<B: Backend>(mut parts: Vec<Tensor<B, 4>>, room: usize) -> Tensor<B, 4> {
    if room > 0 {
        let [b, h, _, d] = parts[0].dims();
        let zeros = Tensor::<B, 4>::zeros([b, h, room, d], &parts[0].device()).cast(parts[0].dtype());
        parts.push(zeros);
    }
    match parts.len() {
        1 => parts.pop().expect("one part"),
        _ => Tensor::cat(parts, 2),
    }
}

/// `rows` as an index tensor on `device`.
fn index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(burn::tensor::TensorData::new(idx, [rows.len()]), device)
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a decoder with `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        let empty = LayerCache { prefix: None, own: None, own_rows: None };
        Self {
            layers: vec![empty; num_layers],
            storage: None,
            block: None,
            prefix_rows: Vec::new(),
            prefix_index: None,
        }
    }

    /// This cache keeping its keys and values in `storage` (`None`: as computed).
    pub fn stored_as(self, storage: Option<DType>) -> Self {
        Self { storage, ..self }
    }

    /// This cache with rows that continue one prefix sharing it: from the next
    /// [`KvCache::select_rows`] (or [`KvCache::repeat_interleave`]) on, the positions cached so
    /// far are kept once per prefix row and each batch row reads its own; positions added
    /// later are each row's own, in buffers grown `block` positions at a time.
    pub fn sharing_prefixes(self, block: usize) -> Self {
        Self { block: Some(block.max(1)), ..self }
    }

    /// The rows' own buffers' capacity once `new` positions join `len` filled ones in a buffer
    /// of `capacity`: unchanged if they fit, else exactly enough, or with shared prefixes the
    /// next multiple of the block.
    fn capacity_for(&self, len: usize, capacity: usize, new: usize) -> usize {
        match (len + new <= capacity, self.block) {
            (true, _) => capacity,
            (false, None) => len + new,
            (false, Some(block)) => (len + new).div_ceil(block) * block,
        }
    }

    /// Each batch row repeated `n` times in place (`[B, …] → [B·n, …]`).
    pub fn repeat_interleave(&self, n: usize) -> Self {
        if self.block.is_some() {
            let batch = self.rows();
            return self.select_rows(&(0..batch * n).map(|r| r / n).collect::<Vec<_>>());
        }
        let repeat = |t: Tensor<B, 4>| {
            let [b, h, s, d] = t.dims();
            t.unsqueeze_dim::<5>(1).expand([b, n, h, s, d]).reshape([b * n, h, s, d])
        };
        self.map_own(repeat)
    }

    /// Only the batch rows `rows`, in that order. With shared prefixes, the positions cached
    /// so far become the prefixes on the first call, and each later call points the rows at
    /// their own positions where they are (`OwnRows`; a row picked twice gets a copy); a
    /// prefix no row continues is dropped once half of them are.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let pick = |t: Tensor<B, 4>| {
            let device = t.device();
            t.select(0, index::<B>(rows, &device))
        };
        if self.block.is_none() {
            return self.map_own(pick);
        }
        let mut out = self.clone();
        if self.prefix_rows.is_empty() {
            for layer in &mut out.layers {
                layer.prefix = layer.own.take().map(|own| {
                    let (k, v) = own.filled();
                    Positions { k, v, len: own.len }
                });
            }
            out.prefix_rows = rows.to_vec();
        } else {
            let mut shared_rows: Option<OwnRows<B>> = None;
            for layer in &mut out.layers {
                let Some(own) = layer.own.as_ref() else { continue };
                let at: Vec<usize> =
                    rows.iter().map(|&r| layer.own_rows.as_ref().map_or(r, |o| o.at[r])).collect();
                let mut distinct = at.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() < at.len() {
                    // two rows writing one buffer row would clash: each gets a copy
                    let at = index::<B>(&at, &own.k.device());
                    layer.own = Some(own.map(|t| t.select(0, at.clone())));
                    layer.own_rows = None;
                    continue;
                }
                // every layer's rows are alike: one index on the device serves them all
                if shared_rows.as_ref().is_none_or(|o| o.at != at) {
                    shared_rows = OwnRows::of(at, own.k.dims()[0], &own.k.device());
                }
                layer.own_rows = shared_rows.clone();
            }
            out.prefix_rows = rows.iter().map(|&r| self.prefix_rows[r]).collect();
        }
        out.drop_unread_prefixes();
        out.prefix_index = out
            .layers
            .iter()
            .find_map(|l| l.prefix.as_ref())
            .map(|p| index::<B>(&out.prefix_rows, &p.k.device()));
        out
    }

    /// Drops the prefixes no row continues, once they are at least half of them.
    fn drop_unread_prefixes(&mut self) {
        let Some(held) = self.layers.iter().find_map(|l| l.prefix.as_ref()).map(|p| p.k.dims()[0]) else {
            return;
        };
        let mut read: Vec<usize> = self.prefix_rows.clone();
        read.sort_unstable();
        read.dedup();
        if read.len() * 2 > held {
            return;
        }
        for layer in &mut self.layers {
            layer.prefix = layer.prefix.as_ref().map(|p| {
                let device = p.k.device();
                p.map(|t| t.select(0, index::<B>(&read, &device)))
            });
        }
        for row in &mut self.prefix_rows {
            *row = read.binary_search(row).expect("a read prefix");
        }
    }

    /// The batch rows the cache holds.
    fn rows(&self) -> usize {
        match self.prefix_rows.is_empty() {
            false => self.prefix_rows.len(),
            true => self.layers.iter().find_map(|l| l.own.as_ref()).map_or(0, |own| own.k.dims()[0]),
        }
    }

    /// `f` applied to every layer's own buffers.
    fn map_own(&self, f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>) -> Self {
        let mut out = self.clone();
        for layer in &mut out.layers {
            layer.own = layer.own.as_ref().map(|own| own.map(&f));
        }
        out
    }

    /// Makes room for `extra` more positions in every filled layer, so the next `extra`
    /// positions are written in place instead of concatenated (generation reserves its
    /// `max_new_tokens` after the prefill, unless prefixes are shared: those buffers grow in
    /// blocks).
    pub fn reserve(&mut self, extra: usize) {
        for own in self.layers.iter_mut().filter_map(|l| l.own.as_mut()) {
            if own.capacity() - own.len >= extra {
                continue;
            }
            let (k, v) = own.filled();
            own.k = with_room(vec![k], extra);
            own.v = with_room(vec![v], extra);
        }
    }

    /// The unfilled positions the keys and values attended over will have once `new`
    /// positions are added: the room left in the rows' own buffers, after they grow if they
    /// must ([`KvCache::sharing_prefixes`]; without shared prefixes they grow by exactly
    /// `new`, leaving 0).
    pub fn room_after(&self, new: usize) -> usize {
        let (len, capacity) =
            self.layers.iter().find_map(|l| l.own.as_ref()).map_or((0, 0), |own| (own.len, own.capacity()));
        match (self.layers.iter().all(|l| l.own.is_none()), self.block) {
            (true, None) => 0,
            _ => self.capacity_for(len, capacity, new) - len - new,
        }
    }
}

impl<B: Kernels> KvCache<B> {
    /// Appends this step's keys/values to layer `layer` and returns the keys and values to
    /// attend over ([`CachedKv`]): the row's prefix if it shares one, its filled positions, then
    /// [`KvCache::room_after`] unfilled ones, kept in the cache's storage type
    /// ([`KvCache::stored_as`]). Buffers that grow keep only the rows still decoding.
    pub(crate) fn extend(&mut self, layer: usize, k: Tensor<B, 4>, v: Tensor<B, 4>) -> CachedKv<B> {
        let computed = k.dtype();
        let (k, v) = match self.storage {
            Some(storage) if storage != computed => (k.cast(storage), v.cast(storage)),
            _ => (k, v),
        };
        let new = k.dims()[2];
        let own = match self.layers[layer].own.take() {
            None => {
                let capacity = self.capacity_for(0, 0, new);
                Positions {
                    k: with_room(vec![k], capacity - new),
                    v: with_room(vec![v], capacity - new),
                    len: new,
                }
            }
            Some(past) => {
                let capacity = self.capacity_for(past.len, past.capacity(), new);
                let rows = &mut self.layers[layer].own_rows;
                match rows.take_if(|_| capacity > past.capacity()) {
                    // copied to grow: the rows that left are not
                    Some(grown) => past.kept(&grown.index).extended(k, v, capacity, None),
                    None => past.extended(k, v, capacity, rows.as_ref()),
                }
            }
        };
        let cache = &mut self.layers[layer];
        let read = match &cache.prefix {
            None => CachedKv::Whole { k: own.k.clone(), v: own.v.clone(), computed },
            Some(prefix) => CachedKv::Shared {
                prefix_k: prefix.k.clone(),
                prefix_v: prefix.v.clone(),
                rows: self.prefix_index.clone().expect("an index wherever prefixes are held"),
                own_k: own.k.clone(),
                own_v: own.v.clone(),
                own_rows: cache.own_rows.as_ref().map(|o| o.index.clone()),
                computed,
            },
        };
        cache.own = Some(own);
        read
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

    /// The state of a prefill of B prompts, ready to decode `n` samples of each (row b becomes
    /// rows b·n … b·n+n−1) for at most `new_tokens` more positions: with `shared_block`, each
    /// prompt's keys and values kept once and the samples' own grown `shared_block` at a time
    /// ([`KvCache::sharing_prefixes`]); without, every row holding its prompt, with room
    /// reserved for `new_tokens`.
    pub fn for_samples(self, n: usize, shared_block: Option<usize>, new_tokens: usize) -> Self {
        match shared_block {
            Some(block) => Self { kv: self.kv.sharing_prefixes(block), ..self }.repeat_interleave(n),
            None => {
                let mut state = if n > 1 { self.repeat_interleave(n) } else { self };
                state.kv.reserve(new_tokens);
                state
            }
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
        let (keys, values) = cache.extend(0, k2.clone(), v2.clone()).gathered();
        let own = cache.layers[0].own.as_ref().unwrap();
        assert_eq!((own.k.dtype(), own.v.dtype(), own.len), (DType::F64, DType::F64, 5));
        assert_eq!((keys.dtype(), keys.dims()), (DType::F32, [2, 1, 6, 3]));
        assert_eq!(keys.narrow(2, 0, 5).into_data(), Tensor::cat(vec![k1, k2], 2).into_data());
        assert_eq!(values.narrow(2, 0, 5).into_data(), Tensor::cat(vec![v1, v2], 2).into_data());
        // rows picked and repeated keep the storage
        let picked = cache.select_rows(&[1]).repeat_interleave(2);
        assert_eq!(picked.storage, Some(DType::F64));
    }

    /// Rows of two prompts, three samples each, decoding two steps, then rows leaving: with
    /// shared prefixes every row attends to the keys and values (and the room) it would attend
    /// to holding all of them, while each prompt is kept once and the rows' own positions grow
    /// in blocks.
    #[test]
    fn rows_sharing_prefixes_attend_to_what_rows_holding_them_do() {
        let prompt = |positions| {
            Tensor::<B, 4>::random([2, 1, positions, 3], Distribution::Default, &Default::default())
        };
        let step = |rows| Tensor::<B, 4>::random([rows, 1, 1, 3], Distribution::Default, &Default::default());
        let (k0, v0) = (prompt(5), prompt(5));
        let mut held = KvCache::<B>::new(1);
        let mut shared = KvCache::<B>::new(1);
        held.extend(0, k0.clone(), v0.clone());
        shared.extend(0, k0, v0);
        held = held.repeat_interleave(3);
        shared = shared.sharing_prefixes(4).repeat_interleave(3);
        let same = |held: &mut KvCache<B>, shared: &mut KvCache<B>, rows: usize| {
            let (k, v) = (step(rows), step(rows));
            let room = shared.room_after(1);
            let (hk, hv) = held.extend(0, k.clone(), v.clone()).gathered();
            let (sk, sv) = shared.extend(0, k, v).gathered();
            let filled = hk.dims()[2];
            assert_eq!(sk.dims()[2], filled + room);
            assert_eq!(sk.narrow(2, 0, filled).into_data(), hk.into_data());
            assert_eq!(sv.narrow(2, 0, filled).into_data(), hv.into_data());
        };
        same(&mut held, &mut shared, 6);
        same(&mut held, &mut shared, 6);
        let layer = &shared.layers[0];
        assert_eq!(layer.prefix.as_ref().unwrap().k.dims(), [2, 1, 5, 3], "each prompt once");
        let own = layer.own.as_ref().unwrap();
        assert_eq!((own.k.dims(), own.len), ([6, 1, 4, 3], 2), "the rows' own, a block at a time");
        // the second prompt's samples and one of the first's leave: half the prefixes unread
        let going = [1];
        held = held.select_rows(&going);
        shared = shared.select_rows(&going);
        same(&mut held, &mut shared, 1);
        assert_eq!(shared.layers[0].prefix.as_ref().unwrap().k.dims()[0], 1, "the unread prefix dropped");
        assert_eq!(shared.prefix_rows, vec![0]);
        let layer = &shared.layers[0];
        assert_eq!(layer.own.as_ref().unwrap().k.dims()[0], 6, "the others' own positions not copied");
        assert_eq!(layer.own_rows.as_ref().unwrap().at, vec![1]);
        same(&mut held, &mut shared, 1);
        // the buffers grow: copied, with the row still decoding only
        same(&mut held, &mut shared, 1);
        let layer = &shared.layers[0];
        assert_eq!(layer.own.as_ref().unwrap().k.dims(), [1, 1, 8, 3], "grown by a block, one row");
        assert!(layer.own_rows.is_none());
        same(&mut held, &mut shared, 1);
        // a row picked twice gets a copy of its own: the two would write one row otherwise
        held = held.select_rows(&[0, 0]);
        shared = shared.select_rows(&[0, 0]);
        same(&mut held, &mut shared, 2);
        assert_eq!(shared.layers[0].own.as_ref().unwrap().k.dims()[0], 2);
        // rows leaving again, the buffers written through the index
        held = held.select_rows(&[1]);
        shared = shared.select_rows(&[1]);
        same(&mut held, &mut shared, 1);
        assert_eq!(shared.layers[0].own_rows.as_ref().unwrap().at, vec![1]);
    }
}
