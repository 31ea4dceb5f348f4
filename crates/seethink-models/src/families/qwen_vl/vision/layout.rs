//! Host-side geometry of the patches of a batch of images.
//!
//! The processor emits the patches of an image (grid `t × h × w`, in patches) frame by frame,
//! and within a frame by merge block: for each block row, block column, then the `m × m`
//! patches of the block row-major (m = spatial merge size). So patch `(br, bc, ir, ic)` sits at
//! `row = br·m + ir`, `col = bc·m + ic`, and every run of m² consecutive patches is one merged
//! token.

use crate::error::{ModelError, Result};

pub use crate::vlm::GridThw;

/// Checks every grid is non-empty and divisible by the merge size; returns total patches.
pub fn validate_grids(grids: &[GridThw], merge: usize) -> Result<usize> {
    let mut total = 0;
    for (i, &[t, h, w]) in grids.iter().enumerate() {
        if t == 0 || h == 0 || w == 0 || h % merge != 0 || w % merge != 0 {
            return Err(ModelError::Input(format!(
                "image {i}: grid_thw {:?} must be positive with h and w divisible by the merge size {merge}",
                [t, h, w]
            )));
        }
        total += t * h * w;
    }
    Ok(total)
}

/// `(row, col)` of every patch, in processor order.
pub fn patch_rows_cols(grids: &[GridThw], merge: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &[t, h, w] in grids {
        for _ in 0..t {
            for br in 0..h / merge {
                for bc in 0..w / merge {
                    for ir in 0..merge {
                        for ic in 0..merge {
                            out.push((br * merge + ir, bc * merge + ic));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Segment id of every patch for per-image (per-frame) full attention.
pub fn frame_segments(grids: &[GridThw]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut segment = 0;
    for &[t, h, w] in grids {
        for _ in 0..t {
            out.extend(std::iter::repeat_n(segment, h * w));
            segment += 1;
        }
    }
    out
}

/// Qwen2.5-VL window attention order.
pub struct Windows {
    /// Merged-token permutation: position p of the windowed order holds merged token `order[p]`.
    pub order: Vec<usize>,
    /// Window id of every *patch* in windowed order.
    pub segments: Vec<usize>,
}

/// Groups merged tokens into windows of `window × window` merged tokens per frame (windows at
/// the bottom/right edges may be partial), in window-major order, row-major inside a window.
pub fn windows(grids: &[GridThw], merge: usize, window: usize) -> Windows {
    let unit = merge * merge;
    let mut order = Vec::new();
    let mut segments = Vec::new();
    let mut base = 0;
    let mut window_id = 0;
    for &[t, h, w] in grids {
        let (gh, gw) = (h / merge, w / merge);
        for frame in 0..t {
            for wr in 0..gh.div_ceil(window) {
                for wc in 0..gw.div_ceil(window) {
                    for r in wr * window..((wr + 1) * window).min(gh) {
                        for c in wc * window..((wc + 1) * window).min(gw) {
                            order.push(base + frame * gh * gw + r * gw + c);
                            segments.extend(std::iter::repeat_n(window_id, unit));
                        }
                    }
                    window_id += 1;
                }
            }
        }
        base += t * gh * gw;
    }
    Windows { order, segments }
}

/// Bilinear interpolation of a `side × side` position table to each image grid (Qwen3-VL):
/// for each patch, four table indices and weights, in processor order.
///
/// Grid row i of h maps to table coordinate `y = i·(side−1)/(h−1)` (torch.linspace);
/// with `y0 = ⌊y⌋, y1 = min(y0+1, side−1), dy = y − y0` (same for x) the weights are
/// `(1−dy)(1−dx), (1−dy)dx, dy(1−dx), dy·dx` for `(y0,x0), (y0,x1), (y1,x0), (y1,x1)`.
pub fn bilinear_taps(grids: &[GridThw], merge: usize, side: usize) -> (Vec<[usize; 4]>, Vec<[f32; 4]>) {
    let coords = |n: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|i| {
                let y = if n == 1 { 0.0 } else { linspace_value(0.0, (side - 1) as f32, n, i) };
                let y0 = y as usize;
                (y0, (y0 + 1).min(side - 1), y - y0 as f32)
            })
            .collect()
    };
    let mut taps = Vec::new();
    let mut weights = Vec::new();
    for &[t, h, w] in grids {
        let (ys, xs) = (coords(h), coords(w));
        let rows_cols = patch_rows_cols(&[[1, h, w]], merge);
        for _ in 0..t {
            for &(row, col) in &rows_cols {
                let (y0, y1, dy) = ys[row];
                let (x0, x1, dx) = xs[col];
                taps.push([y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1]);
                weights.push([(1.0 - dy) * (1.0 - dx), (1.0 - dy) * dx, dy * (1.0 - dx), dy * dx]);
            }
        }
    }
    (taps, weights)
}

/// Value i of `torch.linspace(start, end, steps)` in f32: `start + i·step` for the first half,
/// `end − (steps−1−i)·step` for the second, with `step = (end − start)/(steps − 1)`.
fn linspace_value(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 {
        start + i as f32 * step
    } else {
        end - (steps - 1 - i) as f32 * step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_order_is_merge_block_major() {
        let rc = patch_rows_cols(&[[1, 2, 4]], 2);
        assert_eq!(rc, vec![(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }

    #[test]
    fn windows_cover_every_token_once_with_partial_edges() {
        // 5×4 merged tokens, windows of 2×2 → 3×2 windows, the last row of windows partial.
        let w = windows(&[[1, 10, 8]], 2, 2);
        let mut sorted = w.order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_eq!(&w.order[..4], &[0, 1, 4, 5]);
        assert_eq!(w.segments.len(), 80);
        assert_eq!(*w.segments.last().unwrap(), 5);
        // the last window holds merged tokens 18 and 19 only
        assert_eq!(&w.order[18..], &[18, 19]);
    }

    #[test]
    fn bilinear_weights_sum_to_one_and_hit_corners() {
        let (taps, weights) = bilinear_taps(&[[1, 4, 6]], 2, 6);
        for w in &weights {
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // patch 0 is (0,0) → table corner 0 with weight 1
        assert_eq!(taps[0][0], 0);
        assert!((weights[0][0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_grid_is_an_error() {
        assert!(validate_grids(&[[1, 3, 4]], 2).is_err());
        assert_eq!(validate_grids(&[[1, 4, 4], [2, 2, 2]], 2).unwrap(), 24);
    }
}
