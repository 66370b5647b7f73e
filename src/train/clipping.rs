//! Gradient clipping with Keras' optimizer options as semantics.

use crate::error::Error;
use crate::layers::Parameters;

/// Gradient clipping before each update, with Keras' optimizer options as semantics.
///
/// Applied in this order when several are set: `value`, then per-tensor `norm`, then
/// `global_norm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clipping {
    // Infinity means "not set": 12 bytes in every trainer instead of three 8-byte Options.
    value: f32,
    norm: f32,
    global_norm: f32,
}

impl Default for Clipping {
    fn default() -> Self {
        Self::NONE
    }
}

impl Clipping {
    /// No clipping.
    pub const NONE: Self = Self {
        value: f32::INFINITY,
        norm: f32::INFINITY,
        global_norm: f32::INFINITY,
    };

    /// Keras' `clipvalue`: each gradient value is clamped to `[-limit, limit]`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn value(mut self, limit: f32) -> Result<Self, Error> {
        self.value = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// Keras' `clipnorm`: each tensor's gradient (a layer's weights, or its bias) is scaled
    /// down so that its L2 norm is at most `limit`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn norm(mut self, limit: f32) -> Result<Self, Error> {
        self.norm = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// Keras' `global_clipnorm` (PyTorch's `clip_grad_norm_`): all gradients are scaled
    /// down together so that their joint L2 norm is at most `limit`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn global_norm(mut self, limit: f32) -> Result<Self, Error> {
        self.global_norm = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// True if clipping by value is on: it would turn an infinite gradient into a finite one.
    pub(super) const fn clamps_values(&self) -> bool {
        self.value.is_finite()
    }

    pub(super) fn apply<P: Parameters>(&self, grads: &mut P) {
        if self.value.is_finite() {
            let limit = self.value;
            for tensor in grads.tensors_mut() {
                for g in tensor {
                    // Not `f32::clamp`: its panic on unordered bounds (impossible here, the
                    // limit is validated) drags float formatting into firmware (~20 KB of
                    // flash). Same results, NaN included.
                    if *g < -limit {
                        *g = -limit;
                    } else if *g > limit {
                        *g = limit;
                    }
                }
            }
        }
        if self.norm.is_finite() {
            let limit = self.norm;
            for tensor in grads.tensors_mut() {
                scale_to_norm(tensor, squared_norm(tensor), limit);
            }
        }
        if self.global_norm.is_finite() {
            let limit = self.global_norm;
            let total: f32 = grads.tensors().map(squared_norm).sum();
            for tensor in grads.tensors_mut() {
                scale_to_norm(tensor, total, limit);
            }
        }
    }
}

const fn checked_limit(limit: f32) -> Result<f32, Error> {
    crate::error::positive(limit, Error::Clip { limit })
}

fn squared_norm(values: &[f32]) -> f32 {
    values.iter().map(|g| g * g).sum()
}

/// Scales `values` by `limit / norm` if `norm = sqrt(squared) > limit` (TensorFlow's
/// `clip_by_norm` / `clip_by_global_norm`).
fn scale_to_norm(values: &mut [f32], squared: f32, limit: f32) {
    let norm = crate::math::sqrt(squared);
    if norm > limit {
        let factor = limit / norm;
        for g in values {
            *g *= factor;
        }
    }
}
