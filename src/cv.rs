//! K-fold cross-validation without allocation (to be completed).
