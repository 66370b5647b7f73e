//! The activations that evaluate `exp` (`sigmoid`, `tanh`, `softmax`), vector by vector with
//! `wide`'s polynomials (see [`TRANSCENDENTAL_MAX_ULPS`](super::TRANSCENDENTAL_MAX_ULPS)).

use super::activation::map_in_place;
use super::lanes::*;
use super::{LANES, V};

/// Logistic sigmoid in place.
pub fn sigmoid(values: &mut [f32]) {
    // As `math::sigmoid`: with e = exp(-|x|) ≤ 1 nothing overflows; 1/(1+e) for x ≥ 0,
    // e/(1+e) below.
    map_in_place(values, 0.0, |x| {
        let e = (-x.abs()).exp();
        x.simd_ge(V::ZERO).select(V::ONE, e) / (V::ONE + e)
    });
}

/// Hyperbolic tangent in place.
pub fn tanh(values: &mut [f32]) {
    map_in_place(values, 0.0, |x| x.tanh());
}

/// Softmax of each row of `width` values, in place, shifted by the row maximum so that no
/// `exp` overflows.
pub fn softmax(values: &mut [f32], width: usize) {
    if width == 0 {
        return;
    }
    for row in values.chunks_exact_mut(width) {
        let (chunks, tail) = row.as_chunks_mut::<LANES>();
        // `v > m ? v : m` as in the scalar kernel, so NaNs are skipped the same way.
        let greater = |m: V, v: V| v.simd_gt(m).select(v, m);
        let mut max = load_padded(tail, f32::NEG_INFINITY);
        for c in chunks.iter() {
            max = greater(max, V::new(*c));
        }
        let max = max
            .to_array()
            .into_iter()
            .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
        let max = V::splat(max);
        let mut sum = V::ZERO;
        for c in chunks.iter_mut() {
            let e = (V::new(*c) - max).exp();
            sum += e;
            *c = e.to_array();
        }
        // Padding lanes hold -inf: exp(-inf - max) = 0 adds nothing to the sum.
        let e = (load_padded(tail, f32::NEG_INFINITY) - max).exp();
        sum += e;
        store_partial(tail, e);
        let inv = V::splat(1.0 / sum.reduce_add());
        map_in_place(row, 0.0, |v| v * inv);
    }
}
