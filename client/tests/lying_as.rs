//! `slotpay pay` against an AS that lies, served by a mock HTTP server in the test: an
//! inflated running total, a price above the user's limit, another contract's domain, a
//! "stale" loop of totals no key signed, and a group total no member signed. Whatever it
//! says, the client signs nothing beyond its limits: the mock records every receipt that
//! reaches it and the test checks each one.
use api::wire::{ApiError, ChannelReply, PurchaseBody, SignedReceipt, TermsReply};
use api::{to_hex, Deployment};
use protocol::crypto::backend::SoftHasher;
use protocol::MerkleTree;
use protocol::keys::{self, SecretKey};
use protocol::{ChannelId, Domain, Member, Receipt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

const PRICE: u128 = 1_000;
const DEPOSIT: u128 = 100_000;
const DOMAIN: Domain = Domain {
    genesis_hash: [1; 32],
    contract: [2; 32],
};

/// What the mock answers, and what it received.
struct Script {
    terms: TermsReply,
    channel: ChannelReply,
    /// The answer to each purchase, in order (the last repeats).
    purchases: Vec<(u16, String)>,
    received: Vec<PurchaseBody>,
    /// Answer every purchase "stale", justified by the very receipt just received.
    echo_stale: bool,
    /// The client's state file, read as each purchase arrives (what it had on record
    /// before the receipt left).
    state_file: Option<PathBuf>,
    state_at_purchase: Vec<String>,
}

fn terms(domain: &Domain, price: u128) -> TermsReply {
    TermsReply {
        payee: to_hex(&[0xA5; 32]),
        contract: to_hex(&domain.contract),
        genesis_hash: to_hex(&domain.genesis_hash),
        price: price.to_string(),
        max_slots: 64,
        expiry_margin_blocks: 5,
        min_notice_blocks: 10,
        devices: vec![],
    }
}

fn channel(total: u128, last_receipt: Option<SignedReceipt>) -> ChannelReply {
    ChannelReply {
        channel: 3,
        block: 10,
        now: 10,
        deposit: DEPOSIT.to_string(),
        settled: "0".into(),
        epoch: 0,
        expires_at: 1000,
        notice: 20,
        authority: "delegate".into(),
        rotation: None,
        total: total.to_string(),
        last_receipt,
        price: PRICE.to_string(),
        closed: false,
    }
}

fn stale(total: u128, justification: Option<SignedReceipt>) -> (u16, String) {
    let e = ApiError {
        code: "stale_total".into(),
        message: "another member was first".into(),
        current_total: Some(total.to_string()),
        justification,
    };
    (409, serde_json::to_string(&e).expect("json"))
}

fn signed(
    amount: u128,
    key: &SecretKey,
    proof: Option<&protocol::MembershipProof>,
) -> SignedReceipt {
    let receipt = Receipt {
        channel: ChannelId(3),
        epoch: 0,
        amount,
    };
    SignedReceipt::new(&receipt, &receipt.sign(&DOMAIN, key), proof)
}

fn respond(stream: &mut std::net::TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serves `script` on a loopback port until the test ends; returns its URL.
fn mock(script: Arc<Mutex<Script>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let mut s = script.lock().expect("lock");
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            if path == "/v1/terms" {
                let json = serde_json::to_string(&s.terms).expect("json");
                respond(&mut stream, 200, &json);
            } else if path.starts_with("/v1/channels/") {
                let json = serde_json::to_string(&s.channel).expect("json");
                respond(&mut stream, 200, &json);
            } else if path == "/v1/purchase" {
                if let Ok(b) = serde_json::from_slice::<PurchaseBody>(&body) {
                    s.received.push(b);
                }
                if let Some(file) = s.state_file.clone() {
                    let text = std::fs::read_to_string(file).unwrap_or_default();
                    s.state_at_purchase.push(text);
                }
                let (status, json) = match s.received.last().and_then(|b| b.parse().ok()) {
                    Some(own) if s.echo_stale => stale(
                        own.receipt.amount,
                        Some(SignedReceipt::new(
                            &own.receipt,
                            &own.signature,
                            own.proof.as_ref(),
                        )),
                    ),
                    _ => {
                        let i = s
                            .received
                            .len()
                            .saturating_sub(1)
                            .min(s.purchases.len() - 1);
                        s.purchases[i].clone()
                    }
                };
                respond(&mut stream, status, &json);
            } else {
                respond(&mut stream, 404, "{}");
            }
        }
    });
    url
}

struct Client {
    dir: tempfile::TempDir,
    key: SecretKey,
}

impl Client {
    fn new(seed: u8) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::from_slice(&[seed; 32]).expect("key");
        std::fs::write(dir.path().join("client.key"), to_hex(&key.secret_bytes()))
            .expect("key file");
        // The node the deployment names does not answer: a client without chain access.
        Deployment {
            url: "ws://127.0.0.1:9".into(),
            genesis_hash: DOMAIN.genesis_hash,
            contract: DOMAIN.contract,
            code_hash: [0; 32],
            bundle: None,
        }
        .save(&dir.path().join("deployment.json"))
        .expect("deployment");
        Self { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `slotpay pay` against `as_url`; returns (success, stderr).
    fn pay(&self, as_url: &str, extra: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_slotpay"))
            .args([
                "pay",
                "--as",
                as_url,
                "--channel",
                "3",
                "--device",
                "lock",
                "--coap",
                "127.0.0.1:9",
            ])
            .arg("--deployment")
            .arg(self.path("deployment.json"))
            .arg("--key")
            .arg(self.path("client.key"))
            .args(["--max-price", &PRICE.to_string(), "--offline"])
            .args(extra)
            .output()
            .expect("run slotpay");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

fn script(
    terms: TermsReply,
    channel: ChannelReply,
    purchases: Vec<(u16, String)>,
) -> Arc<Mutex<Script>> {
    Arc::new(Mutex::new(Script {
        terms,
        channel,
        purchases,
        received: Vec::new(),
        echo_stale: false,
        state_file: None,
        state_at_purchase: Vec::new(),
    }))
}

fn received_amounts(s: &Arc<Mutex<Script>>) -> Vec<u128> {
    s.lock()
        .expect("lock")
        .received
        .iter()
        .map(|b| b.receipt.amount.parse().expect("amount"))
        .collect()
}

fn refused() -> (u16, String) {
    (422, r#"{"code":"exceeds_deposit","message":"no"}"#.into())
}

#[test]
fn an_inflated_total_without_the_receipt_that_set_it_gets_nothing_signed() {
    let client = Client::new(1);
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(DEPOSIT - PRICE, None),
        vec![refused()],
    );
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("shows no receipt that set it"), "{err}");
    assert!(received_amounts(&s).is_empty(), "signed for a lying AS");
}

#[test]
fn an_inflated_total_justified_by_a_key_the_channel_does_not_admit_gets_nothing_signed() {
    let client = Client::new(2);
    let as_key = SecretKey::from_slice(&[0xA5; 32]).expect("key");
    let forged = signed(DEPOSIT - PRICE, &as_key, None);
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(DEPOSIT - PRICE, Some(forged)),
        vec![refused()],
    );
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(
        err.contains("not a valid receipt of an authorised key"),
        "{err}"
    );
    assert!(received_amounts(&s).is_empty());
}

#[test]
fn a_price_above_the_users_limit_or_too_many_slots_get_nothing_signed() {
    let client = Client::new(3);
    let s = script(terms(&DOMAIN, DEPOSIT), channel(0, None), vec![refused()]);
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("above --max-price"), "{err}");
    let s2 = script(terms(&DOMAIN, PRICE), channel(0, None), vec![refused()]);
    let (ok, err) = client.pay(&mock(s2.clone()), &["--slots", "11"]);
    assert!(!ok);
    assert!(err.contains("above --max-slots"), "{err}");
    assert!(received_amounts(&s).is_empty() && received_amounts(&s2).is_empty());
}

#[test]
fn another_contracts_domain_gets_nothing_signed() {
    let client = Client::new(4);
    let elsewhere = Domain {
        contract: [9; 32],
        ..DOMAIN
    };
    let s = script(terms(&elsewhere, PRICE), channel(0, None), vec![refused()]);
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("the deployment file names"), "{err}");
    assert!(received_amounts(&s).is_empty());
}

/// A "stale" answer with a total no key signed must not make the client sign again and
/// again above it: one receipt for one slot leaves, then the client stops.
#[test]
fn a_stale_loop_of_invented_totals_gets_one_slot_signed() {
    let client = Client::new(5);
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(0, None),
        vec![stale(50 * PRICE, None), stale(90 * PRICE, None)],
    );
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("shows no receipt that set it"), "{err}");
    assert_eq!(
        received_amounts(&s),
        vec![PRICE],
        "one slot's price signed, once"
    );
}

/// The client's own receipt is no proof that its receipt is stale: an AS that answers
/// every purchase "stale", justified by the receipt it was just sent, gets that one
/// receipt and no other.
#[test]
fn a_stale_answer_justified_by_the_clients_own_receipt_gets_nothing_more_signed() {
    let client = Client::new(10);
    let s = script(terms(&DOMAIN, PRICE), channel(0, None), vec![refused()]);
    s.lock().expect("lock").echo_stale = true;
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("justified by this key's own receipt"), "{err}");
    assert_eq!(
        received_amounts(&s),
        vec![PRICE],
        "one slot's price signed, once"
    );
}

/// In a group, a total must be signed by a member with a proof against the group's root:
/// an outsider's signature with a member's proof does not count.
#[test]
fn a_group_total_no_member_signed_gets_nothing_more_signed() {
    let client = Client::new(6);
    let member = SecretKey::from_slice(&[7; 32]).expect("key");
    let outsider = SecretKey::from_slice(&[8; 32]).expect("key");
    let tree = MerkleTree::build::<SoftHasher>(&[
        Member {
            key: keys::public_key(&client.key),
            cap: 10 * PRICE,
        },
        Member {
            key: keys::public_key(&member),
            cap: 10 * PRICE,
        },
    ])
    .expect("tree");
    write_group(&client.path("group.json"), &tree);
    let forged = signed(40 * PRICE, &outsider, Some(&tree.proof(1).expect("proof")));
    let honest = signed(3 * PRICE, &member, Some(&tree.proof(1).expect("proof")));
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(3 * PRICE, Some(honest)),
        vec![stale(40 * PRICE, Some(forged))],
    );
    let group = client.path("group.json").display().to_string();
    let (ok, err) = client.pay(&mock(s.clone()), &["--group", &group]);
    assert!(!ok);
    assert!(
        err.contains("not a valid receipt of an authorised key"),
        "{err}"
    );
    // The member's real total (3) was honoured: one slot above it, and nothing above the
    // invented 40.
    assert_eq!(received_amounts(&s), vec![4 * PRICE]);
}

/// What the key signed is on record before it leaves: an AS that later reports a lower
/// total cannot make the client sign below what it already owes, and the next receipt
/// goes one slot above the higher of the two.
#[test]
fn the_client_remembers_what_it_signed() {
    let client = Client::new(9);
    let s = script(terms(&DOMAIN, PRICE), channel(0, None), vec![refused()]);
    let state_file = PathBuf::from(format!(
        "{}.state.json",
        client.path("client.key").display()
    ));
    s.lock().expect("lock").state_file = Some(state_file.clone());
    let url = mock(s.clone());
    assert!(!client.pay(&url, &["--slots", "3"]).0);
    assert!(!client.pay(&url, &[]).0);
    assert_eq!(received_amounts(&s), vec![3 * PRICE, 4 * PRICE]);
    // Each amount was on record when its receipt reached the AS, not only afterwards.
    let seen = s.lock().expect("lock").state_at_purchase.clone();
    for (text, amount) in seen.iter().zip([3 * PRICE, 4 * PRICE]) {
        assert!(
            text.contains(&format!("\"{amount}\"")),
            "{amount} not on record: {text}"
        );
    }
    let state = std::fs::read_to_string(&state_file).expect("state file");
    assert!(state.contains(&format!("\"{}\"", 4 * PRICE)), "{state}");
}

fn write_group(path: &Path, tree: &MerkleTree) {
    let members: Vec<serde_json::Value> = tree
        .members()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::json!({
                "key": to_hex(&m.key.0),
                "cap": m.cap.to_string(),
                "proof": api::wire::ProofBody::new(&tree.proof(i).expect("proof")),
            })
        })
        .collect();
    let file = serde_json::json!({"root": to_hex(&tree.root().0), "members": members});
    std::fs::write(path, file.to_string()).expect("group file");
}
