//! Saving a model (and optionally its optimizer state) into a caller's byte buffer, and
//! loading it back, for firmware that must survive a reset.
//!
//! # Format, version 1 (all integers and floats little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"MTRN"` |
//! | 4 | 2 | format version (`1`) |
//! | 6 | 2 | flags: bit 0 set if and only if optimizer state follows the parameters; the other bits are zero |
//! | 8 | 4 | total length in bytes, checksum included |
//! | 12 | 2 | number of layer boundaries `k` |
//! | 14 | 2 | reserved, zero |
//! | 16 | 4 | number of parameters `p` |
//! | 20 | 4 | number of optimizer-state values `s` (0 without optimizer state) |
//! | 24 | 4·k | width of each boundary, input first ([`Network::WIDTHS`]) |
//! | 24 + 4k | 4·p | parameters, `f32`, in [`Network::parameters`] order |
//! | … | 4·s | optimizer state, `f32`, in [`Optimizer::state`] order |
//! | end − 4 | 4 | CRC-32 (ISO-HDLC, as zlib and Ethernet) of every byte before it |
//!
//! Loading checks everything — magic, version, length, checksum, layer widths, counts, and
//! that every value is finite — **before** it writes anything, so a truncated, corrupted,
//! foreign or mismatched buffer returns an error and leaves the model and optimizer as they
//! were.
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

use crate::error::Error;
use crate::model::Network;
use crate::optim::Optimizer;

/// The four bytes every saved model starts with.
pub const MAGIC: [u8; 4] = *b"MTRN";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

const HEADER_LEN: usize = 24;
const CHECKSUM_LEN: usize = 4;
const FLAG_OPTIMIZER: u16 = 1;
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

const fn saved_len(boundaries: usize, values: usize) -> usize {
    // Saturating: a size that overflowed would only make `save` refuse every buffer.
    let words = boundaries.saturating_add(values);
    words
        .saturating_mul(4)
        .saturating_add(HEADER_LEN + CHECKSUM_LEN)
}

/// Exact bytes [`save`] writes for network `N`.
pub const fn parameters_len<N: Network>() -> usize {
    saved_len(N::WIDTHS.len(), N::PARAMETERS)
}

/// Exact bytes [`save_with_optimizer`] writes for network `N` trained with optimizer `O`.
pub const fn training_state_len<N: Network, O: Optimizer<N::Params>>() -> usize {
    saved_len(N::WIDTHS.len(), N::PARAMETERS.saturating_add(O::STATE_LEN))
}

/// Saves the model's parameters into `buffer`; returns the bytes written
/// ([`parameters_len`]).
///
/// # Errors
/// [`Error::Buffer`] if `buffer` is shorter than [`parameters_len`]; nothing is written then.
pub fn save<N: Network>(model: &N, buffer: &mut [u8]) -> Result<usize, Error> {
    write(
        buffer,
        N::WIDTHS,
        N::PARAMETERS,
        0,
        model.parameters(),
        core::iter::empty(),
    )
}

/// Saves the model's parameters and the optimizer's state, to resume training after a reset;
/// returns the bytes written ([`training_state_len`]).
///
/// # Errors
/// [`Error::Buffer`] if `buffer` is too short; nothing is written then.
pub fn save_with_optimizer<N: Network, O: Optimizer<N::Params>>(
    model: &N,
    optimizer: &O,
    buffer: &mut [u8],
) -> Result<usize, Error> {
    write(
        buffer,
        N::WIDTHS,
        N::PARAMETERS,
        O::STATE_LEN,
        model.parameters(),
        optimizer.state(),
    )
}

/// Loads parameters saved by [`save`] or [`save_with_optimizer`] into `model`.
///
/// # Errors
/// [`Error::Buffer`] (truncated), [`Error::Magic`], [`Error::Version`], [`Error::Checksum`],
/// [`Error::Flags`] (a flag bit this version does not know), [`Error::Shape`] (another
/// network) or [`Error::NonFinite`]; the model is unchanged then.
pub fn load<N: Network>(model: &mut N, buffer: &[u8]) -> Result<(), Error> {
    let saved = Saved::parse(buffer, N::WIDTHS, N::PARAMETERS)?;
    let mut values = saved.values();
    fill(model.parameters_mut(), &mut values);
    Ok(())
}

/// Loads parameters and optimizer state saved by [`save_with_optimizer`].
///
/// # Errors
/// As [`load`], [`Error::Shape`] if the buffer holds no optimizer state or state of
/// another size, and [`Error::OptimizerState`] if the state is not one the optimizer can
/// continue from ([`Optimizer::state_is_valid`]: for Adam, a negative second moment or a
/// β power outside `[0, 1]`); the model and optimizer are unchanged then.
pub fn load_with_optimizer<N: Network, O: Optimizer<N::Params>>(
    model: &mut N,
    optimizer: &mut O,
    buffer: &[u8],
) -> Result<(), Error> {
    let saved = Saved::parse(buffer, N::WIDTHS, N::PARAMETERS)?;
    if saved.state_len != O::STATE_LEN || (saved.flags & FLAG_OPTIMIZER == 0 && O::STATE_LEN > 0) {
        return Err(Error::Shape);
    }
    // Finite is not enough: a negative second moment, say, would refuse every later step.
    if !O::state_is_valid(saved.values().skip(N::PARAMETERS)) {
        return Err(Error::OptimizerState);
    }
    let mut values = saved.values();
    fill(model.parameters_mut(), &mut values);
    fill(optimizer.state_mut(), &mut values);
    Ok(())
}

fn fill<'a>(tensors: impl Iterator<Item = &'a mut [f32]>, values: &mut impl Iterator<Item = f32>) {
    for tensor in tensors {
        for (slot, value) in tensor.iter_mut().zip(&mut *values) {
            *slot = value;
        }
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
}

fn write<'a>(
    buffer: &mut [u8],
    widths: &[usize],
    parameters: usize,
    state_len: usize,
    params: impl Iterator<Item = &'a [f32]>,
    state: impl Iterator<Item = &'a [f32]>,
) -> Result<usize, Error> {
    let needed = saved_len(widths.len(), parameters.saturating_add(state_len));
    let available = buffer.len();
    let (out, _) = buffer
        .split_at_mut_checked(needed)
        .ok_or(Error::Buffer { needed, available })?;
    let as_u32 = |n: usize| u32::try_from(n).map_err(|_| Error::Shape);
    let as_u16 = |n: usize| u16::try_from(n).map_err(|_| Error::Shape);
    let header = Header {
        flags: if state_len > 0 { FLAG_OPTIMIZER } else { 0 },
        total: as_u32(needed)?,
        boundaries: as_u16(widths.len())?,
        parameters: as_u32(parameters)?,
        state_len: as_u32(state_len)?,
    };
    let mut cursor = Cursor { rest: &mut *out };
    header.write(&mut cursor);
    for &width in widths {
        cursor.put(&as_u32(width)?.to_le_bytes());
    }
    for tensor in params.chain(state) {
        for value in tensor {
            cursor.put(&value.to_le_bytes());
        }
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

/// A buffer that passed every check, ready to be copied out.
struct Saved<'a> {
    flags: u16,
    state_len: usize,
    payload: &'a [u8],
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
        if version != VERSION {
            return Err(Error::Version { found: version });
        }
        let flags = field16(6)?;
        let total = field32(8)?;
        let boundaries = usize::from(field16(12)?);
        let reserved = field16(14)?;
        let saved_parameters = field32(16)?;
        let state_len = field32(20)?;
        // The length must follow from the counts; check it before trusting either.
        let expected = boundaries
            .checked_add(saved_parameters)
            .and_then(|n| n.checked_add(state_len))
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(HEADER_LEN + CHECKSUM_LEN));
        if expected != Some(total) || reserved != 0 {
            return Err(Error::Checksum);
        }
        // Bit 0 says whether state follows; a bit this version does not know, or a bit 0
        // that disagrees with the state count, is a buffer it cannot read correctly.
        if flags & !FLAG_OPTIMIZER != 0 || (flags & FLAG_OPTIMIZER != 0) != (state_len > 0) {
            return Err(Error::Flags { flags });
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
        let payload = body
            .get(boundaries.saturating_mul(4).saturating_add(HEADER_LEN)..)
            .unwrap_or_default();
        let saved = Self {
            flags,
            state_len,
            payload,
        };
        if !saved.values().all(f32::is_finite) {
            return Err(Error::NonFinite);
        }
        Ok(saved)
    }

    fn values(&self) -> impl Iterator<Item = f32> + 'a {
        self.payload
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
    }
}
