//! One training step of a small network with any optimizer (plain or scheduled, with or
//! without weight decay) on data and hyper-parameters from the fuzzer (layout and
//! construction in `src/lib.rs`). Asserts: no panic; a refused step leaves the parameters,
//! the optimizer's state and the generator bit for bit as they were; an accepted step with
//! checked updates leaves every parameter and state value finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::*;
use microtrain_fuzz::*;

fuzz_target!(|bytes: &[u8]| run_step_case(bytes, &mut Step));

struct Step;

impl CheckCase for Step {
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
            mut trainer,
            checked,
            mut rng,
        } = case;
        let indices: Vec<usize> = (0..data.len()).collect();
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
                Ok(_) if checked => assert!(
                    all_finite(&net, trainer.optimizer()),
                    "an accepted checked step wrote a non-finite value"
                ),
                Ok(_) => {}
            }
        }
    }
}
