//! Networks: layers chained in a tuple, sizes checked at compile time.
//!
//! A tuple of layers is a network when each layer's input is the previous layer's output,
//! every layer but the last is [`Hidden`] and the last is an [`OutputLayer`]:
//!
//! ```
//! use microtrain::{Dense, Dropout, Regularizer, Relu, Sigmoid};
//! // Keras: Dense(64, relu, kernel_regularizer=l2(0.01)) -> Dropout(0.5) -> Dense(1, sigmoid)
//! type Tutorial = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);
//! const MODEL: Tutorial = (
//!     Dense::new(Relu).with_kernel_regularizer(microtrain::const_config!(Regularizer::l2(0.01))),
//!     microtrain::const_config!(Dropout::new(0.5)),
//!     Dense::new(Sigmoid),
//! );
//! ```
//!
//! A size mismatch does not compile. Define the model's type with [`network!`](crate::network)
//! and the compiler gives **one** error, at the definition, naming the two widths
//! (`expected an array with a size of 64, found one with a size of 32`):
//!
//! ```compile_fail,E0308
//! use microtrain::*;
//! // 64 outputs feed a layer that expects 32 inputs.
//! network! { type Bad = (Dense<30, 64, Relu>, Dense<32, 1, Sigmoid>); }
//! let mut model: Bad = (Dense::new(Relu), Dense::new(Sigmoid));
//! model.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(0));
//! ```
//!
//! A plain `type` alias fails too, but at every use of the model and with a vaguer message
//! (the tuple is not a [`Network`]):
//!
//! ```compile_fail
//! use microtrain::{Dense, Network, Relu, Sigmoid};
//! fn parameters<N: Network>(_: &N) -> usize { N::PARAMETERS }
//! let bad = (Dense::<30, 64, Relu>::new(Relu), Dense::<32, 1, Sigmoid>::new(Sigmoid));
//! parameters(&bad);
//! ```
//!
//! and neither does a softmax in a hidden layer:
//!
//! ```compile_fail
//! use microtrain::{Dense, Network, Relu, Softmax};
//! fn parameters<N: Network>(_: &N) -> usize { N::PARAMETERS }
//! let bad = (Dense::<4, 8, Softmax>::new(Softmax), Dense::<8, 3, Relu>::new(Relu));
//! parameters(&bad);
//! ```

use rand_core::Rng;

use crate::activation::Activation;
use crate::layers::{ConstZero, Hidden, Layer, OutputLayer, Parameters, Row};

/// Defines a model's type, a tuple of layers, and checks at the definition that each
/// layer's input width is the previous layer's output width: a mismatch is one compile
/// error there, naming the two widths (`expected an array with a size of 64, found one
/// with a size of 32`), instead of errors at every use of the model.
///
/// ```
/// use microtrain::*;
/// network! {
///     /// Keras: Dense(64, relu) -> Dropout(0.5) -> Dense(1, sigmoid) on 30 features.
///     pub type Model = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);
/// }
/// static MODEL: Model = (Dense::new(Relu), const_config!(Dropout::new(0.5)), Dense::new(Sigmoid));
/// assert_eq!(<Model as Network>::WIDTHS, &[30, 64, 64, 1]);
/// ```
///
/// ```compile_fail,E0308
/// use microtrain::*;
/// network! { type Bad = (Dense<4, 8, Relu>, Dropout<8>, Dense<16, 3, Softmax>); }
/// ```
#[macro_export]
macro_rules! network {
    ($(#[$meta:meta])* $vis:vis type $name:ident = ($first:ty $(, $rest:ty)* $(,)?);) => {
        $(#[$meta])*
        $vis type $name = <($first, $($rest,)*) as $crate::model::WidthsChecked<{
            $crate::__network_widths_match!($first $(, $rest)*);
            0
        }>>::Model;
    };
}

/// One `let` per pair of neighbouring layers, whose array types differ exactly when the
/// widths do (the compiler's message then names both). Used by [`network!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __network_widths_match {
    ($a:ty) => {};
    ($a:ty, $b:ty $(, $rest:ty)*) => {
        let _outputs_must_match_the_next_layers_inputs: [
            ();
            <<$a as $crate::Layer>::Output as $crate::Row>::WIDTH
        ] = [(); <<$b as $crate::Layer>::Input as $crate::Row>::WIDTH];
        $crate::__network_widths_match!($b $(, $rest)*);
    };
}

/// The type [`network!`] names: `Model` is the tuple itself; the constant is the width
/// check, so a failed check makes the type an error and silences the errors at its uses.
#[doc(hidden)]
pub trait WidthsChecked<const CHECK: usize> {
    /// The checked tuple.
    type Model;
}

impl<T, const CHECK: usize> WidthsChecked<CHECK> for T {
    type Model = T;
}

/// A chain of layers that can be trained end to end.
pub trait Network {
    /// One input sample.
    type Input: Row;
    /// One output sample.
    type Output: Row;
    /// The parameters of every layer, in order; also the type of their gradients.
    type Params: Parameters;
    /// The activation of the last layer (what the loss pairs with).
    type OutputActivation: Activation;
    /// Per-batch buffers for batch size `B`: one per layer boundary, plus each layer's
    /// [`Layer::Cache`].
    type Workspace<const B: usize>: ConstZero;

    /// Number of trainable scalars.
    const PARAMETERS: usize = <Self::Params as Parameters>::COUNT;
    /// True if some layer has an activity regularizer ([`Layer::HAS_ACTIVITY_REGULARIZER`]).
    const HAS_ACTIVITY_REGULARIZER: bool;
    /// The width of every layer boundary, input first (what a saved model records).
    const WIDTHS: &'static [usize];

    /// Inference on one sample; dropout is the identity.
    fn infer(&self, input: &Self::Input) -> Self::Output;
    /// The sum of the layers' activity-regularization terms for one sample
    /// ([`Layer::activity_loss`] of one row each) at inference: what Keras' `evaluate` adds
    /// per sample. `-0.0` (adding it changes nothing) without activity regularizers.
    fn activity_loss(&self, input: &Self::Input) -> f32;
    /// The last layer's activation.
    fn output_activation(&self) -> &Self::OutputActivation;
    /// The batch's input rows inside a workspace.
    fn input_rows<const B: usize>(workspace: &mut Self::Workspace<B>) -> &mut [Self::Input; B];
    /// The batch's output rows inside a workspace (after [`Network::forward`]).
    fn output_rows<const B: usize>(workspace: &mut Self::Workspace<B>) -> &mut [Self::Output; B];
    /// Training forward pass over the first `rows` rows of the workspace.
    fn forward<const B: usize, R: Rng + ?Sized>(
        &self,
        workspace: &mut Self::Workspace<B>,
        rows: usize,
        rng: &mut R,
    );
    /// [`Network::forward`], except that the last layer leaves its pre-activation (the
    /// logits) in the output rows, for a loss that applies the output activation itself
    /// ([`Loss::PRE_ACTIVATION`](crate::Loss::PRE_ACTIVATION)).
    fn forward_pre_activation<const B: usize, R: Rng + ?Sized>(
        &self,
        workspace: &mut Self::Workspace<B>,
        rows: usize,
        rng: &mut R,
    );
    /// [`Network::infer`], except that the last layer returns its pre-activation.
    fn infer_pre_activation(&self, input: &Self::Input) -> Self::Output;
    /// Backward pass: the output rows must hold `δ` (see [`crate::Loss::delta`]); overwrites
    /// `grads` with the gradients and returns the regularization loss term.
    fn backward<const B: usize>(
        &self,
        workspace: &mut Self::Workspace<B>,
        rows: usize,
        grads: &mut Self::Params,
    ) -> f32;
    /// The regularization term of the loss at the current parameters.
    fn penalty(&self) -> f32;
    /// Draws fresh initial parameters for every layer.
    fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R);
    /// True unless some layer still has the all-zero weights of its `const` constructor
    /// ([`Layer::is_initialized`]): the trainer refuses such a model with
    /// [`Error::Uninitialized`](crate::Error::Uninitialized). A network of one layer is
    /// always initialised: like a linear or logistic regression it trains from zero weights.
    fn is_initialized(&self) -> bool;
    /// One [`LayerSummary`](crate::summary::LayerSummary) per layer, for a
    /// [`Summary`](crate::summary::Summary).
    fn layer_summaries() -> impl Iterator<Item = crate::summary::LayerSummary>;
    /// Applies every layer's constraint (called after each optimizer step).
    fn apply_constraints(&mut self);
    /// The parameter tensors, in the order of [`Parameters::tensors`] of `Self::Params`.
    fn parameters(&self) -> impl Iterator<Item = &[f32]>;
    /// The parameter tensors, mutably.
    fn parameters_mut(&mut self) -> impl Iterator<Item = &mut [f32]>;
}

/// The per-batch buffers of a network (see [`Network::Workspace`]).
#[derive(Debug, Clone, Copy)]
pub struct Workspace<I, A, C, const B: usize> {
    input: [I; B],
    activations: A,
    caches: C,
}

impl<I: ConstZero + Copy, A: ConstZero, C: ConstZero, const B: usize> ConstZero
    for Workspace<I, A, C, B>
{
    const ZERO: Self = Self {
        input: [I::ZERO; B],
        activations: A::ZERO,
        caches: C::ZERO,
    };
}

fn head<T>(rows: &[T], n: usize) -> &[T] {
    rows.get(..n).unwrap_or(rows)
}

fn head_mut<T>(rows: &mut [T], n: usize) -> &mut [T] {
    let len = rows.len();
    rows.get_mut(..n.min(len)).unwrap_or_default()
}

macro_rules! tuple_const_zero {
    ($($T:ident),+) => {
        impl<$($T: ConstZero),+> ConstZero for ($($T,)+) {
            const ZERO: Self = ($($T::ZERO,)+);
        }
        impl<$($T: Parameters),+> Parameters for ($($T,)+) {
            const COUNT: usize = 0 $(+ $T::COUNT)+;
            const TENSORS: Option<usize> = {
                let known = Some(0);
                $(let known = crate::layers::add_known(known, $T::TENSORS);)+
                known
            };
            #[allow(non_snake_case)]
            fn tensors(&self) -> impl Iterator<Item = &[f32]> {
                let ($($T,)+) = self;
                core::iter::empty() $(.chain($T.tensors()))+
            }
            #[allow(non_snake_case)]
            fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
                let ($($T,)+) = self;
                core::iter::empty() $(.chain($T.tensors_mut()))+
            }
            #[allow(non_snake_case)]
            fn biases(&self) -> impl Iterator<Item = bool> {
                let ($($T,)+) = self;
                core::iter::empty() $(.chain($T.biases()))+
            }
        }
    };
}

tuple_const_zero!(A);
tuple_const_zero!(A, B);
tuple_const_zero!(A, B, C);
tuple_const_zero!(A, B, C, D);
tuple_const_zero!(A, B, C, D, E);
tuple_const_zero!(A, B, C, D, E, F);
tuple_const_zero!(A, B, C, D, E, F, G);
tuple_const_zero!(A, B, C, D, E, F, G, H);

macro_rules! infer_chain {
    ($s:ident, $x:expr; $i:tt) => { $s.$i.infer($x) };
    ($s:ident, $x:expr; $i:tt $($rest:tt)+) => {{
        let y = $s.$i.infer($x);
        infer_chain!($s, &y; $($rest)+)
    }};
}

macro_rules! infer_pre_activation_chain {
    ($s:ident, $x:expr; $i:tt) => { $s.$i.infer_pre_activation($x) };
    ($s:ident, $x:expr; $i:tt $($rest:tt)+) => {{
        let y = $s.$i.infer($x);
        infer_pre_activation_chain!($s, &y; $($rest)+)
    }};
}

// As `forward_chain`, with the last layer's pre-activation.
macro_rules! forward_pre_activation_chain {
    ($s:ident, $rng:ident, $rows:ident; $src:ident; ($i:tt, $a:ident, $c:ident, $g:ident)) => {
        $s.$i.forward_pre_activation(head(&$src[..], $rows), head_mut(&mut $a[..], $rows), $c, $rng);
    };
    ($s:ident, $rng:ident, $rows:ident; $src:ident; ($i:tt, $a:ident, $c:ident, $g:ident) $($rest:tt)+) => {
        $s.$i.forward(head(&$src[..], $rows), head_mut(&mut $a[..], $rows), $c, $rng);
        forward_pre_activation_chain!($s, $rng, $rows; $a; $($rest)+);
    };
}

macro_rules! infer_activity_chain {
    ($s:ident, $x:expr, $act:ident; $i:tt) => {{
        let y = $s.$i.infer($x);
        $act += $s.$i.activity_loss(core::slice::from_ref(&y));
        y
    }};
    ($s:ident, $x:expr, $act:ident; $i:tt $($rest:tt)+) => {{
        let y = $s.$i.infer($x);
        $act += $s.$i.activity_loss(core::slice::from_ref(&y));
        infer_activity_chain!($s, &y, $act; $($rest)+)
    }};
}

macro_rules! forward_chain {
    ($s:ident, $rng:ident, $rows:ident; $src:ident;) => {};
    ($s:ident, $rng:ident, $rows:ident; $src:ident; ($i:tt, $a:ident, $c:ident, $g:ident) $($rest:tt)*) => {
        $s.$i.forward(head(&$src[..], $rows), head_mut(&mut $a[..], $rows), $c, $rng);
        forward_chain!($s, $rng, $rows; $a; $($rest)*);
    };
}

// Emits the layers' backward steps from the last to the second (recursion first, then the
// layer's own code); the first layer is handled by the caller since it propagates nothing.
// A layer propagates into its input only if a layer below it is trainable (`$below[$i]`, a
// constant once the types are known, so the test compiles away): nothing reads the
// gradient under the lowest trainable layer.
macro_rules! backward_chain {
    ($s:ident, $rows:ident, $pen:ident, $below:ident; ($pi:tt, $pa:ident, $pc:ident, $pg:ident)) => {};
    ($s:ident, $rows:ident, $pen:ident, $below:ident; ($pi:tt, $pa:ident, $pc:ident, $pg:ident) ($i:tt, $a:ident, $c:ident, $g:ident) $($rest:tt)*) => {
        backward_chain!($s, $rows, $pen, $below; ($i, $a, $c, $g) $($rest)*);
        $pen += $s.$i.parameter_gradients(head(&$pa[..], $rows), head(&$a[..], $rows), $g);
        if !has_activity_regularizer(&$s.$pi) {
            // The protocol's two steps as such: the same code as before activity
            // regularizers existed, for the models that have none.
            if $below[$i] {
                $s.$pi.derivative_of_output(head_mut(&mut $pa[..], $rows), $pc);
                $s.$i.propagate(head(&$a[..], $rows), head_mut(&mut $pa[..], $rows), $c);
            }
        } else if $below[$i] {
            let upper = head(&$a[..], $rows);
            $pen += $s.$pi.backward_through_output(head_mut(&mut $pa[..], $rows), $pc, |first, rows| {
                $s.$i.propagate(upper.get(first..).unwrap_or_default(), rows, $c);
            });
        } else {
            $pen += $s.$pi.activity_loss(head(&$pa[..], $rows));
        }
    };
}

/// [`Layer::HAS_ACTIVITY_REGULARIZER`] of a layer value's type (a constant once the types
/// are known, so a test on it compiles away).
const fn has_activity_regularizer<L: Layer>(_: &L) -> bool {
    L::HAS_ACTIVITY_REGULARIZER
}

/// `below[i]`: is any of `trainable[..i]` true? Only ever evaluated in a `const` block, where
/// an index out of range would fail the build, not the program.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn trainable_below<const N: usize>(trainable: [bool; N]) -> [bool; N] {
    let mut below = [false; N];
    let mut i = 1;
    while i < N {
        below[i] = below[i - 1] || trainable[i - 1];
        i += 1;
    }
    below
}

macro_rules! tuple_network {
    (
        first: ($F:ident, $fa:ident, $fc:ident, $fg:ident);
        layers: $(($L:ident, $i:tt, $a:ident, $c:ident, $g:ident)),+;
        hidden: $($H:ident),*;
        links: $(($P:ident => $N:ident)),*;
        last: ($Last:ident, $li:tt, $la:ident);
    ) => {
        impl<$($L: Layer),+> Network for ($($L,)+)
        where
            $($H: Hidden,)*
            $Last: OutputLayer,
            $($N: Layer<Input = <$P as Layer>::Output>,)*
        {
            type Input = <$F as Layer>::Input;
            type Output = <$Last as Layer>::Output;
            type Params = ($(<$L as Layer>::Params,)+);
            type OutputActivation = <$Last as Layer>::Activation;
            const HAS_ACTIVITY_REGULARIZER: bool =
                false $(|| <$L as Layer>::HAS_ACTIVITY_REGULARIZER)+;
            const WIDTHS: &'static [usize] = &[
                <<$F as Layer>::Input as Row>::WIDTH,
                $(<<$L as Layer>::Output as Row>::WIDTH,)+
            ];
            type Workspace<const B: usize> = Workspace<
                <$F as Layer>::Input,
                ($([<$L as Layer>::Output; B],)+),
                ($(<$L as Layer>::Cache,)+),
                B,
            >;

            fn infer(&self, input: &Self::Input) -> Self::Output {
                infer_chain!(self, input; $($i)+)
            }

            fn activity_loss(&self, input: &Self::Input) -> f32 {
                // -0.0, the additive identity: a model without activity terms adds nothing.
                let mut activity = -0.0f32;
                if Self::HAS_ACTIVITY_REGULARIZER {
                    let _ = infer_activity_chain!(self, input, activity; $($i)+);
                }
                activity
            }

            fn output_activation(&self) -> &Self::OutputActivation {
                self.$li.activation()
            }

            fn input_rows<const B: usize>(ws: &mut Self::Workspace<B>) -> &mut [Self::Input; B] {
                &mut ws.input
            }

            fn output_rows<const B: usize>(ws: &mut Self::Workspace<B>) -> &mut [Self::Output; B] {
                &mut ws.activations.$li
            }

            fn forward<const B: usize, R: Rng + ?Sized>(
                &self,
                ws: &mut Self::Workspace<B>,
                rows: usize,
                rng: &mut R,
            ) {
                let Workspace { input, activations, caches } = ws;
                let ($($a,)+) = activations;
                let ($($c,)+) = caches;
                forward_chain!(self, rng, rows; input; $(($i, $a, $c, $g))+);
            }

            fn forward_pre_activation<const B: usize, R: Rng + ?Sized>(
                &self,
                ws: &mut Self::Workspace<B>,
                rows: usize,
                rng: &mut R,
            ) {
                let Workspace { input, activations, caches } = ws;
                let ($($a,)+) = activations;
                let ($($c,)+) = caches;
                forward_pre_activation_chain!(self, rng, rows; input; $(($i, $a, $c, $g))+);
            }

            fn infer_pre_activation(&self, input: &Self::Input) -> Self::Output {
                infer_pre_activation_chain!(self, input; $($i)+)
            }

            fn backward<const B: usize>(
                &self,
                ws: &mut Self::Workspace<B>,
                rows: usize,
                grads: &mut Self::Params,
            ) -> f32 {
                let Workspace { input, activations, caches } = ws;
                let ($($a,)+) = activations;
                let ($($c,)+) = caches;
                let ($($g,)+) = grads;
                let mut penalty = 0.0f32;
                let below = const { trainable_below([$(<$L as Layer>::TRAINABLE),+]) };
                backward_chain!(self, rows, penalty, below; $(($i, $a, $c, $g))+);
                let _ = ($fc, below);
                penalty += self.0.parameter_gradients(head(&input[..], rows), head(&$fa[..], rows), $fg);
                penalty
            }

            fn penalty(&self) -> f32 {
                0.0 $(+ self.$i.penalty())+
            }

            fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R) {
                $(self.$i.initialize(rng);)+
            }

            fn is_initialized(&self) -> bool {
                // A single layer is a linear or logistic regression, which trains from zero
                // weights; with hidden layers, zero weights keep every unit alike.
                Self::WIDTHS.len() <= 2 || (true $(&& self.$i.is_initialized())+)
            }

            fn layer_summaries() -> impl Iterator<Item = crate::summary::LayerSummary> {
                [$(crate::summary::LayerSummary::of::<$L>()),+].into_iter()
            }

            fn apply_constraints(&mut self) {
                $(self.$i.apply_constraints();)+
            }

            fn parameters(&self) -> impl Iterator<Item = &[f32]> {
                core::iter::empty() $(.chain(self.$i.params().tensors()))+
            }

            fn parameters_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
                let ($($a,)+) = self;
                core::iter::empty() $(.chain($a.params_mut().tensors_mut()))+
            }
        }
    };
}

tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0);
    hidden: ;
    links: ;
    last: (L0, 0, a0);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1);
    hidden: L0;
    links: (L0 => L1);
    last: (L1, 1, a1);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2);
    hidden: L0, L1;
    links: (L0 => L1), (L1 => L2);
    last: (L2, 2, a2);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2), (L3, 3, a3, c3, g3);
    hidden: L0, L1, L2;
    links: (L0 => L1), (L1 => L2), (L2 => L3);
    last: (L3, 3, a3);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2), (L3, 3, a3, c3, g3),
        (L4, 4, a4, c4, g4);
    hidden: L0, L1, L2, L3;
    links: (L0 => L1), (L1 => L2), (L2 => L3), (L3 => L4);
    last: (L4, 4, a4);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2), (L3, 3, a3, c3, g3),
        (L4, 4, a4, c4, g4), (L5, 5, a5, c5, g5);
    hidden: L0, L1, L2, L3, L4;
    links: (L0 => L1), (L1 => L2), (L2 => L3), (L3 => L4), (L4 => L5);
    last: (L5, 5, a5);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2), (L3, 3, a3, c3, g3),
        (L4, 4, a4, c4, g4), (L5, 5, a5, c5, g5), (L6, 6, a6, c6, g6);
    hidden: L0, L1, L2, L3, L4, L5;
    links: (L0 => L1), (L1 => L2), (L2 => L3), (L3 => L4), (L4 => L5), (L5 => L6);
    last: (L6, 6, a6);
}
tuple_network! {
    first: (L0, a0, c0, g0);
    layers: (L0, 0, a0, c0, g0), (L1, 1, a1, c1, g1), (L2, 2, a2, c2, g2), (L3, 3, a3, c3, g3),
        (L4, 4, a4, c4, g4), (L5, 5, a5, c5, g5), (L6, 6, a6, c6, g6), (L7, 7, a7, c7, g7);
    hidden: L0, L1, L2, L3, L4, L5, L6;
    links: (L0 => L1), (L1 => L2), (L2 => L3), (L3 => L4), (L4 => L5), (L5 => L6), (L6 => L7);
    last: (L7, 7, a7);
}
