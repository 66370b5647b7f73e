//! Samples paired with their targets, and optionally with sample and class weights.

use crate::error::Error;

/// Samples and their targets, checked to have the same non-zero length; optionally with
/// Keras' `sample_weight` and `class_weight` ([`Dataset::with_sample_weights`],
/// [`Dataset::with_class_weights`]), which then apply wherever the data set is used:
/// [`Trainer::step`](crate::Trainer::step), [`Trainer::fit`](crate::Trainer::fit),
/// [`evaluate`](crate::evaluate).
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, I, T> {
    samples: &'a [I],
    targets: &'a [T],
    weights: Option<Weights<'a>>,
}

/// The weights of a weighted [`Dataset`]: an empty slice stands for no weights of that kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights<'a> {
    samples: &'a [f32],
    classes: &'a [f32],
}

impl Weights<'_> {
    /// The weight of sample `index`, whose target is of class `class`: the product of its
    /// sample weight and its class's weight; 1 for a class past the class weights (as
    /// Keras' `class_weight.get(class, 1.0)`).
    pub(crate) fn of(&self, index: usize, class: usize) -> f32 {
        let sample = if self.samples.is_empty() {
            1.0
        } else {
            self.samples.get(index).copied().unwrap_or(1.0)
        };
        sample * self.classes.get(class).copied().unwrap_or(1.0)
    }
}

/// `Ok` if every weight is finite and `>= 0`, else the first one that is not.
const fn check_weights(mut weights: &[f32]) -> Result<(), Error> {
    while let [weight, rest @ ..] = weights {
        if !(weight.is_finite() && *weight >= 0.0) {
            return Err(Error::Weight { weight: *weight });
        }
        weights = rest;
    }
    Ok(())
}

impl<'a, I, T> Dataset<'a, I, T> {
    /// Pairs `samples[k]` with `targets[k]`.
    ///
    /// # Errors
    /// [`Error::EmptyData`] if there are no samples; [`Error::LengthMismatch`] if the
    /// lengths differ.
    pub const fn new(samples: &'a [I], targets: &'a [T]) -> Result<Self, Error> {
        if samples.is_empty() {
            return Err(Error::EmptyData);
        }
        if samples.len() != targets.len() {
            return Err(Error::LengthMismatch {
                samples: samples.len(),
                targets: targets.len(),
            });
        }
        Ok(Self {
            samples,
            targets,
            weights: None,
        })
    }

    /// Weighs sample `k`'s loss by `weights[k]` (Keras' `fit(sample_weight=…)` and
    /// `evaluate(sample_weight=…)`), with Keras' reduction `sum_over_batch_size`: a batch
    /// of `N` rows has the loss `Σ wₖ·lₖ / N` (divided by the rows, not by `Σ wₖ`), and
    /// each row's gradient is scaled by `wₖ / N`. Accuracy stays unweighted, as Keras'
    /// `metrics=["accuracy"]` (only its `weighted_metrics` are weighted). Replaces earlier
    /// sample weights; class weights ([`Dataset::with_class_weights`]) multiply them. For
    /// k-fold cross-validation ([`KFold`](crate::KFold)), gather each fold's weights with
    /// its samples; class weights apply to every fold unchanged.
    ///
    /// ```
    /// use microtrain::*;
    /// let (x, y) = ([[0.0f32], [1.0], [2.0]], [[0.0f32], [1.0], [1.0]]);
    /// // The last sample counts twice, the first not at all.
    /// let data = Dataset::new(&x, &y)?.with_sample_weights(&[0.0, 1.0, 2.0])?;
    /// assert_eq!(data.sample_weights(), Some(&[0.0, 1.0, 2.0][..]));
    /// assert_eq!(Dataset::new(&x, &y)?.with_sample_weights(&[1.0]).err(),
    ///     Some(Error::WeightCount { samples: 3, weights: 1 }));
    /// # Ok::<(), microtrain::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WeightCount`] unless there is one weight per sample; [`Error::Weight`] for
    /// a weight that is negative, NaN or infinite.
    pub const fn with_sample_weights(mut self, weights: &'a [f32]) -> Result<Self, Error> {
        if weights.len() != self.samples.len() {
            return Err(Error::WeightCount {
                samples: self.samples.len(),
                weights: weights.len(),
            });
        }
        if let Err(e) = check_weights(weights) {
            return Err(e);
        }
        let classes = match self.weights {
            Some(w) => w.classes,
            None => &[],
        };
        self.weights = Some(Weights {
            samples: weights,
            classes,
        });
        Ok(self)
    }

    /// Weighs each sample's loss by the weight of its target's class, `weights[class]`
    /// (Keras' `fit(class_weight={class: weight})`; a class past the end of `weights`
    /// weighs 1, as a class missing from Keras' dictionary). The class of a target is the
    /// loss's [`Loss::class_of`](crate::Loss::class_of), as Keras finds it: the label of a
    /// sparse target, the `argmax` of a one-hot (or any multi-column) target, the rounded
    /// value of a single-column target (`t >= 0.5` is class 1 for binary targets; Keras'
    /// `np.round` takes 0.5 to 0). The reduction is the sample weights'
    /// ([`Dataset::with_sample_weights`]).
    ///
    /// Keras refuses `class_weight` together with `sample_weight`; here both may be given,
    /// and a sample's weight is their product. Keras applies `class_weight` in `fit` only;
    /// a data set carries its class weights everywhere it goes, [`evaluate`](crate::evaluate)
    /// included (evaluate a copy without them for Keras' unweighted `evaluate`).
    ///
    /// ```
    /// use microtrain::*;
    /// let (x, y) = ([[0.0f32], [1.0]], [0usize, 1]);
    /// // Class 1 is rare: it counts three times.
    /// let data = Dataset::new(&x, &y)?.with_class_weights(&[1.0, 3.0])?;
    /// assert_eq!(data.class_weights(), Some(&[1.0, 3.0][..]));
    /// assert!(Dataset::new(&x, &y)?.with_class_weights(&[1.0, -3.0]).is_err());
    /// # Ok::<(), microtrain::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Weight`] for a weight that is negative, NaN or infinite.
    pub const fn with_class_weights(mut self, weights: &'a [f32]) -> Result<Self, Error> {
        if let Err(e) = check_weights(weights) {
            return Err(e);
        }
        let samples = match self.weights {
            Some(w) => w.samples,
            None => &[],
        };
        self.weights = Some(Weights {
            samples,
            classes: weights,
        });
        Ok(self)
    }

    /// Number of samples.
    pub const fn len(&self) -> usize {
        self.samples.len()
    }

    /// Always false: a dataset has at least one sample.
    pub const fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples.
    pub const fn samples(&self) -> &'a [I] {
        self.samples
    }

    /// The targets.
    pub const fn targets(&self) -> &'a [T] {
        self.targets
    }

    /// The sample weights, if any were given.
    pub const fn sample_weights(&self) -> Option<&'a [f32]> {
        match self.weights {
            Some(Weights { samples, .. }) if !samples.is_empty() => Some(samples),
            _ => None,
        }
    }

    /// The class weights, if any were given.
    pub const fn class_weights(&self) -> Option<&'a [f32]> {
        match self.weights {
            Some(Weights { classes, .. }) if !classes.is_empty() => Some(classes),
            _ => None,
        }
    }

    pub(super) fn get(&self, index: usize) -> Option<(&'a I, &'a T)> {
        Some((self.samples.get(index)?, self.targets.get(index)?))
    }

    /// The weights, or `None` for an unweighted data set (every weight 1).
    pub(crate) const fn weights(&self) -> Option<Weights<'a>> {
        self.weights
    }
}
