//! Feature standardisation fitted on the training data: scikit-learn's `StandardScaler`.

use crate::error::Error;

/// Per-feature mean and standard deviation of the training rows, applied to any rows:
/// `x ↦ (x - mean) / std`. The standard deviation is the population one (divides by `n`,
/// as scikit-learn's `StandardScaler` and numpy's `np.std`); a constant feature keeps a
/// scale of 1, so it maps to 0 instead of dividing by zero.
///
/// Fit it on the training rows only and apply it to the validation and test rows too, so
/// that nothing about them leaks into training. The sums run in `f64` (on a
/// microcontroller without a double-precision FPU, in software: fitting is done once).
///
/// ```
/// use microtrain::Standardizer;
/// let mut train = [[1.0, 10.0], [3.0, 10.0]];
/// let mut test = [[2.0, 12.0]];
/// let scaler = Standardizer::fit(&train)?;
/// assert_eq!((scaler.mean, scaler.std), ([2.0, 10.0], [1.0, 1.0]));
/// scaler.apply(&mut train);
/// scaler.apply(&mut test);
/// assert_eq!(train, [[-1.0, 0.0], [1.0, 0.0]]);
/// assert_eq!(test, [[0.0, 2.0]]);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standardizer<const N: usize> {
    /// Mean of each feature over the fitted rows.
    pub mean: [f32; N],
    /// Standard deviation of each feature over the fitted rows (1 where it is 0).
    pub std: [f32; N],
}

impl<const N: usize> Standardizer<N> {
    /// The scaler that changes nothing (mean 0, std 1); `const`, for a `static`.
    pub const IDENTITY: Self = Self {
        mean: [0.0; N],
        std: [1.0; N],
    };

    /// Learns each feature's mean and standard deviation from `rows`.
    ///
    /// # Errors
    /// [`Error::EmptyData`] for no rows; [`Error::NonFinite`] if a value is NaN or infinite.
    pub fn fit(rows: &[[f32; N]]) -> Result<Self, Error> {
        Self::fit_rows(rows.iter())
    }

    /// Learns the statistics from the rows `rows[i]` for each `i` in `indices` (e.g. the
    /// training part of a [`stratified_split`](crate::stratified_split)).
    ///
    /// # Errors
    /// As [`Standardizer::fit`]; [`Error::EmptyData`] also for an index past the rows.
    pub fn fit_indexed(rows: &[[f32; N]], indices: &[usize]) -> Result<Self, Error> {
        if indices.iter().any(|&i| i >= rows.len()) {
            return Err(Error::EmptyData);
        }
        Self::fit_rows(indices.iter().filter_map(|&i| rows.get(i)))
    }

    fn fit_rows<'a>(rows: impl Iterator<Item = &'a [f32; N]> + Clone) -> Result<Self, Error> {
        let (mut sum, mut square, mut count) = ([0.0f64; N], [0.0f64; N], 0usize);
        for row in rows {
            if !row.iter().all(|v| v.is_finite()) {
                return Err(Error::NonFinite);
            }
            for ((s, q), &v) in sum.iter_mut().zip(square.iter_mut()).zip(row) {
                *s += f64::from(v);
                *q += f64::from(v) * f64::from(v);
            }
            count = count.saturating_add(1);
        }
        if count == 0 {
            return Err(Error::EmptyData);
        }
        let n = count as f64;
        let mut scaler = Self::IDENTITY;
        for (((m, s), &total), &squares) in scaler
            .mean
            .iter_mut()
            .zip(&mut scaler.std)
            .zip(&sum)
            .zip(&square)
        {
            let mu = total / n;
            let sigma = libm::sqrt((squares / n - mu * mu).max(0.0));
            *m = mu as f32;
            if sigma > 0.0 {
                *s = sigma as f32;
            }
        }
        Ok(scaler)
    }

    /// Replaces each value `x` of `row` by `(x - mean) / std`.
    pub fn apply_row(&self, row: &mut [f32; N]) {
        for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = (*v - m) / s;
        }
    }

    /// Standardises every row in place.
    pub fn apply(&self, rows: &mut [[f32; N]]) {
        for row in rows {
            self.apply_row(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_rows_get_mean_zero_and_unit_variance() {
        let mut rows = [
            [1.0, -4.0, 7.0],
            [2.0, 0.0, 7.0],
            [6.0, 1.0, 7.0],
            [3.0, 3.0, 7.0],
        ];
        let scaler = Standardizer::fit(&rows).unwrap();
        scaler.apply(&mut rows);
        for f in 0..3 {
            let mean: f32 = rows.iter().map(|r| r[f]).sum::<f32>() / 4.0;
            let var: f32 = rows.iter().map(|r| r[f] * r[f]).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6, "feature {f}: mean {mean}");
            // The constant third feature maps to 0, not to NaN.
            let expected = if f == 2 { 0.0 } else { 1.0 };
            assert!((var - expected).abs() < 1e-5, "feature {f}: var {var}");
        }
        assert_eq!(scaler.std[2], 1.0);
    }

    #[test]
    fn indexed_fit_uses_only_the_listed_rows() {
        let rows = [[0.0], [100.0], [2.0], [4.0]];
        let scaler = Standardizer::fit_indexed(&rows, &[0, 2, 3]).unwrap();
        assert_eq!(scaler, Standardizer::fit(&[[0.0], [2.0], [4.0]]).unwrap());
        assert_eq!(scaler.mean, [2.0]);
        assert_eq!(
            Standardizer::fit_indexed(&rows, &[4]),
            Err(Error::EmptyData)
        );
    }

    #[test]
    fn empty_or_non_finite_data_is_refused() {
        assert_eq!(Standardizer::<2>::fit(&[]), Err(Error::EmptyData));
        assert_eq!(
            Standardizer::<2>::fit_indexed(&[[1.0, 2.0]], &[]),
            Err(Error::EmptyData)
        );
        assert_eq!(Standardizer::fit(&[[1.0, f32::NAN]]), Err(Error::NonFinite));
        assert_eq!(Standardizer::fit(&[[f32::INFINITY]]), Err(Error::NonFinite));
    }
}
