//! One device as it ships, without a network: boots from its flash file (provisioning
//! page, state pages), then answers five CoAP requests a client would send, through the
//! same `CoapDevice` the networked image and the simulator run, and reports its stack
//! and static RAM. The size budget (bench/firmware.md) is measured on this image.
//!
//!     qemu-system-arm ... -semihosting-config enable=on,target=native,arg=one,arg=FLASH
//!
//! The requests' tokens are issued here from the provisioned key (a client's work, the
//! one piece of this image a device would not carry).
#![no_std]
#![no_main]

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use cortex_m_rt::entry;
use device::{token_request_into, AnswerRef, MAX_ANSWER_LEN};
use device_firmware::checks::Text;
use device_firmware::{say, serve, Bytes};
use protocol::hotp::{Otp, Token};

/// What the client sends, and the code and first word it must get back.
const STEPS: [(&str, u8, &[u8]); 5] = [
    ("no Echo", 0x81, b"echo"),
    ("token with the Echo", 0x44, b"granted"),
    ("the same token again", 0x83, b"used"),
    ("a wrong token", 0x83, b"invalid"),
    ("GET /status", 0x45, b"next_counter"),
];

#[entry]
fn main() -> ! {
    device_firmware::paint_stack();
    let coap = match serve::boot() {
        Ok(c) => c,
        Err(e) => fail(e.describe()),
    };
    let tokens = tokens(&coap.device);
    let ok = requests(coap, &tokens);
    report();
    device_firmware::exit(ok)
}

/// The client's side, here for the demonstration: it holds the key the AS holds and
/// issues the next counter's token and a wrong one. (Not inlined, nor are the other
/// pieces: each frame leaves the stack before the device handles a request.)
#[inline(never)]
fn tokens(device: &device::Device<serve::Store>) -> [Text; 2] {
    let Some(config) = device.config() else {
        fail("not booted")
    };
    let (key, digits) = (&config.key, config.digits);
    let counter = device.next_counter();
    let good = Text::of(&Token::issue(key, counter, digits));
    let right = Token::issue(key, counter + 1, digits).otp();
    let other = Otp::new(
        (right.value() + 1) % 10u32.pow(u32::from(digits.get())),
        digits,
    );
    [
        good,
        Text::of(&Token::new(counter + 1, other.unwrap_or(right))),
    ]
}

/// The five requests and their checks.
#[inline(never)]
fn requests(coap: &mut serve::Coap, tokens: &[Text; 2]) -> bool {
    let mut echo = [0u8; device::ECHO_LEN];
    let mut ok = true;
    for (i, step) in STEPS.iter().enumerate() {
        ok &= request(coap, i, step, tokens, &mut echo);
    }
    ok
}

/// Request `i` of [`STEPS`]: sent, answered by the device, its answer checked.
#[inline(never)]
fn request(
    coap: &mut serve::Coap,
    i: usize,
    (what, code, word): &(&str, u8, &[u8]),
    [good, bad]: &[Text; 2],
    echo: &mut [u8; device::ECHO_LEN],
) -> bool {
    let client = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 40_000));
    let mut request = [0u8; 96];
    let id = i as u16;
    let len = match i {
        0 => token_request_into(&mut request, id, b"one", good.as_bytes(), None),
        1 | 2 => token_request_into(&mut request, id, b"one", good.as_bytes(), Some(&echo[..])),
        3 => token_request_into(&mut request, id, b"one", bad.as_bytes(), Some(&echo[..])),
        _ => device::status_request_into(&mut request, id, b"one"),
    };
    let Some(len) = len else {
        fail("request too long")
    };
    let mut answer = [0u8; MAX_ANSWER_LEN];
    let Some((n, _)) = coap.handle_into(client, &request[..len], 0, &mut answer) else {
        fail("no answer")
    };
    let Some(a) = AnswerRef::parse(&answer[..n]) else {
        fail("not an answer")
    };
    if let Some(e) = a.echo.filter(|e| e.len() == echo.len()) {
        echo.copy_from_slice(e);
    }
    let right = a.code == *code && a.word() == *word;
    show(right, what, a.payload);
    right
}

/// One line of the log: the step and the answer's payload.
#[inline(never)]
fn show(right: bool, what: &str, payload: &[u8]) {
    say!(
        if right { "ok   " } else { "FAIL " },
        what,
        ": ",
        Bytes(payload)
    );
}

/// The stack's and static RAM's high water.
#[inline(never)]
fn report() {
    say!(
        "stack high water ",
        device_firmware::stack_high_water(),
        " bytes, static RAM ",
        device_firmware::static_ram(),
        " bytes (one device: boot from flash, 5 CoAP requests)"
    );
}

#[inline(never)]
fn fail(why: &str) -> ! {
    say!("FAIL ", why);
    device_firmware::exit(false)
}
