//! The reference kernels: plain loops, one rounding per operation, no fused multiply-add.
//!
//! These are the oracle the SIMD set is tested against, and the set that gives identical
//! bits on every target (see the crate's determinism policy).

use super::Shape;
use crate::math;
use crate::penalty::Regularizer;

/// `output[b][o] = bias[o] + Σ_i input[b][i]·weights[o][i]` (overwrites `output`).
///
/// Lengths: `input` `rows·inputs`, `weights` `outputs·inputs`, `bias` `outputs`,
/// `output` `rows·outputs`.
#[inline(always)]
pub fn dense_forward(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    shape: Shape,
) {
    if shape.is_empty() {
        return;
    }
    let rows = input
        .chunks_exact(shape.inputs)
        .zip(output.chunks_exact_mut(shape.outputs));
    for (x, y) in rows.take(shape.rows) {
        let weight_rows = weights.chunks_exact(shape.inputs).take(shape.outputs);
        for ((y_o, w_o), b_o) in y.iter_mut().zip(weight_rows).zip(bias) {
            let mut sum = 0.0f32;
            for (x_i, w_oi) in x.iter().zip(w_o) {
                sum += x_i * w_oi;
            }
            *y_o = sum + b_o;
        }
    }
}

/// `d_input[b][i] *= Σ_o d_output[b][o]·weights[o][i]`.
///
/// On entry `d_input` holds the derivative of the activation that produced this layer's
/// input (or ones); on return it holds the loss gradient with respect to that activation's
/// pre-activation. Lengths: `d_output` `rows·outputs`, `weights` `outputs·inputs`,
/// `d_input` `rows·inputs`.
#[inline(always)]
pub fn dense_input_gradient(d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape) {
    if shape.is_empty() {
        return;
    }
    let rows = d_output
        .chunks_exact(shape.outputs)
        .zip(d_input.chunks_exact_mut(shape.inputs));
    for (dy, dx) in rows.take(shape.rows) {
        for (i, dx_i) in dx.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            let weight_rows = weights.chunks_exact(shape.inputs).take(shape.outputs);
            for (dy_o, w_o) in dy.iter().zip(weight_rows) {
                sum += dy_o * w_o.get(i).copied().unwrap_or(0.0);
            }
            *dx_i *= sum;
        }
    }
}

/// `d_weights[o][i] += Σ_b d_output[b][o]·input[b][i] + penalty'(weights[o][i])`, and
/// returns the penalty's loss term `l1·Σ|w| + l2·Σw²`.
///
/// `penalty'(w) = l1·sign(w) + 2·l2·w` (see [`Regularizer::gradient`]); it is added once per
/// call. The loss term comes out of the same sweep, so reporting the regularized loss costs
/// no extra pass over the weights.
#[inline(always)]
pub fn dense_weight_gradient(
    d_output: &[f32],
    input: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    shape: Shape,
    penalty: Regularizer,
) -> f32 {
    if shape.is_empty() {
        return 0.0;
    }
    let count = shape.inputs.saturating_mul(shape.outputs);
    let rows = d_output
        .chunks_exact(shape.outputs)
        .zip(input.chunks_exact(shape.inputs))
        .take(shape.rows);
    // The last row's sweep also adds the penalty when every weight is there: the same
    // operations per value in the same order as a separate pass (`(dw + dy·x) + penalty'`,
    // and the loss sums in weight order), without reading and writing `d_weights` again.
    let fuse_last = !penalty.is_none() && d_weights.len() >= count && weights.len() >= count;
    let last = rows.len();
    for (r, (dy, x)) in rows.enumerate() {
        if fuse_last && r.saturating_add(1) == last {
            let mut sums = PenaltySums::default();
            let weight_rows = weights.chunks_exact(shape.inputs);
            let rows = dy
                .iter()
                .zip(d_weights.chunks_exact_mut(shape.inputs).zip(weight_rows));
            for (dy_o, (dw_o, w_o)) in rows {
                let values = dw_o.iter_mut().zip(w_o).zip(x);
                let values = values.map(|((dw, &w), x_i)| (dw, w, dy_o * x_i));
                sums.add(values, penalty);
            }
            return sums.loss(penalty);
        }
        for (dy_o, dw_o) in dy.iter().zip(d_weights.chunks_exact_mut(shape.inputs)) {
            for (dw_oi, x_i) in dw_o.iter_mut().zip(x) {
                *dw_oi += dy_o * x_i;
            }
        }
    }
    penalize(d_weights, weights, count, penalty)
}

/// `grads[k] += penalty'(values[k])` for the first `count` values; returns the loss term
/// `l1·Σ|w| + l2·Σw²`.
fn penalize(grads: &mut [f32], values: &[f32], count: usize, penalty: Regularizer) -> f32 {
    let mut sums = PenaltySums::default();
    // `g + (-0.0)` is `g` exactly, for every `g`: no row to add.
    let pairs = grads.iter_mut().zip(values).take(count);
    sums.add(pairs.map(|(g, &w)| (g, w, -0.0)), penalty);
    sums.loss(penalty)
}

/// A penalty's running loss sums `Σ|w|` and `Σw²`, added to in weight order, so that a
/// sweep may come in pieces (a row at a time) and still sum as one.
#[derive(Default)]
struct PenaltySums {
    abs: f32,
    square: f32,
}

impl PenaltySums {
    /// `g = (g + term) + penalty'(w)` for each `(g, w, term)`, in order, adding `w` to the
    /// sums: `term` is a batch row's product `dy·x` when the penalty rides on that row's
    /// sweep, `-0.0` (which adds nothing, exactly) when it has a pass of its own.
    #[inline(always)]
    fn add<'a>(
        &mut self,
        values: impl Iterator<Item = (&'a mut f32, f32, f32)>,
        penalty: Regularizer,
    ) {
        if penalty.is_none() {
            return;
        }
        if penalty.l1_factor() == 0.0 {
            // L2 alone, the common case, skips the L1 terms; they are exact zeros in the
            // general formula (`0·sign(w) + 2·l2·w = 2·l2·w`, `0·Σ|w| = 0`): same bits.
            let twice_l2 = 2.0 * penalty.l2_factor();
            for (g, w, term) in values {
                *g = (*g + term) + twice_l2 * w;
                self.square += w * w;
            }
            return;
        }
        for (g, w, term) in values {
            *g = (*g + term) + penalty.gradient(w);
            self.abs += math::abs(w);
            self.square += w * w;
        }
    }

    /// The loss term `l1·Σ|w| + l2·Σw²` (`l2·Σw²` alone when `l1` is zero).
    fn loss(&self, penalty: Regularizer) -> f32 {
        if penalty.is_none() {
            0.0
        } else if penalty.l1_factor() == 0.0 {
            penalty.l2_factor() * self.square
        } else {
            penalty.l1_factor() * self.abs + penalty.l2_factor() * self.square
        }
    }
}

/// `d_bias[o] += Σ_b d_output[b][o] + penalty'(bias[o])`, with `outputs = d_bias.len()`;
/// returns the penalty's loss term.
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
    for dy in d_output.chunks_exact(outputs).take(rows) {
        for (db, g) in d_bias.iter_mut().zip(dy) {
            *db += g;
        }
    }
    penalize(d_bias, bias, outputs, penalty)
}

/// ReLU in place: `max(x, 0)`.
pub fn relu(values: &mut [f32]) {
    for v in values {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
}

/// ReLU's derivative from its output, in place: `1` where `y > 0`, else `0`.
pub fn relu_derivative(values: &mut [f32]) {
    for v in values {
        *v = if *v > 0.0 { 1.0 } else { 0.0 };
    }
}

/// Leaky ReLU in place: `x` where `x > 0`, else `alpha·x`.
pub fn leaky_relu(values: &mut [f32], alpha: f32) {
    for v in values {
        if *v <= 0.0 {
            *v *= alpha;
        }
    }
}

/// Leaky ReLU's derivative from its output (`alpha > 0` keeps the sign), in place.
pub fn leaky_relu_derivative(values: &mut [f32], alpha: f32) {
    for v in values {
        *v = if *v > 0.0 { 1.0 } else { alpha };
    }
}

/// Logistic sigmoid in place.
pub fn sigmoid(values: &mut [f32]) {
    for v in values {
        *v = math::sigmoid(*v);
    }
}

/// Sigmoid's derivative from its output, in place: `y·(1 - y)`.
pub fn sigmoid_derivative(values: &mut [f32]) {
    for v in values {
        *v *= 1.0 - *v;
    }
}

/// Hyperbolic tangent in place.
pub fn tanh(values: &mut [f32]) {
    for v in values {
        *v = math::tanh(*v);
    }
}

/// Tanh's derivative from its output, in place: `1 - y²`.
pub fn tanh_derivative(values: &mut [f32]) {
    for v in values {
        *v = 1.0 - *v * *v;
    }
}

/// Softmax of each row of `width` values, in place, shifted by the row maximum so that no
/// `exp` overflows.
pub fn softmax(values: &mut [f32], width: usize) {
    if width == 0 {
        return;
    }
    for row in values.chunks_exact_mut(width) {
        let max = row
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = math::exp(*v - max);
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// `values[i] *= factors[i]`.
pub fn multiply(values: &mut [f32], factors: &[f32]) {
    for (v, f) in values.iter_mut().zip(factors) {
        *v *= f;
    }
}

/// One Adam update of a tensor: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `w -= lr·m / (sqrt(v) + ε)`.
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: super::AdamStep,
) {
    let (weights, grads, m, v) = super::adam_operands(weights, grads, m, v);
    // Four at a time, so that the four square roots are one call of `math::sqrt4` (on a
    // Cortex-M4F with `fpu-sqrt`, one call into the FPU instead of four) and the loop's
    // pointer updates are shared by four parameters. The same operations in the same
    // order per value as `adam_candidate`: the same bits.
    let (w4, w_tail) = weights.as_chunks_mut::<4>();
    let (g4, g_tail) = grads.as_chunks::<4>();
    let (m4, m_tail) = m.as_chunks_mut::<4>();
    let (v4, v_tail) = v.as_chunks_mut::<4>();
    for ((w, g), (m, v)) in w4.iter_mut().zip(g4).zip(m4.iter_mut().zip(v4.iter_mut())) {
        for ((&g, m), v) in g.iter().zip(m.iter_mut()).zip(v.iter_mut()) {
            (*m, *v) = super::adam_moments(g, *m, *v, step);
        }
        let roots = math::sqrt4(*v);
        for ((w, &m), root) in w.iter_mut().zip(m.iter()).zip(roots) {
            *w = super::adam_weight(*w, m, root, step);
        }
    }
    let moments = m_tail.iter_mut().zip(v_tail.iter_mut());
    for ((w, &g), (m, v)) in w_tail.iter_mut().zip(g_tail).zip(moments) {
        (*w, *m, *v) = super::adam_candidate(*w, g, *m, *v, step);
    }
}
