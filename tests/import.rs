//! Importing safetensors files written by `tests/fixtures/make_safetensors.py` (numpy and
//! safetensors; versions in `tests/fixtures/versions.txt`): PyTorch's and Keras' layouts
//! give the same model, whose predictions match the script's; broken files are refused
//! with an error naming the tensor.
#![cfg(feature = "safetensors")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::import::{self, ImportError, Layout};
use microtrain::{Dense, Network, Relu, Softmax};

type Mlp = (Dense<4, 8, Relu>, Dense<8, 3, Softmax>);

/// The script computes in float64 from the float32 parameters and inputs; microtrain in
/// float32. Each of the 8 + 3 outputs' pre-activations is a sum of at most 8 products of
/// values below 2 in magnitude (|Σ| ≲ 10), each operation rounding by at most 2⁻²⁴
/// relative: an error ≲ 9 · 10 · 6e-8 ≈ 5e-6 in the logits, which softmax (Lipschitz 1
/// in each output for the max-norm) carries into the probabilities, plus libm's `expf`
/// (< 1 ulp). 1e-5 absolute on probabilities bounds that with a factor 2 to spare.
const TOLERANCE: f64 = 1e-5;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn empty() -> Mlp {
    (Dense::new(Relu), Dense::new(Softmax))
}

fn pytorch(bytes: &[u8]) -> Result<Mlp, ImportError> {
    let file = import::parse(bytes)?;
    let first = import::dense(&file, "0.weight", "0.bias", Layout::OutIn)?;
    let second = import::dense(&file, "2.weight", "2.bias", Layout::OutIn)?;
    let mut model = empty();
    (model.0.params, model.1.params) = (first, second);
    Ok(model)
}

fn reference() -> Vec<([f32; 4], [f64; 3])> {
    let path = format!(
        "{}/tests/fixtures/mlp_outputs.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let value = |k: usize| record[k].parse::<f64>().unwrap();
            (
                core::array::from_fn(|k| value(k) as f32),
                core::array::from_fn(|k| value(4 + k)),
            )
        })
        .collect()
}

#[test]
fn pytorch_layout_predicts_what_numpy_computed() {
    let model = pytorch(&fixture("pytorch_mlp.safetensors")).unwrap();
    let rows = reference();
    assert_eq!(rows.len(), 6);
    let mut worst = 0.0f64;
    for (x, expected) in rows {
        let p = model.infer(&x);
        for (a, b) in p.iter().zip(expected) {
            worst = worst.max((f64::from(*a) - b).abs());
        }
    }
    eprintln!("largest difference from numpy: {worst:e}");
    assert!(worst <= TOLERANCE, "largest difference {worst:e}");
}

#[test]
fn keras_layout_gives_the_same_model() {
    let file_bytes = fixture("keras_mlp.safetensors");
    let file = import::parse(&file_bytes).unwrap();
    let mut keras = empty();
    keras.0.params = import::dense(&file, "dense/kernel", "dense/bias", Layout::InOut).unwrap();
    keras.1.params = import::dense(&file, "dense_1/kernel", "dense_1/bias", Layout::InOut).unwrap();
    let torch = pytorch(&fixture("pytorch_mlp.safetensors")).unwrap();
    assert_eq!(keras, torch);
}

#[test]
fn a_wrong_shape_is_refused_naming_the_tensor() {
    let error = pytorch(&fixture("wrong_shape.safetensors")).unwrap_err();
    assert_eq!(
        error,
        ImportError::Shape {
            name: "2.weight".into(),
            expected: vec![3, 8],
            found: vec![3, 7],
        }
    );
    assert!(error.to_string().contains("\"2.weight\""), "{error}");
    // The same file read with the other layout: [in, out] = [8, 3] is not [3, 8] either.
    let bytes = fixture("pytorch_mlp.safetensors");
    let file = import::parse(&bytes).unwrap();
    let transposed = import::dense::<4, 8>(&file, "0.weight", "0.bias", Layout::InOut);
    assert!(matches!(transposed, Err(ImportError::Shape { name, .. }) if name == "0.weight"));
}

#[test]
fn a_wrong_dtype_is_refused_naming_the_tensor() {
    let error = pytorch(&fixture("wrong_dtype.safetensors")).unwrap_err();
    assert_eq!(
        error,
        ImportError::Dtype {
            name: "0.bias".into(),
            found: "F64".into(),
        }
    );
    assert!(error.to_string().contains("\"0.bias\""), "{error}");
}

#[test]
fn non_finite_values_and_missing_names_are_refused() {
    let error = pytorch(&fixture("non_finite.safetensors")).unwrap_err();
    assert_eq!(
        error,
        ImportError::NonFinite {
            name: "0.weight".into()
        }
    );
    let bytes = fixture("pytorch_mlp.safetensors");
    let file = import::parse(&bytes).unwrap();
    let missing = import::dense::<4, 8>(&file, "1.weight", "1.bias", Layout::OutIn).unwrap_err();
    match missing {
        ImportError::Missing { name, available } => {
            assert_eq!(name, "1.weight");
            assert_eq!(available, ["0.bias", "0.weight", "2.bias", "2.weight"]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn truncated_or_foreign_bytes_are_refused() {
    let bytes = fixture("pytorch_mlp.safetensors");
    for cut in [0, 7, 8, 40, bytes.len() - 1] {
        assert!(
            matches!(import::parse(&bytes[..cut]), Err(ImportError::File(_))),
            "cut {cut}"
        );
    }
    assert!(matches!(
        import::parse(b"MTRN not a safetensors file"),
        Err(ImportError::File(_))
    ));
}
