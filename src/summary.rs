//! A model's summary, as Keras' `model.summary()`: its layers, their widths and parameter
//! counts, and the RAM it takes to train.

use core::fmt;

use crate::layers::{Layer, Parameters, Row};
use crate::model::Network;

/// One layer's line of a [`Summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSummary {
    /// The layer's Rust type, e.g. `microtrain::layers::dense::Dense<30, 64, microtrain::activation::Relu>`
    /// ([`core::any::type_name`]; printed without the paths).
    pub type_name: &'static str,
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Trainable scalars.
    pub parameters: usize,
    /// Bytes of the layer (parameters and configuration).
    pub bytes: usize,
}

impl LayerSummary {
    /// The line of layer type `L`.
    pub fn of<L: Layer>() -> Self {
        Self {
            type_name: core::any::type_name::<L>(),
            inputs: <L::Input as Row>::WIDTH,
            outputs: <L::Output as Row>::WIDTH,
            parameters: <L::Params as Parameters>::COUNT,
            bytes: core::mem::size_of::<L>(),
        }
    }
}

/// What [`summary`] and [`Trainer::summary`](crate::Trainer::summary) print: one line per
/// layer (type, widths, parameters, bytes), the totals and the RAM to train. Integers only,
/// so a firmware can print it without float formatting.
///
/// ```
/// use microtrain::*;
/// network! { type Model = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>); }
/// let trainer = Trainer::<Model, _, 32>::new(Adam::keras_default());
/// let text = format!("{}", trainer.summary());
/// assert!(text.contains("Dense<30, 64, Relu>"));
/// assert!(text.contains("total parameters: 2049"));
/// println!("{text}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary<N> {
    training: Option<Training>,
    model: core::marker::PhantomData<fn() -> N>,
}

/// The trainer's part of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Training {
    batch: usize,
    trainer_bytes: usize,
    total_bytes: usize,
}

/// The summary of model type `N` (layers, parameters, the model's bytes); a trainer's
/// [`Trainer::summary`](crate::Trainer::summary) adds the RAM to train it.
pub fn summary<N: Network>() -> Summary<N> {
    Summary {
        training: None,
        model: core::marker::PhantomData,
    }
}

impl<N: Network> Summary<N> {
    pub(crate) fn with_training(batch: usize, trainer_bytes: usize, total_bytes: usize) -> Self {
        Self {
            training: Some(Training {
                batch,
                trainer_bytes,
                total_bytes,
            }),
            model: core::marker::PhantomData,
        }
    }

    /// One line per layer, first to last.
    pub fn layers(&self) -> impl Iterator<Item = LayerSummary> {
        N::layer_summaries()
    }
}

/// A type name with every path left out: `a::b::Dense<30, a::Relu>` → `Dense<30, Relu>`.
/// Type arguments that are defaults of the crate's layers (a `Dense` without activity
/// regularizer or constraints).
const DEFAULT_ARGUMENTS: [&str; 2] = ["NoActivityRegularizer", "Unconstrained"];

/// If `text` is `, `-separated default arguments up to a `>`, the length before that `>`.
fn defaults_then_close(text: &str) -> Option<usize> {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find([',', '>'])?;
        let (path, tail) = trimmed.split_at(end);
        let name = path.rsplit("::").next().unwrap_or(path);
        if !DEFAULT_ARGUMENTS.contains(&name) {
            return None;
        }
        if tail.starts_with('>') {
            return Some(text.len().saturating_sub(tail.len()));
        }
        rest = tail.get(1..)?;
    }
}

struct ShortName(&'static str);

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while !rest.is_empty() {
            // A path segment ends at the next delimiter; keep only what follows its last `::`.
            let end = rest
                .find(|c: char| {
                    matches!(c, '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | ';' | '&')
                })
                .unwrap_or(rest.len());
            let (path, tail) = rest.split_at(end);
            let name = path.rsplit("::").next().unwrap_or(path);
            f.write_str(name)?;
            // Trailing type arguments left at their defaults are not shown:
            // `Dense<4, 8, Relu>`, not `Dense<4, 8, Relu, NoActivityRegularizer, …>`.
            let tail = tail.strip_prefix(',').map_or(tail, |after| {
                defaults_then_close(after).map_or(tail, |skip| after.get(skip..).unwrap_or(""))
            });
            let mut chars = tail.chars();
            if let Some(delimiter) = chars.next() {
                write!(f, "{delimiter}")?;
            }
            rest = chars.as_str();
        }
        Ok(())
    }
}

impl<N: Network> fmt::Display for Summary<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WIDTH: usize = 40;
        writeln!(
            f,
            "{:<WIDTH$} {:>7} {:>7} {:>10} {:>8}",
            "layer (type)", "inputs", "outputs", "parameters", "bytes"
        )?;
        for layer in self.layers() {
            // Padded by hand: `ShortName` writes in pieces, which `{:<40}` would not pad.
            let mut name = heapless::String::<128>::new();
            let _ = fmt::write(&mut name, format_args!("{}", ShortName(layer.type_name)));
            writeln!(
                f,
                "{:<WIDTH$} {:>7} {:>7} {:>10} {:>8}",
                name.as_str(),
                layer.inputs,
                layer.outputs,
                layer.parameters,
                layer.bytes
            )?;
        }
        write!(
            f,
            "total parameters: {} ({} bytes of f32); model: {} bytes",
            N::PARAMETERS,
            N::PARAMETERS.saturating_mul(4),
            core::mem::size_of::<N>()
        )?;
        if let Some(t) = self.training {
            write!(
                f,
                "\ntraining RAM: {} bytes (model + trainer of {} bytes: gradients, optimizer \
                 state, buffers for batches of {})",
                t.total_bytes, t.trainer_bytes, t.batch
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adam, Dense, Dropout, Relu, Sigmoid, Trainer};
    use std::format;

    type Model = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);

    #[test]
    fn short_names_drop_every_path() {
        let name = format!(
            "{}",
            ShortName("microtrain::layers::dense::Dense<30, 64, microtrain::activation::Relu>")
        );
        assert_eq!(name, "Dense<30, 64, Relu>");
        assert_eq!(
            format!("{}", ShortName("a::B<(c::D, [e::F; 3])>")),
            "B<(D, [F; 3])>"
        );
        // Default arguments are dropped only when all that follow are defaults.
        let full = core::any::type_name::<Dense<30, 64, Relu>>();
        assert_eq!(format!("{}", ShortName(full)), "Dense<30, 64, Relu>");
        type Constrained =
            Dense<3, 2, Relu, crate::NoActivityRegularizer, crate::constraint::NonNeg>;
        let full = core::any::type_name::<Constrained>();
        assert_eq!(
            format!("{}", ShortName(full)),
            "Dense<3, 2, Relu, NoActivityRegularizer, NonNeg>"
        );
    }

    #[test]
    fn the_summary_lists_each_layer_and_the_training_ram() {
        type T = Trainer<Model, Adam<<Model as Network>::Params>, 32>;
        let trainer = T::new(Adam::keras_default());
        let layers: std::vec::Vec<_> = trainer.summary().layers().collect();
        assert_eq!(layers.len(), 3);
        assert_eq!(
            layers
                .iter()
                .map(|l| (l.inputs, l.outputs, l.parameters))
                .collect::<std::vec::Vec<_>>(),
            [(30, 64, 30 * 64 + 64), (64, 64, 0), (64, 1, 65)]
        );
        let text = format!("{}", trainer.summary());
        let lines: std::vec::Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("Dense<30, 64, Relu> "), "{text}");
        assert!(lines[1].ends_with(&format!("{}", core::mem::size_of::<Dense<30, 64, Relu>>())));
        assert!(lines[2].starts_with("Dropout<64> "), "{text}");
        assert!(
            text.contains("total parameters: 2049 (8196 bytes of f32)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("training RAM: {} bytes", T::TRAINING_RAM_BYTES)),
            "{text}"
        );
        assert!(!format!("{}", summary::<Model>()).contains("training RAM"));
    }
}
