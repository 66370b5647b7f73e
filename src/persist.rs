//! Saving a model — its parameters, optionally its optimizer's state, optionally the
//! caller's generator — into a caller's byte buffer, and loading it back, for firmware that
//! must survive a reset.
//!
//! | what | save | load | bytes |
//! |---|---|---|---|
//! | parameters | [`save`] | [`load`] | [`parameters_len`] |
//! | + optimizer state | [`save_with_optimizer`] | [`load_with_optimizer`] | [`training_state_len`] |
//! | + the generator: a run that resumes bit for bit | [`save_resumable`] | [`load_resumable`] | [`resumable_len`] |
//!
//! # Format, version 2 (all integers and floats little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"MTRN"` |
//! | 4 | 2 | format version (`2`) |
//! | 6 | 2 | flags: bit 0 set if an optimizer record follows the parameters, bit 1 if a generator state follows; the other bits are zero |
//! | 8 | 4 | total length in bytes, checksum included |
//! | 12 | 2 | number of layer boundaries `k` |
//! | 14 | 2 | reserved, zero |
//! | 16 | 4 | number of parameters `p` |
//! | 20 | 4 | number of optimizer-state values `s` (0 without an optimizer record) |
//! | 24 | 4·k | width of each boundary, input first ([`Network::WIDTHS`]) |
//! | 24 + 4k | 4·p | parameters, `f32`, in [`Network::parameters`] order |
//! | bit 0: … | 4 | the optimizer's kind ([`StateTag::kind`], e.g. `b"ADAM"`) |
//! | | 16 | the settings its state depends on ([`StateTag::settings`]), four `f32` |
//! | | 4·s | optimizer state, `f32`, in [`Optimizer::state`] order |
//! | bit 1: … | 16 | the generator's state ([`Xoshiro128PlusPlus::state`]: four `u32`) |
//! | end − 4 | 4 | CRC-32 (ISO-HDLC, as zlib and Ethernet) of every byte before it |
//!
//! Loading checks everything — magic, version, length, checksum, layer widths, counts, that
//! every value is finite, that the optimizer is the one that wrote the state
//! ([`Optimizer::state_tag`]) and that it can continue from it
//! ([`Optimizer::state_is_valid`]) — **before** it writes anything, so a truncated,
//! corrupted, foreign or mismatched buffer returns an error and leaves the model, the
//! optimizer and the generator as they were.
//!
//! **Version 1** (this crate's format before the optimizer record and the generator) had
//! the same header with flag bit 0 set if and only if `s > 0`, and the state right after
//! the parameters, with no record of the optimizer. [`load`] still reads its parameters;
//! [`load_with_optimizer`] refuses its state ([`Error::Version`]) because nothing says
//! which optimizer wrote it: load the parameters and continue with a fresh optimizer.
//!
//! ```
//! use microtrain::*;
//! use microtrain::persist;
//! type Net = (Dense<4, 8, Relu>, Dense<8, 3, Softmax>);
//! let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
//! model.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(1));
//! let mut buffer = [0u8; persist::parameters_len::<Net>()];
//! persist::save(&model, &mut buffer)?;
//! let mut restored: Net = (Dense::new(Relu), Dense::new(Softmax));
//! persist::load(&mut restored, &buffer)?;
//! assert_eq!(model, restored);
//! buffer[30] ^= 1;
//! assert_eq!(persist::load(&mut restored, &buffer), Err(Error::Checksum));
//! # Ok::<(), microtrain::Error>(())
//! ```

use crc::{CRC_32_ISO_HDLC, Crc};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

use crate::error::Error;
use crate::model::Network;
use crate::optim::{Optimizer, StateTag};

/// The four bytes every saved model starts with.
pub const MAGIC: [u8; 4] = *b"MTRN";
/// The format version this build writes; it reads this one and the parameters of
/// version 1.
pub const VERSION: u16 = 2;

const VERSION_1: u16 = 1;
const HEADER_LEN: usize = 24;
const CHECKSUM_LEN: usize = 4;
/// The optimizer's kind and settings ([`StateTag`]) before its state.
const TAG_LEN: usize = 20;
/// [`Xoshiro128PlusPlus::state`].
const GENERATOR_LEN: usize = 16;
const FLAG_OPTIMIZER: u16 = 1;
const FLAG_GENERATOR: u16 = 2;
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Bytes of a version-2 buffer: `state` is the optimizer's state count if an optimizer
/// record is saved.
const fn saved_len(boundaries: usize, parameters: usize, state: Option<usize>, rng: bool) -> usize {
    // Saturating: a size that overflowed would only make `save` refuse every buffer.
    let record = match state {
        Some(state) => state.saturating_mul(4).saturating_add(TAG_LEN),
        None => 0,
    };
    boundaries
        .saturating_add(parameters)
        .saturating_mul(4)
        .saturating_add(record)
        .saturating_add(if rng { GENERATOR_LEN } else { 0 })
        .saturating_add(HEADER_LEN + CHECKSUM_LEN)
}

/// Exact bytes [`save`] writes for network `N`.
pub const fn parameters_len<N: Network>() -> usize {
    saved_len(N::WIDTHS.len(), N::PARAMETERS, None, false)
}

/// Exact bytes [`save_with_optimizer`] writes for network `N` trained with optimizer `O`.
pub const fn training_state_len<N: Network, O: Optimizer<N::Params>>() -> usize {
    saved_len(N::WIDTHS.len(), N::PARAMETERS, Some(O::STATE_LEN), false)
}

/// Exact bytes [`save_resumable`] writes for network `N` trained with optimizer `O`:
/// [`training_state_len`] and the generator's 16 bytes.
pub const fn resumable_len<N: Network, O: Optimizer<N::Params>>() -> usize {
    saved_len(N::WIDTHS.len(), N::PARAMETERS, Some(O::STATE_LEN), true)
}

/// Saves the model's parameters into `buffer`; returns the bytes written
/// ([`parameters_len`]).
///
/// # Errors
/// [`Error::Buffer`] if `buffer` is shorter than [`parameters_len`]; nothing is written then.
pub fn save<N: Network>(model: &N, buffer: &mut [u8]) -> Result<usize, Error> {
    write::<N, core::iter::Empty<&[f32]>>(buffer, model, None, None)
}

/// Saves the model's parameters and the optimizer's state, with the optimizer's
/// [`StateTag`], to resume training after a reset; returns the bytes written
/// ([`training_state_len`]). A run whose generator must resume too (dropout, shuffling)
/// saves it with [`save_resumable`].
///
/// # Errors
/// [`Error::Buffer`] if `buffer` is too short; nothing is written then.
pub fn save_with_optimizer<N: Network, O: Optimizer<N::Params>>(
    model: &N,
    optimizer: &O,
    buffer: &mut [u8],
) -> Result<usize, Error> {
    write(buffer, model, Some(record(optimizer)), None)
}

/// Saves everything a training run depends on — the model's parameters, the optimizer's
/// state and the state of the caller's generator (which draws dropout masks and shuffles)
/// — so that after a power cycle [`load_resumable`] continues the run bit for bit, as if it
/// had never stopped; returns the bytes written ([`resumable_len`]).
///
/// ```
/// use microtrain::*;
/// use microtrain::persist;
/// type Net = (Dense<4, 8, Relu>, Dropout<8>, Dense<8, 3, Softmax>);
/// type Opt = Adam<<Net as Network>::Params>;
/// let mut model: Net = (Dense::new(Relu), Dropout::new(0.2)?, Dense::new(Softmax));
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
/// model.initialize(&mut rng);
/// let trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
/// // ... train, then before the power goes:
/// let mut store = [0u8; persist::resumable_len::<Net, Opt>()];
/// persist::save_resumable(&model, trainer.optimizer(), &rng, &mut store)?;
///
/// // At the next boot:
/// let mut resumed: Net = (Dense::new(Relu), Dropout::new(0.2)?, Dense::new(Softmax));
/// let mut fresh = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
/// let mut resumed_rng = Xoshiro128PlusPlus::seed_from_u64(0); // overwritten
/// persist::load_resumable(&mut resumed, fresh.optimizer_mut(), &mut resumed_rng, &store)?;
/// assert_eq!((resumed, resumed_rng), (model, rng));
/// # Ok::<(), microtrain::Error>(())
/// ```
///
/// # Errors
/// [`Error::Buffer`] if `buffer` is too short; nothing is written then.
pub fn save_resumable<N: Network, O: Optimizer<N::Params>>(
    model: &N,
    optimizer: &O,
    rng: &Xoshiro128PlusPlus,
    buffer: &mut [u8],
) -> Result<usize, Error> {
    write(buffer, model, Some(record(optimizer)), Some(rng.state()))
}

/// Loads the parameters saved by [`save`], [`save_with_optimizer`] or [`save_resumable`]
/// (version 2), or by version 1's `save` and `save_with_optimizer`, into `model`; any
/// optimizer or generator state in the buffer is checked and left unused.
///
/// # Errors
/// [`Error::Buffer`] (truncated), [`Error::Magic`], [`Error::Version`], [`Error::Checksum`],
/// [`Error::Flags`] (a flag bit this version does not know), [`Error::Shape`] (another
/// network) or [`Error::NonFinite`]; the model is unchanged then.
pub fn load<N: Network>(model: &mut N, buffer: &[u8]) -> Result<(), Error> {
    let saved = Saved::parse(buffer, N::WIDTHS, N::PARAMETERS)?;
    fill(model.parameters_mut(), &mut floats(saved.parameters));
    Ok(())
}

/// Loads parameters and optimizer state saved by [`save_with_optimizer`] or
/// [`save_resumable`] (the generator's state is checked and left unused).
///
/// # Errors
/// As [`load`]; [`Error::Version`] for a version-1 buffer (it does not say which optimizer
/// wrote its state: [`load`] its parameters instead); [`Error::OptimizerMismatch`] if
/// another optimizer wrote the state, or the same kind under other settings
/// ([`Optimizer::state_tag`]: AdamW's state into Adam, Adam's with other betas);
/// [`Error::Shape`] if the buffer holds no optimizer state or state of another size; and
/// [`Error::OptimizerState`] if the state is not one the optimizer can continue from
/// ([`Optimizer::state_is_valid`]: for Adam, a negative second moment or a step count that
/// is not an integer in `[0, 2^24]`). The model and optimizer are unchanged then.
pub fn load_with_optimizer<N: Network, O: Optimizer<N::Params>>(
    model: &mut N,
    optimizer: &mut O,
    buffer: &[u8],
) -> Result<(), Error> {
    let saved = Saved::parse(buffer, N::WIDTHS, N::PARAMETERS)?;
    let state = saved.optimizer_state(optimizer)?;
    fill(model.parameters_mut(), &mut floats(saved.parameters));
    fill(optimizer.state_mut(), &mut floats(state));
    Ok(())
}

/// Loads what [`save_resumable`] saved: parameters, optimizer state and the generator, so
/// that the run continues bit for bit where it stopped.
///
/// # Errors
/// As [`load_with_optimizer`]; [`Error::Shape`] if the buffer holds no generator state, and
/// [`Error::GeneratorState`] for the all-zero state, which no xoshiro generator can reach.
/// The model, optimizer and generator are unchanged then.
pub fn load_resumable<N: Network, O: Optimizer<N::Params>>(
    model: &mut N,
    optimizer: &mut O,
    rng: &mut Xoshiro128PlusPlus,
    buffer: &[u8],
) -> Result<(), Error> {
    let saved = Saved::parse(buffer, N::WIDTHS, N::PARAMETERS)?;
    let state = saved.optimizer_state(optimizer)?;
    let generator = saved.generator.ok_or(Error::Shape)?;
    // `from_seed` would quietly replace the all-zero state by another one.
    if generator == [0; GENERATOR_LEN] {
        return Err(Error::GeneratorState);
    }
    fill(model.parameters_mut(), &mut floats(saved.parameters));
    fill(optimizer.state_mut(), &mut floats(state));
    *rng = Xoshiro128PlusPlus::from_seed(generator);
    Ok(())
}

fn fill<'a>(tensors: impl Iterator<Item = &'a mut [f32]>, values: &mut impl Iterator<Item = f32>) {
    for tensor in tensors {
        for (slot, value) in tensor.iter_mut().zip(&mut *values) {
            *slot = value;
        }
    }
}

fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
}

/// What a buffer holds about the optimizer: its tag, its state count and its state.
struct Record<S> {
    tag: StateTag,
    len: usize,
    state: S,
}

fn record<P, O: Optimizer<P>>(optimizer: &O) -> Record<impl Iterator<Item = &[f32]>>
where
    P: crate::layers::Parameters,
{
    Record {
        tag: optimizer.state_tag(),
        len: O::STATE_LEN,
        state: optimizer.state(),
    }
}

/// Appends bytes to the front of a buffer, tracking what is left.
struct Cursor<'a> {
    rest: &'a mut [u8],
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let rest = core::mem::take(&mut self.rest);
        // The caller checked the total length, so the split always succeeds; if it did not,
        // the bytes are dropped rather than panicking.
        if let Some((head, tail)) = rest.split_at_mut_checked(bytes.len()) {
            head.copy_from_slice(bytes);
            self.rest = tail;
        }
    }

    fn put_floats<'a>(&mut self, tensors: impl Iterator<Item = &'a [f32]>) {
        for tensor in tensors {
            for value in tensor {
                self.put(&value.to_le_bytes());
            }
        }
    }
}

fn write<'a, N: Network, S: Iterator<Item = &'a [f32]>>(
    buffer: &mut [u8],
    model: &'a N,
    optimizer: Option<Record<S>>,
    generator: Option<[u8; GENERATOR_LEN]>,
) -> Result<usize, Error> {
    let widths = N::WIDTHS;
    let state_len = optimizer.as_ref().map(|record| record.len);
    let needed = saved_len(widths.len(), N::PARAMETERS, state_len, generator.is_some());
    let available = buffer.len();
    let (out, _) = buffer
        .split_at_mut_checked(needed)
        .ok_or(Error::Buffer { needed, available })?;
    let as_u32 = |n: usize| u32::try_from(n).map_err(|_| Error::Shape);
    let as_u16 = |n: usize| u16::try_from(n).map_err(|_| Error::Shape);
    for &width in widths {
        as_u32(width)?;
    }
    let mut flags = 0;
    if optimizer.is_some() {
        flags |= FLAG_OPTIMIZER;
    }
    if generator.is_some() {
        flags |= FLAG_GENERATOR;
    }
    let header = Header {
        flags,
        total: as_u32(needed)?,
        boundaries: as_u16(widths.len())?,
        parameters: as_u32(N::PARAMETERS)?,
        state_len: as_u32(state_len.unwrap_or(0))?,
    };
    // Every conversion that can fail has: from here on nothing is refused.
    let mut cursor = Cursor { rest: &mut *out };
    header.write(&mut cursor);
    for &width in widths {
        cursor.put(&as_u32(width)?.to_le_bytes());
    }
    cursor.put_floats(model.parameters());
    if let Some(record) = optimizer {
        cursor.put(&record.tag.kind());
        for setting in record.tag.settings() {
            cursor.put(&setting.to_le_bytes());
        }
        cursor.put_floats(record.state);
    }
    if let Some(generator) = generator {
        cursor.put(&generator);
    }
    let body = out.len().saturating_sub(CHECKSUM_LEN);
    let checksum = CRC.checksum(out.get(..body).unwrap_or_default());
    if let Some(tail) = out.get_mut(body..) {
        tail.copy_from_slice(&checksum.to_le_bytes());
    }
    Ok(needed)
}

struct Header {
    flags: u16,
    total: u32,
    boundaries: u16,
    parameters: u32,
    state_len: u32,
}

impl Header {
    fn write(&self, cursor: &mut Cursor<'_>) {
        cursor.put(&MAGIC);
        cursor.put(&VERSION.to_le_bytes());
        cursor.put(&self.flags.to_le_bytes());
        cursor.put(&self.total.to_le_bytes());
        cursor.put(&self.boundaries.to_le_bytes());
        cursor.put(&0u16.to_le_bytes());
        cursor.put(&self.parameters.to_le_bytes());
        cursor.put(&self.state_len.to_le_bytes());
    }
}

/// A buffer that passed every check that does not depend on the optimizer, split into its
/// parts.
struct Saved<'a> {
    version: u16,
    parameters: &'a [u8],
    /// Version 2's optimizer record (version 1's state has no tag).
    tag: Option<StateTag>,
    state_len: usize,
    state: Option<&'a [u8]>,
    generator: Option<[u8; GENERATOR_LEN]>,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let value = u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?);
    usize::try_from(value).ok()
}

/// Splits `n` bytes off the front of `bytes` (`None` if there are fewer).
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = bytes.split_at_checked(n)?;
    *bytes = tail;
    Some(head)
}

impl<'a> Saved<'a> {
    fn parse(buffer: &'a [u8], widths: &[usize], parameters: usize) -> Result<Self, Error> {
        let truncated = |needed| Error::Buffer {
            needed,
            available: buffer.len(),
        };
        if buffer.get(..4).ok_or(truncated(HEADER_LEN))? != MAGIC {
            return Err(Error::Magic);
        }
        let field16 = |at| read_u16(buffer, at).ok_or(truncated(HEADER_LEN));
        let field32 = |at| read_u32(buffer, at).ok_or(truncated(HEADER_LEN));
        let version = field16(4)?;
        if version != VERSION && version != VERSION_1 {
            return Err(Error::Version { found: version });
        }
        let flags = field16(6)?;
        let total = field32(8)?;
        let boundaries = usize::from(field16(12)?);
        let reserved = field16(14)?;
        let saved_parameters = field32(16)?;
        let state_len = field32(20)?;
        // Which parts follow the parameters. A bit this version does not know, or (version
        // 1) a state bit that disagrees with the state count, is a buffer it cannot read
        // correctly; so is state without an optimizer record.
        let (known, record) = if version == VERSION_1 {
            (FLAG_OPTIMIZER, state_len > 0)
        } else {
            (FLAG_OPTIMIZER | FLAG_GENERATOR, flags & FLAG_OPTIMIZER != 0)
        };
        if flags & !known != 0
            || (flags & FLAG_OPTIMIZER != 0) != record
            || (!record && state_len > 0)
        {
            return Err(Error::Flags { flags });
        }
        let has_generator = flags & FLAG_GENERATOR != 0;
        // The length must follow from the counts; check it before trusting either.
        let record_len = match (version, record) {
            (_, false) => Some(0),
            (VERSION_1, true) => state_len.checked_mul(4),
            (_, true) => state_len
                .checked_mul(4)
                .and_then(|n| n.checked_add(TAG_LEN)),
        };
        let expected = boundaries
            .checked_add(saved_parameters)
            .and_then(|n| n.checked_mul(4))
            .zip(record_len)
            .and_then(|(n, record)| n.checked_add(record))
            .and_then(|n| n.checked_add(if has_generator { GENERATOR_LEN } else { 0 }))
            .and_then(|n| n.checked_add(HEADER_LEN + CHECKSUM_LEN));
        if expected != Some(total) || reserved != 0 {
            return Err(Error::Checksum);
        }
        let whole = buffer.get(..total).ok_or(truncated(total))?;
        let (body, stored) = whole
            .split_at_checked(total.saturating_sub(CHECKSUM_LEN))
            .ok_or(Error::Checksum)?;
        let stored = u32::from_le_bytes(stored.try_into().map_err(|_| Error::Checksum)?);
        if CRC.checksum(body) != stored {
            return Err(Error::Checksum);
        }
        if boundaries != widths.len() || saved_parameters != parameters {
            return Err(Error::Shape);
        }
        for (k, &width) in widths.iter().enumerate() {
            if read_u32(body, k.saturating_mul(4).saturating_add(HEADER_LEN)) != Some(width) {
                return Err(Error::Shape);
            }
        }
        // The length check above guarantees every part is there; a missing one would be
        // a corrupted buffer, never a panic.
        let mut rest = body
            .get(boundaries.saturating_mul(4).saturating_add(HEADER_LEN)..)
            .unwrap_or_default();
        let mut part = |n| take(&mut rest, n).ok_or(Error::Checksum);
        let parameter_bytes = part(saved_parameters.saturating_mul(4))?;
        let mut tag = None;
        let mut state = None;
        if record {
            if version != VERSION_1 {
                let bytes: [u8; TAG_LEN] =
                    part(TAG_LEN)?.try_into().map_err(|_| Error::Checksum)?;
                tag = Some(tag_from_bytes(bytes));
            }
            state = Some(part(state_len.saturating_mul(4))?);
        }
        let generator = if has_generator {
            Some(
                part(GENERATOR_LEN)?
                    .try_into()
                    .map_err(|_| Error::Checksum)?,
            )
        } else {
            None
        };
        let mut values = floats(parameter_bytes).chain(floats(state.unwrap_or_default()));
        if !values.all(f32::is_finite) {
            return Err(Error::NonFinite);
        }
        Ok(Self {
            version,
            parameters: parameter_bytes,
            tag,
            state_len,
            state,
            generator,
        })
    }

    /// The saved state, if `optimizer` wrote it and can continue from it.
    fn optimizer_state<P, O: Optimizer<P>>(&self, optimizer: &O) -> Result<&'a [u8], Error>
    where
        P: crate::layers::Parameters,
    {
        if self.version == VERSION_1 && self.state.is_some() {
            // Its state carries no tag: nothing says which optimizer wrote it.
            return Err(Error::Version {
                found: self.version,
            });
        }
        let (Some(tag), Some(state)) = (self.tag, self.state) else {
            return Err(Error::Shape);
        };
        let expected = optimizer.state_tag();
        if tag != expected {
            return Err(Error::OptimizerMismatch {
                saved: tag.kind(),
                expected: expected.kind(),
            });
        }
        if self.state_len != O::STATE_LEN {
            return Err(Error::Shape);
        }
        // Finite is not enough: a negative second moment, say, would refuse every later step.
        if !O::state_is_valid(floats(state)) {
            return Err(Error::OptimizerState);
        }
        Ok(state)
    }
}

/// The [`StateTag`] saved as its kind and its four settings' bits.
fn tag_from_bytes(bytes: [u8; TAG_LEN]) -> StateTag {
    let (chunks, _) = bytes.as_chunks::<4>();
    let mut chunks = chunks.iter().copied();
    let kind = chunks.next().unwrap_or_default();
    let mut setting = || f32::from_le_bytes(chunks.next().unwrap_or_default());
    StateTag::new(kind, [setting(), setting(), setting(), setting()])
}
