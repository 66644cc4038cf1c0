//! The device core linked into a stand-alone image, as firmware would link it: two
//! exported functions and two imported ones (the board's flash), no heap, no std.
//! `scripts/bench.sh` builds it for `wasm32-unknown-unknown` with the `device-image`
//! profile and reports its size (bench/device.md).
#![cfg_attr(target_arch = "wasm32", no_std)]

use core::cell::UnsafeCell;
use device_sim::core::{CounterStore, Device, DeviceConfig, DeviceState, Throttle};
use protocol::hotp::Digits;

extern "C" {
    /// Reads the saved state (16 bytes: next counter, used bitmap, little-endian) into
    /// `out`; returns 0 if there is none yet, 16 if read, anything else on failure.
    fn board_flash_read(out: *mut u8) -> i32;
    /// Writes 16 bytes durably; returns 0 once they survive power loss.
    fn board_flash_write(data: *const u8) -> i32;
}

struct Flash;

impl CounterStore for Flash {
    type Error = i32;

    fn load(&mut self) -> Result<Option<DeviceState>, i32> {
        let mut bytes = [0u8; 16];
        // SAFETY: the board writes at most 16 bytes into the buffer it is given.
        match unsafe { board_flash_read(bytes.as_mut_ptr()) } {
            0 => Ok(None),
            16 => {
                let (next, used) = bytes.split_at(8);
                Ok(Some(DeviceState {
                    next_counter: u64::from_le_bytes(next.try_into().map_err(|_| -1)?),
                    used_below: u64::from_le_bytes(used.try_into().map_err(|_| -1)?),
                }))
            }
            e => Err(e),
        }
    }

    fn save(&mut self, state: &DeviceState) -> Result<(), i32> {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&state.next_counter.to_le_bytes());
        bytes[8..].copy_from_slice(&state.used_below.to_le_bytes());
        // SAFETY: the board reads exactly 16 bytes.
        match unsafe { board_flash_write(bytes.as_ptr()) } {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

/// The one device of this image. Firmware is single-threaded: no two calls overlap.
struct Slot(UnsafeCell<Option<Device<Flash>>>);
// SAFETY: the image runs on one thread (wasm32 without threads, or a bare-metal loop).
unsafe impl Sync for Slot {}
static DEVICE: Slot = Slot(UnsafeCell::new(None));

/// Boots with the 32-byte key shared with the AS. Returns 0 on success.
///
/// # Safety
/// `key` points to 32 readable bytes; no other export runs concurrently.
#[no_mangle]
pub unsafe extern "C" fn slotpay_device_boot(key: *const u8, digits: u8, window: u32) -> i32 {
    let mut k = [0u8; 32];
    k.copy_from_slice(core::slice::from_raw_parts(key, 32));
    let Ok(digits) = Digits::new(digits) else {
        return -1;
    };
    let config = DeviceConfig {
        key: k,
        digits,
        window,
        throttle: Throttle::default(),
    };
    match Device::boot(config, Flash) {
        Ok(device) => {
            *DEVICE.0.get() = Some(device);
            0
        }
        Err(_) => -2,
    }
}

/// Presents an OTP (ASCII digits). Returns the granted counter (>= 0), or a negative
/// refusal: -1 not booted, -2 throttled, -3 malformed, -4 invalid, -5 flash failed.
///
/// # Safety
/// `otp` points to `len` readable bytes; no other export runs concurrently.
#[no_mangle]
pub unsafe extern "C" fn slotpay_device_present(otp: *const u8, len: usize, now_ms: u64) -> i64 {
    use device_sim::core::Refusal;
    let Some(device) = (*DEVICE.0.get()).as_mut() else {
        return -1;
    };
    let Ok(text) = core::str::from_utf8(core::slice::from_raw_parts(otp, len)) else {
        return -3;
    };
    match device.present(text, now_ms) {
        Ok(grant) => i64::try_from(grant.counter).unwrap_or(i64::MAX),
        Err(Refusal::Throttled { .. }) => -2,
        Err(Refusal::Malformed(_)) => -3,
        Err(Refusal::Invalid) | Err(Refusal::Config(_)) => -4,
        Err(Refusal::Storage(_)) => -5,
    }
}

/// No heap: `protocol` links `alloc` for its off-chain parts, but the device core never
/// allocates. Every allocation fails (and so traps), which keeps that true.
#[cfg(target_arch = "wasm32")]
struct NoHeap;

#[cfg(target_arch = "wasm32")]
// SAFETY: never hands out memory, so there is nothing to misuse.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: NoHeap = NoHeap;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
