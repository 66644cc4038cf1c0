//! The HTTP API over a real loopback socket, with the chain read from an in-memory map
//! (the node end-to-end tests cover the real chain): codes, idempotent retries, the
//! stale-total answer for group races, body limits, slow and excess clients, metrics.
use protocol::hotp::Digits;
use protocol::signature::keys::{self, SecretKey};
use protocol::{Authority, ChannelId, ChannelView, Domain, Receipt, Tariff};
use slotpay_as::api::{ApiError, PurchaseBody, PurchaseReply};
use slotpay_as::chain::{ChainError, ChainRead, ChannelReader};
use slotpay_as::config::Limits;
use slotpay_as::ledger::Ledger;
use slotpay_as::sale::{DeviceKey, Seller};
use slotpay_as::server::{router_with, Service, MAX_BODY_BYTES};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const AS: [u8; 32] = [0xA5; 32];
const DOMAIN: Domain = Domain {
    genesis_hash: [3; 32],
    contract: [4; 32],
};

struct MapChain(BTreeMap<u64, ChannelView>);

impl ChannelReader for MapChain {
    async fn read_channel(&self, id: ChannelId) -> Result<ChainRead, ChainError> {
        Ok(ChainRead {
            block: 10,
            channel: self.0.get(&id.0).copied(),
        })
    }
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

/// Serves the AS on an ephemeral loopback port; returns its base URL.
fn serve(dir: &std::path::Path) -> String {
    serve_with(dir, Limits::default())
}

fn serve_with(dir: &std::path::Path, limits: Limits) -> String {
    let client = secret(1);
    let mut channels = BTreeMap::new();
    channels.insert(
        1,
        ChannelView {
            payee: AS,
            authority: Authority::Delegate(keys::public_key(&client)),
            deposit: 100,
            expires_at: 1_000,
        },
    );
    let mut ledger = Ledger::open(&dir.join("as.db")).expect("ledger");
    ledger.register_device("lock").expect("device");
    let mut devices = BTreeMap::new();
    devices.insert(
        "lock".to_owned(),
        DeviceKey {
            key: vec![9; 32],
            digits: Digits::new(8).expect("8"),
        },
    );
    let service = Arc::new(Service::new(
        Seller {
            our_account: AS,
            domain: DOMAIN,
            tariff: Tariff {
                price: 10,
                expiry_margin: 5,
            },
            devices,
        },
        Arc::new(Mutex::new(ledger)),
        MapChain(channels),
        60,
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            slotpay_as::server::serve(
                listener,
                router_with(service, limits),
                limits,
                std::future::pending(),
            )
            .await
            .expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("address"))
}

fn purchase(base: &str, body: &serde_json::Value) -> Result<PurchaseReply, (u16, ApiError)> {
    match ureq::post(&format!("{base}/v1/purchase")).send_json(body) {
        Ok(r) => Ok(r.into_json().expect("reply")),
        Err(ureq::Error::Status(status, r)) => Err((status, r.into_json().expect("error body"))),
        Err(e) => panic!("transport: {e}"),
    }
}

fn body(amount: u128, signer: &SecretKey) -> serde_json::Value {
    let receipt = Receipt {
        channel: ChannelId(1),
        amount,
    };
    serde_json::to_value(PurchaseBody::new(
        "lock",
        &receipt,
        &receipt.sign(&DOMAIN, signer),
        None,
    ))
    .expect("json")
}

#[test]
fn purchases_retries_and_refusals_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = serve(dir.path());
    let client = secret(1);
    let first = purchase(&base, &body(20, &client)).expect("two slots");
    assert_eq!(
        (first.slots, first.first_counter, first.otps.len()),
        (2, 0, 2)
    );
    assert!(first.fresh);
    let again = purchase(&base, &body(20, &client)).expect("retry");
    assert!(!again.fresh);
    assert_eq!(again.otps, first.otps);

    let (status, stale) = purchase(&base, &body(10, &client)).expect_err("stale");
    assert_eq!((status, stale.code.as_str()), (409, "stale_total"));
    assert_eq!(stale.current_total.as_deref(), Some("20"));
    let (status, e) = purchase(&base, &body(25, &client)).expect_err("partial slot");
    assert_eq!((status, e.code.as_str()), (422, "not_whole_slots"));
    let (status, e) = purchase(&base, &body(30, &secret(2))).expect_err("wrong key");
    assert_eq!((status, e.code.as_str()), (403, "unauthorized"));

    let mut bad = body(30, &client);
    bad["signature"] = "0x1234".into();
    let (status, e) = purchase(&base, &bad).expect_err("short signature");
    assert_eq!((status, e.code.as_str()), (400, "bad_request"));
    let mut bad = body(30, &client);
    bad["amount"] = "+30".into();
    assert_eq!(purchase(&base, &bad).expect_err("sign").0, 400);
    let mut bad = body(30, &client);
    bad["extra"] = 1.into();
    assert_eq!(purchase(&base, &bad).expect_err("unknown field").0, 400);
    let mut missing = body(30, &client);
    missing["channel"] = 2.into();
    let (status, e) = purchase(&base, &missing).expect_err("no channel");
    assert_eq!((status, e.code.as_str()), (404, "channel_not_found"));

    let huge = "x".repeat(MAX_BODY_BYTES + 1);
    match ureq::post(&format!("{base}/v1/purchase")).send_string(&huge) {
        Err(ureq::Error::Status(413, _)) => {}
        other => panic!("expected 413, got {other:?}"),
    }

    // Nothing above changed the ledger: the next purchase starts at total 20, counter 2.
    let next = purchase(&base, &body(30, &client)).expect("one more slot");
    assert_eq!((next.first_counter, next.total.as_str()), (2, "30"));
    let channel: serde_json::Value = ureq::get(&format!("{base}/v1/channels/1"))
        .call()
        .expect("channel")
        .into_json()
        .expect("json");
    assert_eq!(channel["total"], "30");
    assert_eq!(channel["authority"], "delegate");
    let metrics = ureq::get(&format!("{base}/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(metrics.contains("slotpay_purchases_total 2"), "{metrics}");
    assert!(
        metrics.contains("slotpay_purchase_retries_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("slotpay_refusals_total{code=\"stale_total\"} 1"),
        "{metrics}"
    );
}

/// Clients that trickle their headers or body are cut off with nothing changed, and
/// connections beyond the cap are closed at once; well-behaved clients are served
/// meanwhile.
#[test]
fn slow_and_excess_clients_are_cut_off() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = serve_with(
        dir.path(),
        Limits {
            header_timeout_ms: 300,
            request_timeout_ms: 500,
            max_connections: 3,
        },
    );
    let addr = base.trim_start_matches("http://").to_owned();
    let connect = || {
        let s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    };
    // Reads until the connection ends; returns what the server said and whether the
    // server closed it (rather than the client giving up after its 5 s read timeout,
    // which the server's sub-second limits leave far behind).
    let drain = |mut s: TcpStream| {
        let mut answer = Vec::new();
        // A reset (unread bytes when the server dropped the socket) is a close too.
        let closed = match s.read_to_end(&mut answer) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        (String::from_utf8_lossy(&answer).into_owned(), closed)
    };

    // Half a request line and headers, never finished.
    let mut slow_headers = connect();
    slow_headers
        .write_all(b"POST /v1/purchase HTTP/1.1\r\nHost: as\r\n")
        .expect("write");
    let (answer, closed) = drain(slow_headers);
    assert!(closed, "the server never cut off trickled headers");
    assert!(answer.is_empty() || answer.contains("408"), "{answer}");

    // Headers, then a body that never completes: 408 with the API's code.
    let mut slow_body = connect();
    slow_body
        .write_all(b"POST /v1/purchase HTTP/1.1\r\nHost: as\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"device\": ")
        .expect("write");
    let (answer, closed) = drain(slow_body);
    assert!(closed, "the server never cut off a trickled body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    // Three idle connections fill the cap: a fourth is closed at once, unanswered. (A
    // second AS with a longer header timeout, so the idle ones are surely still open.)
    let capped = serve_with(
        &{
            let capped_dir = dir.path().join("capped");
            std::fs::create_dir_all(&capped_dir).expect("dir");
            capped_dir
        },
        Limits {
            header_timeout_ms: 1_500,
            request_timeout_ms: 500,
            max_connections: 3,
        },
    );
    let addr = capped.trim_start_matches("http://").to_owned();
    let connect = || {
        let s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    };
    let idle: Vec<TcpStream> = (0..3).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = connect();
    let _ = extra.write_all(b"GET /v1/terms HTTP/1.1\r\nHost: as\r\n\r\n");
    let (answer, closed) = drain(extra);
    assert!(
        closed && answer.is_empty(),
        "over the cap yet kept or answered: {answer}"
    );
    // The idle ones are cut by the header timeout, which frees the cap.
    for s in idle {
        let (_, closed) = drain(s);
        assert!(closed, "an idle connection was never cut off");
    }
    let terms = ureq::get(&format!("{base}/v1/terms"))
        .call()
        .expect("served again");
    assert_eq!(terms.status(), 200);
    let ledger = Ledger::open(&dir.path().join("as.db")).expect("ledger");
    assert_eq!(
        ledger.total(ChannelId(1)).expect("total"),
        0,
        "nothing sold"
    );
}
