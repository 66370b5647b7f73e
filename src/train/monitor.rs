//! What [`EarlyStopping`](super::EarlyStopping) and
//! [`ReduceLrOnPlateau`](super::ReduceLrOnPlateau) watch, and when a value counts as an
//! improvement: Keras' `MonitorCallback`.

use super::fit::EpochReport;

/// The metric a callback watches: Keras' `monitor` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Monitor {
    /// `"loss"`: the epoch's training loss ([`EpochReport::train`]).
    Loss,
    /// `"accuracy"`: the epoch's training accuracy (a loss without accuracy, e.g. mean
    /// squared error, has none).
    Accuracy,
    /// `"val_loss"` (Keras' default): the loss on `fit`'s validation set.
    ValLoss,
    /// `"val_accuracy"`: the accuracy on `fit`'s validation set.
    ValAccuracy,
}

impl Monitor {
    /// Keras' name for the metric (`"val_loss"`, …).
    pub const fn keras_name(self) -> &'static str {
        match self {
            Monitor::Loss => "loss",
            Monitor::Accuracy => "accuracy",
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }

    /// True for [`Monitor::ValLoss`] and [`Monitor::ValAccuracy`]: `fit` needs a validation
    /// set.
    pub const fn needs_validation(self) -> bool {
        matches!(self, Monitor::ValLoss | Monitor::ValAccuracy)
    }

    /// The monitored value in `report`, if the epoch computed it.
    pub fn value(self, report: &EpochReport) -> Option<f32> {
        match self {
            Monitor::Loss => Some(report.train.loss),
            Monitor::Accuracy => report.train.accuracy,
            Monitor::ValLoss => report.validation.map(|m| m.loss),
            Monitor::ValAccuracy => report.validation.and_then(|m| m.accuracy),
        }
    }

    /// True if a larger value is better under `mode`: Keras' `auto` minimises losses and
    /// maximises accuracies.
    pub const fn greater_is_better(self, mode: Mode) -> bool {
        match mode {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => matches!(self, Monitor::Accuracy | Monitor::ValAccuracy),
        }
    }
}

/// Whether the monitored value should fall or rise: Keras' `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// `"auto"` (the default): `Min` for a loss, `Max` for an accuracy.
    #[default]
    Auto,
    /// `"min"`: lower is better.
    Min,
    /// `"max"`: higher is better.
    Max,
}

/// Keras' `MonitorCallback._is_improvement`: `current - min_delta > reference` when higher
/// is better, `current + min_delta < reference` when lower is (Keras negates `min_delta`
/// for `less`), and always true without a reference.
///
/// The arithmetic is `f32`'s, which is Keras': it computes `current ∓ min_delta` on Python
/// floats holding `f32` values (exact to within one rounding, which `f32` then repeats) and
/// compares in the backend's `float32` (`keras.ops.less`); the reference fixture has a case
/// where the sum ties between two `f32` values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Improvement {
    greater: bool,
    min_delta: f32,
}

impl Improvement {
    /// The comparison for `monitor` under `mode`, with `min_delta`'s magnitude.
    pub(crate) const fn new(monitor: Monitor, mode: Mode, min_delta: f32) -> Self {
        Self {
            greater: monitor.greater_is_better(mode),
            min_delta: min_delta.abs(),
        }
    }

    /// True if `current` improves on `reference` (or there is no reference yet).
    pub(crate) fn test(&self, current: f32, reference: Option<f32>) -> bool {
        match reference {
            None => true,
            Some(reference) if self.greater => current - self.min_delta > reference,
            Some(reference) => current + self.min_delta < reference,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_minimises_losses_and_maximises_accuracies() {
        assert!(!Monitor::Loss.greater_is_better(Mode::Auto));
        assert!(!Monitor::ValLoss.greater_is_better(Mode::Auto));
        assert!(Monitor::Accuracy.greater_is_better(Mode::Auto));
        assert!(Monitor::ValAccuracy.greater_is_better(Mode::Auto));
        assert!(Monitor::Loss.greater_is_better(Mode::Max));
        assert!(!Monitor::ValAccuracy.greater_is_better(Mode::Min));
    }

    #[test]
    fn an_improvement_must_beat_the_reference_by_more_than_min_delta() {
        let min = Improvement::new(Monitor::Loss, Mode::Auto, -0.1);
        assert!(min.test(5.0, None));
        assert!(min.test(0.85, Some(1.0)));
        assert!(!min.test(0.95, Some(1.0)), "0.95 + 0.1 is not below 1.0");
        let max = Improvement::new(Monitor::Accuracy, Mode::Auto, 0.1);
        assert!(max.test(0.75, Some(0.5)));
        assert!(!max.test(0.55, Some(0.5)), "0.55 - 0.1 is not above 0.5");
    }
}
