//! [`adam_update`]: the scalar kernel's operations in its order, a vector at a time.

use super::{LANES, V};
use crate::kernels::{self, AdamFloors, AdamStep};

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
    // The scalar kernel's operations in its order (sqrt is correctly rounded in both), with
    // `kernels::flushed_adam_candidate`'s cuts and flushes: its bits, which are the scalar
    // kernel's wherever no product or new value falls below `f32::MIN_POSITIVE`.
    let (b1, b2) = (V::splat(step.rate_1), V::splat(step.rate_2));
    let (lr, eps) = (V::splat(step.learning_rate), V::splat(step.epsilon));
    let floors = AdamFloors::new(step);
    let (floor_m, floor_v, floor_lr) =
        (V::splat(floors.m), V::splat(floors.v), V::splat(floors.lr));
    let floor_square = V::splat(AdamFloors::SQUARE);
    let (w_chunks, w_tail) = weights.as_chunks_mut::<LANES>();
    let (g_chunks, g_tail) = grads.as_chunks::<LANES>();
    let (m_chunks, m_tail) = m.as_chunks_mut::<LANES>();
    let (v_chunks, v_tail) = v.as_chunks_mut::<LANES>();
    let moments = m_chunks.iter_mut().zip(v_chunks.iter_mut());
    for ((w, g), (m, v)) in w_chunks.iter_mut().zip(g_chunks).zip(moments) {
        let (g, m0, v0) = (V::new(*g), V::new(*m), V::new(*v));
        let square = g.abs().simd_lt(floor_square).select(V::ZERO, g * g);
        let mv = flush_subnormal(m0 + cut(g - m0, floor_m) * b1);
        let vv = flush_subnormal(v0 + cut(square - v0, floor_v) * b2);
        *w = flush_subnormal(V::new(*w) - lr * cut(mv, floor_lr) / (vv.sqrt() + eps)).to_array();
        *m = mv.to_array();
        *v = vv.to_array();
    }
    let moments = m_tail.iter_mut().zip(v_tail.iter_mut());
    for ((w, &g), (m, v)) in w_tail.iter_mut().zip(g_tail).zip(moments) {
        (*w, *m, *v) = kernels::flushed_adam_candidate(*w, g, *m, *v, step);
    }
}

/// [`kernels::flush_subnormal`] lane by lane: the same bits.
#[inline(always)]
fn flush_subnormal(x: V) -> V {
    cut(x, V::splat(f32::MIN_POSITIVE))
}

/// `x`, or zero in the lanes where `|x| < floor`; NaN compares false and is kept, as in the
/// scalar cuts of `kernels::flushed_adam_candidate`.
#[inline(always)]
fn cut(x: V, floor: V) -> V {
    x.abs().simd_lt(floor).select(V::ZERO, x)
}
