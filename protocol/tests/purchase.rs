//! The AS's purchase rule: every rejection, whole slots, group races, and agreement with
//! the contract's own `authorize` on the signature.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::merkle::MerkleTree;
use protocol::signature::keys::{self, SecretKey};
use protocol::{
    authority::account_id_of, check_purchase, AuthError, Authority, ChannelId, ChannelView, Domain,
    MembershipProof, Purchase, PurchaseError, PurchaseRequest, Receipt, Signature, Tariff,
};

const AS: [u8; 32] = [0xA5; 32];
const PRICE: u128 = 25;
const TARIFF: Tariff = Tariff {
    price: PRICE,
    expiry_margin: 10,
};
const DOMAIN: Domain = Domain {
    genesis_hash: [7; 32],
    contract: [9; 32],
};

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

fn view(authority: Authority) -> ChannelView {
    ChannelView {
        payee: AS,
        authority,
        deposit: 1000,
        expires_at: 100,
    }
}

fn buy(
    channel: &ChannelView,
    now: u32,
    accepted: u128,
    amount: u128,
    signer: &SecretKey,
    proof: Option<&MembershipProof>,
) -> Result<Purchase, PurchaseError> {
    let receipt = Receipt {
        channel: ChannelId(4),
        amount,
    };
    let signature = receipt.sign(&DOMAIN, signer);
    check_purchase::<SoftHasher, Libsecp256k1>(
        &AS,
        &DOMAIN,
        &TARIFF,
        Some(channel),
        now,
        accepted,
        &PurchaseRequest {
            receipt: &receipt,
            signature: &signature,
            proof,
        },
    )
}

#[test]
fn whole_slots_above_the_total_are_sold() {
    let client = secret(1);
    let channel = view(Authority::Delegate(keys::public_key(&client)));
    let bought = buy(&channel, 50, 50, 125, &client, None).expect("three slots");
    assert_eq!(bought.slots, 3);
    assert_eq!(bought.previous_total, 50);
    assert_eq!(bought.new_total, 125);
    assert_eq!(bought.signer, keys::public_key(&client));
    // Up to the whole deposit, and not a unit more.
    assert_eq!(
        buy(&channel, 50, 975, 1000, &client, None).unwrap().slots,
        1
    );
    assert_eq!(
        buy(&channel, 50, 1000, 1025, &client, None),
        Err(PurchaseError::ExceedsDeposit { deposit: 1000 })
    );
}

#[test]
fn every_rule_rejects() {
    let client = secret(1);
    let channel = view(Authority::Delegate(keys::public_key(&client)));
    assert_eq!(
        buy(&channel, 50, 50, 50, &client, None),
        Err(PurchaseError::StaleTotal { current_total: 50 })
    );
    assert_eq!(
        buy(&channel, 50, 50, 60, &client, None),
        Err(PurchaseError::NotWholeSlots {
            added: 10,
            price: PRICE
        })
    );
    // Sells while now + margin < expiry; not from block 90 on.
    assert!(buy(&channel, 89, 0, 25, &client, None).is_ok());
    assert_eq!(
        buy(&channel, 90, 0, 25, &client, None),
        Err(PurchaseError::ExpiringSoon {
            expires_at: 100,
            now: 90,
            margin: 10
        })
    );
    let mut other_payee = channel;
    other_payee.payee = [0xB6; 32];
    assert_eq!(
        buy(&other_payee, 50, 0, 25, &client, None),
        Err(PurchaseError::WrongPayee)
    );
    assert_eq!(
        buy(&channel, 50, 0, 25, &secret(2), None),
        Err(PurchaseError::Unauthorized(AuthError::NotDelegate))
    );
    let receipt = Receipt {
        channel: ChannelId(4),
        amount: 25,
    };
    let signature = receipt.sign(&DOMAIN, &client);
    let none = check_purchase::<SoftHasher, Libsecp256k1>(
        &AS,
        &DOMAIN,
        &TARIFF,
        None,
        50,
        0,
        &PurchaseRequest {
            receipt: &receipt,
            signature: &signature,
            proof: None,
        },
    );
    assert_eq!(none, Err(PurchaseError::ChannelNotFound));
    let free = Tariff {
        price: 0,
        expiry_margin: 0,
    };
    let zero = check_purchase::<SoftHasher, Libsecp256k1>(
        &AS,
        &DOMAIN,
        &free,
        Some(&channel),
        50,
        0,
        &PurchaseRequest {
            receipt: &receipt,
            signature: &signature,
            proof: None,
        },
    );
    assert_eq!(zero, Err(PurchaseError::ZeroPrice));
}

#[test]
fn codes_are_distinct() {
    let errors = [
        PurchaseError::ChannelNotFound,
        PurchaseError::WrongPayee,
        PurchaseError::ExpiringSoon {
            expires_at: 0,
            now: 0,
            margin: 0,
        },
        PurchaseError::StaleTotal { current_total: 0 },
        PurchaseError::NotWholeSlots { added: 0, price: 0 },
        PurchaseError::ExceedsDeposit { deposit: 0 },
        PurchaseError::Unauthorized(AuthError::MissingProof),
        PurchaseError::ZeroPrice,
    ];
    let mut codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}

#[test]
fn payer_account_key_buys_and_others_do_not() {
    let payer = secret(3);
    let account = account_id_of::<SoftHasher>(&keys::public_key(&payer));
    let channel = view(Authority::Account(account));
    assert!(buy(&channel, 0, 0, 25, &payer, None).is_ok());
    assert_eq!(
        buy(&channel, 0, 0, 25, &secret(4), None),
        Err(PurchaseError::Unauthorized(AuthError::NotPayerAccount))
    );
}

#[test]
fn group_members_race_on_one_running_total() {
    let members: Vec<SecretKey> = (10..15).map(secret).collect();
    let keys: Vec<_> = members.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&keys).expect("tree");
    let channel = view(Authority::Group(tree.root()));
    let proof = |i: usize| tree.proof(i).expect("proof");
    // Members 0 and 3 both sign total + price against total 0; the first wins ...
    let first = buy(&channel, 0, 0, 25, &members[0], Some(&proof(0))).expect("first");
    assert_eq!(first.signer, keys[0]);
    // ... the second learns the new total and signs above it.
    let lost = buy(&channel, 0, 25, 25, &members[3], Some(&proof(3)));
    assert_eq!(lost, Err(PurchaseError::StaleTotal { current_total: 25 }));
    assert!(buy(&channel, 0, 25, 50, &members[3], Some(&proof(3))).is_ok());
    // A member's proof does not carry another key; a group needs a proof.
    assert!(matches!(
        buy(&channel, 0, 25, 50, &members[3], Some(&proof(2))),
        Err(PurchaseError::Unauthorized(AuthError::NotMember(_)))
    ));
    assert_eq!(
        buy(&channel, 0, 25, 50, &members[3], None),
        Err(PurchaseError::Unauthorized(AuthError::MissingProof))
    );
    assert!(matches!(
        buy(&channel, 0, 25, 50, &secret(99), Some(&proof(3))),
        Err(PurchaseError::Unauthorized(AuthError::NotMember(_)))
    ));
}

#[test]
fn malleated_signatures_are_refused_like_the_contract_does() {
    let client = secret(1);
    let channel = view(Authority::Delegate(keys::public_key(&client)));
    let receipt = Receipt {
        channel: ChannelId(4),
        amount: 25,
    };
    let high_s: Signature = receipt.sign(&DOMAIN, &client).malleate();
    let result = check_purchase::<SoftHasher, Libsecp256k1>(
        &AS,
        &DOMAIN,
        &TARIFF,
        Some(&channel),
        0,
        0,
        &PurchaseRequest {
            receipt: &receipt,
            signature: &high_s,
            proof: None,
        },
    );
    let expected = protocol::authorize::<SoftHasher, Libsecp256k1>(
        &channel.authority,
        &DOMAIN,
        &receipt,
        &high_s,
        None,
    )
    .expect_err("the contract's rule refuses it");
    assert_eq!(result, Err(PurchaseError::Unauthorized(expected)));
}
