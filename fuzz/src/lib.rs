//! What the fuzz targets share with the generator of their regression inputs: the byte
//! layout each target reads, the cases `step` and `fit` build from their inputs, and the
//! models the `load` target saves and loads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use microtrain::*;

/// Reads little-endian values from the fuzzer's bytes; past the end every read is zero, so
/// any input decodes.
pub struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn f32(&mut self) -> f32 {
        f32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn rest(&self) -> &[u8] {
        self.0
    }
}

/// Builds a target's input with the same layout [`Reader`] reads.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

// ---------------------------------------------------------------------------------------
// `step` (and `fit`): one checked or unchecked step of a small network with any optimizer.
//
// | bytes | field |
// |---|---|
// | 1 | flags: bit 0 head (0 softmax + sparse cross-entropy, 1 one logit + BCE from logits); bit 1 checked updates; bits 2-3 clipping (none, value, norm, global norm); bit 4 zero the parameters before the overrides; bit 5 one warm-up step first (`fit`: bits 6-7 too) |
// | 4 × 6 | learning rate, ε, l1, l2 (first layer's kernel), dropout rate, clipping limit |
// | 1 | optimizer: bits 0-2 the kind ([`OPT_ADAM`] ...), bit 3 RMSprop centered, bit 4 the settings' betas for Adam and Nadam (else Keras'), bit 5 wrapped in [`Scheduled`] with an [`ExponentialDecay`] from the learning rate, bit 6 Keras' weight decay ([`WeightDecay`], inside the schedule), bit 7 the biases excluded from it (and from AdamW's) |
// | 4 × 4 | the optimizer's settings: `a`, `b` (see [`OPT_ADAM`] ...), the schedule's decay rate per step, the weight decay |
// | 1 | rows − 1 (mod 4) |
// | 17 per row | 4 × f32 sample, u8 label |
// | 1 | number of parameter overrides |
// | 6 each | u16 parameter index (mod the count, in `Network::parameters` order), f32 value |
// ---------------------------------------------------------------------------------------

pub const STEP_SOFTMAX: u8 = 0;
pub const STEP_LOGIT: u8 = 1;
pub const STEP_CHECKED: u8 = 1 << 1;
pub const STEP_CLIP_VALUE: u8 = 1 << 2;
pub const STEP_CLIP_NORM: u8 = 2 << 2;
pub const STEP_CLIP_GLOBAL_NORM: u8 = 3 << 2;
pub const STEP_ZERO_PARAMETERS: u8 = 1 << 4;
pub const STEP_WARM_UP: u8 = 1 << 5;

/// [`Adam`] with ε; with [`OPT_BETAS`], betas `a` and `b`.
pub const OPT_ADAM: u8 = 0;
/// [`Sgd`].
pub const OPT_SGD: u8 = 1;
/// [`SgdMomentum`] with momentum `a`.
pub const OPT_SGD_MOMENTUM: u8 = 2;
/// [`SgdMomentum`] with momentum `a`, Nesterov's.
pub const OPT_NESTEROV: u8 = 3;
/// [`AdamW`] with weight decay `a`.
pub const OPT_ADAMW: u8 = 4;
/// [`RMSprop`] with ε, ρ `a`, momentum `b`; centered with [`OPT_CENTERED`].
pub const OPT_RMSPROP: u8 = 5;
/// [`Adagrad`] with ε and initial accumulator `a`.
pub const OPT_ADAGRAD: u8 = 6;
/// [`Nadam`] with ε; with [`OPT_BETAS`], betas `a` and `b`.
pub const OPT_NADAM: u8 = 7;
pub const OPT_CENTERED: u8 = 1 << 3;
pub const OPT_BETAS: u8 = 1 << 4;
pub const OPT_SCHEDULED: u8 = 1 << 5;
pub const OPT_WEIGHT_DECAY: u8 = 1 << 6;
pub const OPT_EXCEPT_BIASES: u8 = 1 << 7;
/// Every kind, for the regression writer.
pub const OPT_KINDS: [(u8, &str); 8] = [
    (OPT_ADAM, "adam"),
    (OPT_SGD, "sgd"),
    (OPT_SGD_MOMENTUM, "sgd_momentum"),
    (OPT_NESTEROV, "nesterov"),
    (OPT_ADAMW, "adamw"),
    (OPT_RMSPROP, "rmsprop"),
    (OPT_ADAGRAD, "adagrad"),
    (OPT_NADAM, "nadam"),
];

/// The softmax head's network (the logit head ends in `Dense<8, 1, Identity>`).
pub type StepSoftmax = (Dense<4, 8, Relu>, Dropout<8>, Dense<8, 3, Softmax>);
pub type StepLogit = (Dense<4, 8, Relu>, Dropout<8>, Dense<8, 1, Identity>);

/// Index of first-layer weight `W[hidden][input]` in `parameters()` order.
pub const fn first_weight(hidden: usize, input: usize) -> u16 {
    (hidden * 4 + input) as u16
}
/// Index of first-layer bias `b[hidden]`.
pub const fn first_bias(hidden: usize) -> u16 {
    (32 + hidden) as u16
}
/// Index of second-layer weight `W[output][hidden]`.
pub const fn second_weight(output: usize, hidden: usize) -> u16 {
    (40 + output * 8 + hidden) as u16
}
/// Index of second-layer bias `b[output]`.
pub const fn second_bias(output: usize, outputs: usize) -> u16 {
    (40 + outputs * 8 + output) as u16
}

/// A `step` input.
pub struct StepInput {
    pub flags: u8,
    /// Learning rate, ε, l1, l2, dropout rate, clipping limit.
    pub hyper: [f32; 6],
    /// The optimizer byte.
    pub optimizer: u8,
    /// `a`, `b`, the schedule's decay rate, the weight decay.
    pub settings: [f32; 4],
    pub rows: Vec<([f32; 4], u8)>,
    pub overrides: Vec<(u16, f32)>,
}

impl StepInput {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.flags);
        for h in self.hyper {
            w.f32(h);
        }
        w.u8(self.optimizer);
        for s in self.settings {
            w.f32(s);
        }
        w.u8((self.rows.len() - 1) as u8);
        for (x, label) in &self.rows {
            for v in x {
                w.f32(*v);
            }
            w.u8(*label);
        }
        w.u8(self.overrides.len() as u8);
        for (index, value) in &self.overrides {
            w.u16(*index).f32(*value);
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader(bytes);
        let flags = r.u8();
        let hyper = core::array::from_fn(|_| r.f32());
        let optimizer = r.u8();
        let settings = core::array::from_fn(|_| r.f32());
        let rows = (0..usize::from(r.u8() % 4) + 1)
            .map(|_| (core::array::from_fn(|_| r.f32()), r.u8()))
            .collect();
        let overrides = (0..r.u8()).map(|_| (r.u16(), r.f32())).collect();
        Self {
            flags,
            hyper,
            optimizer,
            settings,
            rows,
            overrides,
        }
    }
}

/// What `step` and `fit` check, given a case built from an input by [`run_step_case`].
pub trait CheckCase {
    fn check<N, L, O>(&mut self, case: StepCase<'_, N, L, O>)
    where
        N: Network<Input = [f32; 4]>,
        N::Workspace<4>: Copy,
        L: Loss<N::OutputActivation, N::Output>,
        O: Optimizer<N::Params> + Copy;
}

/// One input's network (initialised from seed 7, then zeroed and overridden as the input
/// says), its loss and data, and a trainer with its optimizer, clipping and checking.
pub struct StepCase<'a, N: Network, L: Loss<N::OutputActivation, N::Output>, O> {
    pub input: &'a StepInput,
    pub net: N,
    pub loss: &'a L,
    pub data: Dataset<'a, [f32; 4], L::Target>,
    pub trainer: Trainer<N, O, 4>,
    pub checked: bool,
    /// The generator after the initialisation.
    pub rng: Xoshiro128PlusPlus,
}

/// Decodes `bytes` and hands the case they describe to `checker`; inputs whose
/// configuration a constructor refuses are skipped (refusing them is the constructors' job,
/// and `tests/validation.rs` tests it).
pub fn run_step_case(bytes: &[u8], checker: &mut impl CheckCase) {
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
        with_optimizer(
            &input,
            net,
            &BinaryCrossEntropyFromLogits,
            &targets,
            checker,
        );
    } else {
        let net: StepSoftmax = (hidden, dropout, Dense::new(Softmax));
        let labels: Vec<u8> = input.rows.iter().map(|r| r.1).collect();
        let loss = SparseCategoricalCrossEntropy::<u8>::new();
        with_optimizer(&input, net, &loss, &labels, checker);
    }
}

fn with_optimizer<N, L>(
    input: &StepInput,
    net: N,
    loss: &L,
    targets: &[L::Target],
    checker: &mut impl CheckCase,
) where
    N: Network<Input = [f32; 4]>,
    N::Workspace<4>: Copy,
    L: Loss<N::OutputActivation, N::Output>,
{
    let [learning_rate, epsilon, ..] = input.hyper;
    let [a, b, ..] = input.settings;
    let betas = input.optimizer & OPT_BETAS != 0;
    let case = Case {
        input,
        net,
        loss,
        targets,
    };
    match input.optimizer & 7 {
        OPT_ADAM => case.run(
            Adam::new(learning_rate)
                .and_then(|o| o.with_epsilon(epsilon))
                .and_then(|o| {
                    if betas {
                        o.with_betas(a.into(), b.into())
                    } else {
                        Ok(o)
                    }
                }),
            checker,
        ),
        OPT_SGD => case.run(Sgd::new(learning_rate), checker),
        OPT_SGD_MOMENTUM => case.run(SgdMomentum::new(learning_rate, a, false), checker),
        OPT_NESTEROV => case.run(SgdMomentum::new(learning_rate, a, true), checker),
        OPT_ADAMW => case.run(
            AdamW::new(learning_rate, a).map(|o| o.with_decayed(decayed(input))),
            checker,
        ),
        OPT_RMSPROP => case.run(
            RMSprop::new(learning_rate)
                .and_then(|o| o.with_epsilon(epsilon))
                .and_then(|o| o.with_rho(a.into()))
                .and_then(|o| o.with_momentum(b))
                .map(|o| o.with_centered(input.optimizer & OPT_CENTERED != 0)),
            checker,
        ),
        OPT_ADAGRAD => case.run(Adagrad::new(learning_rate, a, epsilon), checker),
        _ => case.run(
            Nadam::new(learning_rate)
                .and_then(|o| o.with_epsilon(epsilon))
                .and_then(|o| if betas { o.with_betas(a, b) } else { Ok(o) }),
            checker,
        ),
    }
}

/// The tensors a weight decay applies to.
fn decayed(input: &StepInput) -> DecayedTensors {
    if input.optimizer & OPT_EXCEPT_BIASES != 0 {
        DecayedTensors::EXCEPT_BIASES
    } else {
        DecayedTensors::ALL
    }
}

/// An input's network, loss and targets, waiting for an optimizer.
struct Case<'a, N: Network, L: Loss<N::OutputActivation, N::Output>> {
    input: &'a StepInput,
    net: N,
    loss: &'a L,
    targets: &'a [L::Target],
}

impl<N, L> Case<'_, N, L>
where
    N: Network<Input = [f32; 4]>,
    N::Workspace<4>: Copy,
    L: Loss<N::OutputActivation, N::Output>,
{
    /// Adds Keras' weight decay if the input asks, then goes on to [`Case::schedule`].
    fn run<O: Optimizer<N::Params> + Copy>(
        self,
        optimizer: Result<O, Error>,
        checker: &mut impl CheckCase,
    ) {
        let Ok(optimizer) = optimizer else {
            return;
        };
        if self.input.optimizer & OPT_WEIGHT_DECAY == 0 {
            return self.schedule(optimizer, checker);
        }
        let [.., weight_decay] = self.input.settings;
        let Ok(decaying) = WeightDecay::new(optimizer, weight_decay) else {
            return;
        };
        let decaying = decaying.with_decayed(decayed(self.input));
        self.schedule(decaying, checker);
    }

    /// Wraps the optimizer in a schedule if the input asks, then builds the case.
    fn schedule<O: Optimizer<N::Params> + Copy>(self, optimizer: O, checker: &mut impl CheckCase) {
        if self.input.optimizer & OPT_SCHEDULED == 0 {
            return self.build(optimizer, checker);
        }
        let [learning_rate, ..] = self.input.hyper;
        let [_, _, decay_rate, _] = self.input.settings;
        let Ok(schedule) = ExponentialDecay::new(learning_rate, 1, decay_rate, false) else {
            return;
        };
        self.build(Scheduled::new(optimizer, schedule), checker);
    }

    fn build<O: Optimizer<N::Params> + Copy>(self, optimizer: O, checker: &mut impl CheckCase) {
        let Self {
            input,
            mut net,
            loss,
            targets,
        } = self;
        let limit = input.hyper[5];
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
        let trainer = Trainer::<N, O, 4>::new(optimizer)
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
        checker.check(StepCase {
            input,
            net,
            loss,
            data,
            trainer,
            checked,
            rng,
        });
    }
}

/// Every parameter and optimizer state value, as bits.
pub fn bits<N: Network, O: Optimizer<N::Params>>(net: &N, optimizer: &O) -> Vec<u32> {
    net.parameters()
        .chain(optimizer.state())
        .flatten()
        .map(|v| v.to_bits())
        .collect()
}

/// True if every parameter and optimizer state value is finite.
pub fn all_finite<N: Network, O: Optimizer<N::Params>>(net: &N, optimizer: &O) -> bool {
    net.parameters()
        .chain(optimizer.state())
        .flatten()
        .all(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------
// `load`: first byte selects the mode; the rest is read as below.
// - `LOAD_RAW`: the rest is the buffer, loaded with and without optimizer state.
// - `LOAD_FLIP`: a valid `save_with_optimizer` buffer of `LoadNet`, then pairs (u16 position
//   mod the length, u8 mask) XORed into it.
// - `LOAD_RESEAL`: as `LOAD_FLIP` but pairs (u16 position, u8 value) are written, and the
//   CRC is recomputed afterwards: semantically invalid content behind a valid checksum.
// ---------------------------------------------------------------------------------------

pub const LOAD_RAW: u8 = 0;
pub const LOAD_FLIP: u8 = 1;
pub const LOAD_RESEAL: u8 = 2;

pub type LoadNet = (Dense<3, 5, Tanh>, Dropout<5>, Dense<5, 2, Softmax>);
pub type LoadOpt = Adam<<LoadNet as Network>::Params>;

pub fn load_net() -> LoadNet {
    (
        Dense::new(Tanh).with_kernel_regularizer(l2(1e-3).unwrap()),
        Dropout::new(0.2).unwrap(),
        Dense::new(Softmax),
    )
}

/// A model and an optimizer with non-zero state: `seed` picks the weights, then two steps.
pub fn trained(seed: u64) -> (LoadNet, LoadOpt) {
    let mut net = load_net();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    net.initialize(&mut rng);
    let mut trainer = Trainer::<LoadNet, LoadOpt, 2>::new(Adam::new(0.01).unwrap());
    let x = [[0.1f32, -0.5, 0.9], [1.0, 0.3, -0.2]];
    let y = [0u8, 1];
    let data = Dataset::new(&x, &y).unwrap();
    for _ in 0..2 {
        trainer
            .step(
                &mut net,
                &SparseCategoricalCrossEntropy::<u8>::new(),
                data,
                &[0, 1],
                &mut rng,
            )
            .unwrap();
    }
    let optimizer = *trainer.optimizer();
    (net, optimizer)
}

pub fn saved(net: &LoadNet, optimizer: &LoadOpt) -> Vec<u8> {
    let mut buffer = vec![0u8; persist::training_state_len::<LoadNet, LoadOpt>()];
    persist::save_with_optimizer(net, optimizer, &mut buffer).unwrap();
    buffer
}

/// The valid buffer `LOAD_FLIP` and `LOAD_RESEAL` start from.
pub fn valid_buffer() -> Vec<u8> {
    let (net, optimizer) = trained(2);
    saved(&net, &optimizer)
}

/// Recomputes the trailing CRC-32 (ISO-HDLC) of a buffer.
pub fn reseal(buffer: &mut [u8]) {
    if buffer.len() < 4 {
        return;
    }
    let body = buffer.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&buffer[..body]);
    buffer[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Byte offset of the optimizer state in a `LoadNet` + `LoadOpt` buffer and its count.
pub fn state_range() -> (usize, usize) {
    let boundaries = <LoadNet as Network>::WIDTHS.len();
    let parameters = <LoadNet as Network>::PARAMETERS;
    // After the header, the widths, the parameters and the optimizer's tag (kind + settings).
    let start = 24 + 4 * boundaries + 4 * parameters + 20;
    let len = persist::training_state_len::<LoadNet, LoadOpt>();
    (start, (len - 4 - start) / 4)
}
