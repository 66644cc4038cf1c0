//! The device's token check on the host, next to one bare HMAC-SHA256 of the same
//! 8-byte counter. Writes `bench/device.md`. (The same operations counted in
//! instructions on Cortex-M cores: `scripts/firmware.sh bench`, bench/firmware.md.)
//!
//!     cargo bench -p device
use criterion::{black_box, Criterion};
use device::{CounterStore, Device, DeviceConfig, DeviceState, Source, Throttle};
use hmac::digest::KeyInit;
use hmac::Mac;
use protocol::hotp::{DeviceKey, Digits, HmacSha256, Token};
use std::fmt::Write as _;
use std::time::Duration;

const KEY: [u8; 32] = [0x33; 32];

/// Storage in RAM: what the core costs without a flash write's latency.
struct Ram(Option<DeviceState>);

impl CounterStore for Ram {
    type Error = ();
    fn load(&mut self) -> Result<Option<DeviceState>, ()> {
        Ok(self.0)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), ()> {
        self.0 = Some(*state);
        Ok(())
    }
}

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
    let key = DeviceKey(KEY);
    // What the device keeps: the key's two precomputed SHA-256 chaining values.
    let keyed = key.keyed_state();
    let bare = time(&mut c, "bare_hmac_sha256_8_bytes", || {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(black_box(&KEY)).expect("any key");
        mac.update(&black_box(7u64).to_be_bytes());
        black_box(mac.finalize());
    });
    let mut rows = Vec::new();
    let mean = time(&mut c, "bare_hmac_sha256_keyed_state", || {
        black_box(black_box(&keyed).mac(&[&black_box(7u64).to_be_bytes()]));
    });
    rows.push((
        "bare HMAC-SHA256 from the keyed state (the device keys once)",
        mean,
    ));
    let text = Token::issue(&key, 1_000, Digits::EIGHT).to_string();
    let mean = time(&mut c, "token_check", || {
        let token = Token::parse(black_box(&text)).expect("token");
        black_box(token.matches_state(&keyed));
    });
    rows.push((
        "token check: parse, one keyed HMAC for the named counter, compare",
        mean,
    ));
    // The whole request: each iteration presents the next counter (a grant, with the
    // state saved to RAM), or a wrong token from a source that never backs off long.
    let config = DeviceConfig {
        key: key.clone(),
        digits: Digits::EIGHT,
        window: 1024,
        throttle: Throttle {
            global_per_hour: 3_600_000,
            global_burst: u32::MAX,
            reserve: 1 << 20,
            free_failures: u32::MAX,
            ..Throttle::default()
        },
    };
    let mut device = Device::boot(config, Ram(None)).expect("boot");
    let client = Source([1; 16]);
    let echo = device.echo(&client, 0);
    // Grants are not repeatable (each counter once), so they are timed directly: 100,000
    // fresh tokens, in order.
    let tokens: Vec<String> = (0..100_000u64)
        .map(|c| Token::issue(&key, c, Digits::EIGHT).to_string())
        .collect();
    let start = std::time::Instant::now();
    for text in &tokens {
        let granted = device.present(&client, Some(echo.as_bytes()), text.as_bytes(), 0);
        assert!(granted.is_ok(), "{granted:?}");
    }
    let mean = start.elapsed().as_nanos() as f64 / tokens.len() as f64;
    rows.push((
        "device: whole request that grants (Echo, window, budget, token, state saved to RAM)",
        mean,
    ));
    let right = Token::issue(&key, 5_000_000, Digits::EIGHT).otp().value();
    let wrong = format!("5000000:{:08}", (right + 1) % 100_000_000);
    let mean = time(&mut c, "device_request_wrong_token", || {
        black_box(
            device
                .present(&client, Some(echo.as_bytes()), wrong.as_bytes(), 0)
                .err(),
        );
    });
    rows.push((
        "device: whole request with a wrong token (Echo, token; no write)",
        mean,
    ));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Device token check\n\n`cargo bench -p device`, {} on this machine (release, x86_64).\n\
         Instruction counts of the same operations on Cortex-M cores: bench/firmware.md.\n\
         The device computes one HMAC per token (for the counter the token names), with the\n\
         key's HMAC state computed once at boot; a request also checks its CoAP Echo (one\n\
         more keyed HMAC). Goal: a token check within 1.5x one bare HMAC-SHA256.\n",
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
        "| bare HMAC-SHA256 of 8 bytes, 32-byte key, keying included | {:.2} us | 1.00x |",
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
