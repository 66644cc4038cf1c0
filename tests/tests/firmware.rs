//! The device firmware in the whole system: the payer opens a channel on a real chain,
//! the client buys slots with `slotpay pay` from the real AS, and the tokens are
//! presented to the firmware under QEMU (the Cortex-M0 image on mps2-an385, serving
//! CoAP over its emulated LAN9118) instead of the `slotpay-device` simulator; then the
//! firmware loses power and boots again from its flash.
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it), the firmware
//! image (scripts/firmware.sh check builds it) and qemu-system-arm.
use device::PresentError;
use protocol::hotp::{Digits, Token};
use protocol::ChannelId;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use tests::*;

const PRICE: u128 = 1_000_000_000;
const DEVICE: &str = "lock-fw";

fn pay(dir: &Path, as_url: &str, channel: u64, addr: SocketAddr, slots: u64) -> Value {
    let deployment = dir.join("deployment.json").display().to_string();
    let key = dir.join("delegate.key").display().to_string();
    slotpay(&[
        "pay",
        "--as",
        as_url,
        "--deployment",
        &deployment,
        "--channel",
        &channel.to_string(),
        "--device",
        DEVICE,
        "--coap",
        &addr.to_string(),
        "--key",
        &key,
        "--slots",
        &slots.to_string(),
        "--max-price",
        &PRICE.to_string(),
    ])
}

/// The firmware's token for `counter`: the AS's key for the device (index 0).
fn token(counter: u64) -> String {
    Token::issue(&device_key(0), counter, Digits::EIGHT).to_string()
}

#[test]
fn a_token_bought_with_slotpay_pay_is_granted_by_the_firmware() {
    let url = node_url();
    let dir = work_dir("firmware");
    deploy(&dir, &url);
    slotpay(&["keygen", &dir.join("delegate.key").display().to_string()]);
    let as_port = free_tcp_port();
    write_as_config(
        &dir,
        &url,
        as_port,
        &[DEVICE],
        &AsOptions {
            price: PRICE,
            ..AsOptions::default()
        },
    );
    let as_url = format!("http://127.0.0.1:{as_port}");
    let _as = start_as(&dir, &as_url);
    let addr = free_udp_addr();
    let mut firmware = start_firmware(&dir, DEVICE, addr);

    let client = dir.join("delegate.key").display().to_string();
    let opened = open_channel(
        &url,
        &dir.join("deployment.json"),
        20 * PRICE,
        500,
        20,
        &["delegate", "--client", &client],
    );
    let channel = opened["channel"].as_u64().expect("channel id");
    wait_for_channel(&as_url, ChannelId(channel));

    // Two slots bought and granted by the firmware; a token replayed is refused.
    let bought = pay(&dir, &as_url, channel, addr, 2);
    // The ledger's first counters (its generation in the top bits), in order.
    let first = bought["counters"][0].as_u64().expect("a counter");
    assert_eq!(bought["counters"], json!([first, first + 1]), "{bought}");
    assert_eq!(bought["refused"], json!([]), "{bought}");
    assert!(matches!(
        present(addr, &token(first)),
        Err(PresentError::Used(c)) if c == first
    ));

    // A power cut, then a boot from the flash: what it granted stays granted, and the
    // next slot bought is granted.
    firmware.kill9();
    let _firmware = start_firmware(&dir, DEVICE, addr);
    assert!(matches!(
        present(addr, &token(first + 1)),
        Err(PresentError::Used(c)) if c == first + 1
    ));
    let again = pay(&dir, &as_url, channel, addr, 1);
    assert_eq!(again["counters"], json!([first + 2]), "{again}");
    let log = std::fs::read_to_string(dir.join(format!("{DEVICE}.log"))).expect("log");
    assert_eq!(log.matches("ACTUATE").count(), 3, "{log}");
    assert!(log.contains("boot 2)"), "{log}");
}
