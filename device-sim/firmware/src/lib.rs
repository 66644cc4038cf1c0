//! What both firmware images share: the panic handler and the (absent) heap, stack
//! measurement, output over semihosting, and the on-target checks.
//!
//! The device core never allocates; `protocol` links `alloc` for its off-chain parts,
//! so an allocator must exist: this one never hands out memory.
#![no_std]

pub mod checks;

use core::fmt::Write as _;
use cortex_m_semihosting::{debug, hio};

/// Writes a line to the host's stdout (semihosting); output errors are ignored, as a
/// device without a debugger attached would.
pub fn say(args: core::fmt::Arguments<'_>) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_fmt(args);
        let _ = out.write_str("\n");
    }
}

/// `say!("...", args)`: one line on the host's stdout.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::say(format_args!($($arg)*)) };
}

/// Ends the run; QEMU exits with status 0 for success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Not reached under QEMU; on hardware without a debugger, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("PANIC {info}");
    exit(false)
}

struct NoHeap;

// SAFETY: never hands out memory, so there is nothing to misuse; an allocation attempt
// fails and the default alloc error handler panics.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[global_allocator]
static HEAP: NoHeap = NoHeap;

extern "C" {
    /// End of .bss/.uninit (cortex-m-rt): the stack can grow down to here.
    static mut __sheap: u32;
    /// Top of RAM, where the stack starts (cortex-m-rt).
    static _stack_start: u32;
}

const PAINT: u32 = 0xA5A5_A5A5;
/// How far below the current stack pointer painting goes (the mps2 has 4 MiB of RAM;
/// painting it all would only slow the run).
const PAINT_SPAN: usize = 64 * 1024;

fn paint_range() -> (usize, usize) {
    let bottom = core::ptr::addr_of!(__sheap) as usize;
    // Leave the current frame alone.
    let sp = cortex_m::register::msp::read() as usize - 256;
    (bottom.max(sp.saturating_sub(PAINT_SPAN)), sp)
}

/// Fills the unused stack with a pattern, so [`stack_high_water`] can see how deep the
/// stack ever went.
pub fn paint_stack() {
    let (from, to) = paint_range();
    let mut at = (from + 3) & !3;
    while at < to {
        // SAFETY: [from, to) is RAM between the end of .bss and below the live stack
        // frames (256 bytes below SP); nothing else uses it.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Bytes of stack used at most since [`paint_stack`]: from the top of RAM down to the
/// lowest word no longer holding the pattern.
pub fn stack_high_water() -> usize {
    let (from, to) = paint_range();
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut at = (from + 3) & !3;
    // SAFETY: reads the same painted range.
    while at < to && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}

/// Static RAM: .data + .bss + .uninit (everything below the heap start).
pub fn static_ram() -> usize {
    extern "C" {
        static __sdata: u32;
    }
    core::ptr::addr_of!(__sheap) as usize - core::ptr::addr_of!(__sdata) as usize
}
