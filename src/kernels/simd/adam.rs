//! [`adam_update`]: the scalar kernel's operations in its order, a vector at a time.

use super::{LANES, V};
use crate::kernels::{self, AdamStep};

/// The body of `simd::adam_update` (see there), inlined into each entry that calls it: the
/// non-inlined `simd` wrapper and the AVX2 + FMA entry of `kernels::avx2`.
#[inline(always)]
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) {
    let (weights, grads, m, v) = kernels::adam_operands(weights, grads, m, v);
    // The scalar kernel's operations in its order (sqrt is correctly rounded in both),
    // with the new moments flushed before the weight uses them and the new weight flushed:
    // the bits of `flushed_candidate`, which are the scalar kernel's wherever it writes no
    // value below `f32::MIN_POSITIVE`.
    let (b1, b2) = (V::splat(1.0 - step.beta_1), V::splat(1.0 - step.beta_2));
    let (lr, eps) = (V::splat(step.learning_rate), V::splat(step.epsilon));
    let (w_chunks, w_tail) = weights.as_chunks_mut::<LANES>();
    let (g_chunks, g_tail) = grads.as_chunks::<LANES>();
    let (m_chunks, m_tail) = m.as_chunks_mut::<LANES>();
    let (v_chunks, v_tail) = v.as_chunks_mut::<LANES>();
    let moments = m_chunks.iter_mut().zip(v_chunks.iter_mut());
    for ((w, g), (m, v)) in w_chunks.iter_mut().zip(g_chunks).zip(moments) {
        let g = V::new(*g);
        let mv = flush_subnormal(V::new(*m) + (g - V::new(*m)) * b1);
        let vv = flush_subnormal(V::new(*v) + (g * g - V::new(*v)) * b2);
        *w = flush_subnormal(V::new(*w) - lr * mv / (vv.sqrt() + eps)).to_array();
        *m = mv.to_array();
        *v = vv.to_array();
    }
    let moments = m_tail.iter_mut().zip(v_tail.iter_mut());
    for ((w, &g), (m, v)) in w_tail.iter_mut().zip(g_tail).zip(moments) {
        (*w, *m, *v) = flushed_candidate(*w, g, *m, *v, step);
    }
}

/// [`kernels::flush_subnormal`] lane by lane: the same bits.
#[inline(always)]
fn flush_subnormal(x: V) -> V {
    // A NaN compares false and is kept, as in the scalar function.
    x.abs()
        .simd_lt(V::splat(f32::MIN_POSITIVE))
        .select(V::ZERO, x)
}

/// [`kernels::adam_candidate`] with the flushes of the vector loop, in its order: the new
/// moments flushed, then the weight computed from them and flushed.
#[inline(always)]
fn flushed_candidate(w: f32, g: f32, m: f32, v: f32, step: AdamStep) -> (f32, f32, f32) {
    let (m, v) = kernels::adam_moments(g, m, v, step);
    let (m, v) = (kernels::flush_subnormal(m), kernels::flush_subnormal(v));
    let w = kernels::adam_weight(w, m, crate::math::sqrt(v), step);
    (kernels::flush_subnormal(w), m, v)
}
