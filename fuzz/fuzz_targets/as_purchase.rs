//! The AS's request parser and purchase rule: a request body (raw bytes, or a valid
//! purchase with fields mutated) through the wire parser, the seller's checks (screen,
//! signature) and the ledger's sale (the same `sell_now` the ledger thread runs), against
//! an in-memory ledger with an open channel. Never panics; a refusal changes nothing; a
//! sale raises the total to exactly the receipt's amount, consumes exactly its slots'
//! counters, and its tokens are the device's tokens for them; a retry is answered only to
//! the request secret that made the sale.
#![no_main]
use api::{PurchaseBody, RequestSecret};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offchain_as::{sell_now, DeviceTerms, Rules, Seller, Store};
use protocol::hotp::{DeviceKey, Digits, Token};
use protocol::keys::{self, SecretKey};
use protocol::{Authority, Channel, ChannelId, Domain, Receipt, SignedReceipt, Tariff};
use std::collections::BTreeMap;

const AS: [u8; 32] = [0xA5; 32];
const DOMAIN: Domain = Domain {
    genesis_hash: [1; 32],
    contract: [2; 32],
};
const PRICE: u128 = 10;
const DEVICE_KEY: DeviceKey = DeviceKey([0x42; 32]);
const ID: ChannelId = ChannelId(7);

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Valid {
        /// Receipts accepted before this one (1 slot each).
        before: u8,
        slots: u8,
        device: bool,
        mutate: Option<(u8, u8)>,
        other_key: bool,
        /// Post the last sold receipt again, with this secret.
        repost: Option<[u8; 32]>,
    },
}

/// The buyer's own request secret.
const SECRET: RequestSecret = RequestSecret([0x5E; 32]);

fn body(device: &str, receipt: Receipt, signer: &SecretKey, secret: RequestSecret) -> PurchaseBody {
    PurchaseBody {
        device: device.into(),
        signed: SignedReceipt::sign(receipt, &DOMAIN, signer, None),
        request_secret: secret,
    }
}

fn tariff() -> Tariff {
    Tariff::new(PRICE, 5, 16, 10).expect("tariff")
}

fn seller() -> Seller {
    let mut devices = BTreeMap::new();
    devices.insert(
        "lock-1".to_owned(),
        DeviceTerms {
            key: DEVICE_KEY,
            digits: Digits::EIGHT,
            slot_seconds: 30,
            replay_window: 1024,
        },
    );
    Seller {
        our_account: AS,
        domain: protocol::AnyDomain::Substrate(DOMAIN),
        identity: DOMAIN,
        tariff: tariff(),
        devices,
    }
}

/// Checks and sells `request`; `None` when refused.
fn sell(
    seller: &Seller,
    store: &mut Store,
    channel: Option<&Channel>,
    request: PurchaseBody,
) -> Option<offchain_as::Sold> {
    let receipt = request.signed.receipt;
    let seen = store.best(receipt.channel, receipt.epoch).expect("read").map_or(0, |b| b.receipt.amount);
    let offer = seller.check(request, channel, 10, seen).ok()?;
    let rules = Rules {
        our_account: AS,
        tariff: tariff(),
    };
    sell_now(store, &rules, &[&offer]).expect("commit").pop().expect("one outcome").ok()
}

fuzz_target!(|input: Body| {
    let client = SecretKey::from_slice(&[1; 32]).expect("key");
    let channel = Channel::open([0x11; 32], AS, Authority::Delegate(keys::public_key(&client)), 100 * PRICE, 1_000, 20, 0)
        .expect("open");
    let seller = seller();
    let mut store = Store::in_memory(&DOMAIN, 0).expect("ledger");
    store.register_device("lock-1").expect("device");
    let bytes = match input {
        Body::Raw(bytes) => bytes,
        Body::Valid {
            before,
            slots,
            device,
            mutate,
            other_key,
            repost,
        } => {
            for k in 1..=u128::from(before % 8) {
                let receipt = Receipt {
                    channel: ID,
                    epoch: 0,
                    amount: k * PRICE,
                };
                let request = body("lock-1", receipt, &client, SECRET);
                sell(&seller, &mut store, Some(&channel), request).expect("setup sale");
            }
            let total = store.best(ID, 0).expect("read").map_or(0, |b| b.receipt.amount);
            if let (Some(secret), Some(last)) = (repost, store.best(ID, 0).expect("read")) {
                // A sold receipt posted again (anyone can read it): only its own secret
                // gets its tokens back.
                let again = PurchaseBody {
                    device: "lock-1".into(),
                    signed: last,
                    request_secret: RequestSecret(secret),
                };
                let answered = sell(&seller, &mut store, Some(&channel), again);
                assert_eq!(answered.is_some(), secret == SECRET.0, "a retry answered to another secret");
                assert_eq!(store.best(ID, 0).expect("read").map_or(0, |b| b.receipt.amount), total);
                return;
            }
            let receipt = Receipt {
                channel: ID,
                epoch: 0,
                amount: total + u128::from(slots) * PRICE,
            };
            let signer = if other_key {
                SecretKey::from_slice(&[2; 32]).expect("key")
            } else {
                client
            };
            let body = body(if device { "lock-1" } else { "pump-9" }, receipt, &signer, SECRET);
            let mut bytes = serde_json::to_vec(&body).expect("json");
            if let Some((i, x)) = mutate {
                let n = bytes.len();
                bytes[usize::from(i) % n] ^= x;
            }
            bytes
        }
    };
    let total0 = store.best(ID, 0).expect("read").map_or(0, |b| b.receipt.amount);
    let counter0 = store.next_counter("lock-1").expect("counter");
    let Ok(request) = serde_json::from_slice::<PurchaseBody>(&bytes) else {
        return;
    };
    if request.validate().is_err() {
        return;
    }
    let receipt = request.signed.receipt;
    let on_chain = (receipt.channel == ID).then_some(&channel);
    let total = |s: &Store| s.best(ID, 0).expect("read").map_or(0, |b| b.receipt.amount);
    match sell(&seller, &mut store, on_chain, request) {
        Some(sold) if sold.fresh => {
            assert_eq!(total(&store), receipt.amount);
            assert_eq!(receipt.amount - total0, u128::from(sold.sale.slots) * PRICE);
            assert!(receipt.amount <= channel.deposit);
            assert!(sold.sale.slots <= 16, "at most max_slots");
            assert_eq!(store.next_counter("lock-1").expect("counter"), counter0 + sold.sale.slots);
            for (i, token) in seller.tokens(&sold.sale).expect("tokens").iter().enumerate() {
                let token = Token::parse(token).expect("a token");
                assert_eq!(token.counter(), counter0 + i as u64);
                assert!(token.matches(&DEVICE_KEY));
            }
        }
        Some(_) => {
            // A retry of an earlier sale: nothing charged.
            assert_eq!(total(&store), total0);
            assert_eq!(store.next_counter("lock-1").expect("counter"), counter0);
        }
        None => {
            assert_eq!(total(&store), total0, "a refusal changed the total");
            assert_eq!(store.next_counter("lock-1").expect("counter"), counter0, "a refusal used counters");
        }
    }
});
