//! `slotpay pay` against an AS that lies, served by a mock HTTP server in the test: an
//! inflated running total, a price above the user's limit, another contract's domain, a
//! "stale" loop of totals no key signed, a group total no member signed, group members
//! played against each other, and a timeout. Whatever it says, the client signs nothing
//! beyond its limits: the mock records every receipt that reaches it and the test checks
//! each one.
use api::{routes, to_hex, ApiError, AuthorityKind, ChannelReply, Deployment, ErrorCode};
use api::{PurchaseBody, PurchaseReply, TermsReply};
use protocol::crypto::backend::SoftHasher;
use protocol::keys::{self, SecretKey};
use protocol::MerkleTree;
use protocol::{ChannelId, Domain, Member, Receipt, SignedReceipt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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
    /// Hold each member's purchase until another member's next receipt arrives, then
    /// call it stale with that receipt: members played against each other.
    play_members: bool,
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
        chain_id: None,
        price: price.to_string(),
        max_slots: 64,
        expiry_margin_blocks: 5,
        min_notice_blocks: 10,
        devices: vec![],
    }
}

fn channel(total: u128, last_receipt: Option<SignedReceipt>) -> ChannelReply {
    ChannelReply {
        channel: ChannelId(3),
        block: 10,
        now: 10,
        deposit: DEPOSIT.to_string(),
        settled: "0".into(),
        epoch: 0,
        expires_at: 1000,
        notice: 20,
        authority: AuthorityKind::Delegate,
        rotation: None,
        total: total.to_string(),
        last_receipt,
        price: PRICE.to_string(),
        closed: false,
    }
}

fn stale(total: u128, justification: Option<SignedReceipt>) -> (u16, String) {
    let e = ApiError {
        code: ErrorCode::StaleTotal,
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
    SignedReceipt::sign(receipt, &DOMAIN, key, proof.cloned())
}

fn respond(stream: &mut std::net::TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// One request: its path and body.
fn read_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
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
    reader.read_exact(&mut body).ok()?;
    Some((
        line.split_whitespace().nth(1).unwrap_or("").to_owned(),
        body,
    ))
}

/// Serves `script` on a loopback port until the test ends, each connection on a thread
/// of its own (members played against each other are served at once); returns its URL.
fn mock(script: Arc<Mutex<Script>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let arrived = Arc::new(Condvar::new());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (script, arrived) = (script.clone(), arrived.clone());
            std::thread::spawn(move || {
                let Some((path, body)) = read_request(&stream) else {
                    return;
                };
                let (status, json) = answer(&script, &arrived, &path, &body);
                respond(&mut stream, status, &json);
            });
        }
    });
    url
}

fn answer(script: &Mutex<Script>, arrived: &Condvar, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = script.lock().expect("lock");
    if path == routes::TERMS {
        return (200, serde_json::to_string(&s.terms).expect("json"));
    }
    if path == routes::channel(ChannelId(3)) {
        return (200, serde_json::to_string(&s.channel).expect("json"));
    }
    if path != routes::PURCHASE {
        return (404, "{}".into());
    }
    let Ok(b) = serde_json::from_slice::<PurchaseBody>(body) else {
        return (400, "{}".into());
    };
    s.received.push(b.clone());
    arrived.notify_all();
    if let Some(file) = s.state_file.clone() {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        s.state_at_purchase.push(text);
    }
    if s.echo_stale {
        return stale(b.signed.receipt.amount, Some(b.signed));
    }
    if s.play_members {
        // Wait for another member's receipt above this one, then show it as the total
        // this one must sign above. Give up after a while: the other stopped signing.
        let me = keys_of(&b);
        let mine = b.signed.receipt.amount;
        let other = |s: &Script| {
            s.received
                .iter()
                .filter(|r| keys_of(r) != me && r.signed.receipt.amount >= mine)
                .max_by_key(|r| r.signed.receipt.amount)
                .map(|r| r.signed.clone())
        };
        let (s, _) = arrived
            .wait_timeout_while(s, Duration::from_secs(3), |s| other(s).is_none())
            .expect("lock");
        return match other(&s) {
            Some(shown) => stale(shown.receipt.amount, Some(shown)),
            None => refused(),
        };
    }
    let i = s
        .received
        .len()
        .saturating_sub(1)
        .min(s.purchases.len() - 1);
    s.purchases[i].clone()
}

/// Who signed a received purchase (its request secret is the key's own).
fn keys_of(b: &PurchaseBody) -> protocol::PublicKey {
    b.signed
        .signer::<SoftHasher, protocol::crypto::backend::Libsecp256k1>(&DOMAIN)
        .expect("a signature")
}

struct Client {
    dir: tempfile::TempDir,
    key: SecretKey,
}

fn command_output(mut command: Command) -> (bool, String) {
    let output = command.output().expect("run slotpay");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Client {
    fn new(seed: u8) -> Self {
        Self::with_key(SecretKey::from_slice(&[seed; 32]).expect("key"))
    }

    fn with_key(key: SecretKey) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("client.key"), to_hex(&key.secret_bytes()))
            .expect("key file");
        // The node the deployment names does not answer: a client without chain access.
        Deployment {
            url: "ws://127.0.0.1:9".into(),
            layer: api::DeploymentLayer::Substrate,
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
        command_output(self.command(as_url, extra))
    }

    /// The `slotpay pay` command against `as_url`.
    fn command(&self, as_url: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slotpay"));
        command
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
            .args(extra);
        command
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
        play_members: false,
        state_file: None,
        state_at_purchase: Vec::new(),
    }))
}

fn received_amounts(s: &Arc<Mutex<Script>>) -> Vec<u128> {
    s.lock()
        .expect("lock")
        .received
        .iter()
        .map(|b| b.signed.receipt.amount)
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
    let tree = MerkleTree::build::<SoftHasher>(
        protocol::Substrate,
        &[
            Member {
                key: keys::public_key(&client.key),
                cap: 10 * PRICE,
            },
            Member {
                key: keys::public_key(&member),
                cap: 10 * PRICE,
            },
        ],
    )
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
                "proof": tree.proof(i).expect("proof"),
            })
        })
        .collect();
    let file = serde_json::json!({"root": to_hex(&tree.root().0), "members": members});
    std::fs::write(path, file.to_string()).expect("group file");
}

/// Two or three members of a group, each buying one slot at the same time, against an AS
/// that holds each one's purchase until another member's next receipt arrives and then
/// calls it stale with that receipt. Each purchase accepts at most `--max-stale-raises`
/// (2) such answers, and no member signs more than its slot plus `--max-above-bought` (8)
/// slots above the total it was first shown: k members sign at most k x 3 receipts, none
/// above min(3k, 9) slots, where an unbounded client signed 100 receipts for 100 slots.
#[test]
fn members_played_against_each_other_sign_a_bounded_amount() {
    for k in [2usize, 3] {
        let keys: Vec<SecretKey> = (0..k)
            .map(|i| SecretKey::from_slice(&[20 + i as u8; 32]).expect("key"))
            .collect();
        let tree = MerkleTree::build::<SoftHasher>(
            protocol::Substrate,
            &keys
                .iter()
                .map(|key| Member {
                    key: keys::public_key(key),
                    cap: DEPOSIT,
                })
                .collect::<Vec<_>>(),
        )
        .expect("tree");
        let s = script(terms(&DOMAIN, PRICE), channel(0, None), vec![refused()]);
        s.lock().expect("lock").play_members = true;
        let url = mock(s.clone());
        let clients: Vec<Client> = (0..k).map(|i| Client::with_key(keys[i])).collect();
        let runs: Vec<_> = clients
            .iter()
            .map(|client| {
                write_group(&client.path("group.json"), &tree);
                let (url, group) = (url.clone(), client.path("group.json"));
                let command = client.command(&url, &["--group", &group.display().to_string()]);
                std::thread::spawn(move || command_output(command))
            })
            .collect();
        let errors: Vec<String> = runs
            .into_iter()
            .map(|r| r.join().expect("member").1)
            .collect();
        let amounts = received_amounts(&s);
        // Receipts per member, told apart by their proofs (each member's path is its own).
        let mut per_member: std::collections::BTreeMap<_, usize> = Default::default();
        for body in &s.lock().expect("lock").received {
            let proof = body.signed.proof.as_ref().expect("a member's proof");
            *per_member
                .entry((proof.left_siblings, proof.siblings.clone()))
                .or_default() += 1;
        }
        let per_member_max = per_member.values().copied().max().unwrap_or(0);
        assert!(
            amounts.len() <= 3 * k,
            "{k} members signed {} receipts: {amounts:?}; {errors:?}",
            amounts.len()
        );
        assert!(per_member_max <= 3, "{amounts:?}");
        let highest = amounts.iter().max().copied().unwrap_or(0);
        assert!(
            highest <= (3 * k as u128).min(9) * PRICE,
            "{k} members: the highest receipt is for {} slots: {amounts:?}",
            highest / PRICE
        );
    }
}

/// A purchase whose answer does not come (a timeout, a restart of the AS) is sent again
/// as the very same request: the same receipt with the same secret, so the AS can answer
/// it with the tokens it sold, and nothing more is signed.
#[test]
fn a_timeout_resends_the_same_receipt_and_signs_nothing_new() {
    let client = Client::new(11);
    // The resend's answer is for another total: the client refuses it (and so stops
    // before any device), which shows the resend was answered.
    let sold = PurchaseReply {
        device: "lock".into(),
        channel: ChannelId(3),
        epoch: 0,
        total: (7 * PRICE).to_string(),
        slots: 1,
        first_counter: 0,
        tokens: vec!["0:12345678".into()],
        slot_seconds: 30,
        fresh: false,
    };
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(0, None),
        vec![
            (408, r#"{"code":"request_timeout","message":"slow"}"#.into()),
            (200, serde_json::to_string(&sold).expect("json")),
        ],
    );
    let (ok, err) = client.pay(&mock(s.clone()), &[]);
    assert!(!ok);
    assert!(err.contains("answered for another purchase"), "{err}");
    let received = s.lock().expect("lock").received.clone();
    assert_eq!(received.len(), 2, "sent once, resent once");
    assert_eq!(received[0], received[1], "the resend is the same request");
    assert_eq!(received_amounts(&s), vec![PRICE, PRICE]);
}

/// A running total far above what this key last bought (or was first shown), however
/// well justified, is not followed beyond `--max-above-bought` slots.
#[test]
fn a_total_raised_past_the_allowance_gets_nothing_signed() {
    let client = Client::new(12);
    let member = SecretKey::from_slice(&[13; 32]).expect("key");
    let tree = MerkleTree::build::<SoftHasher>(
        protocol::Substrate,
        &[
            Member {
                key: keys::public_key(&client.key),
                cap: DEPOSIT,
            },
            Member {
                key: keys::public_key(&member),
                cap: DEPOSIT,
            },
        ],
    )
    .expect("tree");
    write_group(&client.path("group.json"), &tree);
    let group = client.path("group.json").display().to_string();
    // First shown a total of 0; then another member's genuine 20 slots.
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(0, None),
        vec![stale(
            20 * PRICE,
            Some(signed(
                20 * PRICE,
                &member,
                Some(&tree.proof(1).expect("proof")),
            )),
        )],
    );
    let (ok, err) = client.pay(&mock(s.clone()), &["--group", &group]);
    assert!(!ok);
    assert!(err.contains("--max-above-bought"), "{err}");
    assert_eq!(
        received_amounts(&s),
        vec![PRICE],
        "nothing signed above the allowance"
    );
}

/// An AS that takes the receipt and never returns the tokens (it answers `internal`, a
/// refusal the client may resend on) gets that one receipt, for the purchase's own slots,
/// and nothing more from that purchase: resends carry the same receipt. A new purchase
/// the user starts signs its own slots above it, and again no more.
#[test]
fn an_as_that_keeps_the_receipt_and_returns_no_tokens_gets_one_purchase() {
    let client = Client::new(14);
    let s = script(
        terms(&DOMAIN, PRICE),
        channel(0, None),
        vec![(500, r#"{"code":"internal","message":"lost"}"#.into())],
    );
    let url = mock(s.clone());
    let (ok, _) = client.pay(&url, &["--slots", "3", "--retries", "2"]);
    assert!(!ok);
    // The user tries again: a new purchase, 3 slots above what the key signed (on record),
    // sent once.
    let (ok, _) = client.pay(&url, &["--slots", "3", "--retries", "0"]);
    assert!(!ok);
    let amounts = received_amounts(&s);
    assert!(!amounts.is_empty());
    assert_eq!(amounts.iter().max(), Some(&(6 * PRICE)), "{amounts:?}");
    assert_eq!(
        amounts.iter().filter(|a| **a == 3 * PRICE).count(),
        3,
        "one receipt, sent and resent twice: {amounts:?}"
    );
}
