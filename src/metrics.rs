//! Metrics beyond loss and accuracy: a confusion matrix with precision, recall and F1, the
//! regression metrics (MSE, MAE, R²) and the loss without the regularization term. All run
//! on a device too (no heap; sums in `f64`).

use core::fmt;

use crate::error::Error;
use crate::layers::Row;
use crate::loss::{Label, Loss};
use crate::model::Network;
use crate::train::Dataset;

/// The class a model's output row predicts: the index of the largest value for two or more
/// outputs (softmax, logits), and `output ≥ 0.5` for a single sigmoid output. (For a single
/// logit output, compare with 0 yourself.) The first of equal maxima wins; NaN never does.
///
/// ```
/// assert_eq!(microtrain::metrics::predicted_class(&[0.1, 0.7, 0.2]), 1);
/// assert_eq!(microtrain::metrics::predicted_class(&[0.3]), 0);
/// ```
pub fn predicted_class(output: &[f32]) -> usize {
    match output {
        [p] => usize::from(*p >= 0.5),
        _ => {
            let mut best = (0, f32::NEG_INFINITY);
            for (class, &value) in output.iter().enumerate() {
                if value > best.1 {
                    best = (class, value);
                }
            }
            best.0
        }
    }
}

/// Counts of (actual, predicted) class pairs for `C` classes, and the metrics they give:
/// accuracy, and per class precision, recall and F1 (scikit-learn's `confusion_matrix`,
/// `precision_recall_fscore_support`). Rows are actual classes, columns predicted ones.
///
/// ```
/// use microtrain::ConfusionMatrix;
/// let mut m = ConfusionMatrix::<2>::new();
/// for (actual, predicted) in [(1, 1), (1, 0), (0, 0), (0, 0), (0, 1)] {
///     m.record(actual, predicted)?;
/// }
/// assert_eq!(m.counts, [[2, 1], [1, 1]]);
/// assert_eq!(m.precision(1), Some(0.5)); // 1 of the 2 predicted positives
/// assert_eq!(m.recall(1), Some(0.5)); // 1 of the 2 actual positives
/// assert_eq!(m.f1(1), Some(0.5));
/// assert_eq!(m.accuracy(), Some(0.6));
/// # Ok::<(), microtrain::Error>(())
/// ```
///
/// A model's matrix on a data set, with [`ConfusionMatrix::of_model`]:
///
/// ```
/// use microtrain::*;
/// network! { type Net = (Dense<1, 2, Softmax>,); }
/// let mut model: Net = (Dense::new(Softmax),);
/// // Class 1 when the input is positive.
/// model.0.params.weights = [[-1.0], [1.0]];
/// let (x, labels) = ([[2.0], [-1.0], [0.5], [-3.0]], [1u8, 0, 0, 0]);
/// let m = ConfusionMatrix::<2>::of_model(&model, &x, &labels)?;
/// assert_eq!(m.counts, [[2, 1], [0, 1]]);
/// assert_eq!(m.recall(1), Some(1.0));
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConfusionMatrix<const C: usize> {
    /// `counts[actual][predicted]`.
    pub counts: [[u32; C]; C],
}

impl<const C: usize> Default for ConfusionMatrix<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const C: usize> ConfusionMatrix<C> {
    /// All counts zero.
    pub const fn new() -> Self {
        Self {
            counts: [[0; C]; C],
        }
    }

    /// Counts one sample.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] if a class is `>= C`.
    pub fn record(&mut self, actual: usize, predicted: usize) -> Result<(), Error> {
        let out_of_range = |label| Error::LabelOutOfRange { label, classes: C };
        let row = self.counts.get_mut(actual).ok_or(out_of_range(actual))?;
        let cell = row.get_mut(predicted).ok_or(out_of_range(predicted))?;
        *cell = cell.saturating_add(1);
        Ok(())
    }

    /// Runs `model` on each sample (inference) and counts its [`predicted_class`] against
    /// the label.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if the lengths differ; [`Error::LabelOutOfRange`] for a
    /// label or a prediction `>= C`.
    pub fn of_model<N: Network, T: Label>(
        model: &N,
        samples: &[N::Input],
        labels: &[T],
    ) -> Result<Self, Error> {
        if samples.len() != labels.len() {
            return Err(Error::LengthMismatch {
                samples: samples.len(),
                targets: labels.len(),
            });
        }
        let mut matrix = Self::new();
        for (sample, label) in samples.iter().zip(labels) {
            let output = model.infer(sample);
            matrix.record(label.index(), predicted_class(output.as_slice()))?;
        }
        Ok(matrix)
    }

    /// Samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().map(|&c| u64::from(c)).sum()
    }

    /// Samples of `class` predicted as `class`.
    fn hits(&self, class: usize) -> u64 {
        self.counts
            .get(class)
            .and_then(|row| row.get(class))
            .map_or(0, |&c| u64::from(c))
    }

    /// Samples predicted as `class` (its column's sum).
    fn predicted(&self, class: usize) -> u64 {
        self.counts
            .iter()
            .filter_map(|row| row.get(class))
            .map(|&c| u64::from(c))
            .sum()
    }

    /// Samples of `class` (its row's sum).
    fn actual(&self, class: usize) -> u64 {
        self.counts
            .get(class)
            .map_or(0, |row| row.iter().map(|&c| u64::from(c)).sum())
    }

    /// Fraction of samples predicted right; `None` for no samples.
    pub fn accuracy(&self) -> Option<f32> {
        let right: u64 = (0..C).map(|c| self.hits(c)).sum();
        ratio(right, self.total())
    }

    /// Of the samples predicted as `class`, the fraction that are; `None` if none were.
    pub fn precision(&self, class: usize) -> Option<f32> {
        ratio(self.hits(class), self.predicted(class))
    }

    /// Of the samples of `class`, the fraction predicted as such; `None` if there were none.
    pub fn recall(&self, class: usize) -> Option<f32> {
        ratio(self.hits(class), self.actual(class))
    }

    /// The harmonic mean of precision and recall, `2·tp / (2·tp + fp + fn)`; `None` if the
    /// class was neither present nor predicted.
    pub fn f1(&self, class: usize) -> Option<f32> {
        let both = self.predicted(class).saturating_add(self.actual(class));
        ratio(self.hits(class).saturating_mul(2), both)
    }

    /// The unweighted mean of the classes' F1 scores (scikit-learn's `average="macro"`),
    /// over the classes that have one.
    pub fn macro_f1(&self) -> Option<f32> {
        let (mut sum, mut classes) = (0.0f64, 0u32);
        for f1 in (0..C).filter_map(|c| self.f1(c)) {
            sum += f64::from(f1);
            classes = classes.saturating_add(1);
        }
        (classes > 0).then(|| (sum / f64::from(classes)) as f32)
    }
}

/// `numerator / denominator`, or `None` for a zero denominator.
fn ratio(numerator: u64, denominator: u64) -> Option<f32> {
    (denominator > 0).then(|| (numerator as f64 / denominator as f64) as f32)
}

/// Rows of actual classes, columns of predicted ones; integers only, so printing it costs a
/// firmware no float formatting.
impl<const C: usize> fmt::Display for ConfusionMatrix<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actual \\ predicted")?;
        for class in 0..C {
            write!(f, " {class:>6}")?;
        }
        for (class, row) in self.counts.iter().enumerate() {
            write!(f, "\n{class:>18}")?;
            for count in row {
                write!(f, " {count:>6}")?;
            }
        }
        Ok(())
    }
}

/// Mean squared error, mean absolute error and the coefficient of determination of a
/// regression model, over every output value (scikit-learn's `mean_squared_error`,
/// `mean_absolute_error` and `r2_score`, averaged uniformly over the outputs).
///
/// ```
/// use microtrain::*;
/// network! { type Line = (Dense<1, 1>,); }
/// let mut model: Line = (Dense::new(Identity),);
/// model.0.params.weights = [[2.0]]; // y = 2x
/// let (x, y) = ([[0.0], [1.0], [2.0]], [[0.0], [2.0], [5.0]]);
/// let m = RegressionMetrics::of_model(&model, Dataset::new(&x, &y)?);
/// // Predictions 0, 2, 4: one error of 1 in three values.
/// assert!((m.mse - 1.0 / 3.0).abs() < 1e-7 && (m.mae - 1.0 / 3.0).abs() < 1e-7);
/// // 1 - SS_res / SS_tot; the targets' mean is 7/3, SS_tot = (49 + 1 + 64) / 9.
/// assert!((m.r2 - (1.0 - 9.0 / 114.0)).abs() < 1e-6);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegressionMetrics {
    /// Mean of `(prediction - target)²`.
    pub mse: f32,
    /// Mean of `|prediction - target|`.
    pub mae: f32,
    /// `1 - Σ(prediction - target)² / Σ(target - mean target)²` per output, averaged over
    /// the outputs: 1 is perfect, 0 is as good as predicting the mean. An output whose
    /// targets are all equal counts as 1 if predicted exactly, else 0 (as scikit-learn).
    pub r2: f32,
}

impl RegressionMetrics {
    /// Runs `model` on every sample (inference: dropout off) and compares its outputs with
    /// the targets.
    pub fn of_model<N, const OUT: usize>(model: &N, data: Dataset<'_, N::Input, [f32; OUT]>) -> Self
    where
        N: Network<Output = [f32; OUT]>,
    {
        let n = data.len().max(1) as f64;
        let mut mean = [0.0f64; OUT];
        for target in data.targets() {
            for (m, &t) in mean.iter_mut().zip(target) {
                *m += f64::from(t) / n;
            }
        }
        let (mut squared, mut absolute) = (0.0f64, 0.0f64);
        let (mut residual, mut spread) = ([0.0f64; OUT], [0.0f64; OUT]);
        for (sample, target) in data.samples().iter().zip(data.targets()) {
            let output = model.infer(sample);
            for ((((&y, &t), m), r), s) in output
                .iter()
                .zip(target)
                .zip(&mean)
                .zip(&mut residual)
                .zip(&mut spread)
            {
                let error = f64::from(y) - f64::from(t);
                squared += error * error;
                absolute += error.abs();
                *r += error * error;
                let deviation = f64::from(t) - m;
                *s += deviation * deviation;
            }
        }
        let values = n * OUT.max(1) as f64;
        let r2_sum: f64 = residual
            .iter()
            .zip(&spread)
            .map(|(&r, &s)| match (r == 0.0, s == 0.0) {
                (true, _) => 1.0,
                (false, true) => 0.0,
                (false, false) => 1.0 - r / s,
            })
            .sum();
        Self {
            mse: (squared / values) as f32,
            mae: (absolute / values) as f32,
            r2: (r2_sum / OUT.max(1) as f64) as f32,
        }
    }
}

/// Mean loss of `model` over `data` (inference: dropout off) **without** the regularization
/// term: what [`evaluate`](crate::evaluate) reports minus the penalty, summed directly in
/// `f64` rather than found by subtraction. Use it to compare models with different
/// penalties, or a loss with Keras' `model.compiled_loss` on the data. Sample and class
/// weights in `data` weigh it as in [`evaluate`](crate::evaluate) (`Σ wᵢ·lᵢ / n`).
///
/// ```
/// use microtrain::*;
/// network! { type Net = (Dense<1, 1, Sigmoid>,); }
/// let mut model: Net = (Dense::new(Sigmoid).with_kernel_regularizer(l2(1.0)?),);
/// model.0.params.weights = [[3.0]];
/// let (x, y) = ([[0.0]], [[1.0]]);
/// let data = Dataset::new(&x, &y)?;
/// // The output is sigmoid(0) = 0.5 whatever the weight: the loss is ln 2, the penalty 9.
/// assert!((metrics::data_loss(&model, &BinaryCrossEntropy, data) - core::f32::consts::LN_2).abs() < 1e-6);
/// assert!((evaluate(&model, &BinaryCrossEntropy, data)?.loss - 9.0 - core::f32::consts::LN_2).abs() < 1e-5);
/// # Ok::<(), microtrain::Error>(())
/// ```
pub fn data_loss<N, L>(model: &N, loss: &L, data: Dataset<'_, N::Input, L::Target>) -> f32
where
    N: Network,
    L: Loss<N::OutputActivation, N::Output>,
{
    let total: f64 = data
        .samples()
        .iter()
        .zip(data.targets())
        .enumerate()
        .map(|(index, (x, t))| {
            let output = crate::train::loss_output(model, loss, x);
            let weight = data
                .weights()
                .map_or(1.0, |w| w.of(index, loss.class_of(t)));
            f64::from(weight) * f64::from(loss.value(&output, t))
        })
        .sum();
    (total / data.len().max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dense, Identity, Relu, Softmax};

    #[test]
    fn precision_recall_and_f1_follow_their_definitions_for_three_classes() {
        let mut m = ConfusionMatrix::<3>::new();
        // actual 0: 3 right, 1 as class 2; actual 1: 2 right, 2 as 0; actual 2: none.
        for (a, p) in [
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 2),
            (1, 1),
            (1, 1),
            (1, 0),
            (1, 0),
        ] {
            m.record(a, p).unwrap();
        }
        assert_eq!(m.total(), 8);
        assert_eq!(m.precision(0), Some(3.0 / 5.0));
        assert_eq!(m.recall(0), Some(3.0 / 4.0));
        assert_eq!(m.f1(0), Some((6.0f64 / 9.0) as f32));
        assert_eq!(m.precision(1), Some(1.0));
        assert_eq!(m.recall(1), Some(0.5));
        // Class 2 was predicted once and never present: precision 0, recall undefined.
        assert_eq!(m.precision(2), Some(0.0));
        assert_eq!(m.recall(2), None);
        assert_eq!(m.f1(2), Some(0.0));
        let f1_1 = 2.0 / 3.0;
        let expected = (6.0f64 / 9.0 + f1_1 + 0.0) / 3.0;
        assert_eq!(m.macro_f1(), Some(expected as f32));
        assert_eq!(m.accuracy(), Some(5.0 / 8.0));
        assert_eq!(
            m.record(3, 0),
            Err(Error::LabelOutOfRange {
                label: 3,
                classes: 3
            })
        );
    }

    #[test]
    fn an_empty_matrix_has_no_metrics() {
        let m = ConfusionMatrix::<2>::default();
        assert_eq!(
            (m.accuracy(), m.precision(0), m.recall(1), m.f1(0)),
            (None, None, None, None)
        );
        assert_eq!(m.macro_f1(), None);
    }

    #[test]
    fn the_matrix_prints_with_integers() {
        let mut m = ConfusionMatrix::<2>::new();
        m.record(1, 0).unwrap();
        let text = std::format!("{m}");
        assert_eq!(
            text,
            "actual \\ predicted      0      1\n                 0      0      0\n                 1      1      0"
        );
    }

    #[test]
    fn predicted_class_takes_the_first_maximum_and_thresholds_one_output() {
        assert_eq!(predicted_class(&[0.2, 0.5, 0.5]), 1);
        assert_eq!(predicted_class(&[f32::NAN, 0.1]), 1);
        assert_eq!(predicted_class(&[0.5]), 1);
        assert_eq!(predicted_class(&[0.49]), 0);
    }

    #[test]
    fn of_model_refuses_mismatched_lengths_and_bad_labels() {
        let model: (Dense<2, 3, Relu>, Dense<3, 2, Softmax>) =
            (Dense::new(Relu), Dense::new(Softmax));
        let x = [[0.0f32; 2]; 2];
        assert_eq!(
            ConfusionMatrix::<2>::of_model(&model, &x, &[0u8]),
            Err(Error::LengthMismatch {
                samples: 2,
                targets: 1
            })
        );
        assert_eq!(
            ConfusionMatrix::<2>::of_model(&model, &x, &[0u8, 5]),
            Err(Error::LabelOutOfRange {
                label: 5,
                classes: 2
            })
        );
    }

    #[test]
    fn regression_metrics_on_two_outputs_average_r2_over_outputs() {
        let mut model: (Dense<1, 2, Identity>,) = (Dense::new(Identity),);
        model.0.params.weights = [[1.0], [0.0]];
        model.0.params.bias = [0.0, 4.0];
        // Output 0 predicts x exactly; output 1 predicts the constant 4 for targets 3, 5
        // (their mean): R² 1 and 0.
        let x = [[1.0], [2.0]];
        let y = [[1.0, 3.0], [2.0, 5.0]];
        let m = RegressionMetrics::of_model(&model, Dataset::new(&x, &y).unwrap());
        assert_eq!(m.mse, 0.5);
        assert_eq!(m.mae, 0.5);
        assert_eq!(m.r2, 0.5);
        // Constant targets predicted exactly count as a perfect fit.
        let y = [[1.0, 4.0], [2.0, 4.0]];
        let m = RegressionMetrics::of_model(&model, Dataset::new(&x, &y).unwrap());
        assert_eq!((m.mse, m.r2), (0.0, 1.0));
    }
}
