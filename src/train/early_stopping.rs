//! Keras' `EarlyStopping`, with `restore_best_weights`: the rule, its per-run state (which a
//! sequence of metrics can drive without training) and the room for the best weights.

use super::monitor::{Improvement, Mode, Monitor};
use crate::error::Error;
use crate::layers::{ConstZero, Parameters};

/// Stops [`Trainer::fit`](crate::Trainer::fit) when a monitored metric stops improving:
/// Keras 3's `keras.callbacks.EarlyStopping(monitor, min_delta, patience, mode, baseline,
/// restore_best_weights, start_from_epoch)`, with the same defaults (`min_delta` 0,
/// `patience` 0, `mode` auto, no baseline, no restore, `start_from_epoch` 0) and the same
/// rules, replayed against Keras' own callback in `tests/callbacks.rs`:
///
/// - epochs before `start_from_epoch` are not monitored;
/// - each monitored epoch adds one to `wait`; an epoch *improves* if its value beats the best
///   so far by more than `min_delta` (lower for a loss, higher for an accuracy, see
///   [`Mode`]); the first monitored epoch always improves. An improvement becomes the best
///   (and, with `restore_best_weights`, its parameters are copied) and resets `wait` to 0 —
///   with a `baseline`, only if it also beats the baseline by more than `min_delta`;
/// - an epoch that does not improve stops the run once `wait >= patience` (never at epoch 0);
/// - with `restore_best_weights`, when the run ends — stopped early, stopped by the callback
///   or after its last epoch — the model gets the parameters of the best epoch back. Keras 3
///   restores whether or not the run stopped early (Keras 2 restored only after an early
///   stop); if no epoch was monitored (`start_from_epoch` past the run), nothing is restored.
///
/// `restore_best_weights` needs room for one copy of the parameters:
/// [`Trainer::with_best_weights`](crate::Trainer::with_best_weights) (counted in
/// [`Trainer::RAM_BYTES`](crate::Trainer::RAM_BYTES)) or a caller's buffer
/// ([`Trainer::with_best_weights_in`](crate::Trainer::with_best_weights_in)).
///
/// Deliberate difference: Keras warns and carries on when the monitored metric is missing
/// (`val_loss` without validation data); `fit` returns [`Error::MissingMetric`] instead.
///
/// ```
/// use microtrain::*;
/// // Keras: EarlyStopping(monitor="val_loss", patience=5, min_delta=1e-3,
/// //                      restore_best_weights=True)
/// const STOPPING: EarlyStopping = const_config!(EarlyStopping::new(Monitor::ValLoss)
///     .with_patience(5)
///     .with_restore_best_weights(true)
///     .with_min_delta(1e-3));
/// const CONFIG: FitConfig = FitConfig::epochs(200).with_early_stopping(STOPPING);
/// # let _ = CONFIG;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EarlyStopping {
    monitor: Monitor,
    mode: Mode,
    min_delta: f32,
    patience: usize,
    baseline: Option<f32>,
    start_from_epoch: usize,
    restore_best_weights: bool,
}

impl EarlyStopping {
    /// Early stopping on `monitor` with Keras' defaults: stop at the first epoch that does
    /// not improve (`patience` 0), `min_delta` 0, mode auto, no baseline, keep the last
    /// weights.
    pub const fn new(monitor: Monitor) -> Self {
        Self {
            monitor,
            mode: Mode::Auto,
            min_delta: 0.0,
            patience: 0,
            baseline: None,
            start_from_epoch: 0,
            restore_best_weights: false,
        }
    }

    /// Epochs without improvement after which the run stops.
    pub const fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The least change that counts as an improvement; as Keras, its magnitude is used
    /// (`-0.01` means `0.01`).
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

    /// Whether lower or higher is better ([`Mode::Auto`]: lower for a loss, higher for an
    /// accuracy).
    pub const fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Keras' `baseline`: an improvement resets the patience only if it also beats
    /// `baseline` by more than `min_delta`, so a run that never beats it stops after
    /// `patience` epochs (unless every epoch improves on the one before).
    ///
    /// # Errors
    /// [`Error::Baseline`] if `baseline` is NaN or infinite.
    pub const fn with_baseline(mut self, baseline: f32) -> Result<Self, Error> {
        if baseline.is_finite() {
            self.baseline = Some(baseline);
            Ok(self)
        } else {
            Err(Error::Baseline { baseline })
        }
    }

    /// Epochs (from 0) not monitored at the start: a warm-up in which no stop can happen.
    pub const fn with_start_from_epoch(mut self, start_from_epoch: usize) -> Self {
        self.start_from_epoch = start_from_epoch;
        self
    }

    /// Whether the model gets the best epoch's parameters back when the run ends (see the
    /// type's docs for the room this needs).
    pub const fn with_restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
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

    /// The least improvement (a magnitude).
    pub const fn min_delta(&self) -> f32 {
        self.min_delta
    }

    /// Epochs without improvement before the run stops.
    pub const fn patience(&self) -> usize {
        self.patience
    }

    /// The baseline, if any.
    pub const fn baseline(&self) -> Option<f32> {
        self.baseline
    }

    /// The first monitored epoch.
    pub const fn start_from_epoch(&self) -> usize {
        self.start_from_epoch
    }

    /// Whether the best parameters are restored at the end of the run.
    pub const fn restore_best_weights(&self) -> bool {
        self.restore_best_weights
    }
}

/// `|min_delta|` (Keras takes the magnitude), or the error for NaN and ±∞.
pub(crate) const fn checked_min_delta(min_delta: f32) -> Result<f32, Error> {
    if min_delta.is_finite() {
        Ok(min_delta.abs())
    } else {
        Err(Error::MinDelta { min_delta })
    }
}

/// What [`EarlyStoppingState::on_epoch_end`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EarlyStoppingVerdict {
    /// Copy the model's parameters now as the best ones (only with `restore_best_weights`).
    pub keep_weights: bool,
    /// Stop after this epoch.
    pub stop: bool,
}

/// One run of an [`EarlyStopping`] rule: Keras' `wait`, `best`, `best_epoch` and
/// `stopped_epoch`. [`Trainer::fit`](crate::Trainer::fit) keeps one per run; driven by a
/// sequence of values it replays the decisions without training:
///
/// ```
/// use microtrain::*;
/// let rule = EarlyStopping::new(Monitor::ValLoss).with_patience(2).with_restore_best_weights(true);
/// let mut state = EarlyStoppingState::new(rule);
/// let losses = [1.0, 0.8, 0.7, 0.69, 0.695, 0.7, 0.71];
/// let stop = losses.iter().enumerate().position(|(epoch, &v)| state.on_epoch_end(epoch, v).stop);
/// assert_eq!(stop, Some(5)); // 0.69 at epoch 3, then two epochs without improvement
/// assert_eq!(state.stopped_epoch(), Some(5));
/// assert_eq!(state.restores(), Some(3)); // the best epoch's weights come back
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStoppingState {
    rule: EarlyStopping,
    improvement: Improvement,
    best: Option<f32>,
    best_epoch: Option<usize>,
    wait: usize,
    stopped_epoch: Option<usize>,
    weights_kept: bool,
}

impl EarlyStoppingState {
    /// The state at the start of a run (Keras' `on_train_begin`).
    pub const fn new(rule: EarlyStopping) -> Self {
        Self {
            rule,
            improvement: Improvement::new(rule.monitor, rule.mode, rule.min_delta),
            best: None,
            best_epoch: None,
            wait: 0,
            stopped_epoch: None,
            weights_kept: false,
        }
    }

    /// The rule.
    pub const fn rule(&self) -> &EarlyStopping {
        &self.rule
    }

    /// Takes the monitored value `current` of epoch `epoch` (from 0; Keras'
    /// `on_epoch_end`).
    // Out of line: inlined into `fit`, it changed how the training step inlines there (the
    // Cortex-M4F firmware, which uses no callback, ran 15 instructions per sample more).
    #[inline(never)]
    pub fn on_epoch_end(&mut self, epoch: usize, current: f32) -> EarlyStoppingVerdict {
        let mut verdict = EarlyStoppingVerdict::default();
        if epoch < self.rule.start_from_epoch {
            return verdict;
        }
        let restore = self.rule.restore_best_weights;
        if restore && !self.weights_kept {
            // Keras: "if best weights were never set, then the current weights are the best".
            (verdict.keep_weights, self.weights_kept) = (true, true);
            self.best_epoch = Some(epoch);
        }
        self.wait = self.wait.saturating_add(1);
        if self.improvement.test(current, self.best) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            verdict.keep_weights |= restore;
            let beats_baseline = match self.rule.baseline {
                None => true,
                Some(baseline) => self.improvement.test(current, Some(baseline)),
            };
            if beats_baseline {
                self.wait = 0;
            }
            return verdict;
        }
        if self.wait >= self.rule.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            verdict.stop = true;
        }
        verdict
    }

    /// The best monitored value so far.
    pub const fn best(&self) -> Option<f32> {
        self.best
    }

    /// The epoch of the best value (Keras' `best_epoch`), once an epoch was monitored.
    pub const fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    /// Monitored epochs since the last improvement that counted (Keras' `wait`).
    pub const fn wait(&self) -> usize {
        self.wait
    }

    /// The epoch at which the rule stopped the run (Keras' `stopped_epoch`, which is 0
    /// when none did).
    pub const fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    /// The epoch whose parameters the end of the run restores (Keras' `on_train_end`): the
    /// best epoch, with `restore_best_weights` and once an epoch was monitored.
    pub const fn restores(&self) -> Option<usize> {
        if self.rule.restore_best_weights && self.weights_kept {
            self.best_epoch
        } else {
            None
        }
    }
}

/// Room for the parameters of the best epoch, for
/// [`EarlyStopping::with_restore_best_weights`]: the third type parameter of
/// [`Trainer`](crate::Trainer). [`NoBestWeights`] (the default) has none and occupies no
/// byte; [`BestWeightsBuffer`] holds a copy in the trainer; `&mut P` is a caller's buffer.
pub trait BestWeights<P> {
    /// The room for one copy of the parameters, if any.
    fn slot(&mut self) -> Option<&mut P>;
}

/// No room for best weights (zero-sized): the default of [`Trainer`](crate::Trainer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoBestWeights;

impl<P> BestWeights<P> for NoBestWeights {
    fn slot(&mut self) -> Option<&mut P> {
        None
    }
}

/// One copy of the parameters `P`, kept in the trainer (see
/// [`Trainer::with_best_weights`](crate::Trainer::with_best_weights)): `size_of::<P>()`
/// bytes more in [`Trainer::RAM_BYTES`](crate::Trainer::RAM_BYTES).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestWeightsBuffer<P> {
    params: P,
}

impl<P: ConstZero> BestWeightsBuffer<P> {
    /// Zeroed room; `const`, so it can sit in a `static` trainer.
    pub const fn new() -> Self {
        Self { params: P::ZERO }
    }
}

impl<P: ConstZero> Default for BestWeightsBuffer<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Parameters> BestWeights<P> for BestWeightsBuffer<P> {
    fn slot(&mut self) -> Option<&mut P> {
        Some(&mut self.params)
    }
}

impl<P: Parameters> BestWeights<P> for &mut P {
    fn slot(&mut self) -> Option<&mut P> {
        Some(self)
    }
}

/// Copies tensor by tensor, value by value (tensors of the same network have equal lengths;
/// a shorter one would be copied as far as it goes, never a panic).
pub(crate) fn copy_tensors<'a, 'b>(
    to: impl Iterator<Item = &'a mut [f32]>,
    from: impl Iterator<Item = &'b [f32]>,
) {
    to.zip(from).for_each(|(to, from)| {
        to.iter_mut().zip(from).for_each(|(to, from)| *to = *from);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rule: EarlyStopping, values: &[f32]) -> (usize, EarlyStoppingState) {
        let mut state = EarlyStoppingState::new(rule);
        for (epoch, &v) in values.iter().enumerate() {
            if state.on_epoch_end(epoch, v).stop {
                return (epoch.saturating_add(1), state);
            }
        }
        (values.len(), state)
    }

    #[test]
    fn a_baseline_never_beaten_stops_after_patience_epochs() {
        let rule = EarlyStopping::new(Monitor::Loss)
            .with_patience(2)
            .with_baseline(0.1)
            .unwrap();
        // Epoch 1 improves on epoch 0 but not on the baseline: wait is not reset.
        let (epochs, state) = run(rule, &[1.0, 0.9, 0.95, 0.97]);
        assert_eq!(epochs, 3);
        assert_eq!(state.best_epoch(), Some(1));
    }

    #[test]
    fn nothing_is_restored_without_the_flag_or_a_monitored_epoch() {
        let (_, state) = run(
            EarlyStopping::new(Monitor::Loss).with_patience(9),
            &[1.0, 2.0],
        );
        assert_eq!(state.restores(), None);
        let late = EarlyStopping::new(Monitor::Loss)
            .with_restore_best_weights(true)
            .with_start_from_epoch(5);
        let (_, state) = run(late, &[1.0, 2.0]);
        assert_eq!((state.restores(), state.best_epoch()), (None, None));
    }

    #[test]
    fn bad_values_are_refused() {
        let rule = EarlyStopping::new(Monitor::ValLoss);
        assert!(matches!(
            rule.with_baseline(f32::NAN),
            Err(Error::Baseline { baseline }) if baseline.is_nan()
        ));
        assert_eq!(
            rule.with_min_delta(f32::INFINITY),
            Err(Error::MinDelta {
                min_delta: f32::INFINITY
            })
        );
        assert_eq!(rule.with_min_delta(-0.5).map(|r| r.min_delta()), Ok(0.5));
    }
}
