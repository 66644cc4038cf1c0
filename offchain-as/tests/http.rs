//! The AS's HTTP API on a loopback socket, over a real SQLite ledger and a fake contract:
//! purchases, retries answered only to their buyer (also after the channel closed),
//! refusals that change nothing, justified totals, bounded work per request (concurrent
//! requests included), and clients that misbehave.
#![allow(clippy::result_large_err)] // test helpers return the API error as is
mod support;

use api::{
    routes, ApiError, AsClient, AsClientError, ErrorCode, PurchaseBody, PurchaseReply,
    RequestSecret,
};
use offchain_as::{Limits, MAX_BODY_BYTES};
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{DeviceKey, Token};
use protocol::keys::SecretKey;
use protocol::{authorize, ChannelId};
use std::time::Duration;
use support::*;

fn as_client(base: &str) -> AsClient {
    AsClient::new(base, Duration::from_secs(10))
}

/// POSTs `body` as JSON: the answer, or the refusal's status and body.
fn purchase(base: &str, body: &serde_json::Value) -> Result<PurchaseReply, (u16, ApiError)> {
    match ureq::post(&format!("{base}{}", routes::PURCHASE)).send_json(body) {
        Ok(r) => Ok(r.into_json().expect("reply")),
        Err(ureq::Error::Status(status, r)) => Err((status, r.into_json().expect("error body"))),
        Err(e) => panic!("transport: {e}"),
    }
}

fn body(channel: ChannelId, amount: u128, signer: &SecretKey) -> serde_json::Value {
    serde_json::to_value(support::body("lock", channel, 0, amount, signer, None)).expect("json")
}

fn get(base: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{base}{path}"))
        .call()
        .expect("GET")
        .into_json()
        .expect("json")
}

fn code(e: &(u16, ApiError)) -> (u16, ErrorCode) {
    (e.0, e.1.code)
}

on_both_backends!(
    purchases_retries_and_refusals_over_http,
    totals_come_with_the_receipt_that_set_them,
    a_retry_after_the_channel_closed_is_answered_from_the_ledger,
    a_published_receipt_gets_a_third_party_no_tokens,
    work_per_request_is_bounded,
    cheap_checks_come_before_signature_recovery,
    sales_stop_while_finality_stalls,
    the_expiry_margin_counts_from_the_best_block,
    a_rotation_seen_in_a_best_block_applies_before_it_is_final,
    a_second_rotation_under_finality_lag_is_not_missed,
    slow_and_excess_clients_are_cut_off,
    sales_follow_the_close_plan,
    a_member_that_lost_the_race_hears_stale_not_not_the_buyer,
);

fn purchases_retries_and_refusals_over_http(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(1);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 10, 10),
        64,
        Limits::default(),
    );
    let first = purchase(&base, &body(id, 20, &client)).expect("two slots");
    assert_eq!(
        (first.slots, first.first_counter, first.tokens.len()),
        (2, 0, 2)
    );
    assert!(first.fresh);
    // The tokens open the device: each names its counter and carries its HOTP value.
    for (i, text) in first.tokens.iter().enumerate() {
        let token = Token::parse(text).expect("token");
        assert_eq!(token.counter(), i as u64);
        assert!(token.matches(&DeviceKey(DEVICE_KEY)));
    }
    let again = purchase(&base, &body(id, 20, &client)).expect("retry");
    assert!(!again.fresh);
    assert_eq!(again.tokens, first.tokens);

    let stale = purchase(&base, &body(id, 10, &client)).expect_err("stale");
    assert_eq!(code(&stale), (409, ErrorCode::StaleTotal));
    assert_eq!(stale.1.current_total.as_deref(), Some("20"));
    let e = purchase(&base, &body(id, 25, &client)).expect_err("partial slot");
    assert_eq!(code(&e), (422, ErrorCode::NotWholeSlots));
    let e = purchase(&base, &body(id, 30, &secret(2))).expect_err("wrong key");
    assert_eq!(code(&e), (403, ErrorCode::Unauthorized));
    let e = purchase(&base, &body(id, 110, &client)).expect_err("above deposit");
    assert_eq!(code(&e), (422, ErrorCode::ExceedsDeposit));

    let mut bad = body(id, 30, &client);
    bad["signed"]["signature"] = "0x1234".into();
    let e = purchase(&base, &bad).expect_err("short signature");
    assert_eq!(code(&e), (400, ErrorCode::BadRequest));
    let mut bad = body(id, 30, &client);
    bad["signed"]["receipt"]["amount"] = "+30".into();
    assert_eq!(purchase(&base, &bad).expect_err("sign").0, 400);
    let mut bad = body(id, 30, &client);
    bad["extra"] = 1.into();
    assert_eq!(purchase(&base, &bad).expect_err("unknown field").0, 400);
    let mut bad = body(id, 30, &client);
    bad["device"] = "vending".into();
    assert_eq!(
        purchase(&base, &bad).expect_err("device").1.code,
        ErrorCode::UnknownDevice
    );
    let e = purchase(&base, &body(ChannelId(7), 30, &client)).expect_err("no channel");
    assert_eq!(code(&e), (404, ErrorCode::ChannelNotFound));

    let huge = "x".repeat(MAX_BODY_BYTES + 1);
    match ureq::post(&format!("{base}{}", routes::PURCHASE)).send_string(&huge) {
        Err(ureq::Error::Status(413, _)) => {}
        other => panic!("expected 413, got {other:?}"),
    }

    // Nothing above changed the ledger: the next purchase starts at total 20, counter 2.
    let next = purchase(&base, &body(id, 30, &client)).expect("one more slot");
    assert_eq!((next.first_counter, next.total.as_str()), (2, "30"));
    let reply = get(&base, &routes::channel(id));
    assert_eq!(reply["total"], "30");
    assert_eq!(reply["authority"], "delegate");
    let metrics = ureq::get(&format!("{base}{}", routes::METRICS))
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

/// A running total the AS reports is always shown with the receipt that set it, so a
/// client can check that an authorised key signed it before signing above it.
fn totals_come_with_the_receipt_that_set_them(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(3);
    let reader = FakeReader::default();
    let authority = delegate(&client);
    let id = reader.open(channel(authority, 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 10, 10),
        64,
        Limits::default(),
    );
    purchase(&base, &body(id, 40, &client)).expect("four slots");
    let (_, stale) = purchase(&base, &body(id, 30, &client)).expect_err("stale");
    let shown = stale
        .justification
        .expect("a stale_total shows its receipt");
    let receipt = shown.receipt;
    assert_eq!(
        (receipt.channel, receipt.epoch, receipt.amount),
        (id, 0, 40)
    );
    authorize::<SoftHasher, Libsecp256k1>(&authority, &DOMAIN, shown.clone())
        .expect("signed by the channel's key");
    let reply = as_client(&base).channel(id).expect("channel reply");
    assert_eq!(reply.last_receipt, Some(shown));
    assert_eq!((reply.total.as_str(), reply.epoch), ("40", 0));
}

/// The answer to the last purchase before a close must not be lost: a retry after the
/// channel is gone from the chain gets the same tokens from the ledger (the signer only).
fn a_retry_after_the_channel_closed_is_answered_from_the_ledger(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(4);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client), 100));
    let v = view(&reader, 10, 10);
    let base = serve(&backend, dir.path(), v.clone(), 64, Limits::default());
    let sold = purchase(&base, &body(id, 30, &client)).expect("three slots");
    // Closed on chain and finalized: the view starts over at the next block.
    reader.remove(id);
    v.on_finalized(11, hash(11));
    v.on_best(11, &[]);
    let retry = purchase(&base, &body(id, 30, &client)).expect("the retry is answered");
    assert_eq!(retry.tokens, sold.tokens);
    assert!(!retry.fresh);
    // Someone else's signature over the same receipt is not the same purchase.
    let e = purchase(&base, &body(id, 30, &secret(5))).expect_err("not the signer");
    assert_eq!(code(&e), (404, ErrorCode::ChannelNotFound));
    // And nothing new is sold on it.
    let (status, _) = purchase(&base, &body(id, 40, &client)).expect_err("closed");
    assert_eq!(status, 404);
}

/// Anyone can read a sold receipt (the channel view shows it, so does a stale answer),
/// and anyone can post it again: only its buyer, who holds the request secret, gets its
/// tokens back; a third party, or another member of the group, gets nothing. Also once
/// the channel is closed and the ledger alone answers.
fn a_published_receipt_gets_a_third_party_no_tokens(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let buyer = secret(12);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&buyer), 100));
    let v = view(&reader, 10, 10);
    let base = serve(&backend, dir.path(), v.clone(), 64, Limits::default());
    let sold = as_client(&base)
        .purchase(&support::body("lock", id, 0, 30, &buyer, None))
        .expect("three slots for later");
    // The thief reads the channel as any client does ...
    let view = as_client(&base).channel(id).expect("view");
    let published = view.last_receipt.expect("the view shows the receipt");
    let stolen = PurchaseBody {
        device: "lock".into(),
        signed: published,
        request_secret: RequestSecret([0x77; 32]),
    };
    let refused = |result: Result<PurchaseReply, AsClientError>| match result {
        Err(e) => e.code(),
        Ok(reply) => panic!("a third party got tokens: {:?}", reply.tokens),
    };
    assert_eq!(
        refused(as_client(&base).purchase(&stolen)),
        Some(ErrorCode::NotTheBuyer)
    );
    // ... and again once the channel has closed.
    reader.remove(id);
    v.on_finalized(11, hash(11));
    v.on_best(11, &[]);
    assert_eq!(
        refused(as_client(&base).purchase(&stolen)),
        Some(ErrorCode::NotTheBuyer)
    );
    let mine = as_client(&base)
        .purchase(&support::body("lock", id, 0, 30, &buyer, None))
        .expect("the buyer's retry");
    assert_eq!(mine.tokens, sold.tokens);
}

/// A request's work is bounded: at most `max_slots` per purchase, and a bogus channel id
/// costs at most one contract read per finalized block, however many requests for it
/// arrive at once.
fn work_per_request_is_bounded(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client_key = secret(6);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client_key), 10_000));
    let closed = reader.open(channel(delegate(&client_key), 10_000));
    reader.remove(closed);
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 10, 10),
        3,
        Limits::default(),
    );
    let e = purchase(&base, &body(id, 40, &client_key)).expect_err("four slots");
    assert_eq!(code(&e), (422, ErrorCode::TooManySlots));
    assert_eq!(
        purchase(&base, &body(id, 30, &client_key))
            .expect("three")
            .slots,
        3
    );
    // A node's round trip on every read, and fifty requests at once: concurrent misses
    // of the cache must share one read.
    *reader.latency.lock().expect("lock") = Duration::from_millis(100);
    let before = reader.calls();
    let threads: Vec<_> = (0..50u64)
        .map(|n| {
            let (base, key) = (base.clone(), client_key);
            std::thread::spawn(move || {
                // Ids never opened, and one that was opened and closed.
                let bogus = if n % 2 == 0 {
                    ChannelId(1_000 + n)
                } else {
                    closed
                };
                purchase(&base, &body(bogus, 10, &key))
                    .expect_err("absent")
                    .0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("request"), 404);
    }
    assert!(
        reader.calls() - before <= 2,
        "50 concurrent purchases on absent channels made {} contract reads",
        reader.calls() - before
    );
}

/// What can be refused without the signer is refused before any key recovery: a garbage
/// signature on an expiring channel hears "expiring", not "unauthorized".
fn cheap_checks_come_before_signature_recovery(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(7);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 996, 996),
        64,
        Limits::default(),
    );
    let mut garbage = body(id, 10, &client);
    garbage["signed"]["signature"] = api::to_hex(&[0x55; 65]).into();
    let e = purchase(&base, &garbage).expect_err("refused");
    assert_eq!(code(&e), (422, ErrorCode::ChannelExpiring));
}

/// While finality lags too far behind, the AS's view of deposits is too old: it sells
/// nothing and says why.
fn sales_stop_while_finality_stalls(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(8);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 100, 10),
        64,
        Limits::default(),
    );
    let e = purchase(&base, &body(id, 10, &client)).expect_err("stalled");
    assert_eq!(code(&e), (503, ErrorCode::FinalityStalled));
}

/// "Now" is the best block, not the finalized one: with finality 6 blocks behind, a
/// channel whose expiry is within the margin of the best block is no longer sold on,
/// though it would be from the finalized block's point of view.
fn the_expiry_margin_counts_from_the_best_block(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(1);
    let reader = FakeReader::default();
    // Expires at 1000, margin 5: sellable while now + 5 < 1000.
    let id = reader.open(channel(delegate(&client), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 996, 990),
        64,
        Limits::default(),
    );
    let e = purchase(&base, &body(id, 10, &client)).expect_err("too close to expiry");
    assert_eq!(code(&e), (422, ErrorCode::ChannelExpiring));
    // One block earlier on the best chain, it sells.
    let dir = tempfile::tempdir().expect("tempdir");
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 994, 990),
        64,
        Limits::default(),
    );
    purchase(&base, &body(id, 10, &client)).expect("sold: 994 + 5 < 1000");
}

/// A rotation announced in a best block stops sales to the old keys within the margin
/// before it takes effect, even before it is final.
fn a_rotation_seen_in_a_best_block_applies_before_it_is_final(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(9);
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&client), 100));
    let v = view(&reader, 10, 10);
    let base = serve(&backend, dir.path(), v.clone(), 64, Limits::default());
    purchase(&base, &body(id, 10, &client)).expect("before the announcement");
    v.on_best(
        12,
        &[chain::SlotpayEvent::RotationAnnounced(
            interface::events::RotationAnnounced {
                channel: id,
                authority: protocol::Authority::Revoked,
                epoch: 1,
                effective_at: 15,
            },
        )],
    );
    let e = purchase(&base, &body(id, 20, &client)).expect_err("within the margin");
    assert_eq!(code(&e), (422, ErrorCode::RotationPending));
}

/// Two rotations announced in best blocks while finality lags: the first takes effect
/// between the finalized and the best block, the second is announced after it. The view
/// must keep both (the second's margin stops sales to the first's keys), as the contract
/// ran them.
fn a_second_rotation_under_finality_lag_is_not_missed(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (secret(13), secret(14));
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&old), 100));
    let v = view(&reader, 10, 10);
    let base = serve(&backend, dir.path(), v.clone(), 64, Limits::default());
    let rotation = |to: &SecretKey, epoch, effective_at| {
        chain::SlotpayEvent::RotationAnnounced(interface::events::RotationAnnounced {
            channel: id,
            authority: delegate(to),
            epoch,
            effective_at,
        })
    };
    // Block 11: old -> new, effective at 31 (notice 20). Finality stays at 10.
    v.on_best(11, &[rotation(&new, 1, 31)]);
    // Block 32: the first rotation is in force; the payer rotates again, to old's key,
    // effective at 52.
    v.on_best(32, &[rotation(&old, 2, 52)]);
    let offer = |key: &SecretKey, epoch, amount| {
        purchase(
            &base,
            &serde_json::to_value(support::body("lock", id, epoch, amount, key, None))
                .expect("json"),
        )
    };
    // Block 40: the old key's epoch ended at 31; a receipt of it pays nothing now, so
    // nothing is sold for it. The new key's epoch is on.
    v.on_best(40, &[]);
    let e = offer(&old, 0, 10).expect_err("epoch 0 ended at block 31");
    assert_eq!(code(&e), (422, ErrorCode::WrongEpoch));
    offer(&new, 1, 10).expect("epoch 1 sells");
    // Block 48 (52 - margin 5 < 48 + 5): the second rotation's margin: the new key hears
    // "rotation pending".
    v.on_best(48, &[]);
    let e = offer(&new, 1, 20).expect_err("within the second rotation's margin");
    assert_eq!(code(&e), (422, ErrorCode::RotationPending));
    let channel = as_client(&base).channel(id).expect("view");
    assert_eq!(channel.epoch, 1);
    assert_eq!(channel.rotation.map(|r| r.effective_at), Some(52));
}

/// Clients that trickle their headers or body are cut off with nothing changed, and
/// connections beyond the cap are closed at once; the same server serves again once the
/// idle connections are cut.
fn slow_and_excess_clients_are_cut_off(backend: Backend) {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let reader = FakeReader::default();
    let id = reader.open(channel(delegate(&secret(1)), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 10, 10),
        64,
        Limits {
            header_timeout_ms: 1_000,
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

    // Three idle connections fill the cap: a fourth is closed at once, unanswered.
    let idle: Vec<TcpStream> = (0..3).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = connect();
    let _ = extra.write_all(b"GET /v1/terms HTTP/1.1\r\nHost: as\r\n\r\n");
    let (answer, closed) = drain(extra);
    assert!(
        closed && answer.is_empty(),
        "over the cap yet kept or answered: {answer}"
    );
    // The idle ones are cut by the header timeout, which frees the cap: this same
    // server answers again.
    for s in idle {
        let (_, closed) = drain(s);
        assert!(closed, "an idle connection was never cut off");
    }
    as_client(&base).terms().expect("served again");
    let best = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async { backend.ledger(dir.path(), 64).await.best(id, 0).await });
    assert_eq!(best.expect("read"), None, "nothing sold");
}

/// The close plan gates sales: a channel whose close must begin now sells nothing more,
/// and one whose close could not fit before its expiry (the chain takes one close a
/// block here, and six channels already expire in the same block) is not sold on.
fn sales_follow_the_close_plan(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client_key = secret(15);
    let reader = FakeReader::default();
    let ids: Vec<ChannelId> = (0..7)
        .map(|_| {
            let mut c = channel(delegate(&client_key), 100);
            c.expires_at = 30;
            reader.open(c)
        })
        .collect();
    let v = view(&reader, 10, 10);
    let plan = std::sync::Arc::new(std::sync::Mutex::new(offchain_as::ClosePlan::new(1, 10)));
    let base = serve_with_plan(&backend, dir.path(), v.clone(), 64, Limits::default(), plan);
    // Six closes due by block 20 (30 - lead 10), one a block: they begin at 20, 19, ...,
    // 15.
    for id in &ids[..6] {
        purchase(&base, &body(*id, 10, &client_key)).expect("fits");
    }
    v.on_best(15, &[]);
    // At 15 the plan is full down to 15: a seventh channel would begin at 14 < 15.
    let e = purchase(&base, &body(ids[6], 10, &client_key)).expect_err("no room");
    assert_eq!(code(&e), (503, ErrorCode::ClosingCapacity));
    // And the channel whose close begins at 15 sells nothing more.
    let refusals = ids[..6]
        .iter()
        .filter(|id| {
            purchase(&base, &body(**id, 20, &client_key))
                .is_err_and(|e| e.1.code == ErrorCode::ChannelClosing)
        })
        .count();
    assert_eq!(refusals, 1, "one close begins at 15");
}

/// Group members race for the running total: a member that signed the amount another
/// member's purchase already took lost the race. It hears `stale_total` with the winner's
/// receipt and signs above it; it is not taken for a thief (that is a third party posting
/// the winner's own receipt).
fn a_member_that_lost_the_race_hears_stale_not_not_the_buyer(backend: Backend) {
    use protocol::crypto::backend::SoftHasher;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (secret(16), secret(17));
    let tree = protocol::MerkleTree::build_uniform::<SoftHasher>(
        protocol::Substrate,
        &[
            protocol::keys::public_key(&a),
            protocol::keys::public_key(&b),
        ],
        protocol::UNLIMITED,
    )
    .expect("tree");
    let reader = FakeReader::default();
    let id = reader.open(channel(protocol::Authority::Group(tree.root()), 100));
    let base = serve(
        &backend,
        dir.path(),
        view(&reader, 10, 10),
        64,
        Limits::default(),
    );
    let as_member = |key: &SecretKey, amount, i| {
        serde_json::to_value(support::body(
            "lock",
            id,
            0,
            amount,
            key,
            tree.proof(i).ok(),
        ))
        .expect("json")
    };
    purchase(&base, &as_member(&a, 10, 0)).expect("a wins");
    let e = purchase(&base, &as_member(&b, 10, 1)).expect_err("b signed the same total");
    assert_eq!(code(&e), (409, ErrorCode::StaleTotal));
    assert_eq!(e.1.current_total.as_deref(), Some("10"));
    purchase(&base, &as_member(&b, 20, 1)).expect("b above the winner");
}
