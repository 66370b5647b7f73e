//! The persistent store: one file on the host through semihosting, standing for a flash
//! sector that survives a power cycle. Its content is microtrain's own saved format
//! (`persist::save_resumable`: head, Adam state and generator), CRC included.

use cortex_m_semihosting::{nr, syscall};

/// The file, relative to QEMU's working directory (NUL-terminated for semihosting).
const PATH: &[u8] = b"adapt.store\0";

fn open(mode: usize) -> Option<usize> {
    // SAFETY: SYS_OPEN reads `PATH.len() - 1` bytes of the static, NUL-terminated name.
    let fd = unsafe { syscall!(OPEN, PATH.as_ptr(), mode, PATH.len() - 1) } as isize;
    usize::try_from(fd).ok()
}

fn close(fd: usize) {
    // SAFETY: closes a handle this module opened; no memory is passed.
    unsafe { syscall!(CLOSE, fd) };
}

/// Reads the store into `buffer`; returns the bytes read, or `None` if there is no store.
pub fn read(buffer: &mut [u8]) -> Option<usize> {
    let fd = open(nr::open::R_BINARY)?;
    // SAFETY: SYS_READ writes at most `buffer.len()` bytes into `buffer`, which we own
    // mutably for the call; it returns the number of bytes it did *not* read.
    let unread = unsafe { syscall!(READ, fd, buffer.as_mut_ptr(), buffer.len()) };
    close(fd);
    Some(buffer.len().saturating_sub(unread))
}

/// Replaces the store's content by `bytes`; false if the host refused.
pub fn write(bytes: &[u8]) -> bool {
    let Some(fd) = open(nr::open::W_TRUNC_BINARY) else {
        return false;
    };
    // SAFETY: SYS_WRITE reads `bytes.len()` bytes of `bytes`; it returns the number of
    // bytes it did *not* write.
    let unwritten = unsafe { syscall!(WRITE, fd, bytes.as_ptr(), bytes.len()) };
    close(fd);
    unwritten == 0
}
