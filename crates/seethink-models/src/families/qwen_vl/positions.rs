//! The 3-axis (t, h, w) M-RoPE position ids of transformers' `get_rope_index`.

use super::config::TokenIds;
use crate::error::{ModelError, Result};
use crate::positions::TokenBatch;
use crate::vlm::GridThw;

/// M-RoPE positions laid out `[3][batch][seq]` and, per row, the rope delta
/// (`max position + 1 − seq`) that continues positions during decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct MropePositions {
    pub positions: Vec<i64>,
    pub deltas: Vec<i64>,
}

/// transformers' `get_rope_index` for images.
///
/// Over the unpadded tokens of each row: a text token takes position p on all three axes and
/// advances p by one; an image of grid `(t, h, w)` (merged grid `h/m × w/m`) starting at p
/// covers `t·h·w/m²` image tokens with positions `(p + frame·time_step, p + row, p + col)`, and
/// the text after it continues at the image's largest position + 1. Padding gets position 1.
/// Images are matched to grids in order of appearance, row by row.
pub fn mrope_positions(
    tokens: &TokenBatch,
    grids: &[GridThw],
    merge: usize,
    time_step: i64,
    ids: &TokenIds,
) -> Result<MropePositions> {
    let (batch, seq) = (tokens.batch, tokens.seq);
    let plane = batch * seq;
    let mut positions = vec![1i64; 3 * plane];
    let mut deltas = Vec::with_capacity(batch);
    let mut next_grid = 0;
    let image_id = ids.image_token_id as u32;
    for b in 0..batch {
        let valid: Vec<usize> = (0..seq).filter(|&s| tokens.mask[b * seq + s]).collect();
        let mut set = |k: usize, axes: [i64; 3]| {
            for (axis, value) in axes.into_iter().enumerate() {
                positions[axis * plane + b * seq + valid[k]] = value;
            }
        };
        let mut next = 0i64;
        let mut k = 0;
        while k < valid.len() {
            if tokens.ids[b * seq + valid[k]] != image_id {
                set(k, [next; 3]);
                next += 1;
                k += 1;
                continue;
            }
            let [t, h, w] = *grids.get(next_grid).ok_or_else(|| {
                ModelError::Input(format!(
                    "row {b}: more images in the tokens than the {} given grids",
                    grids.len()
                ))
            })?;
            let (gh, gw) = (h / merge, w / merge);
            let count = t * gh * gw;
            let run = valid[k..].iter().take_while(|&&s| tokens.ids[b * seq + s] == image_id).count();
            if run < count {
                return Err(ModelError::Input(format!(
                    "row {b}: image {next_grid} with grid {:?} needs {count} image tokens, found {run}",
                    [t, h, w]
                )));
            }
            for frame in 0..t {
                for r in 0..gh {
                    for c in 0..gw {
                        let axes = [next + frame as i64 * time_step, next + r as i64, next + c as i64];
                        set(k, axes);
                        k += 1;
                    }
                }
            }
            let extent = ((t as i64 - 1) * time_step).max(gh as i64 - 1).max(gw as i64 - 1);
            next += extent + 1;
            next_grid += 1;
        }
        deltas.push(next - seq as i64);
    }
    if next_grid != grids.len() {
        return Err(ModelError::Input(format!(
            "{} image grids given but the tokens hold {next_grid} images",
            grids.len()
        )));
    }
    Ok(MropePositions { positions, deltas })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> TokenIds {
        TokenIds { image_token_id: 9, video_token_id: 8, vision_start_token_id: 7 }
    }

    #[test]
    fn text_only_left_padded() {
        let tokens = TokenBatch::left_padded(&[vec![1, 2, 3], vec![4]], 0);
        let p = mrope_positions(&tokens, &[], 2, 1, &ids()).unwrap();
        assert_eq!(&p.positions[..6], &[0, 1, 2, 1, 1, 0]);
        assert_eq!(p.deltas, vec![0, -2]);
    }

    #[test]
    fn image_positions_span_the_grid() {
        // text, start, 2x3 merged image (grid 1x4x6), text
        let mut row = vec![1, 7];
        row.extend([9; 6]);
        row.extend([2, 3]);
        let tokens = TokenBatch::single(row);
        let p = mrope_positions(&tokens, &[[1, 4, 6]], 2, 1, &ids()).unwrap();
        let s = tokens.seq;
        let axis = |a: usize| p.positions[a * s..(a + 1) * s].to_vec();
        assert_eq!(axis(0), vec![0, 1, 2, 2, 2, 2, 2, 2, 5, 6]);
        assert_eq!(axis(1), vec![0, 1, 2, 2, 2, 3, 3, 3, 5, 6]);
        assert_eq!(axis(2), vec![0, 1, 2, 3, 4, 2, 3, 4, 5, 6]);
        assert_eq!(p.deltas, vec![7 - 10]);
    }

    #[test]
    fn token_grid_mismatch_is_an_error() {
        let tokens = TokenBatch::single(vec![1, 9, 9, 2]);
        let err = mrope_positions(&tokens, &[[1, 4, 6]], 2, 1, &ids()).unwrap_err();
        assert!(err.to_string().contains("needs 6 image tokens, found 2"), "{err}");
        let err = mrope_positions(&TokenBatch::single(vec![1]), &[[1, 2, 2]], 2, 1, &ids()).unwrap_err();
        assert!(err.to_string().contains("1 image grids given"), "{err}");
    }
}
