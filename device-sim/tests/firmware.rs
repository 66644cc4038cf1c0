//! The device firmware under QEMU, served over its emulated NIC: the firmware image
//! (device-sim/firmware, bin `networked`, built for the Cortex-M0) runs on QEMU's
//! mps2-an385, whose LAN9118 it drives with smoltcp, reachable from here through QEMU's
//! user networking; the host provisions a key, issues tokens as the AS does and
//! presents them with the device crate's client. Its flash is a host file, so a second
//! QEMU run boots from what the first saved, and killing QEMU is a power cut.
//!
//! Needs qemu-system-arm and the image: `scripts/firmware.sh check` builds it and runs
//! these with `SLOTPAY_FIRMWARE_ELF` set (they are ignored otherwise).
use device::{
    parse_answer, token_request, ClientConfig, DeviceClient, Outcome, PresentError, Provision,
};
use protocol::hotp::{DeviceKey, Digits, Token};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: [u8; 32] = [0x5C; 32];

fn elf() -> PathBuf {
    PathBuf::from(
        std::env::var_os("SLOTPAY_FIRMWARE_ELF")
            .expect("SLOTPAY_FIRMWARE_ELF: the firmware image (scripts/firmware.sh sets it)"),
    )
}

fn token(counter: u64) -> Token {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
}

fn wrong(counter: u64) -> Token {
    let otp = token(counter).otp();
    Token::new(
        counter,
        protocol::hotp::Otp::new((otp.value() + 1) % 100_000_000, Digits::EIGHT).expect("otp"),
    )
}

/// QEMU running the firmware, killed (a power cut) when dropped; its log lines kept.
struct Firmware {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Firmware {
    /// Boots the image on the flash file `flash`, forwarding a free local UDP port to the
    /// firmware's CoAP port; returns once it listens.
    fn start(flash: &Path) -> Self {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let mut child = Command::new("qemu-system-arm")
            .args(["-cpu", "cortex-m3", "-machine", "mps2-an385"])
            .args(["-nographic", "-monitor", "none"])
            .arg("-semihosting-config")
            .arg(format!(
                "enable=on,target=native,arg=networked,arg={}",
                flash.display()
            ))
            .arg("-nic")
            .arg(format!(
                "user,hostfwd=udp:127.0.0.1:{}-10.0.2.15:5683",
                addr.port()
            ))
            .arg("-kernel")
            .arg(elf())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-arm");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("log").push(line);
            }
        });
        let firmware = Firmware { child, addr, log };
        firmware.wait_for("listening on coap://", Duration::from_secs(30));
        firmware
    }

    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(text)) {
                return line;
            }
            assert!(
                start.elapsed() < timeout,
                "the firmware did not print {text:?}: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    fn client(&self) -> DeviceClient {
        DeviceClient::new(
            self.addr,
            ClientConfig {
                ack_timeout: Duration::from_millis(500),
                max_retransmit: 3,
                max_throttle_wait: Duration::ZERO,
            },
        )
        .expect("client socket")
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn provisioned(dir: &Path, p: &Provision) -> PathBuf {
    let flash = dir.join("flash.bin");
    std::fs::write(&flash, p.flash_image()).expect("flash file");
    flash
}

/// One exchange by hand: `datagram` to the firmware, its answer back.
fn exchange(firmware: &Firmware, socket: &UdpSocket, datagram: &[u8]) -> Vec<u8> {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    for _ in 0..6 {
        socket.send_to(datagram, firmware.addr).expect("send");
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no answer from the firmware: {:?}", firmware.lines());
}

#[test]
#[ignore = "needs qemu-system-arm and SLOTPAY_FIRMWARE_ELF: scripts/firmware.sh check runs it"]
fn the_firmware_serves_the_device_protocol_over_its_emulated_nic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flash = provisioned(dir.path(), &Provision::new("lock-fw", DeviceKey(KEY)));
    let firmware = Firmware::start(&flash);
    assert!(firmware.lines()[0].contains("next counter 0, window 1024, 8 digits, boot 1"));

    // Without an Echo: 4.01 with one, nothing checked (RFC 9175).
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let first = exchange(
        &firmware,
        &socket,
        &token_request(7, b"fw", &token(0).to_string(), None),
    );
    let Some(Outcome::EchoRequired(echo)) = parse_answer(&first).map(|a| a.outcome) else {
        panic!("no Echo: {first:?}");
    };
    assert_eq!(echo.len(), 9);
    // With it: granted; a retransmission (same message ID) gets the same bytes, not a
    // second check.
    let request = token_request(8, b"fw", &token(0).to_string(), Some(&echo));
    let granted = exchange(&firmware, &socket, &request);
    assert_eq!(
        parse_answer(&granted).map(|a| a.outcome),
        Some(Outcome::Granted {
            counter: 0,
            seconds: 60
        })
    );
    assert_eq!(exchange(&firmware, &socket, &request), granted);
    firmware.wait_for("repeated its answer", Duration::from_secs(5));

    // The client: a later token, the first one replayed, a wrong one.
    let mut client = firmware.client();
    assert!(matches!(
        client.present(&token(2)),
        Ok(device::Granted { counter: 2, .. })
    ));
    assert!(matches!(
        client.present(&token(0)),
        Err(PresentError::Used(0))
    ));
    assert!(matches!(
        client.present(&wrong(1)),
        Err(PresentError::Invalid)
    ));
    // Counter 1 was skipped, not used: still good once.
    assert!(matches!(
        client.present(&token(1)),
        Ok(device::Granted { counter: 1, .. })
    ));
    assert_eq!(client.status().expect("status").next_counter, 3);
    assert_eq!(
        firmware
            .lines()
            .iter()
            .filter(|l| l.contains("ACTUATE"))
            .count(),
        3
    );

    // Kill QEMU (a power cut) and boot again from the same flash file: every grant was
    // saved before its answer left, so they are all still used; the boot count rose.
    drop(firmware);
    let firmware = Firmware::start(&flash);
    assert!(
        firmware.lines()[0].contains("next counter 3, window 1024, 8 digits, boot 2"),
        "{:?}",
        firmware.lines()
    );
    let mut client = firmware.client();
    for c in 0..3 {
        assert!(matches!(client.present(&token(c)), Err(PresentError::Used(n)) if n == c));
    }
    assert!(matches!(
        client.present(&token(3)),
        Ok(device::Granted { counter: 3, .. })
    ));
    // For scripts/firmware.sh bench (shown with --nocapture).
    if let Some(line) = firmware
        .lines()
        .iter()
        .rev()
        .find(|l| l.starts_with("stack high water"))
    {
        println!("firmware: {line}");
    }
}

/// The global guessing budget lives in the flash too: a reboot (a new QEMU on the same
/// flash file) gives no new budget.
#[test]
#[ignore = "needs qemu-system-arm and SLOTPAY_FIRMWARE_ELF: scripts/firmware.sh check runs it"]
fn the_firmwares_guessing_budget_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Provision::new("lock-fw", DeviceKey(KEY));
    // No per-source back-off in the way; a budget of 4 failures, one more a minute.
    p.throttle.free_failures = 1000;
    p.throttle.global_burst = 4;
    p.throttle.reserve = 2;
    let flash = provisioned(dir.path(), &p);
    let firmware = Firmware::start(&flash);
    let mut client = firmware.client();
    for c in 0..4 {
        assert!(matches!(
            client.present(&wrong(c)),
            Err(PresentError::Invalid)
        ));
    }
    assert!(matches!(
        client.present(&token(0)),
        Err(PresentError::Throttled { .. })
    ));
    drop(firmware);
    let firmware = Firmware::start(&flash);
    let mut client = firmware.client();
    assert!(matches!(
        client.present(&token(0)),
        Err(PresentError::Throttled { retry_ms }) if retry_ms > 1_000
    ));
}
