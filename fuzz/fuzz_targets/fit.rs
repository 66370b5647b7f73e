//! Whole `fit` runs of a small network with any optimizer (as `step`) on data and
//! hyper-parameters from the fuzzer (the `step` target's layout and construction, whose
//! regressions seed this one; flag bit 6 skips refused steps instead of failing, bit 7 turns shuffling off, the
//! warm-up bit trains 3 epochs with early stopping on the training loss and the best weights
//! restored). Asserts: no panic; with checked updates and finite starting parameters, every
//! parameter and optimizer state value is finite after the run, whether it ended with an
//! error or not (an applied step was checked, a refused one changed nothing); a run that
//! ends well ran at least one and at most the configured epochs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::*;
use microtrain_fuzz::*;

const SKIP_REFUSED: u8 = 1 << 6;
const NO_SHUFFLE: u8 = 1 << 7;

fuzz_target!(|bytes: &[u8]| run_step_case(bytes, &mut Fit));

struct Fit;

impl CheckCase for Fit {
    fn check<N, L, O>(&mut self, case: StepCase<'_, N, L, O>)
    where
        N: Network<Input = [f32; 4]>,
        N::Workspace<4>: Copy,
        L: Loss<N::OutputActivation, N::Output>,
        O: Optimizer<N::Params> + Copy,
    {
        let StepCase {
            input,
            mut net,
            loss,
            data,
            trainer,
            checked,
            mut rng,
        } = case;
        let mut trainer = trainer.with_best_weights();
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
            assert!(
                all_finite(&net, trainer.optimizer()),
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
}
