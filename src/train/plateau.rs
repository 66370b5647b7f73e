//! Keras' `ReduceLROnPlateau`: the rule and its per-run state, which a sequence of metrics
//! can drive without training.

use super::early_stopping::checked_min_delta;
use super::monitor::{Improvement, Mode, Monitor};
use crate::error::Error;

/// Lowers the learning rate when a monitored metric stops improving: Keras 3's
/// `keras.callbacks.ReduceLROnPlateau(monitor, factor, patience, mode, min_delta, cooldown,
/// min_lr)`, with the same defaults (`factor` 0.1, `patience` 10, `min_delta` 1e-4,
/// `cooldown` 0, `min_lr` 0, mode auto) and the same rules, replayed against Keras' own
/// callback in `tests/callbacks.rs`. After each epoch:
///
/// 1. during a cooldown, the cooldown counter goes down by one and `wait` is reset to 0;
/// 2. an epoch whose value beats the best so far by more than `min_delta` (lower for a loss,
///    higher for an accuracy, see [`Mode`]; the first epoch always does) becomes the best
///    and resets `wait`;
/// 3. otherwise, outside a cooldown, `wait` grows by one; once `wait >= patience`, if the
///    learning rate is above `min_lr`, it becomes `max(lr · factor, min_lr)`, the cooldown
///    counter is set to `cooldown` and `wait` to 0.
///
/// [`Trainer::fit`](crate::Trainer::fit) sets the new rate with
/// [`Optimizer::set_learning_rate`](crate::Optimizer::set_learning_rate) before the epoch's
/// callback, which sees it in [`EpochReport::new_learning_rate`](super::EpochReport); an
/// error from it (a rate that reached 0 with `min_lr` 0, an optimizer on a schedule) ends
/// the run with that error, as Keras raises.
///
/// Arithmetic: Keras multiplies the `float32` rate by the Python double `factor` and
/// rounds the result to `float32`; microtrain multiplies in `f32`. The two agree exactly for
/// a `factor` and `min_lr` that are `f32` values, which the reference fixture uses (Keras'
/// default 0.1 is the double 0.1; microtrain's is `0.1f32`, which Keras is given too).
///
/// ```
/// use microtrain::*;
/// // Keras: ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5)
/// let plateau = ReduceLrOnPlateau::new(Monitor::ValLoss)
///     .with_patience(3)
///     .with_factor(0.5)?
///     .with_min_lr(1e-5)?;
/// let config = FitConfig::epochs(100).with_reduce_lr_on_plateau(plateau);
/// # let _ = config;
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReduceLrOnPlateau {
    monitor: Monitor,
    mode: Mode,
    factor: f32,
    patience: usize,
    min_delta: f32,
    cooldown: usize,
    min_lr: f32,
}

impl ReduceLrOnPlateau {
    /// Learning-rate reduction on `monitor` with Keras' defaults: factor 0.1, patience 10,
    /// `min_delta` 1e-4, no cooldown, `min_lr` 0, mode auto.
    pub const fn new(monitor: Monitor) -> Self {
        Self {
            monitor,
            mode: Mode::Auto,
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }

    /// The factor the learning rate is multiplied by.
    ///
    /// # Errors
    /// [`Error::Factor`] unless `0 < factor < 1` (Keras refuses `factor >= 1`; a factor
    /// of 0 or below would give a rate that no optimizer takes).
    pub const fn with_factor(mut self, factor: f32) -> Result<Self, Error> {
        if factor > 0.0 && factor < 1.0 {
            self.factor = factor;
            Ok(self)
        } else {
            Err(Error::Factor { factor })
        }
    }

    /// Epochs without improvement before the rate is lowered.
    pub const fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The least change that counts as an improvement, against the best value so far (its
    /// magnitude, as Keras).
    ///
    /// # Errors
    /// [`Error::MinDelta`] if `min_delta` is NaN or infinite.
    pub const fn with_min_delta(mut self, min_delta: f32) -> Result<Self, Error> {
        match checked_min_delta(min_delta) {
            Ok(min_delta) => {
                self.min_delta = min_delta;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Epochs after a reduction during which `wait` stays 0.
    pub const fn with_cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The floor of the learning rate.
    ///
    /// # Errors
    /// [`Error::MinLearningRate`] if `min_lr` is negative, NaN or infinite.
    pub const fn with_min_lr(mut self, min_lr: f32) -> Result<Self, Error> {
        match crate::error::non_negative(min_lr, Error::MinLearningRate { min_lr }) {
            Ok(min_lr) => {
                self.min_lr = min_lr;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether lower or higher is better.
    pub const fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The monitored metric.
    pub const fn monitor(&self) -> Monitor {
        self.monitor
    }

    /// The mode.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The factor.
    pub const fn factor(&self) -> f32 {
        self.factor
    }

    /// Epochs without improvement before a reduction.
    pub const fn patience(&self) -> usize {
        self.patience
    }

    /// The least improvement (a magnitude).
    pub const fn min_delta(&self) -> f32 {
        self.min_delta
    }

    /// Epochs of cooldown after a reduction.
    pub const fn cooldown(&self) -> usize {
        self.cooldown
    }

    /// The floor of the learning rate.
    pub const fn min_lr(&self) -> f32 {
        self.min_lr
    }
}

/// One run of a [`ReduceLrOnPlateau`] rule: Keras' `best`, `wait` and `cooldown_counter`.
///
/// ```
/// use microtrain::*;
/// let rule = ReduceLrOnPlateau::new(Monitor::Loss).with_patience(1).with_factor(0.5)?;
/// let mut state = ReduceLrOnPlateauState::new(rule);
/// let mut lr = 0.01f32;
/// for loss in [1.0, 0.9, 0.9, 0.8, 0.85] {
///     if let Some(new) = state.on_epoch_end(loss, lr) {
///         lr = new;
///     }
/// }
/// assert_eq!(lr, 0.0025); // halved after epochs 2 and 4
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceLrOnPlateauState {
    rule: ReduceLrOnPlateau,
    improvement: Improvement,
    best: Option<f32>,
    wait: usize,
    cooldown_counter: usize,
}

impl ReduceLrOnPlateauState {
    /// The state at the start of a run (Keras' `on_train_begin`).
    pub const fn new(rule: ReduceLrOnPlateau) -> Self {
        Self {
            rule,
            improvement: Improvement::new(rule.monitor, rule.mode, rule.min_delta),
            best: None,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// The rule.
    pub const fn rule(&self) -> &ReduceLrOnPlateau {
        &self.rule
    }

    /// Takes an epoch's monitored value `current` and the optimizer's `learning_rate`;
    /// returns the rate to set, if the rule lowers it (Keras' `on_epoch_end`).
    // Out of line: inlined into `fit`, it changed how the training step inlines there (the
    // Cortex-M4F firmware, which uses no callback, ran 15 instructions per sample more).
    #[inline(never)]
    pub fn on_epoch_end(&mut self, current: f32, learning_rate: f32) -> Option<f32> {
        if self.in_cooldown() {
            self.cooldown_counter = self.cooldown_counter.saturating_sub(1);
            self.wait = 0;
        }
        if self.improvement.test(current, self.best) {
            self.best = Some(current);
            self.wait = 0;
            return None;
        }
        if self.in_cooldown() {
            return None;
        }
        self.wait = self.wait.saturating_add(1);
        if self.wait < self.rule.patience || learning_rate <= self.rule.min_lr {
            return None;
        }
        self.cooldown_counter = self.rule.cooldown;
        self.wait = 0;
        Some((learning_rate * self.rule.factor).max(self.rule.min_lr))
    }

    /// True during a cooldown.
    pub const fn in_cooldown(&self) -> bool {
        self.cooldown_counter > 0
    }

    /// The best monitored value so far.
    pub const fn best(&self) -> Option<f32> {
        self.best
    }

    /// Epochs since the last improvement or reduction (Keras' `wait`).
    pub const fn wait(&self) -> usize {
        self.wait
    }

    /// Epochs of cooldown left (Keras' `cooldown_counter`).
    pub const fn cooldown_counter(&self) -> usize {
        self.cooldown_counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused() {
        let rule = ReduceLrOnPlateau::new(Monitor::ValLoss);
        for factor in [0.0, 1.0, -0.5, 2.0, f32::NAN] {
            assert!(
                matches!(rule.with_factor(factor), Err(Error::Factor { factor: f }) if f.to_bits() == factor.to_bits()),
                "{factor}"
            );
        }
        for min_lr in [-1e-9, f32::INFINITY, f32::NAN] {
            assert!(rule.with_min_lr(min_lr).is_err(), "{min_lr}");
        }
        assert!(rule.with_min_delta(f32::NAN).is_err());
        assert_eq!(rule.with_min_lr(0.0).map(|r| r.min_lr()), Ok(0.0));
    }

    #[test]
    fn a_rate_at_the_floor_is_not_lowered_and_wait_keeps_growing() {
        let rule = ReduceLrOnPlateau::new(Monitor::Loss)
            .with_patience(1)
            .with_min_lr(0.5)
            .unwrap();
        let mut state = ReduceLrOnPlateauState::new(rule);
        assert_eq!(state.on_epoch_end(1.0, 0.5), None);
        assert_eq!(state.on_epoch_end(1.0, 0.5), None);
        assert_eq!(state.on_epoch_end(1.0, 0.5), None);
        assert_eq!(state.wait(), 2);
    }
}
