//! Instruction counts on the emulated core. Runs each measured operation once between
//! two marker functions and prints the markers' addresses; `scripts/firmware.sh bench`
//! runs it under `qemu-system-arm -singlestep -d exec,nochain` (one instruction per
//! translation block, every block execution logged) and counts the executed
//! instructions between consecutive markers. Region 0-1 is empty (the marker overhead
//! to subtract) and region 1-2 is a call to exactly 1000 NOPs (1002 instructions with
//! the call and the return), which checks the count is exact.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::sync::atomic::{compiler_fence, Ordering};
use cortex_m_rt::entry;
use device::{AbStore, Device, Source};
use device_firmware::checks::{config, Flash, Text};
use device_firmware::{say, Hex};
use hmac::digest::KeyInit;
use hmac::Mac;
use protocol::hotp::{DeviceKey, Digits, HmacSha256, Token};

macro_rules! markers {
    ($($name:ident = $n:expr),*) => {
        $(
            #[inline(never)]
            #[allow(unsafe_code)] // an exported name: the instruction counter finds it
            #[no_mangle]
            extern "C" fn $name() {
                compiler_fence(Ordering::SeqCst);
                black_box($n);
            }
        )*
        const MARKERS: &[(u32, extern "C" fn())] = &[$(($n, $name)),*];
    };
}

markers!(
    insn_mark_0 = 0,
    insn_mark_1 = 1,
    insn_mark_2 = 2,
    insn_mark_3 = 3,
    insn_mark_4 = 4,
    insn_mark_5 = 5,
    insn_mark_6 = 6,
    insn_mark_7 = 7,
    insn_mark_8 = 8
);

// 1000 NOPs in a function of their own: inline in `main` they pushed main's literal pool
// out of the Cortex-M0's 1020-byte reach for PC-relative loads.
#[allow(unsafe_code)] // hand-written instructions, the very thing measured
mod nops {
    core::arch::global_asm!(
        ".section .text.thousand_nops,\"ax\",%progbits",
        ".global thousand_nops",
        ".type thousand_nops,%function",
        ".syntax unified",
        ".thumb",
        ".thumb_func",
        "thousand_nops:",
        ".rept 1000",
        "nop",
        ".endr",
        "bx lr",
    );
}

extern "C" {
    fn thousand_nops();
}

const KEY: [u8; 32] = [0x42; 32];

#[entry]
fn main() -> ! {
    device_firmware::paint_stack();
    for (n, f) in MARKERS {
        say!("marker ", *n, " ", Hex(*f as usize as u32 & !1));
    }
    let Some(flash) = cortex_m::singleton!(: Flash = Flash::new()) else {
        device_firmware::exit(false)
    };
    let Ok(mut device) = Device::boot(config(KEY), AbStore::new(flash)) else {
        device_firmware::exit(false)
    };
    let client = Source([0xC1; 16]);
    let key = DeviceKey(KEY);
    let keyed = key.keyed_state();
    let grant = Text::of(&Token::issue(&key, 1_000, Digits::EIGHT));
    let warm_up = Text::of(&Token::issue(&key, 999, Digits::EIGHT));
    let wrong = Text::of(&Token::new(
        2_000,
        Token::issue(&key, 2_001, Digits::EIGHT).otp(),
    ));
    let echo = device.echo(&client, 0);
    // Warm-up: the first check after boot saves the budget reservation; measure the
    // steady state after it.
    let warm = device.present(&client, Some(echo.as_bytes()), warm_up.as_bytes(), 0);

    insn_mark_0();
    insn_mark_1();
    // SAFETY: a function of NOPs that returns; it touches no memory and no register
    // beyond the link register the call sets.
    #[allow(unsafe_code)] // the call into the assembly above
    unsafe {
        thousand_nops()
    };
    insn_mark_2();
    // Bare HMAC-SHA256 of the 8-byte counter with the 32-byte key, keying included.
    // (No expect: its Debug formatting would link core::fmt into the image.)
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(black_box(&KEY)) else {
        device_firmware::exit(false)
    };
    mac.update(&black_box(1_000u64).to_be_bytes());
    black_box(mac.finalize().into_bytes());
    insn_mark_3();
    // Bare HMAC-SHA256 from the keyed state (what a device with a fixed key computes:
    // protocol's HmacSha256Keyed, its two precomputed chaining values).
    black_box(black_box(&keyed).mac(&[&black_box(1_000u64).to_be_bytes()]));
    insn_mark_4();
    // The token check: parse the text, one HMAC for the named counter, compare.
    let token = Token::parse_bytes(black_box(grant.as_bytes()));
    black_box(token.map(|t| t.matches_state(black_box(&keyed))).ok());
    insn_mark_5();
    // The device's whole handling of a request: Echo, parse, back-off, window, budget,
    // the check, and the state saved to the (RAM-modelled) flash before the grant.
    let granted = device.present(
        &client,
        Some(echo.as_bytes()),
        black_box(grant.as_bytes()),
        0,
    );
    insn_mark_6();
    // A wrong token (a reservation is held: no flash write).
    let failed = device.present(
        &client,
        Some(echo.as_bytes()),
        black_box(wrong.as_bytes()),
        0,
    );
    insn_mark_7();
    // A request without Echo (a spoofer's): answered with an Echo, nothing checked.
    let spoofed = device.present(&Source([9; 16]), None, black_box(wrong.as_bytes()), 0);
    insn_mark_8();

    let ok = warm.is_ok() && granted.is_ok() && failed.is_err() && spoofed.is_err();
    say!("regions ran as expected: ", ok);
    say!(
        "stack high water ",
        device_firmware::stack_high_water(),
        " bytes, static RAM ",
        device_firmware::static_ram(),
        " bytes (one device: boot and 5 checks)"
    );
    device_firmware::exit(ok)
}
