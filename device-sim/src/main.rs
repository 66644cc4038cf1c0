//! `slotpay-device`: a simulated slotpay device on CoAP/UDP. Grants one slot per valid
//! token and logs every actuation.
//!
//!     slotpay-device --provision lock-1.toml --state-file lock-1.state [--listen ADDR]
//!
//! The provisioning file (`device::Provision`) is the one the AS reads for the same
//! device. `--id/--key-file` with optional `--digits/--window/--slot-seconds` build the
//! same settings from flags instead, and `--write-provision FILE` writes them as a
//! provisioning file and exits. `--write-flash FILE` writes the same settings as the
//! firmware's flash image (device-sim/firmware: the state pages erased, the provisioning
//! page) and exits.
mod file_store;

use anyhow::{bail, Context, Result};
use clap::Parser;
use device::{CoapDevice, Device, Event, Provision, DEFAULT_DIGITS, DEFAULT_SLOT_SECONDS};
use file_store::FileCounterStore;
use protocol::hotp::{DeviceKey, Digits, DEFAULT_WINDOW};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(version, about = "A simulated slotpay device speaking CoAP over UDP")]
struct Args {
    /// The device's provisioning file (TOML: id, key, digits, slot_seconds, window,
    /// throttle), shared with the AS.
    #[arg(long, conflicts_with_all = ["id", "key_file", "digits", "window", "slot_seconds"])]
    provision: Option<PathBuf>,
    /// The device's name (as in the AS configuration), without --provision.
    #[arg(long)]
    id: Option<String>,
    /// File holding the 32-byte key shared with the AS, as hex, without --provision.
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[arg(long)]
    digits: Option<u8>,
    /// Replay window W: a token stays good until one W counters above it is granted.
    #[arg(long)]
    window: Option<u32>,
    /// Seconds of access one token grants.
    #[arg(long)]
    slot_seconds: Option<u64>,
    /// Write the settings given by flags to this provisioning file and exit.
    #[arg(long, conflicts_with = "provision")]
    write_provision: Option<PathBuf>,
    /// Write the settings (from --provision or the flags) as the firmware's flash image
    /// and exit.
    #[arg(long, conflicts_with = "write_provision")]
    write_flash: Option<PathBuf>,
    /// Where the state (replay window, throttle budget) is persisted.
    #[arg(long, required_unless_present_any = ["write_provision", "write_flash"])]
    state_file: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:5683")]
    listen: SocketAddr,
}

fn provision(args: &Args) -> Result<Provision> {
    if let Some(path) = &args.provision {
        return Provision::read(path).with_context(|| format!("read {}", path.display()));
    }
    let (Some(id), Some(key_file)) = (&args.id, &args.key_file) else {
        bail!("give --provision FILE, or --id and --key-file");
    };
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("read {}", key_file.display()))?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x")).context("key file is not hex")?;
    let mut provision = Provision::new(id.clone(), DeviceKey::from_slice(&bytes)?);
    provision.digits =
        Digits::new(args.digits.unwrap_or(DEFAULT_DIGITS.get())).context("--digits")?;
    provision.window = args.window.unwrap_or(DEFAULT_WINDOW);
    provision.slot_seconds = args.slot_seconds.unwrap_or(DEFAULT_SLOT_SECONDS);
    provision.validate()?;
    Ok(provision)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let provision = provision(&args)?;
    if let Some(path) = &args.write_provision {
        provision.write(path)?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    if let Some(path) = &args.write_flash {
        write_private(path, &provision.flash_image())
            .with_context(|| format!("write {}", path.display()))?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    let state_file = args.state_file.clone().context("--state-file")?;
    let device = Device::boot(
        provision.device_config(),
        FileCounterStore::new(&state_file),
    )
    .map_err(|e| anyhow::anyhow!("boot: {e}"))?;
    let mut coap = CoapDevice::new(device, provision.slot_ms());
    let socket = UdpSocket::bind(args.listen).with_context(|| format!("bind {}", args.listen))?;
    println!(
        "device {} listening on coap://{} (next counter {}, window {}, {} digits, boot {})",
        provision.id,
        socket.local_addr()?,
        coap.device.next_counter(),
        provision.window,
        provision.digits.get(),
        coap.device.boots()
    );
    let start = Instant::now();
    let mut buf = [0u8; 1280];
    loop {
        let (len, peer) = socket.recv_from(&mut buf).context("receive")?;
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let Some((response, event)) = coap.handle(peer, &buf[..len], now_ms) else {
            continue;
        };
        match event {
            Event::Granted {
                counter,
                active_until_ms,
            } => println!(
                "device {} ACTUATE on for {} s (counter {counter}, client {peer})",
                provision.id,
                (active_until_ms - now_ms) / 1000
            ),
            Event::Refused(why) => println!("device {} refused {peer}: {why}", provision.id),
            Event::Duplicate => println!("device {} repeated its answer to {peer}", provision.id),
            Event::Other => {}
        }
        if let Err(e) = socket.send_to(&response, peer) {
            eprintln!("device {}: reply to {peer}: {e}", provision.id);
        }
    }
}

/// Writes `bytes` to a new file readable by its owner only (it holds the device key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
