//! The Rust rule against the compiled Solidity contract, over the same generated inputs:
//! for every case, what `protocol` decides (the channel rule, `Channel::settlement`, then
//! `protocol::authorize` for the EVM layer) and what `SlotpayChannels` on anvil answers to
//! the same receipt (`settle` / `settleMember` as an `eth_call` from the payee, the
//! channel read back through `chain::evm`) must agree: accepted by both, or refused by
//! both (and with the same error when one thing is wrong).
//!
//! Inputs: every construction (the payer's own key, a delegate, a group of seven with
//! caps, a channel rotated to a new delegate (epoch 1), a revoked channel), signatures
//! of every kind (valid, another key, malleated high-s, v of 0/1/27/28/other, r or s
//! zero, n or above, another channel's, epoch's, chain's or contract's receipt), proofs
//! of every shape (none, right, another member's, another cap, one step short, a step
//! too many, direction bits beyond the length, 33 steps), amounts within and beyond the
//! deposit. A fixed seed; the count and the disagreements are printed.
//!
//! Needs anvil (`scripts/evm.sh setup`) and the artifact (`scripts/evm.sh build`).
use chain::evm::{self, EvmContract, EvmNode, EvmSigner};
use chain::{At, ChainError};
use interface::messages::{GetChannel, Open, Rotate, Settle};
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::crypto::Hasher;
use protocol::keys::{self, SecretKey};
use protocol::{
    authorize, Authority, Balance, Channel, ChannelId, Evm, EvmDomain, Member, MembershipProof,
    MerkleTree, Receipt, Signature, SignedReceipt,
};
use tests::*;

const DEPOSIT: Balance = 1_000_000_000_000_000_000;
const N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
];

/// xorshift64*: a fixed, dependency-free stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        out
    }
}

fn key(name: &str) -> SecretKey {
    SecretKey::from_slice(&SoftHasher::keccak256(name.as_bytes())).expect("a key")
}

/// n - x, big-endian (x < n).
fn n_minus(x: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(x[i]) - borrow;
        out[i] = (d & 0xff) as u8;
        borrow = i16::from(d < 0);
    }
    out
}

/// A signature's variant.
fn mutate(rng: &mut Rng, sig: Signature) -> (Signature, &'static str) {
    let mut s = sig.0;
    let kind = match rng.below(14) {
        0..=4 => "valid",
        5 => {
            // The malleated twin: s' = n - s, v flipped.
            let high = n_minus(&s[32..64]);
            s[32..64].copy_from_slice(&high);
            s[64] = if s[64] == 27 { 28 } else { 27 };
            "high-s"
        }
        6 => {
            s[64] -= 27;
            "v-0/1"
        }
        7 => {
            s[64] = [0u8, 1, 2, 26, 29, 30, 255][rng.below(7) as usize];
            "v-other"
        }
        8 => {
            s[64] = if s[64] == 27 { 28 } else { 27 };
            "v-flipped"
        }
        9 => {
            s[..32].copy_from_slice(&[[0u8; 32], N, [0xFF; 32]][rng.below(3) as usize]);
            "r-out-of-range"
        }
        10 => {
            s[32..64].copy_from_slice(&[[0u8; 32], N, [0xFF; 32]][rng.below(3) as usize]);
            "s-out-of-range"
        }
        11 => {
            let i = rng.below(64) as usize;
            s[i] ^= 1 << rng.below(8);
            "bit-flipped"
        }
        12 => {
            // An r that is no curve point's x (recovery fails) or another signature.
            s[..32].copy_from_slice(&rng.bytes32());
            s[0] &= 0x7F;
            "r-random"
        }
        _ => {
            s[32..64].copy_from_slice(&rng.bytes32());
            s[32] &= 0x7F;
            "s-random"
        }
    };
    (Signature(s), kind)
}

fn proof_shape(
    rng: &mut Rng,
    tree: &MerkleTree,
    signer_index: Option<usize>,
) -> (Option<MembershipProof>, &'static str) {
    let own = signer_index.map(|i| tree.proof(i).expect("proof"));
    let other = tree
        .proof(rng.below(tree.len() as u64) as usize)
        .expect("proof");
    match rng.below(10) {
        0..=3 => (own.or(Some(other)), "right"),
        4 => (None, "none"),
        5 => (Some(other), "another member's"),
        6 => {
            let mut p = own.unwrap_or(other);
            p.cap = p.cap.wrapping_add(1 + u128::from(rng.below(1000)));
            (Some(p), "another cap")
        }
        7 => {
            let mut p = own.unwrap_or(other);
            if rng.below(2) == 0 {
                p.siblings.pop();
            } else {
                p.siblings.push(rng.bytes32());
            }
            (Some(p), "a step short or too many")
        }
        8 => {
            let mut p = own.unwrap_or(other);
            let len = p.siblings.len() as u32;
            p.left_siblings |= 1 << len.min(31);
            (Some(p), "bits beyond the length")
        }
        _ => {
            let mut p = own.unwrap_or(other);
            while p.siblings.len() < 33 {
                p.siblings.push([7; 32]);
            }
            (Some(p), "33 steps")
        }
    }
}

/// What the contract said, as the protocol would say it.
fn contract_verdict(answer: Result<Balance, ChainError>) -> Result<Balance, String> {
    match answer {
        Ok(paid) => Ok(paid),
        Err(ChainError::Refused { error, .. }) => Err(format!("{error:?}")),
        Err(ChainError::Call { reason, .. }) => Err(reason),
        Err(e) => panic!("the node failed: {e}"),
    }
}

#[test]
fn the_rust_rule_and_the_compiled_solidity_contract_agree() {
    let dir = work_dir("evm-differential");
    let anvil = Anvil::start(&dir, None, None);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let node = EvmNode::connect(&anvil.url).await.expect("anvil");
        let payer = EvmSigner::from_suri("//Alice").expect("key");
        let payee = EvmSigner::from_suri("//Bob").expect("key");
        let (address, _, _) = evm::deploy(&node, &payer, &evm_artifact())
            .await
            .expect("deploy");
        let domain = EvmDomain {
            chain_id: node.chain_id(),
            contract: address,
        };
        let contract = EvmContract::bind(node.clone(), &domain, None)
            .await
            .expect("bind");

        // Keys: the payer's own (anvil's account 0), a delegate, a new delegate, an
        // outsider, and seven group members with caps.
        let alice_secret = protocol::parse_hex::<32>(evm::DEV_KEYS[0].1).expect("hex");
        let payer_key = SecretKey::from_slice(&alice_secret).expect("key");
        let delegate = key("delegate");
        let rotated_to = key("rotated-to");
        let outsider = key("outsider");
        let members: Vec<SecretKey> = (0..7).map(|i| key(&format!("member{i}"))).collect();
        let tree = MerkleTree::build::<SoftHasher>(
            Evm,
            &members
                .iter()
                .enumerate()
                .map(|(i, k)| Member {
                    key: keys::public_key(k),
                    cap: 1_000 * (i as u128 + 1),
                })
                .collect::<Vec<_>>(),
        )
        .expect("tree");

        let open = |authority: Authority, notice: u32| {
            let contract = contract.clone();
            let payer = payer.clone();
            let payee = payee.account();
            async move {
                let best = contract.node().best().await.expect("best").0;
                let done = contract
                    .call(
                        &payer,
                        DEPOSIT,
                        &Open {
                            payee,
                            authority,
                            expires_at: best + 100_000,
                            notice,
                        },
                    )
                    .await
                    .expect("open");
                match done.events.first() {
                    Some(chain::SlotpayEvent::Opened(o)) => o.channel,
                    other => panic!("no Opened: {other:?}"),
                }
            }
        };
        let account = open(Authority::Account(payer.account()), 10).await;
        let delegated = open(Authority::Delegate(keys::public_key(&delegate)), 10).await;
        let group = open(Authority::Group(tree.root()), 10).await;
        let rotated = open(Authority::Delegate(keys::public_key(&delegate)), 0).await;
        let revoked = open(Authority::Delegate(keys::public_key(&delegate)), 0).await;
        for (id, to) in [
            (rotated, Authority::Delegate(keys::public_key(&rotated_to))),
            (revoked, Authority::Revoked),
        ] {
            contract
                .call(&payer, 0, &Rotate { channel: id, authority: to })
                .await
                .expect("rotate");
        }
        let ids = [account, delegated, group, rotated, revoked];
        let mut channels: Vec<(ChannelId, Channel)> = Vec::new();
        for id in ids {
            let (_, c) = contract
                .read(&GetChannel { channel: id }, At::Best)
                .await
                .expect("read");
            channels.push((id, c.expect("open")));
        }
        assert_eq!(channels[3].1.epoch, 1, "the rotation with no notice is in force");
        assert_eq!(channels[4].1.authority, Authority::Revoked);
        assert!(matches!(channels[1].1.authority, Authority::DelegateAccount(_)));

        let signers: Vec<(&str, &SecretKey, Option<usize>)> = [
            ("payer", &payer_key, None),
            ("delegate", &delegate, None),
            ("rotated-to", &rotated_to, None),
            ("outsider", &outsider, None),
        ]
        .into_iter()
        .chain(members.iter().enumerate().map(|(i, k)| ("member", k, Some(i))))
        .collect();
        let mut rng = Rng(0x5107_5EED);
        let cases = 2_000;
        let mut accepted = 0;
        let mut disagreements = Vec::new();
        let mut kinds = std::collections::BTreeMap::<String, (u32, u32)>::new();
        for _ in 0..cases {
            let which = rng.below(channels.len() as u64) as usize;
            let (id, channel) = channels[which];
            // Half the time the key the channel admits (a member for the group).
            let right = match which {
                0 => 0,
                1 | 4 => 1,
                2 => 4 + rng.below(members.len() as u64) as usize,
                _ => 2,
            };
            let pick = if rng.below(2) == 0 { right } else { rng.below(signers.len() as u64) as usize };
            let (who, secret, index) = signers[pick];
            let epoch = if rng.below(8) == 0 { 1 - channel.epoch.min(1) } else { channel.epoch };
            let amount = match rng.below(10) {
                0 => DEPOSIT + 1 + u128::from(rng.below(1000)),
                1 => DEPOSIT,
                _ => 1 + u128::from(rng.below(u64::MAX)) % DEPOSIT,
            };
            let receipt = Receipt { channel: id, epoch, amount };
            // What was signed: this receipt, or another channel's, epoch's, chain's or
            // contract's.
            let (signed_receipt, signed_domain, what) = match rng.below(12) {
                0 => (Receipt { channel: ChannelId(id.0 + 1), ..receipt }, domain, "another channel's"),
                1 => (Receipt { epoch: epoch + 1, ..receipt }, domain, "another epoch's"),
                2 => (receipt, EvmDomain { chain_id: domain.chain_id + 1, ..domain }, "another chain's"),
                3 => (receipt, EvmDomain { contract: [0x11; 20], ..domain }, "another contract's"),
                4 => (Receipt { amount: amount + 1, ..receipt }, domain, "another amount's"),
                _ => (receipt, domain, "its own"),
            };
            let (signature, sig_kind) = mutate(&mut rng, signed_receipt.sign(&signed_domain, secret));
            // Mostly a proof on the group's channels, now and then one on the others.
            let group = channel.authority == Authority::Group(tree.root());
            let (proof, proof_kind) = if (rng.below(5) < 4 && group) || rng.below(6) == 0 {
                proof_shape(&mut rng, &tree, index)
            } else {
                (None, "none")
            };
            let signed = SignedReceipt { receipt, signature, proof };
            // The Rust rule, in the contract's order: the channel rule, then the signature.
            let now = contract.node().best().await.expect("best").0 + 1;
            let mut at_now = channel;
            let rust: Result<Balance, String> = at_now
                .settlement(&receipt, now)
                .map_err(|e| format!("{:?}", interface::Error::from(e)))
                .and_then(|s| {
                    authorize::<SoftHasher, Libsecp256k1>(&channel.authority, &domain, signed.clone())
                        .map(|_| s.paid)
                        .map_err(|e| format!("{:?}", interface::Error::from(e)))
                });
            let solidity = contract_verdict(
                contract
                    .dry_run(payee.account(), 0, &Settle { receipt: signed.clone() }, At::Best)
                    .await,
            );
            let case = format!(
                "channel {id} ({:?}) signer {who} signed {what}, signature {sig_kind}, proof {proof_kind}, epoch {epoch}, amount {amount}",
                channel.authority
            );
            let entry = kinds.entry(sig_kind.to_owned()).or_default();
            entry.0 += 1;
            match (&rust, &solidity) {
                (Ok(a), Ok(b)) if a == b => {
                    accepted += 1;
                    entry.1 += 1;
                }
                (Err(a), Err(b)) if a == b => {}
                // Two faults at once: `authorize` refuses a revoked channel, or a proof on
                // a channel that takes none, before it looks at the signature; the
                // contract looks at the signature first. Both refuse.
                (Err(a), Err(_)) if a == "Revoked" || a == "UnexpectedProof" => {}
                _ => disagreements.push(format!("{case}: Rust {rust:?}, Solidity {solidity:?}")),
            }
        }
        println!("{cases} cases, {accepted} accepted by both; by signature kind (cases, accepted): {kinds:?}");
        assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
        assert!(accepted > 50, "too few accepted cases ({accepted}) to mean anything");
        for (kind, (n, _)) in &kinds {
            assert!(*n > 10, "signature kind {kind} drawn only {n} times");
        }
        drop(anvil);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ABI `chain::evm` calls the contract with (written by hand with `sol!`) is the
/// artifact's: every function, event and error signature, both ways.
#[test]
fn the_clients_abi_is_the_artifacts() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(evm_artifact()).expect("artifact"))
            .expect("JSON");
    let abi: alloy::json_abi::JsonAbi =
        serde_json::from_value(json["abi"].clone()).expect("the artifact's abi");
    let mismatches = evm::abi_mismatches(&abi);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
