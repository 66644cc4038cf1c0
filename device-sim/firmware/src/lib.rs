//! What the firmware images share: the panic handler, stack measurement, output over
//! semihosting, and the on-target checks.
//!
//! No allocator: the device core never allocates, and `protocol` without its payment
//! rules (feature `payments` off) links no `alloc`. No `core::fmt` either: output is
//! assembled from strings and numbers by [`Line`], because the formatting machinery
//! alone costs a Cortex-M0 several KiB of flash.
#![no_std]

pub mod checks;
pub mod host;
pub mod net;
pub mod serve;

use cortex_m_semihosting::debug;

/// One line of output, built in a buffer and written to the host's stdout at once.
pub struct Line {
    buf: [u8; 120],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Line {
            buf: [0; 120],
            len: 0,
        }
    }

    /// Appends `bytes` (what does not fit is cut).
    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    /// Appends `value` in decimal.
    pub fn number(&mut self, value: u64) -> &mut Self {
        let mut buf = [0u8; 20];
        let at = device::decimal(value, &mut buf);
        self.push(&buf[at..])
    }

    /// Appends `value` as `0x` and eight hex digits.
    pub fn hex(&mut self, value: u32) -> &mut Self {
        self.push(b"0x");
        for shift in (0..8).rev() {
            let nibble = ((value >> (shift * 4)) & 0xf) as usize;
            self.push(&[b"0123456789abcdef"[nibble]]);
        }
        self
    }

    /// The line so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes the line and a newline to the host's stdout (semihosting); output errors
    /// are ignored, as a device without a debugger attached would.
    pub fn end(&mut self) {
        self.push(b"\n");
        host::print(self.as_bytes());
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`say!`] can print.
pub trait Say {
    /// Appends `self` to `line`.
    fn say(&self, line: &mut Line);
}

impl Say for &str {
    fn say(&self, line: &mut Line) {
        line.push(self.as_bytes());
    }
}

impl Say for u64 {
    fn say(&self, line: &mut Line) {
        line.number(*self);
    }
}

impl Say for u32 {
    fn say(&self, line: &mut Line) {
        line.number(u64::from(*self));
    }
}

impl Say for usize {
    fn say(&self, line: &mut Line) {
        line.number(*self as u64);
    }
}

impl Say for bool {
    fn say(&self, line: &mut Line) {
        line.push(if *self { b"true" } else { b"false" });
    }
}

/// Bytes printed as they are (an answer's payload: text, not validated as UTF-8, which
/// would cost the image its UTF-8 decoder).
pub struct Bytes<'a>(pub &'a [u8]);

impl Say for Bytes<'_> {
    fn say(&self, line: &mut Line) {
        line.push(self.0);
    }
}

/// A number printed as `0x` and eight hex digits.
pub struct Hex(pub u32);

impl Say for Hex {
    fn say(&self, line: &mut Line) {
        line.hex(self.0);
    }
}

/// `say!("text ", number, " more")`: one line on the host's stdout, its parts written
/// one after the other.
#[macro_export]
macro_rules! say {
    ($($part:expr),* $(,)?) => {{
        let mut line = $crate::Line::new();
        $( $crate::Say::say(&$part, &mut line); )*
        line.end();
    }};
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

/// Where it panicked, without the message: formatting it would link `core::fmt`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // No location or message: their formatting and file names cost flash.
    let _ = info;
    say!("PANIC");
    exit(false)
}

extern "C" {
    /// End of .bss/.uninit (cortex-m-rt): the stack can grow down to here.
    static mut __sheap: u32;
    /// Top of RAM, where the stack starts (cortex-m-rt).
    static _stack_start: u32;
}

const PAINT: u32 = 0xA5A5_A5A5;
/// How far below the top of the stack painting goes (the mps2 has 4 MiB of RAM;
/// painting it all would only slow the run).
const PAINT_SPAN: usize = 64 * 1024;

/// The painted range: from a fixed bottom (the same for [`paint_stack`] and
/// [`stack_high_water`], wherever each is called from) up to just below the caller's
/// frame.
fn paint_range() -> (usize, usize) {
    let bottom = core::ptr::addr_of!(__sheap) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    // Leave the current frame alone.
    let sp = cortex_m::register::msp::read() as usize - 256;
    (bottom.max(top.saturating_sub(PAINT_SPAN)), sp)
}

/// Fills the unused stack with a pattern, so [`stack_high_water`] can see how deep the
/// stack ever went.
#[allow(unsafe_code)] // volatile writes to unused RAM
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
#[allow(unsafe_code)] // volatile reads of the painted RAM
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
