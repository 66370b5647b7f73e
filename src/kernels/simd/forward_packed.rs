//! The AVX-512 route of [`super::dense_forward`] for batches of at least `PACKED_ROWS`
//! rows: `W` transposed into a panel on the stack, then broadcast-times-vector steps with no
//! horizontal sums.

use core::array;

use super::forward::split_rows;
use super::lanes::*;
use super::tile::*;
use super::{LANES, V};

/// Inputs per packed panel of the forward pass: `PACKED_DEPTH × PACKED_VECTORS` vectors
/// (16 KiB with AVX-512) stay in L1 while every batch row streams past them.
pub(super) const PACKED_DEPTH: usize = 64;

/// A panel of `Wᵀ`: `panel[k][v]` holds, for input `k0 + k`, the weights of outputs
/// `o0 + v·LANES ..` (zeros past the last output).
type Panel = [[V; PACKED_VECTORS]; PACKED_DEPTH];

/// The forward pass for batches of at least [`PACKED_ROWS`] rows: `W` is transposed, a
/// panel at a time, so that each step is a broadcast input times loaded vectors of
/// outputs, with no horizontal sums; the transposition is paid once per panel and shared
/// by every row of the batch. Called through the parent's `packed_forward`: out of line in
/// `simd`, so that its 16 KiB panel is no part of the stack frame of the other routes, and
/// inlined in the dispatched set, where a function of its own would lack the entry's target
/// features.
#[inline(always)]
pub(super) fn forward_packed(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) {
    let count = bias.len();
    let width = PACKED_VECTORS * LANES;
    let mut panel: Panel = [[V::ZERO; PACKED_VECTORS]; PACKED_DEPTH];
    let blocked = rows / PACKED_ROWS * PACKED_ROWS;
    let Some(((x_blocks, x_rest), (y_blocks, y_rest))) =
        split_rows(input, output, blocked, inputs, outputs)
    else {
        return;
    };
    for o0 in (0..count).step_by(width) {
        let n = (count - o0).min(width);
        let b = bias.get(o0..).unwrap_or(&[]);
        let start: [V; PACKED_VECTORS] =
            array::from_fn(|v| load_padded(b.get(v * LANES..).unwrap_or(&[]), 0.0));
        for k0 in (0..inputs).step_by(PACKED_DEPTH) {
            let depth = (inputs - k0).min(PACKED_DEPTH);
            pack(&mut panel, weights, inputs, o0, n, k0, depth);
            let Some(panel) = panel.get(..depth) else {
                return;
            };
            let tile = PackedTile {
                panel,
                inputs,
                outputs,
                o0,
                n,
                k0,
                start: (k0 == 0).then_some(start),
            };
            let blocks = x_blocks
                .chunks_exact(PACKED_ROWS.saturating_mul(inputs))
                .zip(y_blocks.chunks_exact_mut(PACKED_ROWS.saturating_mul(outputs)));
            for (x, y) in blocks {
                tile.run::<PACKED_ROWS>(x, y);
            }
            // The rows left over, as one tile of their own size: one row at a time would
            // leave only `PACKED_VECTORS` accumulators, too few to hide the FMA latency.
            let left = y_rest.len() / outputs;
            match left {
                1 => tile.run::<1>(x_rest, y_rest),
                2 => tile.run::<2>(x_rest, y_rest),
                3 => tile.run::<3>(x_rest, y_rest),
                4 => tile.run::<4>(x_rest, y_rest),
                _ => {
                    let rows = x_rest
                        .chunks_exact(inputs)
                        .zip(y_rest.chunks_exact_mut(outputs));
                    for (x, y) in rows {
                        tile.run::<1>(x, y);
                    }
                }
            }
        }
    }
}

/// Fills `panel[..depth]` from outputs `o0..o0 + n` and inputs `k0..k0 + depth` of `W`,
/// whole `LANES × LANES` blocks by an in-register transpose, the edges lane by lane.
#[inline(always)]
fn pack(
    panel: &mut Panel,
    weights: &[f32],
    inputs: usize,
    o0: usize,
    n: usize,
    k0: usize,
    depth: usize,
) {
    for v in 0..PACKED_VECTORS {
        let first = o0 + v * LANES;
        let present = n.saturating_sub(v * LANES).min(LANES);
        let w_rows: [&[f32]; LANES] = each_lane(|j| {
            if j < present {
                row(weights, first + j, inputs)
                    .get(k0..k0 + depth)
                    .unwrap_or(&[])
            } else {
                &[]
            }
        });
        let mut k = 0;
        while k < depth {
            let chunk = (depth - k).min(LANES);
            let targets = panel.get_mut(k..k + chunk).unwrap_or(&mut []);
            if chunk == LANES || depth >= LANES {
                // A whole block, or for the last inputs of a panel at least a vector deep,
                // the block ending at the panel's end, of which only the columns not yet
                // packed are kept. Rows past the last output load as zeros.
                let from = if chunk == LANES { k } else { depth - LANES };
                let block: [V; LANES] = each_lane(|j| block_row(&w_rows, j, from));
                let columns = transpose(block);
                let fresh = columns.iter().skip(k - from);
                for (t, column) in targets.iter_mut().zip(fresh) {
                    if let Some(slot) = t.get_mut(v) {
                        *slot = *column;
                    }
                }
            } else {
                for (kk, t) in targets.iter_mut().enumerate() {
                    let lanes = w_rows.map(|w| w.get(k + kk).copied().unwrap_or(0.0));
                    if let Some(slot) = t.get_mut(v) {
                        *slot = V::new(lanes);
                    }
                }
            }
            k += chunk;
        }
    }
}

/// Shuffle indices (into the 32 lanes of a pair of vectors) for one stage of the 16 × 16
/// transpose: rows `i` and `i + s` (bit `s` of `i` clear) swap their off-diagonal
/// `s`-wide blocks; `upper` selects the row with the bit set.
const fn transpose_indices(s: u32, upper: bool) -> [u32; 16] {
    const fn source(s: u32, upper: bool, j: u32) -> u32 {
        match (upper, j & s == 0) {
            (false, true) => j,
            (false, false) => 16 + j - s,
            (true, true) => j + s,
            (true, false) => 16 + j,
        }
    }
    macro_rules! lanes {
        ($($j:literal)*) => { [$(source(s, upper, $j)),*] };
    }
    lanes!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// `LANES` weights of row `j` from input `k` on.
#[inline(always)]
fn block_row(w_rows: &[&[f32]; LANES], j: usize, k: usize) -> V {
    w_rows
        .get(j)
        .and_then(|w| w.get(k..k + LANES))
        .and_then(|w| <[f32; LANES]>::try_from(w).ok())
        .map_or(V::ZERO, V::new)
}

/// One stage of the transpose, one two-source shuffle (`vpermt2ps`, the parent's
/// `shuffle_pair`) per row.
#[inline(always)]
fn transpose_stage<const S: usize>(v: [V; LANES]) -> [V; LANES] {
    let lower = const { transpose_indices(S as u32, false) };
    let upper = const { transpose_indices(S as u32, true) };
    let at = |i: usize| v.get(i).copied().unwrap_or(V::ZERO);
    each_lane(|i| {
        let indices = if i & S == 0 { lower } else { upper };
        super::shuffle_pair(at(i & !S), at(i | S), indices)
    })
}

/// Row `k` of the result is column `k` of `block`.
#[inline(always)]
fn transpose(block: [V; LANES]) -> [V; LANES] {
    let m = transpose_stage::<8>(block);
    let m = transpose_stage::<4>(m);
    let m = transpose_stage::<2>(m);
    transpose_stage::<1>(m)
}

/// One panel applied to blocks of rows.
struct PackedTile<'a> {
    panel: &'a [[V; PACKED_VECTORS]],
    inputs: usize,
    outputs: usize,
    o0: usize,
    n: usize,
    k0: usize,
    /// The bias, for the first panel of inputs; later panels add to the output.
    start: Option<[V; PACKED_VECTORS]>,
}

impl PackedTile<'_> {
    /// `y[r][o0..o0 + n] (+)= x[r][k0..] · panel` for `R` rows.
    #[inline(always)]
    fn run<const R: usize>(&self, x: &[f32], y: &mut [f32]) {
        let panel = self.panel;
        let mut x_rows: [&[f32]; R] = [&[]; R];
        for (dst, r) in x_rows.iter_mut().zip(0..R) {
            // Exactly as long as the panel, so that `x_r.get(k)` below needs no check.
            let Some(x_r) = row(x, r, self.inputs)
                .get(self.k0..)
                .and_then(|x_r| x_r.get(..panel.len()))
            else {
                return;
            };
            *dst = x_r;
        }
        let acc: [[V; PACKED_VECTORS]; R] = match self.start {
            Some(start) => [start; R],
            None => array::from_fn(|r| {
                let y_r = row(y, r, self.outputs)
                    .get(self.o0..self.o0 + self.n)
                    .unwrap_or(&[]);
                let (whole, tail) = y_r.as_chunks::<LANES>();
                array::from_fn(|v| match whole.get(v) {
                    Some(c) => V::new(*c),
                    None if v == whole.len() => load_padded(tail, 0.0),
                    None => V::ZERO,
                })
            }),
        };
        let acc = panel_product(panel, x_rows, acc);
        for (y_r, acc_r) in y.chunks_exact_mut(self.outputs).zip(&acc) {
            let dst = y_r.get_mut(self.o0..self.o0 + self.n).unwrap_or(&mut []);
            let (whole, tail) = dst.as_chunks_mut::<LANES>();
            let count = whole.len();
            for (d, a) in whole.iter_mut().zip(acc_r) {
                *d = a.to_array();
            }
            if let Some(a) = acc_r.get(count) {
                store_partial(tail, *a);
            }
        }
    }
}

/// `acc[r] + Σ_k x_rows[r][k] · panel[k]`; every row of `x_rows` is `panel.len()` long.
/// The accumulators go in and out by value so that they live in registers throughout.
#[inline(always)]
fn panel_product<const R: usize>(
    panel: &[[V; PACKED_VECTORS]],
    x_rows: [&[f32]; R],
    mut acc: [[V; PACKED_VECTORS]; R],
) -> [[V; PACKED_VECTORS]; R] {
    for k in 0..panel.len() {
        let Some(p) = panel.get(k) else {
            break;
        };
        for (acc_r, x_r) in acc.iter_mut().zip(&x_rows) {
            let xk = V::splat(x_r.get(k).copied().unwrap_or(0.0));
            for (a, w) in acc_r.iter_mut().zip(p) {
                *a = xk.mul_add(*w, *a);
            }
        }
    }
    acc
}
