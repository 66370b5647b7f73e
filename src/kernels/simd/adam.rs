//! [`adam_update`]: the scalar kernel's operations in its order, a vector at a time.

use super::{LANES, V};
use crate::kernels::{self, AdamStep};

/// One Adam update of a tensor: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `w -= lr·m / (sqrt(v) + ε)`.
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) {
    let (weights, grads, m, v) = kernels::adam_operands(weights, grads, m, v);
    // The scalar kernel's operations in its order (sqrt is correctly rounded in both):
    // the same bits.
    let (b1, b2) = (V::splat(1.0 - step.beta_1), V::splat(1.0 - step.beta_2));
    let (lr, eps) = (V::splat(step.learning_rate), V::splat(step.epsilon));
    let (w_chunks, w_tail) = weights.as_chunks_mut::<LANES>();
    let (g_chunks, g_tail) = grads.as_chunks::<LANES>();
    let (m_chunks, m_tail) = m.as_chunks_mut::<LANES>();
    let (v_chunks, v_tail) = v.as_chunks_mut::<LANES>();
    let moments = m_chunks.iter_mut().zip(v_chunks.iter_mut());
    for ((w, g), (m, v)) in w_chunks.iter_mut().zip(g_chunks).zip(moments) {
        let g = V::new(*g);
        let mv = V::new(*m) + (g - V::new(*m)) * b1;
        let vv = V::new(*v) + (g * g - V::new(*v)) * b2;
        *w = (V::new(*w) - lr * mv / (vv.sqrt() + eps)).to_array();
        *m = mv.to_array();
        *v = vv.to_array();
    }
    let moments = m_tail.iter_mut().zip(v_tail.iter_mut());
    for ((w, &g), (m, v)) in w_tail.iter_mut().zip(g_tail).zip(moments) {
        (*w, *m, *v) = kernels::adam_candidate(*w, g, *m, *v, step);
    }
}
