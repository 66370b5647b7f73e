//! What the fuzz targets share with the generator of their regression inputs: the byte
//! layout each target reads, and the models the `load` target saves and loads.
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
// `step`: one checked or unchecked step of a small network.
//
// | bytes | field |
// |---|---|
// | 1 | flags: bit 0 head (0 softmax + sparse cross-entropy, 1 one logit + BCE from logits); bit 1 checked updates; bits 2-3 clipping (none, value, norm, global norm); bit 4 zero the parameters before the overrides; bit 5 one warm-up step first |
// | 4 × 6 | learning rate, Adam's ε, l1, l2 (first layer's kernel), dropout rate, clipping limit |
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
        let rows = (0..usize::from(r.u8() % 4) + 1)
            .map(|_| (core::array::from_fn(|_| r.f32()), r.u8()))
            .collect();
        let overrides = (0..r.u8()).map(|_| (r.u16(), r.f32())).collect();
        Self {
            flags,
            hyper,
            rows,
            overrides,
        }
    }
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
