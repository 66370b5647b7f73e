//! Writes `regressions/<target>/<name>`: inputs that encode the counterexamples of the
//! reliability review, in the layouts of `src/lib.rs`. Run from `fuzz/`:
//! `cargo run --example write_regressions`, then each target over its directory
//! (`.ci/fuzz-targets.sh` does both).
#![allow(clippy::unwrap_used)]

use microtrain_fuzz::*;
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// The optimizers' settings: `a` 0.9 (momentum, ρ, AdamW's weight decay, Adagrad's initial
/// accumulator), `b` 0.5 (RMSprop's momentum), a decay rate of 0.9 per step when scheduled,
/// Keras' weight decay 0.004 where it is on.
const SETTINGS: [f32; 4] = [0.9, 0.5, 0.9, 0.004];

fn step(name: &str, flags: u8, hyper: [f32; 6], rows: &[([f32; 4], u8)], overrides: &[(u16, f32)]) {
    step_with(name, flags, hyper, OPT_ADAM, rows, overrides);
}

fn step_with(
    name: &str,
    flags: u8,
    hyper: [f32; 6],
    optimizer: u8,
    rows: &[([f32; 4], u8)],
    overrides: &[(u16, f32)],
) {
    let input = StepInput {
        flags,
        hyper,
        optimizer,
        settings: SETTINGS,
        rows: rows.to_vec(),
        overrides: overrides.to_vec(),
    };
    let bytes = input.encode();
    // The layout must decode back to what was meant.
    let decoded = StepInput::decode(&bytes);
    assert_eq!(decoded.encode(), bytes, "{name}");
    write("step", name, &bytes);
}

fn main() {
    let checked = STEP_CHECKED;
    // [learning rate, ε, l1, l2, dropout rate, clipping limit]
    let plain = [0.01, 1e-7, 0.0, 0.0, 0.0, 1.0];

    // Adam with lr 1e35 and ε 1e6: (lr·m)/(√v+ε) overflows in the product although the
    // quotient-first bound held. One weight and one gradient of 2e5 size.
    let mut adam = plain;
    adam[0] = 1e35;
    adam[1] = 1e6;
    step(
        "adam_lr_1e35_epsilon_1e6",
        STEP_SOFTMAX | checked | STEP_WARM_UP,
        adam,
        &[([1e5, -1e5, 2e5, 0.5], 1), ([-2e5, 1e5, 0.0, 1.0], 2)],
        &[],
    );

    // Found by this target: ε 4.4e-39 and gradients near 2e-18 make the new v subnormal;
    // the SIMD kernels flush it to zero and (lr·m)/ε overflowed past the update check.
    let bits = f32::from_bits;
    step(
        "adam_subnormal_v_flushed",
        STEP_SOFTMAX | checked | STEP_WARM_UP,
        [
            bits(0x799a_130c),
            bits(0x0030_2400),
            0.0,
            bits(0x027f_0000),
            0.01,
            bits(0xbf95),
        ],
        &[(
            [
                bits(0x2400_7900),
                bits(0x0003_4974),
                bits(0x0001_0000),
                bits(0x33d6),
            ],
            0,
        )],
        &[],
    );

    // Clip by value with a raw gradient of +inf: W1 = 0, b1[0] = 1 (ReLU active),
    // W2[0][0] = 4, x[0] = 3e38 → dW1[0][0] = 4·δ₀·3e38 = inf, finite loss. (W1[1][1] =
    // 1e-30 meets an input of 0: it only keeps the layer from reading as uninitialised.)
    let infinite_gradient = [
        (first_weight(1, 1), 1e-30),
        (first_bias(0), 1.0),
        (second_weight(0, 0), 4.0),
    ];
    for (name, clip) in [
        ("clip_value_infinite_gradient", STEP_CLIP_VALUE),
        ("clip_norm_infinite_gradient", STEP_CLIP_NORM),
        ("clip_global_norm_infinite_gradient", STEP_CLIP_GLOBAL_NORM),
    ] {
        for (suffix, check) in [("checked", checked), ("unchecked", 0)] {
            step(
                &format!("{name}_{suffix}"),
                STEP_SOFTMAX | STEP_ZERO_PARAMETERS | clip | check,
                plain,
                &[([3e38, 0.0, 0.0, 0.0], 1)],
                &infinite_gradient,
            );
        }
    }

    // Batch loss 3e38 (BCE from logits, logit 3e38 and target 0) and penalty
    // l2(3)·(1e19)² = 3e38 are each finite; their sum is not.
    let mut heavy = plain;
    heavy[3] = 3.0;
    step(
        "loss_plus_penalty_overflows",
        STEP_LOGIT | STEP_ZERO_PARAMETERS | checked,
        heavy,
        &[([0.0; 4], 0)],
        &[
            (first_weight(0, 0), 1e19),
            (second_weight(0, 0), 1e-30), // meets h = 0; keeps the layer initialised
            (second_bias(0, 1), 3e38),
        ],
    );

    // A finite sample whose hidden pre-activation is 3e38·2 + 3e38·(-2) = NaN; ReLU would
    // map it to 0 and hide it.
    for (name, flags) in [
        ("nan_pre_activation_softmax", STEP_SOFTMAX),
        ("nan_pre_activation_logit", STEP_LOGIT),
    ] {
        step(
            name,
            flags | STEP_ZERO_PARAMETERS | checked,
            plain,
            &[([3e38, 3e38, 0.0, 0.0], 0)],
            &[
                (first_weight(0, 0), 2.0),
                (first_weight(0, 1), -2.0),
                (first_bias(1), 0.5),
                (second_weight(0, 1), 0.5),
            ],
        );
    }

    // A refused step with dropout on: the generator must be where it was.
    let mut dropout = plain;
    dropout[4] = 0.5;
    step(
        "refused_step_with_dropout_keeps_the_generator",
        STEP_SOFTMAX | checked | STEP_WARM_UP,
        dropout,
        &[([f32::NAN, 0.0, 1.0, 2.0], 0)],
        &[],
    );
    // A dropout rate below 2^-32 (refused at construction) and an out-of-range label.
    let mut tiny = plain;
    tiny[4] = 1e-10;
    step(
        "dropout_rate_1e-10",
        STEP_SOFTMAX | checked,
        tiny,
        &[([1.0; 4], 0)],
        &[],
    );
    step(
        "label_out_of_range",
        STEP_SOFTMAX | checked,
        plain,
        &[([1.0; 4], 3)],
        &[],
    );

    // Every optimizer, plain and scheduled, without and with Keras' weight decay (on every
    // tensor or all but the biases), on the cases above that are not Adam's own: a learning
    // rate of 1e35 on gradients of 2e5 size (the update overflows unless refused), clip by
    // value over an infinite gradient, a refused step with dropout; a schedule whose rate
    // overflows to infinity on the second step (1e30 · 1e30); a weight decay whose product
    // w·wd·lr overflows (wd 1e30, lr 1e10).
    let mut huge = plain;
    huge[0] = 1e35;
    for (kind, name) in OPT_KINDS {
        let mut variants = vec![
            (0, ""),
            (OPT_WEIGHT_DECAY, "_weight_decay"),
            (
                OPT_WEIGHT_DECAY | OPT_EXCEPT_BIASES,
                "_weight_decay_except_biases",
            ),
        ];
        if kind == OPT_RMSPROP {
            variants.push((OPT_CENTERED, "_centered"));
        }
        if kind == OPT_ADAMW {
            variants.push((OPT_EXCEPT_BIASES, "_except_biases"));
        }
        for (variant, suffix) in variants {
            for (scheduled, prefix) in [(0, ""), (OPT_SCHEDULED, "scheduled_")] {
                let optimizer = kind | variant | scheduled;
                let name = format!("{prefix}{name}{suffix}");
                step_with(
                    &format!("{name}_learning_rate_1e35"),
                    STEP_SOFTMAX | checked | STEP_WARM_UP,
                    huge,
                    optimizer,
                    &[([1e5, -1e5, 2e5, 0.5], 1), ([-2e5, 1e5, 0.0, 1.0], 2)],
                    &[],
                );
                step_with(
                    &format!("{name}_clip_value_infinite_gradient"),
                    STEP_SOFTMAX | STEP_ZERO_PARAMETERS | STEP_CLIP_VALUE | checked,
                    plain,
                    optimizer,
                    &[([3e38, 0.0, 0.0, 0.0], 1)],
                    &infinite_gradient,
                );
                step_with(
                    &format!("{name}_refused_step_with_dropout"),
                    STEP_SOFTMAX | checked | STEP_WARM_UP,
                    dropout,
                    optimizer,
                    &[([f32::NAN, 0.0, 1.0, 2.0], 0)],
                    &[],
                );
            }
            if variant & OPT_WEIGHT_DECAY != 0 {
                let mut decay = plain;
                decay[0] = 1e10;
                let mut input = StepInput {
                    flags: STEP_SOFTMAX | checked,
                    hyper: decay,
                    optimizer: kind | variant,
                    settings: SETTINGS,
                    rows: vec![([1.0, -1.0, 0.5, 0.0], 1)],
                    overrides: vec![],
                };
                input.settings[3] = 1e30;
                write(
                    "step",
                    &format!("{name}{suffix}_overflows"),
                    &input.encode(),
                );
            }
            let mut overflowing = plain;
            overflowing[0] = 1e30;
            let mut input = StepInput {
                flags: STEP_SOFTMAX | checked | STEP_WARM_UP,
                hyper: overflowing,
                optimizer: kind | variant | OPT_SCHEDULED,
                settings: SETTINGS,
                rows: vec![([1.0, -1.0, 0.5, 0.0], 1)],
                overrides: vec![],
            };
            input.settings[2] = 1e30;
            write(
                "step",
                &format!("scheduled_{name}{suffix}_rate_overflows"),
                &input.encode(),
            );
        }
    }

    // load: a CRC-valid buffer whose optimizer state is -1 everywhere (v = -1), one with an
    // unknown flag bit, one with another optimizer's tag, one with another β1; plus a byte
    // flip, a truncation and arbitrary bytes.
    let (start, values) = state_range();
    let mut v_minus_one = vec![LOAD_RESEAL];
    for k in 0..values {
        for (j, byte) in (-1.0f32).to_le_bytes().into_iter().enumerate() {
            v_minus_one.extend_from_slice(&((start + 4 * k + j) as u16).to_le_bytes());
            v_minus_one.push(byte);
        }
    }
    write("load", "crc_valid_state_minus_one", &v_minus_one);
    let mut v_only = vec![LOAD_RESEAL];
    for k in values / 2..values {
        for (j, byte) in (-1.0f32).to_le_bytes().into_iter().enumerate() {
            v_only.extend_from_slice(&((start + 4 * k + j) as u16).to_le_bytes());
            v_only.push(byte);
        }
    }
    write("load", "crc_valid_second_half_of_state_minus_one", &v_only);
    // Bit 2: bits 0 (optimizer record) and 1 (generator) are known.
    write(
        "load",
        "crc_valid_unknown_flag_bit",
        &[LOAD_RESEAL, 6, 0, 0x05],
    );
    // The optimizer record's kind (`ADAM`, just before the state) changed to `XDAM`.
    let kind = (start - 20) as u16;
    let mut other_kind = vec![LOAD_RESEAL];
    other_kind.extend_from_slice(&kind.to_le_bytes());
    other_kind.push(b'X');
    write("load", "crc_valid_other_optimizer_kind", &other_kind);
    // Its first setting (β1 = 0.9) changed to 0.5.
    let mut other_beta = vec![LOAD_RESEAL];
    for (j, byte) in 0.5f32.to_le_bytes().into_iter().enumerate() {
        other_beta.extend_from_slice(&(kind + 4 + j as u16).to_le_bytes());
        other_beta.push(byte);
    }
    write("load", "crc_valid_other_beta_1", &other_beta);
    write("load", "byte_flip_in_parameters", &[LOAD_FLIP, 40, 0, 0x01]);
    write("load", "unchanged_valid_buffer", &[LOAD_FLIP]);
    let mut truncated = vec![LOAD_RAW];
    let valid = valid_buffer();
    truncated.extend_from_slice(&valid[..valid.len() - 1]);
    write("load", "truncated_by_one_byte", &truncated);
    let mut whole = vec![LOAD_RAW];
    whole.extend_from_slice(&valid);
    write("load", "valid_buffer_as_raw_bytes", &whole);

    // kernels: sizes around the lane widths, bounded values, cut slices and raw NaN/inf
    // bits, each with every penalty (none, L1, L2, L1 + L2), then Keras' Adam coefficients
    // at step 1 and a leaky ReLU slope of 0.3.
    for (rows, inputs, outputs, mode) in [
        (3u8, 17u8, 9u8, 0u8),
        (1, 31, 33, 0),
        (7, 16, 8, 6),
        (2, 9, 5, 1),
    ] {
        for penalty in 0..4u8 {
            let mode = mode | penalty << 3;
            let mut bytes = vec![rows, inputs, outputs, mode, 32, 16];
            let (rows, inputs, outputs) = (rows as usize, inputs as usize, outputs as usize);
            let cut = |len: usize, bit: u8| if mode & bit != 0 { len / 2 } else { len };
            let weights = cut(outputs * inputs, 4);
            let count = cut(rows * inputs, 2)
                + weights
                + outputs
                + rows * outputs
                + rows * inputs
                + outputs * inputs
                + 2 * weights;
            let width = if mode & 1 != 0 { 4 } else { 2 };
            bytes.extend((0..count * width).map(|k| (k * 37 % 251) as u8));
            for coefficient in [1e-3f32, 0.1, 0.001, 1e-7, 0.3] {
                bytes.extend_from_slice(&coefficient.to_le_bytes());
            }
            write(
                "kernels",
                &format!("shape_{rows}x{inputs}x{outputs}_mode_{mode}"),
                &bytes,
            );
        }
    }

    // kfold: 6,000 samples of distinct labels was slow (here at most 599), too few samples,
    // more folds than samples, and stratified folds over many classes.
    let mut many_classes = vec![0u8; 5];
    many_classes[..2].copy_from_slice(&599u16.to_le_bytes());
    many_classes[2] = 5;
    many_classes[3] = 1;
    many_classes[4] = 255;
    many_classes.extend((0..599).map(|k| k as u8));
    write("kfold", "stratified_599_samples_255_classes", &many_classes);
    write("kfold", "more_folds_than_samples", &[3, 0, 4, 0, 0]);
    write("kfold", "one_fold", &[10, 0, 1, 0, 0]);
    write("kfold", "plain_10_of_97", &[97, 0, 10, 9, 0]);

    // shuffle: the sizes whose Feistel shuffle was most biased, the smallest ones, a
    // power of two and one past it, and the largest the target takes.
    for len in [0u32, 1, 2, 3, 5, 8, 455, 65_536, 65_537, 1 << 17] {
        let mut bytes = vec![];
        bytes.extend_from_slice(&(len as u16).to_le_bytes());
        bytes.push((len >> 16) as u8);
        bytes.extend_from_slice(&[7; 16]);
        write("shuffle", &format!("len_{len}"), &bytes);
    }
}
