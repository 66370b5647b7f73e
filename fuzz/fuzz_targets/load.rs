//! The loader on arbitrary bytes and on mutations of a valid `save_with_optimizer` buffer
//! (layout in `src/lib.rs`). Asserts: no panic; an error leaves the model and the
//! optimizer bit for bit as they were; a successful load saves back to the same bytes and
//! holds a state the optimizer can continue from (a CRC-valid `v = -1` is refused).
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::*;
use microtrain_fuzz::*;

fuzz_target!(|bytes: &[u8]| {
    let mut reader = Reader(bytes);
    let mode = reader.u8() % 3;
    let buffer = if mode == LOAD_RAW {
        reader.rest().to_vec()
    } else {
        let mut buffer = valid_buffer();
        while !reader.is_empty() {
            let position = usize::from(reader.u16()) % buffer.len();
            let byte = reader.u8();
            if mode == LOAD_FLIP {
                buffer[position] ^= byte;
            } else {
                buffer[position] = byte;
            }
        }
        if mode == LOAD_RESEAL {
            reseal(&mut buffer);
        }
        buffer
    };

    let (mut net, mut optimizer) = trained(1);
    let before = saved(&net, &optimizer);
    match persist::load_with_optimizer(&mut net, &mut optimizer, &buffer) {
        Err(error) => assert!(
            saved(&net, &optimizer) == before,
            "load_with_optimizer failed ({error:?}) but changed the model or optimizer"
        ),
        Ok(()) => {
            assert!(
                buffer.starts_with(&saved(&net, &optimizer)),
                "a loaded state does not save back to the bytes it came from"
            );
            // Only a state Adam can continue from loads (v >= 0, β powers in [0, 1]), and
            // only one Adam with these betas wrote.
            let state = optimizer.state().flat_map(|t| t.iter().copied());
            assert!(
                <LoadOpt as Optimizer<<LoadNet as Network>::Params>>::state_is_valid(state),
                "an invalid optimizer state loaded"
            );
            assert_eq!(optimizer.state_tag(), trained(1).1.state_tag());
        }
    }

    let (mut net, optimizer) = trained(1);
    let before = saved(&net, &optimizer);
    if let Err(error) = persist::load(&mut net, &buffer) {
        assert!(
            saved(&net, &optimizer) == before,
            "load failed ({error:?}) but changed the model"
        );
    }
});
