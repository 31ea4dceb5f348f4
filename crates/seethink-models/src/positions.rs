//! Token batches: left-padded rows of ids with their attention mask.

use crate::error::{ModelError, Result};

/// Token ids `[batch, seq]` (row-major) with an attention mask (true = real token, false = padding).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    pub ids: Vec<u32>,
    pub mask: Vec<bool>,
    pub batch: usize,
    pub seq: usize,
}

impl TokenBatch {
    /// A batch of one unpadded sequence.
    pub fn single(ids: Vec<u32>) -> Self {
        let seq = ids.len();
        Self { mask: vec![true; seq], ids, batch: 1, seq }
    }

    /// Rows of different lengths, left-padded with `pad_id` to the longest.
    pub fn left_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            let pad = seq - row.len();
            ids.extend(std::iter::repeat_n(pad_id, pad).chain(row.iter().copied()));
            mask.extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, row.len())));
        }
        Self { ids, mask, batch: rows.len(), seq }
    }

    /// A padded batch given as flat `ids` and `mask` of `batch × seq` entries each.
    pub fn new(ids: Vec<u32>, mask: Vec<bool>, batch: usize, seq: usize) -> Result<Self> {
        if ids.len() != batch * seq || mask.len() != batch * seq {
            return Err(ModelError::Input(format!(
                "token batch [{batch}, {seq}] needs {} ids and mask entries, got {} and {}",
                batch * seq,
                ids.len(),
                mask.len()
            )));
        }
        Ok(Self { ids, mask, batch, seq })
    }

    /// Row `b` of the ids.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.ids[b * self.seq..(b + 1) * self.seq]
    }
}
