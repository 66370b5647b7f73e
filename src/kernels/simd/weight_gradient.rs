//! [`dense_weight_gradient`] and [`dense_bias_gradient`], with the regularizer's gradient
//! and loss term fused into the sweep that writes them.

use super::lanes::*;
use super::tile::*;
use super::{LANES, V};
use crate::kernels::Shape;
use crate::penalty::Regularizer;

/// How a weight-gradient sweep adds the penalty, fixed per call so that its tiles carry no
/// branch on it.
const NO_PENALTY: u8 = 0;
/// L2 alone (the common case): `2·l2·w` and `Σw²`, no sign and no `Σ|w|`.
const L2_PENALTY: u8 = 1;
/// The general `l1·sign(w) + 2·l2·w`, with `Σ|w|` and `Σw²`.
const L1_L2_PENALTY: u8 = 2;

/// Independent chains of each running sum: consecutive weights add to different chains, so
/// that a sweep does not wait on the latency of one accumulator.
const CHAINS: usize = 4;

/// Running `Σ|w|` and `Σw²` of the weights a sweep has penalized.
#[derive(Clone, Copy)]
struct PenaltySums {
    abs: [V; CHAINS],
    square: [V; CHAINS],
    abs_tail: f32,
    square_tail: f32,
}

impl PenaltySums {
    const ZERO: Self = Self {
        abs: [V::ZERO; CHAINS],
        square: [V::ZERO; CHAINS],
        abs_tail: 0.0,
        square_tail: 0.0,
    };

    /// Adds `w`'s terms and returns `penalty'(w) = l1·sign(w) + 2·l2·w`, as
    /// [`Regularizer::gradient`] computes it lane by lane.
    #[inline(always)]
    fn add(&mut self, w: V, penalty: Regularizer) -> V {
        self.penalize::<L1_L2_PENALTY>(0, w, V::ZERO, &Factors::new(penalty))
    }

    /// `acc + penalty'(w)` for a penalty of kind `P`, adding `w`'s terms to chain `chain`
    /// (taken modulo [`CHAINS`]). Padding lanes of `w` must hold zeros: they add nothing.
    #[inline(always)]
    fn penalize<const P: u8>(&mut self, chain: usize, w: V, acc: V, factors: &Factors) -> V {
        let chain = chain % CHAINS;
        if let Some(square) = self.square.get_mut(chain) {
            *square = w.mul_add(w, *square);
        }
        if P == L2_PENALTY {
            return factors.twice_l2.mul_add(w, acc);
        }
        if let Some(abs) = self.abs.get_mut(chain) {
            *abs += w.abs();
        }
        let sign = (w.simd_gt(V::ZERO) & V::ONE) - (w.simd_lt(V::ZERO) & V::ONE);
        factors.l1.mul_add(sign, factors.twice_l2.mul_add(w, acc))
    }

    /// The scalar twin of [`PenaltySums::add`] for weights outside whole vectors.
    #[inline(always)]
    fn add_one(&mut self, w: f32, penalty: Regularizer) -> f32 {
        self.abs_tail += crate::math::abs(w);
        self.square_tail += w * w;
        penalty.gradient(w)
    }

    #[inline(always)]
    fn loss(&self, penalty: Regularizer) -> f32 {
        // A function and a loop, not a closure and `Iterator::fold`: in the dispatched sets
        // LLVM left those out of line, compiled without the entries' target features.
        #[inline(always)]
        fn total(chains: &[V; CHAINS], tail: f32) -> f32 {
            let mut sum = V::ZERO;
            for c in chains {
                sum += *c;
            }
            sum.reduce_add() + tail
        }
        let square = penalty.l2_factor() * total(&self.square, self.square_tail);
        if penalty.l1_factor() == 0.0 {
            // As the scalar set: L2 alone does not look at `Σ|w|` (0·∞ would be NaN).
            return square;
        }
        penalty.l1_factor() * total(&self.abs, self.abs_tail) + square
    }
}

/// A penalty's factors as vectors.
struct Factors {
    l1: V,
    twice_l2: V,
}

impl Factors {
    #[inline(always)]
    fn new(penalty: Regularizer) -> Self {
        Self {
            l1: V::splat(penalty.l1_factor()),
            twice_l2: V::splat(2.0 * penalty.l2_factor()),
        }
    }
}

/// The body of `simd::dense_weight_gradient` (see there), inlined into each entry that calls it: the
/// non-inlined `simd` wrapper and the AVX2 + FMA entry of `kernels::avx2`.
#[inline(always)]
pub fn dense_weight_gradient(
    d_output: &[f32],
    input: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    shape: Shape,
    penalty: Regularizer,
) -> f32 {
    let Shape {
        rows,
        inputs,
        outputs,
    } = shape;
    if inputs == 0 || outputs == 0 {
        return 0.0;
    }
    let rows = rows_in(input, inputs, rows_in(d_output, outputs, rows));
    // Rows of `d_weights` that get the batch sum; the first `fused` of them also have
    // their weights present and take the penalty in the same sweep. The scalar set
    // penalizes `penalized` values counted flat, which can end inside a row when
    // `weights` is short; those few get their penalty after the sweep.
    let gradient_rows = rows_in(d_weights, inputs, outputs);
    let fused = rows_in(weights, inputs, gradient_rows);
    // The tiles write whole rows. A partial last row (a `d_weights` shorter than the shape)
    // gets no batch sum but may get a penalty below, so it starts from zero.
    let covered = inputs.saturating_mul(outputs).min(d_weights.len());
    d_weights
        .get_mut(gradient_rows * inputs..covered)
        .unwrap_or(&mut [])
        .fill(0.0);
    let penalized = inputs
        .saturating_mul(outputs)
        .min(d_weights.len())
        .min(weights.len());
    let (Some(d_output), Some(input), Some(fused_weights)) = (
        d_output.get(..rows * outputs),
        input.get(..rows * inputs),
        weights.get(..fused * inputs),
    ) else {
        return 0.0;
    };
    let Some((dw_fused, dw_rest)) = d_weights.split_at_mut_checked(fused * inputs) else {
        return 0.0;
    };
    let dw_rest = dw_rest
        .get_mut(..(gradient_rows - fused) * inputs)
        .unwrap_or(&mut []);
    let mut sums = PenaltySums::ZERO;
    if inputs >= LANES {
        let outer = Outer::new(d_output, input, inputs, outputs, penalty);
        match (penalty.is_none(), penalty.l1_factor() == 0.0) {
            (true, _) => outer.run::<NO_PENALTY>(&[], dw_fused, 0, &mut sums),
            (false, true) => outer.run::<L2_PENALTY>(fused_weights, dw_fused, 0, &mut sums),
            (false, false) => outer.run::<L1_L2_PENALTY>(fused_weights, dw_fused, 0, &mut sums),
        }
        outer.run::<NO_PENALTY>(&[], dw_rest, fused, &mut sums);
    } else {
        let sweep = Sweep {
            d_output,
            input,
            inputs,
            outputs,
            penalty,
        };
        let penalize = !penalty.is_none();
        if penalize {
            sweep.run::<true>(fused_weights, dw_fused, 0, &mut sums);
        } else {
            sweep.run::<false>(&[], dw_fused, 0, &mut sums);
        }
        sweep.run::<false>(&[], dw_rest, fused, &mut sums);
    }
    if penalty.is_none() {
        return 0.0;
    }
    let done = fused * inputs;
    let leftover = d_weights.iter_mut().zip(weights).take(penalized).skip(done);
    for (g, &w) in leftover {
        *g += sums.add_one(w, penalty);
    }
    sums.loss(penalty)
}

/// The weight gradient of a layer of at least [`LANES`] inputs.
///
/// Each row of inputs is cut into *columns*: whole vectors at `0, LANES, 2·LANES, …`, and
/// when `inputs` is not a multiple of [`LANES`] one more vector that ends at the row's end,
/// overlapping the last whole one: no padding, no lane-by-lane tail. That last column is
/// swept after the whole ones, with the lanes it shares masked out of what it adds (the
/// gradient and the penalty's sums), so every weight is counted once. A tile is `R` outputs
/// × `C` columns of accumulators; the batch streams past it (one broadcast `d_output` per
/// output, one loaded vector per column, `R·C` multiply-adds per batch row), then each row
/// of the tile is written once with the batch sum and the penalty (the overlapping column
/// blends its new lanes into what the whole columns wrote).
struct Outer<'a> {
    d_output: &'a [f32],
    input: &'a [f32],
    inputs: usize,
    outputs: usize,
    factors: Factors,
}

impl<'a> Outer<'a> {
    #[inline(always)]
    fn new(
        d_output: &'a [f32],
        input: &'a [f32],
        inputs: usize,
        outputs: usize,
        penalty: Regularizer,
    ) -> Self {
        Self {
            d_output,
            input,
            inputs,
            outputs,
            factors: Factors::new(penalty),
        }
    }

    /// Writes the batch sum (and the penalty of kind `P` of `weights`, which then holds the
    /// same rows) to the rows of `d_weights`, which are the layer's outputs `first..`.
    #[inline(always)]
    fn run<const P: u8>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        sums: &mut PenaltySums,
    ) {
        const A: usize = OUTER_ACCUMULATORS;
        // No row, no work: with absurd widths the loop over columns would not end.
        if d_weights.len() < self.inputs {
            return;
        }
        let whole = self.inputs / LANES;
        let mut c = 0;
        while c + 4 <= whole {
            let start = c * LANES;
            self.group::<{ A / 4 }, 4, P, false>(weights, d_weights, first, start, V::ZERO, sums);
            c += 4;
        }
        let start = c * LANES;
        match whole - c {
            3 => self.group::<{ A / 4 }, 3, P, false>(
                weights,
                d_weights,
                first,
                start,
                V::ZERO,
                sums,
            ),
            2 => self.group::<{ A / 2 }, 2, P, false>(
                weights,
                d_weights,
                first,
                start,
                V::ZERO,
                sums,
            ),
            1 => self.group::<A, 1, P, false>(weights, d_weights, first, start, V::ZERO, sums),
            _ => {}
        }
        if let Some((start, keep)) = overlap_column(self.inputs) {
            self.group::<A, 1, P, true>(weights, d_weights, first, start, keep, sums);
        }
    }

    /// The `C` columns from `start` of every row: tiles of `R` rows, then the rows left
    /// over. `MASKED`: the overlapping last column, whose lanes outside `keep` add nothing.
    #[inline(always)]
    fn group<const R: usize, const C: usize, const P: u8, const MASKED: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        start: usize,
        keep: V,
        sums: &mut PenaltySums,
    ) {
        let inputs = self.inputs;
        let block = R.saturating_mul(inputs);
        let mut w_blocks = weights.chunks_exact(block);
        let mut dw_blocks = d_weights.chunks_exact_mut(block);
        let mut o = first;
        // The sums travel through the tiles by value, so that they stay in registers.
        let mut local = *sums;
        for dw in &mut dw_blocks {
            let w = w_blocks.next().unwrap_or(&[]);
            local = self.tile::<R, C, P, MASKED>(w, dw, o, start, keep, local);
            o += R;
        }
        let w_rows = w_blocks.remainder().chunks_exact(inputs);
        let w_rows = w_rows.chain(core::iter::repeat(&[][..]));
        let dw_rows = dw_blocks.into_remainder().chunks_exact_mut(inputs);
        for (dw, w) in dw_rows.zip(w_rows) {
            local = self.tile::<1, C, P, MASKED>(w, dw, o, start, keep, local);
            o += 1;
        }
        *sums = local;
    }

    /// Rows `o..o + R` of `d_weights` (and `weights`) at the `C` columns from `start`.
    #[inline(always)]
    fn tile<const R: usize, const C: usize, const P: u8, const MASKED: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        start: usize,
        keep: V,
        mut sums: PenaltySums,
    ) -> PenaltySums {
        let inputs = self.inputs;
        let mut acc = [[V::ZERO; C]; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(inputs));
        for (dy_row, x_row) in batch {
            let d = Sweep::d_out::<R>(dy_row, o);
            let xv = vectors_from::<C>(x_row, start).map_or([V::ZERO; C], to_vectors);
            for (acc_r, d_r) in acc.iter_mut().zip(d) {
                let d_r = V::splat(d_r);
                for (a, x) in acc_r.iter_mut().zip(&xv) {
                    *a = d_r.mul_add(*x, *a);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let Some(dw_r) = d_weights
                .get_mut(r * inputs..)
                .and_then(|dw_r| vectors_from_mut::<C>(dw_r, start))
            else {
                break;
            };
            let w_r = weights
                .get(r * inputs..)
                .and_then(|w_r| vectors_from::<C>(w_r, start));
            let w_r = w_r.map_or([V::ZERO; C], to_vectors);
            for (c, ((g, a), w)) in dw_r.iter_mut().zip(acc_r).zip(w_r).enumerate() {
                let mut add = *a;
                if P != NO_PENALTY {
                    // Masked lanes hold w = 0: no gradient, no |w|, no w².
                    let w = if MASKED { w & keep } else { w };
                    add = sums.penalize::<P>(c, w, add, &self.factors);
                }
                // The overlapping column leaves the lanes that a whole column already
                // wrote as they are.
                *g = if MASKED {
                    keep.select(add, V::new(*g))
                } else {
                    add
                }
                .to_array();
            }
        }
        sums
    }
}

/// The operands of one weight-gradient sweep.
struct Sweep<'a> {
    d_output: &'a [f32],
    input: &'a [f32],
    inputs: usize,
    outputs: usize,
    penalty: Regularizer,
}

impl Sweep<'_> {
    /// Writes the batch sum (and, if `PENALIZE`, the penalty of `weights`) into the rows of
    /// `d_weights`, which are the layer's outputs `first..`.
    #[inline(always)]
    fn run<const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        sums: &mut PenaltySums,
    ) {
        let inputs = self.inputs;
        let count = d_weights.len() / inputs;
        let blocked = count / AXPY_ROWS * AXPY_ROWS;
        let Some((dw_blocks, dw_rest)) = d_weights.split_at_mut_checked(blocked * inputs) else {
            return;
        };
        let (w_blocks, w_rest) = weights
            .split_at_checked(blocked * inputs)
            .unwrap_or((&[], &[]));
        let w_blocks = w_blocks
            .chunks(AXPY_ROWS.saturating_mul(inputs))
            .chain(core::iter::repeat(&[][..]));
        let blocks = dw_blocks
            .chunks_exact_mut(AXPY_ROWS.saturating_mul(inputs))
            .zip(w_blocks);
        for (block, (dw, w)) in blocks.enumerate() {
            let o = first + block * AXPY_ROWS;
            self.rows::<AXPY_ROWS, PENALIZE>(w, dw, o, sums);
        }
        let w_rest = w_rest.chunks(inputs).chain(core::iter::repeat(&[][..]));
        for (r, (dw, w)) in dw_rest.chunks_exact_mut(inputs).zip(w_rest).enumerate() {
            self.rows::<1, PENALIZE>(w, dw, first + blocked + r, sums);
        }
    }

    /// Rows `o..o + R` of `d_weights`, in tiles of `R` × `AXPY_VECTORS` vectors.
    #[inline(always)]
    fn rows<const R: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        sums: &mut PenaltySums,
    ) {
        let steps = self.inputs / LANES;
        let mut k = 0;
        while k + AXPY_VECTORS <= steps {
            self.tile::<R, AXPY_VECTORS, PENALIZE>(weights, d_weights, o, k, sums);
            k += AXPY_VECTORS;
        }
        while k < steps {
            self.tile::<R, 1, PENALIZE>(weights, d_weights, o, k, sums);
            k += 1;
        }
        if !self.inputs.is_multiple_of(LANES) {
            self.tail::<R, PENALIZE>(weights, d_weights, o, steps * LANES, sums);
        }
    }

    /// The `R` scalars `d_output[b][o..o + R]` of one batch row.
    #[inline(always)]
    fn d_out<const R: usize>(dy_row: &[f32], o: usize) -> [f32; R] {
        dy_row
            .get(o..o + R)
            .and_then(|s| <[f32; R]>::try_from(s).ok())
            .unwrap_or([0.0; R])
    }

    /// Vectors `k..k + C` of rows `o..o + R`: the batch sum in registers, then one
    /// write of `d_weights` with the penalty folded in.
    #[inline(always)]
    fn tile<const R: usize, const C: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        k: usize,
        sums: &mut PenaltySums,
    ) {
        let mut acc = [[V::ZERO; C]; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(self.inputs));
        for (dy_row, x_row) in batch {
            let d = Self::d_out::<R>(dy_row, o);
            let xv = vectors_at::<C>(x_row, k);
            for (acc_r, d_r) in acc.iter_mut().zip(d) {
                let d_r = V::splat(d_r);
                for (a, x) in acc_r.iter_mut().zip(&xv) {
                    *a = d_r.mul_add(*x, *a);
                }
            }
        }
        let w_rows = weights
            .chunks(self.inputs)
            .chain(core::iter::repeat(&[][..]));
        for ((dw_r, w_r), acc_r) in d_weights
            .chunks_exact_mut(self.inputs)
            .zip(w_rows)
            .zip(&acc)
        {
            let w_chunks = w_r.as_chunks::<LANES>().0;
            let dw_chunks = dw_r.as_chunks_mut::<LANES>().0;
            for (c, (g, a)) in dw_chunks.iter_mut().skip(k).zip(acc_r).enumerate() {
                let mut sum = *a;
                if PENALIZE {
                    sum += sums.add(load(w_chunks, k + c), self.penalty);
                }
                *g = sum.to_array();
            }
        }
    }

    /// The inputs past the last whole vector, as one zero-padded vector per row.
    #[inline(always)]
    fn tail<const R: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        start: usize,
        sums: &mut PenaltySums,
    ) {
        let mut acc = [V::ZERO; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(self.inputs));
        for (dy_row, x_row) in batch {
            let d = Self::d_out::<R>(dy_row, o);
            let x = load_padded(x_row.get(start..).unwrap_or(&[]), 0.0);
            for (a, d_r) in acc.iter_mut().zip(d) {
                *a = V::splat(d_r).mul_add(x, *a);
            }
        }
        let w_rows = weights
            .chunks(self.inputs)
            .chain(core::iter::repeat(&[][..]));
        for ((dw_r, w_r), a) in d_weights.chunks_exact_mut(self.inputs).zip(w_rows).zip(acc) {
            let Some(dw_tail) = dw_r.get_mut(start..) else {
                continue;
            };
            let mut sum = a;
            if PENALIZE {
                // Padding lanes hold w = 0: no gradient, no |w|, no w² to add.
                sum += sums.add(
                    load_padded(w_r.get(start..).unwrap_or(&[]), 0.0),
                    self.penalty,
                );
            }
            store_partial(dw_tail, sum);
        }
    }
}

/// The body of `simd::dense_bias_gradient` (see there), inlined into each entry that calls it: the
/// non-inlined `simd` wrapper and the AVX2 + FMA entry of `kernels::avx2`.
#[inline(always)]
pub fn dense_bias_gradient(
    d_output: &[f32],
    bias: &[f32],
    d_bias: &mut [f32],
    rows: usize,
    penalty: Regularizer,
) -> f32 {
    let outputs = d_bias.len();
    if outputs == 0 {
        return 0.0;
    }
    let rows = rows_in(d_output, outputs, rows);
    let d_output = d_output.get(..rows * outputs).unwrap_or(&[]);
    let penalize = !penalty.is_none();
    let penalized = outputs.min(bias.len());
    let mut sums = PenaltySums::ZERO;
    let (db_chunks, db_tail) = d_bias.as_chunks_mut::<LANES>();
    let b_chunks = bias.get(..penalized).unwrap_or(&[]).as_chunks::<LANES>().0;
    // Each vector of d_bias takes every row's contribution in row order, as the scalar
    // loop does, then its penalty: the same operations in the same order per element.
    for (k, db) in db_chunks.iter_mut().enumerate() {
        // The first row's values themselves, not `0 + value` (which turns -0 into +0):
        // the scalar set's bits.
        let mut dy_rows = d_output.chunks_exact(outputs);
        let mut sum = dy_rows
            .next()
            .map_or(V::ZERO, |row| load(row.as_chunks::<LANES>().0, k));
        for dy_row in dy_rows {
            sum += load(dy_row.as_chunks::<LANES>().0, k);
        }
        if penalize && let Some(b) = b_chunks.get(k) {
            sum += sums.add(V::new(*b), penalty);
        }
        *db = sum.to_array();
    }
    let start = outputs - db_tail.len();
    for (j, db) in db_tail.iter_mut().enumerate() {
        let mut dy_rows = d_output.chunks_exact(outputs);
        *db = dy_rows
            .next()
            .map_or(0.0, |row| row.get(start + j).copied().unwrap_or(0.0));
        for dy_row in dy_rows {
            *db += dy_row.get(start + j).copied().unwrap_or(0.0);
        }
    }
    if !penalize {
        return 0.0;
    }
    let done = b_chunks.len() * LANES;
    for (db, &b) in d_bias.iter_mut().zip(bias).take(penalized).skip(done) {
        *db += sums.add_one(b, penalty);
    }
    sums.loss(penalty)
}
