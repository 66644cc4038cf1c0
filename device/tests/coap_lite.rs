//! The device's CoAP codec against an independent implementation, coap-lite (which the
//! simulator used before the device crate had its own, no_std codec).
use device::{status_request, token_request, AbStore, CoapDevice, Device, Provision, RamFlash};
use protocol::hotp::{DeviceKey, Digits, Token};
use std::net::SocketAddr;

const KEY: [u8; 32] = [0x17; 32];

fn boot() -> CoapDevice<AbStore<RamFlash<512>>> {
    let p = Provision::new("lock-1", DeviceKey(KEY));
    let device = Device::boot(p.device_config(), AbStore::new(RamFlash::new())).expect("boot");
    CoapDevice::new(device, p.slot_ms())
}

fn token(counter: u64) -> Token {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
}

fn from() -> SocketAddr {
    "192.0.2.1:40000".parse().expect("addr")
}

/// The device's own CoAP codec against an independent implementation (coap-lite, which
/// the simulator used before): requests it writes read back field by field, requests
/// coap-lite writes are answered, and every answer is byte for byte what coap-lite
/// writes for the same message (so the answers are the ones the simulator sent before).
#[test]
fn the_wire_format_agrees_with_coap_lite() {
    use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
    let echo = [9u8; 9];
    let ours = token_request(0x1234, b"tk", "7:12345678", Some(&echo));
    let p = Packet::from_bytes(&ours).expect("coap-lite reads it");
    assert_eq!(p.header.get_type(), MessageType::Confirmable);
    assert_eq!(p.header.code, MessageClass::Request(RequestType::Post));
    assert_eq!((p.header.message_id, p.get_token()), (0x1234, &b"tk"[..]));
    let values = |o| {
        p.get_option(o)
            .map(|l| l.iter().cloned().collect::<Vec<_>>())
    };
    assert_eq!(values(CoapOption::UriPath), Some(vec![b"otp".to_vec()]));
    assert_eq!(values(CoapOption::ContentFormat), Some(vec![vec![]]));
    assert_eq!(values(CoapOption::Unknown(252)), Some(vec![echo.to_vec()]));
    assert_eq!(p.payload, b"7:12345678");
    assert_eq!(p.to_bytes().expect("bytes"), ours, "the same encoding");
    let status = Packet::from_bytes(&status_request(7, b"s")).expect("reads");
    assert_eq!(status.header.code, MessageClass::Request(RequestType::Get));
    assert_eq!(
        status.to_bytes().expect("bytes"),
        status_request(7, b"s"),
        "the same encoding"
    );

    let mut device = boot();
    let lite = |id: u16, method, path: &str, payload: &[u8], echo: Option<&[u8]>, con| {
        let mut p = Packet::new();
        p.header.set_version(1);
        p.header.set_type(if con {
            MessageType::Confirmable
        } else {
            MessageType::NonConfirmable
        });
        p.header.code = MessageClass::Request(method);
        p.header.message_id = id;
        p.set_token(vec![1, 2, 3, 4]);
        p.add_option(CoapOption::UriPath, path.as_bytes().to_vec());
        if let Some(e) = echo {
            p.add_option(CoapOption::Unknown(252), e.to_vec());
        }
        p.payload = payload.to_vec();
        p.to_bytes().expect("bytes")
    };
    let t0 = token(0).to_string();
    let wrong = format!("5:{:08}", (token(5).otp().value() + 1) % 100_000_000);
    let mut answers = Vec::new();
    let (first, _) = device
        .handle(
            from(),
            &lite(1, RequestType::Post, "otp", t0.as_bytes(), None, true),
            0,
        )
        .expect("answer");
    let e = Packet::from_bytes(&first).expect("reads");
    let echo = e
        .get_option(CoapOption::Unknown(252))
        .and_then(|l| l.front().cloned())
        .expect("an Echo");
    answers.push((
        first,
        ResponseType::Unauthorized,
        MessageType::Acknowledgement,
    ));
    let requests: [(Vec<u8>, ResponseType, MessageType); 6] = [
        (
            lite(
                2,
                RequestType::Post,
                "otp",
                t0.as_bytes(),
                Some(&echo),
                true,
            ),
            ResponseType::Changed,
            MessageType::Acknowledgement,
        ),
        (
            lite(
                3,
                RequestType::Post,
                "otp",
                t0.as_bytes(),
                Some(&echo),
                false,
            ),
            ResponseType::Forbidden,
            MessageType::NonConfirmable,
        ),
        (
            lite(4, RequestType::Post, "otp", b"12ab", Some(&echo), true),
            ResponseType::BadRequest,
            MessageType::Acknowledgement,
        ),
        (
            lite(5, RequestType::Get, "status", b"", None, true),
            ResponseType::Content,
            MessageType::Acknowledgement,
        ),
        (
            lite(6, RequestType::Put, "otp", b"", None, true),
            ResponseType::MethodNotAllowed,
            MessageType::Acknowledgement,
        ),
        (
            lite(7, RequestType::Get, "nothing", b"", None, true),
            ResponseType::NotFound,
            MessageType::Acknowledgement,
        ),
    ];
    for (request, code, kind) in requests {
        let (answer, _) = device.handle(from(), &request, 1_000).expect("answer");
        answers.push((answer, code, kind));
    }
    // Five wrong tokens from one source: three are free, the fourth starts the back-off,
    // the fifth is throttled (4.29 + Max-Age).
    for id in 10..14 {
        let r = lite(
            id,
            RequestType::Post,
            "otp",
            wrong.as_bytes(),
            Some(&echo),
            true,
        );
        let (answer, _) = device.handle(from(), &r, 1_000).expect("answer");
        answers.push((
            answer,
            ResponseType::Forbidden,
            MessageType::Acknowledgement,
        ));
    }
    let r = lite(
        14,
        RequestType::Post,
        "otp",
        wrong.as_bytes(),
        Some(&echo),
        true,
    );
    let (answer, _) = device.handle(from(), &r, 1_000).expect("answer");
    let p = Packet::from_bytes(&answer).expect("reads");
    assert_eq!(
        p.get_option(CoapOption::MaxAge)
            .and_then(|l| l.front().cloned()),
        Some(vec![60]),
        "Max-Age 60 s"
    );
    answers.push((
        answer,
        ResponseType::TooManyRequests,
        MessageType::Acknowledgement,
    ));
    for (answer, code, kind) in answers {
        let p = Packet::from_bytes(&answer).expect("coap-lite reads the answer");
        assert_eq!(p.header.code, MessageClass::Response(code));
        assert_eq!(p.header.get_type(), kind);
        assert_eq!(p.get_token(), [1, 2, 3, 4]);
        assert_eq!(
            p.to_bytes().expect("bytes"),
            answer,
            "not coap-lite's encoding: {:?}",
            String::from_utf8_lossy(&p.payload)
        );
    }
}
