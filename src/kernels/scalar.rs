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

/// `d_weights[o][i] = Σ_b d_output[b][o]·input[b][i] + penalty'(weights[o][i])`
/// (overwrites), and returns the penalty's loss term `l1·Σ|w| + l2·Σw²`.
///
/// `penalty'(w) = l1·sign(w) + 2·l2·w` (see [`Regularizer::gradient`]). The loss term comes
/// out of the same sweep, so reporting the regularized loss costs no extra pass over the
/// weights. The first batch row writes the gradients and the others add to them, so no
/// zeroing pass comes first; the last row's sweep also adds the penalty.
#[inline(always)]
pub fn dense_weight_gradient(
    d_output: &[f32],
    input: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    shape: Shape,
    penalty: Regularizer,
) -> f32 {
    if shape.inputs == 0 || shape.outputs == 0 {
        return 0.0;
    }
    let count = shape.inputs.saturating_mul(shape.outputs);
    let rows = d_output
        .chunks_exact(shape.outputs)
        .zip(input.chunks_exact(shape.inputs))
        .take(shape.rows);
    let last = rows.len();
    if last == 0 || d_weights.len() < count || weights.len() < count {
        // No batch row, or slices shorter than the shape (only direct callers pass those):
        // zero what the shape covers, then accumulate as far as the slices reach.
        let covered = count.min(d_weights.len());
        d_weights.get_mut(..covered).unwrap_or_default().fill(0.0);
        for (dy, x) in rows {
            add_row::<false>(dy, x, d_weights, shape.inputs);
        }
        return add_penalty(d_weights, weights, count, penalty);
    }
    let d_weights = d_weights.get_mut(..count).unwrap_or_default();
    for (r, (dy, x)) in rows.enumerate() {
        let is_last = r.saturating_add(1) == last;
        match (r == 0, is_last && !penalty.is_none()) {
            (true, true) => {
                return write_with_penalty(dy, x, weights, d_weights, shape.inputs, penalty);
            }
            (true, false) => add_row::<true>(dy, x, d_weights, shape.inputs),
            (false, true) => {
                return accumulate_with_penalty(dy, x, weights, d_weights, shape.inputs, penalty);
            }
            (false, false) => add_row::<false>(dy, x, d_weights, shape.inputs),
        }
    }
    0.0
}

/// One batch row's `d_weights[o][i] += dy[o]·x[i]`, or `=` for the batch's `FIRST` row.
#[inline(always)]
fn add_row<const FIRST: bool>(dy: &[f32], x: &[f32], d_weights: &mut [f32], inputs: usize) {
    for (dy_o, dw_o) in dy.iter().zip(d_weights.chunks_exact_mut(inputs)) {
        for (dw_oi, x_i) in dw_o.iter_mut().zip(x) {
            *dw_oi = if FIRST {
                dy_o * x_i
            } else {
                *dw_oi + dy_o * x_i
            };
        }
    }
}

/// The batch's last row with the penalty, in one sweep: `d_weights[o][i]` gets `dy[o]·x[i]`
/// (written for the batch's `FIRST` row, added otherwise) and then, value by value,
/// `penalty'(weights[o][i])`; returns the loss term. Exactly [`add_row`] then
/// [`add_penalty`].
///
/// Always inlined into the two named instances below, which compile as the hand-written twins
/// did. Called directly as one generic function (inlined or not), it cost the Cortex-M4F 185
/// instructions per sample.
#[inline(always)]
fn row_with_penalty<const FIRST: bool>(
    dy: &[f32],
    x: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    inputs: usize,
    penalty: Regularizer,
) -> f32 {
    let product = |dw: f32, dy_o: f32, x_i: f32| if FIRST { dy_o * x_i } else { dw + dy_o * x_i };
    let rows = dy.iter().zip(
        d_weights
            .chunks_exact_mut(inputs)
            .zip(weights.chunks_exact(inputs)),
    );
    if penalty.l1_factor() == 0.0 {
        // As in `add_penalty`: L2 alone skips the L1 terms, which are exact zeros.
        let twice_l2 = 2.0 * penalty.l2_factor();
        let mut square_sum = 0.0f32;
        for (dy_o, (dw_o, w_o)) in rows {
            for ((dw, x_i), &w) in dw_o.iter_mut().zip(x).zip(w_o) {
                *dw = product(*dw, *dy_o, *x_i) + twice_l2 * w;
                square_sum += w * w;
            }
        }
        return penalty.l2_factor() * square_sum;
    }
    let (mut abs_sum, mut square_sum) = (0.0f32, 0.0f32);
    for (dy_o, (dw_o, w_o)) in rows {
        for ((dw, x_i), &w) in dw_o.iter_mut().zip(x).zip(w_o) {
            *dw = product(*dw, *dy_o, *x_i) + penalty.gradient(w);
            abs_sum += math::abs(w);
            square_sum += w * w;
        }
    }
    penalty.l1_factor() * abs_sum + penalty.l2_factor() * square_sum
}

/// [`row_with_penalty`] for a batch of one row.
fn write_with_penalty(
    dy: &[f32],
    x: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    inputs: usize,
    penalty: Regularizer,
) -> f32 {
    row_with_penalty::<true>(dy, x, weights, d_weights, inputs, penalty)
}

/// [`row_with_penalty`] for the last of several rows.
fn accumulate_with_penalty(
    dy: &[f32],
    x: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    inputs: usize,
    penalty: Regularizer,
) -> f32 {
    row_with_penalty::<false>(dy, x, weights, d_weights, inputs, penalty)
}

/// `grads[k] += penalty'(values[k])` for the first `count` values; returns the loss term.
fn add_penalty(grads: &mut [f32], values: &[f32], count: usize, penalty: Regularizer) -> f32 {
    if penalty.is_none() {
        return 0.0;
    }
    if penalty.l1_factor() == 0.0 {
        // L2 alone, the common case, skips the L1 terms; they are exact zeros in the general
        // formula (`0·sign(w) + 2·l2·w = 2·l2·w`, `0·Σ|w| + l2·Σw² = l2·Σw²`): same bits.
        let twice_l2 = 2.0 * penalty.l2_factor();
        let mut square_sum = 0.0f32;
        for (g, &w) in grads.iter_mut().zip(values).take(count) {
            *g += twice_l2 * w;
            square_sum += w * w;
        }
        return penalty.l2_factor() * square_sum;
    }
    let (mut abs_sum, mut square_sum) = (0.0f32, 0.0f32);
    for (g, &w) in grads.iter_mut().zip(values).take(count) {
        *g += penalty.gradient(w);
        abs_sum += math::abs(w);
        square_sum += w * w;
    }
    penalty.l1_factor() * abs_sum + penalty.l2_factor() * square_sum
}

/// `d_bias[o] = Σ_b d_output[b][o] + penalty'(bias[o])` (overwrites), with
/// `outputs = d_bias.len()`; returns the penalty's loss term.
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
    let mut rows = d_output.chunks_exact(outputs).take(rows);
    match rows.next() {
        Some(first) => d_bias.copy_from_slice(first),
        None => d_bias.fill(0.0),
    }
    for dy in rows {
        for (db, g) in d_bias.iter_mut().zip(dy) {
            *db += g;
        }
    }
    add_penalty(d_bias, bias, outputs, penalty)
}

/// ReLU in place: `max(x, 0)`, with NaN kept as NaN (a NaN pre-activation must reach the
/// loss, which refuses the step, and inference's output) and `-0` mapped to `+0`.
pub fn relu(values: &mut [f32]) {
    for v in values {
        // `x <= 0` is false for NaN, which is kept.
        *v = if *v <= 0.0 { 0.0 } else { *v };
    }
}

/// ReLU's derivative from its output, in place: `1` where `y > 0`, else `0`.
pub fn relu_derivative(values: &mut [f32]) {
    for v in values {
        *v = if *v > 0.0 { 1.0 } else { 0.0 };
    }
}

/// Leaky ReLU in place: `x` where `x > 0`, else `alpha·x`; NaN stays NaN.
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

/// One Adam update of a tensor: `m += (g - m)·rate_1`, `v += (g² - v)·rate_2`,
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
