//! microtrain's benchmarks (`kernels.rs`, `training.rs`), the property tests
//! (`tests/properties.rs`) and the plotting example (`examples/regularization.rs`), kept in
//! a crate of their own so that their dev-dependencies (criterion, nalgebra, proptest,
//! plotters) are built only when they run, never for the library or its other examples.
//! The crate has no code of its own; it is not published.
#![no_std]
