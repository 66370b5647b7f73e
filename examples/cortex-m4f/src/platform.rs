//! What differs between the targets: semihosting output and exit, the instruction counter,
//! the static that holds the application's state, and the stack's bounds.

use crate::App;

/// Prints a line on the host's console through semihosting.
#[cfg(target_arch = "arm")]
macro_rules! say {
    ($($arg:tt)*) => { cortex_m_semihosting::hprintln!($($arg)*) };
}
/// Prints a line on the host's console through semihosting.
#[cfg(target_arch = "riscv32")]
macro_rules! say {
    ($($arg:tt)*) => { semihosting::println!($($arg)*) };
}
pub(crate) use say;

/// Ends the emulation with exit code 0 (`success`) or 1.
#[cfg(target_arch = "arm")]
pub fn exit(success: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a debugger or emulator attached.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Ends the emulation with exit code 0 (`success`) or 1.
#[cfg(target_arch = "riscv32")]
pub fn exit(success: bool) -> ! {
    semihosting::process::exit(if success { 0 } else { 1 })
}

/// The target's name in the output.
pub const TARGET: &str = if cfg!(counter_systick) {
    "Cortex-M4F (thumbv7em-none-eabihf, QEMU mps2-an386)"
} else if cfg!(target_arch = "arm") {
    "Cortex-M0 (thumbv6m-none-eabi, soft-float, QEMU microbit)"
} else {
    "RV32IMAC (riscv32imac-unknown-none-elf, soft-float, QEMU virt)"
};

/// The application's state in `.bss`, handed out once. `None` on a second call.
///
/// The singleton holds uninitialised memory, written in place afterwards: a singleton of `App`
/// itself built the value on the stack first (2.4 KB more stack at the peak).
#[cfg(target_arch = "arm")]
pub fn take_app() -> Option<&'static mut App> {
    cortex_m::singleton!(: core::mem::MaybeUninit<App> = core::mem::MaybeUninit::uninit())
        .map(|slot| slot.write(App::new()))
}

/// The application's state in `.bss`, handed out once. `None` on a second call.
#[cfg(target_arch = "riscv32")]
pub fn take_app() -> Option<&'static mut App> {
    // As on Arm, and more: riscv's singleton keeps an `Option<T>`, and `App` has a niche,
    // which would make `None` a non-zero pattern and move all of it to `.data` (flash and
    // RAM). `MaybeUninit` has none.
    riscv::singleton!(: core::mem::MaybeUninit<App> = core::mem::MaybeUninit::uninit())
        .map(|slot| slot.write(App::new()))
}

/// Counts executed instructions, where the emulator makes that possible.
pub struct Counter {
    #[cfg(counter_systick)]
    last: u32,
    #[cfg(counter_systick)]
    ticks: u64,
}

impl Counter {
    /// Starts counting.
    ///
    /// On the Cortex-M4F, SysTick runs from the core clock, which QEMU's mps2 sets to 25 MHz:
    /// under `-icount shift=0` (one instruction per virtual nanosecond) one tick is exactly
    /// 40 instructions. The 24-bit counter is extended in software, so it must be read at
    /// least every 2^24 ticks (671 M instructions): every epoch is far shorter.
    pub fn start() -> Self {
        #[cfg(counter_systick)]
        {
            use cortex_m::peripheral::{SYST, syst::SystClkSource};
            if let Some(mut peripherals) = cortex_m::Peripherals::take() {
                let syst = &mut peripherals.SYST;
                syst.set_clock_source(SystClkSource::Core);
                syst.set_reload(0x00FF_FFFF);
                syst.clear_current();
                syst.enable_counter();
                // The counter reads 0 until its first reload; a start time taken then would
                // make the first interval 2^24 ticks too long.
                while SYST::get_current() == 0 {}
            }
            Self {
                last: SYST::get_current(),
                ticks: 0,
            }
        }
        #[cfg(not(counter_systick))]
        Self {}
    }

    /// Instructions executed since [`Counter::start`] (valid under `-icount shift=0`), or
    /// `None` on a target without a counter.
    pub fn instructions(&mut self) -> Option<u64> {
        #[cfg(counter_systick)]
        {
            let now = cortex_m::peripheral::SYST::get_current();
            self.ticks += u64::from(self.last.wrapping_sub(now) & 0x00FF_FFFF);
            self.last = now;
            Some(self.ticks * 40)
        }
        #[cfg(counter_minstret)]
        {
            Some(riscv::register::minstret::read64())
        }
        #[cfg(not(any(counter_systick, counter_minstret)))]
        None
    }
}

/// The stack's lowest and highest address, from the runtime's linker script.
pub fn stack_bounds() -> (usize, usize) {
    unsafe extern "C" {
        // Highest address: the initial stack pointer.
        static _stack_start: u32;
        // Lowest address: the end of .bss/.uninit (and of the empty heap).
        #[cfg(target_arch = "arm")]
        #[link_name = "_stack_end"]
        static STACK_END: u32;
        #[cfg(target_arch = "riscv32")]
        #[link_name = "__estack"]
        static STACK_END: u32;
    }
    (
        &raw const STACK_END as usize,
        &raw const _stack_start as usize,
    )
}
