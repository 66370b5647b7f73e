//! Peak stack use, measured: the free stack is painted with a pattern at boot and scanned at
//! the end for the lowest word that was overwritten.
//!
//! This is the only `unsafe` code of the firmware: it writes and reads memory that no Rust
//! object owns (the part of the stack below the current frame).

/// A word a live stack is unlikely to hold.
const PAINT: u32 = 0x5AC3_5AC3;

/// Margin left unpainted below the painting function's own frame.
const MARGIN: usize = 128;

/// The painted region.
pub struct Painted {
    bottom: usize,
    top: usize,
}

/// Paints the stack from its lowest address up to `MARGIN` bytes below this function's
/// frame.
#[inline(never)]
pub fn paint() -> Painted {
    let (bottom, top) = crate::platform::stack_bounds();
    let here = 0u32;
    let limit = (&raw const here as usize).saturating_sub(MARGIN) & !3;
    let mut address = bottom;
    while address < limit {
        // SAFETY: [bottom, limit) lies between the end of .bss and the stack pointer, minus a
        // margin: memory no object occupies and no frame uses yet. The address is 4-aligned
        // (the linker scripts assert it for the bottom) and in RAM.
        unsafe { core::ptr::write_volatile(address as *mut u32, PAINT) };
        address += 4;
    }
    Painted { bottom, top }
}

impl Painted {
    /// Bytes of stack used at the deepest point since [`paint`]: from the top down to the
    /// lowest word no longer holding the pattern.
    pub fn peak(&self) -> usize {
        let mut address = self.bottom;
        while address < self.top {
            // SAFETY: the same region as in `paint`, read only; a word a live frame is
            // writing concurrently cannot exist (one thread, no interrupts enabled).
            let word = unsafe { core::ptr::read_volatile(address as *const u32) };
            if word != PAINT {
                break;
            }
            address += 4;
        }
        self.top - address
    }

    /// Bytes the stack may grow to before it meets `.bss`.
    pub fn size(&self) -> usize {
        self.top - self.bottom
    }
}
