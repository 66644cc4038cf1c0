//! `slotpay-device`: a simulated slotpay device on CoAP/UDP. Grants one slot per valid
//! OTP and logs every actuation.
use anyhow::{Context, Result};
use clap::Parser;
use device_sim::coap::{CoapDevice, Event};
use device_sim::core::{Device, DeviceConfig, Throttle};
use device_sim::file_store::FileCounterStore;
use protocol::hotp::Digits;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(version, about = "A simulated slotpay device speaking CoAP over UDP")]
struct Args {
    /// The device's name (as in the AS configuration), for the log.
    #[arg(long)]
    id: String,
    /// File holding the 32-byte key shared with the AS, as hex.
    #[arg(long)]
    key_file: PathBuf,
    /// Where the counter is persisted.
    #[arg(long)]
    state_file: PathBuf,
    #[arg(long, default_value = "127.0.0.1:5683")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 8)]
    digits: u8,
    /// How many issued-but-unused OTPs the device looks ahead over.
    #[arg(long, default_value_t = 32)]
    window: u32,
    /// Seconds of access one OTP grants.
    #[arg(long, default_value_t = 60)]
    slot_seconds: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.key_file)
        .with_context(|| format!("read {}", args.key_file.display()))?;
    let key: [u8; 32] = hex::decode(text.trim().trim_start_matches("0x"))
        .context("key file is not hex")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key file must hold exactly 32 bytes"))?;
    let digits = Digits::new(args.digits).map_err(|e| anyhow::anyhow!("--digits: {e}"))?;
    let device = Device::boot(
        DeviceConfig {
            key,
            digits,
            window: args.window,
            throttle: Throttle::default(),
        },
        FileCounterStore::new(&args.state_file),
    )
    .map_err(|e| anyhow::anyhow!("boot: {e}"))?;
    let mut coap = CoapDevice {
        device,
        slot_ms: args.slot_seconds.saturating_mul(1000),
        active_until_ms: 0,
    };
    let socket = UdpSocket::bind(args.listen).with_context(|| format!("bind {}", args.listen))?;
    println!(
        "device {} listening on coap://{} (next counter {})",
        args.id,
        socket.local_addr()?,
        coap.device.next_counter()
    );
    let start = Instant::now();
    let mut buf = [0u8; 1280];
    loop {
        let (len, peer) = socket.recv_from(&mut buf).context("receive")?;
        let now_ms = start.elapsed().as_millis() as u64;
        let Some((response, event)) = coap.handle(&buf[..len], now_ms) else {
            continue;
        };
        match event {
            Event::Granted {
                counter,
                active_until_ms,
            } => println!(
                "device {} ACTUATE on for {} s (counter {counter}, client {peer})",
                args.id,
                (active_until_ms - now_ms) / 1000
            ),
            Event::Refused(why) => println!("device {} refused {peer}: {why}", args.id),
            Event::Other => {}
        }
        if let Err(e) = socket.send_to(&response, peer) {
            eprintln!("device {}: reply to {peer}: {e}", args.id);
        }
    }
}
