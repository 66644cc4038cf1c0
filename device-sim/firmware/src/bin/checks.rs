//! Boots on the emulated Cortex-M, runs every on-target check, prints one line per
//! check over semihosting, and exits 0 only if all passed.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use device_firmware::checks::{self, Flash};
use device_firmware::say;

#[entry]
fn main() -> ! {
    device_firmware::paint_stack();
    let Some(flash) = cortex_m::singleton!(: Flash = Flash::new()) else {
        device_firmware::exit(false)
    };
    let Some(base) = cortex_m::singleton!(: [[u8; 512]; 2] = [[0xFF; 512]; 2]) else {
        device_firmware::exit(false)
    };
    let results = [
        ("rfc4226_appendix_d_sha1", checks::rfc4226_appendix_d()),
        (
            "hotp_sha256_python_values",
            checks::hotp_sha256_python_values(),
        ),
        (
            "replay_window_in_order_out_of_order_replayed_expired",
            checks::replay_window(flash),
        ),
        (
            "replay_window_jammed_by_unused",
            checks::jammed_by_unused(flash),
        ),
        (
            "throttle_spoofed_and_survives_reboot",
            checks::throttle_survives_reboot(flash),
        ),
        (
            "power_cut_during_counter_save",
            checks::power_cut_during_save(flash, base),
        ),
    ];
    let mut failed = 0u32;
    for (name, result) in results {
        match result {
            Ok(()) => say!("ok   ", name),
            Err(why) => {
                failed += 1;
                say!("FAIL ", name, ": ", why);
            }
        }
    }
    // The watermark of the deepest check (painted once, at boot).
    say!(
        "stack high water ",
        device_firmware::stack_high_water(),
        " bytes, static RAM ",
        device_firmware::static_ram(),
        " bytes"
    );
    say!(results.len(), " checks, ", failed, " failed");
    device_firmware::exit(failed == 0)
}
