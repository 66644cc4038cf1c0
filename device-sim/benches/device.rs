//! The device's OTP check (what a microcontroller does per slot) next to one bare
//! HMAC-SHA256 of the same 8-byte counter. Writes `bench/device.md`.
//!
//!     cargo bench -p device-sim
use criterion::{black_box, Criterion};
use hmac::digest::KeyInit;
use hmac::Mac;
use protocol::hotp::{hotp, Digits, HmacSha256, HotpVerifier};
use std::fmt::Write as _;
use std::time::Duration;

const KEY: [u8; 32] = [0x33; 32];

/// Mean time of `f` per call, as criterion measured it.
fn time(c: &mut Criterion, name: &str, mut f: impl FnMut()) -> f64 {
    let mut mean = 0.0;
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                f();
            }
            let elapsed = start.elapsed();
            mean = elapsed.as_nanos() as f64 / iters as f64;
            elapsed
        })
    });
    mean
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let digits = Digits::new(8).expect("8");
    let bare = time(&mut c, "bare_hmac_sha256_8_bytes", || {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&KEY).expect("any key");
        mac.update(&black_box(7u64).to_be_bytes());
        black_box(mac.finalize());
    });
    let mut rows = Vec::new();
    // The device's check is HotpVerifier::verify on its state (Device::present adds a
    // store write and throttle bookkeeping). Each call starts from the same state: the
    // next OTP in order (the common case), or one skipped counter in the history.
    for window in [1u32, 4, 16] {
        let state = HotpVerifier::<HmacSha256>::new(1_000, window, digits).expect("verifier");
        let otp = hotp::<HmacSha256>(&KEY, 1_000, digits);
        let mean = time(&mut c, &format!("verify_in_order_window_{window}"), || {
            let mut v = state.clone();
            black_box(v.verify(&KEY, black_box(&otp)).ok());
        });
        rows.push((format!("verify the next OTP, window {window}"), mean));
    }
    let mut skipped = HotpVerifier::<HmacSha256>::new(1_000, 4, digits).expect("verifier");
    skipped
        .verify(&KEY, &hotp::<HmacSha256>(&KEY, 1_001, digits))
        .expect("skip one");
    let late = hotp::<HmacSha256>(&KEY, 1_000, digits);
    let mean = time(&mut c, "verify_skipped_counter_window_4", || {
        let mut v = skipped.clone();
        black_box(v.verify(&KEY, black_box(&late)).ok());
    });
    rows.push(("verify a skipped (out-of-order) OTP, window 4".into(), mean));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Device OTP check\n\n`cargo bench -p device-sim`, {} on this machine (release, x86_64; \
         a microcontroller is slower). Goal: under 5 us.\n",
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    let _ = writeln!(out, "| operation | mean | ratio to one bare HMAC-SHA256 |");
    let _ = writeln!(out, "| --- | ---: | ---: |");
    let _ = writeln!(
        out,
        "| bare HMAC-SHA256 of 8 bytes | {:.2} us | 1.00x |",
        bare / 1e3
    );
    for (name, mean) in rows {
        let _ = writeln!(
            out,
            "| {name} | {:.2} us | {:.2}x |",
            mean / 1e3,
            mean / bare
        );
    }
    print!("{out}");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench");
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(format!("{dir}/device.md"), out);
}
