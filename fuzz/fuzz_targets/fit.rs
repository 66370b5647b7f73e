//! Whole `fit` runs of a small network on data and hyper-parameters from the fuzzer (the
//! layout of the `step` target, whose regressions seed this one; flag bit 6 skips refused
//! steps instead of failing, bit 7 turns shuffling off, the warm-up bit trains 3 epochs with
//! early stopping on the training loss and the best weights restored). Asserts: no panic;
//! with checked updates and finite starting parameters, every parameter and optimizer state
//! value is finite after the run, whether it ended with an error or not (an applied step was
//! checked, a refused one changed nothing); a run that ends well ran at least one and at most
//! the configured epochs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::*;
use microtrain_fuzz::*;

const SKIP_REFUSED: u8 = 1 << 6;
const NO_SHUFFLE: u8 = 1 << 7;

fuzz_target!(|bytes: &[u8]| {
    let input = StepInput::decode(bytes);
    let [_, _, l1_rate, l2_rate, dropout, _] = input.hyper;
    let Ok(penalty) = l1_l2(l1_rate, l2_rate) else {
        return;
    };
    let Ok(dropout) = Dropout::new(dropout) else {
        return;
    };
    let hidden = Dense::new(Relu).with_kernel_regularizer(penalty);
    if input.flags & 1 == STEP_LOGIT {
        let net: StepLogit = (hidden, dropout, Dense::new(Identity));
        let targets: Vec<[f32; 1]> = input.rows.iter().map(|r| [f32::from(r.1 & 1)]).collect();
        check(&input, net, &BinaryCrossEntropyFromLogits, &targets);
    } else {
        let net: StepSoftmax = (hidden, dropout, Dense::new(Softmax));
        let labels: Vec<u8> = input.rows.iter().map(|r| r.1).collect();
        check(
            &input,
            net,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            &labels,
        );
    }
});

fn check<N, L>(input: &StepInput, mut net: N, loss: &L, targets: &[L::Target])
where
    N: Network<Input = [f32; 4]>,
    N::Workspace<4>: Copy,
    L: Loss<N::OutputActivation, N::Output>,
{
    let [learning_rate, epsilon, _, _, _, limit] = input.hyper;
    let Ok(adam) = Adam::new(learning_rate).and_then(|a| a.with_epsilon(epsilon)) else {
        return;
    };
    let clipping = match (input.flags >> 2) & 3 {
        0 => Ok(Clipping::NONE),
        1 => Clipping::NONE.value(limit),
        2 => Clipping::NONE.norm(limit),
        _ => Clipping::NONE.global_norm(limit),
    };
    let Ok(clipping) = clipping else {
        return;
    };
    let checked = input.flags & STEP_CHECKED != 0;
    let mut trainer = Trainer::<N, Adam<N::Params>, 4>::new(adam)
        .with_clipping(clipping)
        .with_checked_updates(checked)
        .with_best_weights();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    net.initialize(&mut rng);
    if input.flags & STEP_ZERO_PARAMETERS != 0 {
        net.parameters_mut().flatten().for_each(|v| *v = 0.0);
    }
    for &(index, value) in &input.overrides {
        let index = usize::from(index) % N::PARAMETERS;
        if let Some(v) = net.parameters_mut().flatten().nth(index) {
            *v = value;
        }
    }
    let samples: Vec<[f32; 4]> = input.rows.iter().map(|r| r.0).collect();
    let data = Dataset::new(&samples, targets).expect("one target per sample");
    let mut config = FitConfig::epochs(1).with_shuffle(input.flags & NO_SHUFFLE == 0);
    if input.flags & SKIP_REFUSED != 0 {
        config = config.with_refused_steps(RefusedSteps::Skip { max: 2 });
    }
    if input.flags & STEP_WARM_UP != 0 {
        let rule = EarlyStopping::new(Monitor::Loss)
            .with_patience(1)
            .with_restore_best_weights(true);
        config = FitConfig {
            epochs: 3,
            ..config
        }
        .with_early_stopping(rule);
    }
    let started_finite = net.parameters().flatten().all(|v| v.is_finite());
    let result = trainer.fit(&mut net, loss, data, None, &config, &mut rng, |_| {
        Control::Continue
    });
    if checked && started_finite {
        let finite = net
            .parameters()
            .chain(trainer.optimizer().state())
            .flatten()
            .all(|v| v.is_finite());
        assert!(
            finite,
            "a checked run ({result:?}) wrote a non-finite value"
        );
    }
    if let Ok(summary) = result {
        assert!(
            (1..=config.epochs).contains(&summary.epochs),
            "{} epochs of {}",
            summary.epochs,
            config.epochs
        );
    }
}
