//! One training step of a small network on data and hyper-parameters from the fuzzer
//! (layout in `src/lib.rs`). Asserts: no panic; a refused step leaves the parameters, the
//! optimizer's state and the generator bit for bit as they were; an accepted step with
//! checked updates leaves every parameter and state value finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::*;
use microtrain_fuzz::*;

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

fn bits<N: Network, O: Optimizer<N::Params>>(net: &N, optimizer: &O) -> Vec<u32> {
    net.parameters()
        .chain(optimizer.state())
        .flatten()
        .map(|v| v.to_bits())
        .collect()
}

fn check<N, L>(input: &StepInput, mut net: N, loss: &L, targets: &[L::Target])
where
    N: Network<Input = [f32; 4]>,
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
        .with_checked_updates(checked);
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
    let indices: Vec<usize> = (0..samples.len()).collect();
    let steps = if input.flags & STEP_WARM_UP != 0 {
        2
    } else {
        1
    };
    for _ in 0..steps {
        let before = bits(&net, trainer.optimizer());
        let generator = rng.clone();
        let result = trainer.step(&mut net, loss, data, &indices, &mut rng);
        let after = bits(&net, trainer.optimizer());
        match result {
            Err(error) => {
                assert!(
                    before == after,
                    "refused ({error:?}) but the model or state changed"
                );
                assert_eq!(
                    rng.clone().next_u64(),
                    generator.clone().next_u64(),
                    "refused ({error:?}) but the generator moved"
                );
            }
            Ok(_) if checked => {
                let finite = net
                    .parameters()
                    .chain(trainer.optimizer().state())
                    .flatten()
                    .all(|v| v.is_finite());
                assert!(finite, "an accepted checked step wrote a non-finite value");
            }
            Ok(_) => {}
        }
    }
}
