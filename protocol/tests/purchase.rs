//! The AS's purchase rule: every refusal reachable with its own code, whole slots, group
//! races and member caps, rotations, the screen before key recovery, and agreement with the
//! contract's own `authorize` on the signature.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::crypto::EcdsaRecover;
use protocol::keys::{self, SecretKey};
use protocol::MerkleTree;
use protocol::{
    account_id_of, authorize, check_terms, screen, AccountId32, AuthError, Authority, Balance,
    Channel, ChannelId, Domain, Epoch, Member, MembershipProof, PublicKey, Purchase, PurchaseError,
    Receipt, Signature, SignatureError, Spent, Tariff, TariffError,
};
use std::cell::Cell;
use std::collections::HashMap;

const AS: AccountId32 = [0xA5; 32];
const PAYER: AccountId32 = [0x0B; 32];
const ID: ChannelId = ChannelId(4);
const PRICE: u128 = 25;
const MARGIN: u32 = 10;
const MAX_SLOTS: u64 = 8;
const MIN_NOTICE: u32 = 20;
const DEPOSIT: u128 = 1000;
const EXPIRES_AT: u32 = 100;
const DOMAIN: Domain = Domain {
    genesis_hash: [7; 32],
    contract: [9; 32],
};

fn tariff() -> Tariff {
    Tariff::new(PRICE, MARGIN, MAX_SLOTS, MIN_NOTICE).expect("workable terms")
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

/// A channel to this AS opened at block 0: deposit 1000, expiring at 100, the notice the AS
/// needs.
fn channel(authority: Authority) -> Channel {
    Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, MIN_NOTICE, 0).expect("open")
}

fn delegate_channel(client: &SecretKey) -> Channel {
    channel(Authority::Delegate(keys::public_key(client)))
}

thread_local! {
    static RECOVERIES: Cell<usize> = const { Cell::new(0) };
}

/// libsecp256k1, counting the public-key recoveries it is asked for: the work an attacker
/// can make the AS do.
struct Counting;

impl EcdsaRecover for Counting {
    fn recover_compressed(signature: &[u8; 65], message_hash: &[u8; 32]) -> Option<[u8; 33]> {
        RECOVERIES.with(|n| n.set(n.get() + 1));
        Libsecp256k1::recover_compressed(signature, message_hash)
    }
}

fn recoveries() -> usize {
    RECOVERIES.with(Cell::get)
}

/// An offer as the AS handles it: the channel as it stands at `now`, the screen (no key
/// recovery), the signature against the channel's authority, then the whole rule.
fn sell(
    ch: &Channel,
    now: u32,
    spent: Spent,
    receipt: &Receipt,
    signature: &Signature,
    proof: Option<&MembershipProof>,
) -> Result<Purchase, PurchaseError> {
    let at = ch.at(now);
    screen(&AS, &tariff(), &at, now, receipt, spent.total)?;
    let authorized = authorize::<SoftHasher, Counting>(
        &at.authority,
        &DOMAIN,
        protocol::SignedReceipt {
            receipt: *receipt,
            signature: *signature,
            proof: (proof).cloned(),
        },
    )?;
    check_terms(&AS, &tariff(), ID, &at, now, spent, &authorized)
}

/// `signer` signs `amount` in `epoch` on channel 4 and offers it.
fn buy_in(
    ch: &Channel,
    now: u32,
    spent: Spent,
    epoch: Epoch,
    amount: u128,
    signer: &SecretKey,
    proof: Option<&MembershipProof>,
) -> Result<Purchase, PurchaseError> {
    let receipt = Receipt {
        channel: ID,
        epoch,
        amount,
    };
    sell(
        ch,
        now,
        spent,
        &receipt,
        &receipt.sign(&DOMAIN, signer),
        proof,
    )
}

/// As [`buy_in`], in the epoch the channel is in at `now`, with the whole running total
/// `total` signed by this signer alone.
fn buy(
    ch: &Channel,
    now: u32,
    total: u128,
    amount: u128,
    signer: &SecretKey,
    proof: Option<&MembershipProof>,
) -> Result<Purchase, PurchaseError> {
    let spent = Spent {
        total,
        by_signer: total,
    };
    buy_in(ch, now, spent, ch.at(now).epoch, amount, signer, proof)
}

/// What the AS's ledger keeps for one epoch of one channel.
#[derive(Default)]
struct Ledger {
    total: Balance,
    by_signer: HashMap<PublicKey, Balance>,
}

impl Ledger {
    fn spent(&self, signer: &PublicKey) -> Spent {
        Spent {
            total: self.total,
            by_signer: self.by_signer.get(signer).copied().unwrap_or(0),
        }
    }

    fn record(&mut self, purchase: &Purchase) {
        self.total = purchase.new_total;
        *self.by_signer.entry(purchase.signer).or_default() += purchase.added();
    }
}

#[test]
fn tariff_refuses_terms_that_cannot_work() {
    assert_eq!(Tariff::new(0, 10, 8, 20), Err(TariffError::ZeroPrice));
    assert_eq!(Tariff::new(25, 10, 0, 20), Err(TariffError::NoSlots));
    // A rotation notice within the margin would let a rotation land before the AS could
    // settle what it sold: refused at the boundary, accepted one block above it.
    assert_eq!(
        Tariff::new(25, 10, 8, 10),
        Err(TariffError::NoticeWithinMargin {
            min_notice: 10,
            expiry_margin: 10
        })
    );
    assert_eq!(
        Tariff::new(25, 10, 8, 3),
        Err(TariffError::NoticeWithinMargin {
            min_notice: 3,
            expiry_margin: 10
        })
    );
    let t = Tariff::new(25, 10, 8, 11).expect("notice above the margin");
    assert_eq!(
        (t.price(), t.expiry_margin(), t.max_slots(), t.min_notice()),
        (25, 10, 8, 11)
    );
}

#[test]
fn whole_slots_above_the_total_are_sold() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let bought = buy(&ch, 50, 50, 125, &client, None).expect("three slots");
    assert_eq!(bought.slots, 3);
    assert_eq!(bought.added(), 75);
    assert_eq!(bought.epoch, 0);
    assert_eq!(bought.previous_total, 50);
    assert_eq!(bought.new_total, 125);
    assert_eq!(bought.signer, keys::public_key(&client));
    // Up to the whole deposit, and not a unit more.
    assert_eq!(buy(&ch, 50, 975, 1000, &client, None).unwrap().slots, 1);
    assert_eq!(
        buy(&ch, 50, 1000, 1025, &client, None),
        Err(PurchaseError::ExceedsDeposit { limit: 1000 })
    );
    // A top-up raises the limit by exactly what was added.
    let mut topped = ch;
    topped.top_up(50, 40).unwrap();
    assert!(buy(&topped, 50, 1000, 1050, &client, None).is_ok());
    assert_eq!(
        buy(&topped, 50, 1025, 1075, &client, None),
        Err(PurchaseError::ExceedsDeposit { limit: 1050 })
    );
}

#[test]
fn every_rule_rejects_at_its_boundary() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    assert_eq!(
        buy(&ch, 50, 50, 50, &client, None),
        Err(PurchaseError::StaleTotal { current_total: 50 })
    );
    assert_eq!(
        buy(&ch, 50, 50, 25, &client, None),
        Err(PurchaseError::StaleTotal { current_total: 50 })
    );
    assert_eq!(
        buy(&ch, 50, 50, 60, &client, None),
        Err(PurchaseError::NotWholeSlots {
            added: 10,
            price: PRICE
        })
    );
    assert_eq!(
        buy(&ch, 50, 50, 99, &client, None),
        Err(PurchaseError::NotWholeSlots {
            added: 49,
            price: PRICE
        })
    );
    // Sells while now + margin < expiry; not from block 90 on.
    assert!(buy(&ch, 89, 0, 25, &client, None).is_ok());
    assert_eq!(
        buy(&ch, 90, 0, 25, &client, None),
        Err(PurchaseError::ExpiringSoon {
            expires_at: 100,
            now: 90,
            margin: 10
        })
    );
    let mut other_payee = ch;
    other_payee.payee = [0xB6; 32];
    assert_eq!(
        buy(&other_payee, 50, 0, 25, &client, None),
        Err(PurchaseError::WrongPayee)
    );
    assert_eq!(
        buy(&ch, 50, 0, 25, &secret(2), None),
        Err(PurchaseError::Unauthorized(AuthError::NotDelegate))
    );
    assert_eq!(
        buy_in(&ch, 50, Spent::default(), 1, 25, &client, None),
        Err(PurchaseError::WrongEpoch {
            claimed: 1,
            current: 0
        })
    );
}

#[test]
fn a_notice_shorter_than_the_as_needs_is_refused() {
    let client = secret(1);
    let authority = Authority::Delegate(keys::public_key(&client));
    let short = Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, MIN_NOTICE - 1, 0)
        .expect("the contract opens it");
    assert_eq!(
        buy(&short, 5, 0, 25, &client, None),
        Err(PurchaseError::NoticeTooShort {
            notice: MIN_NOTICE - 1,
            min: MIN_NOTICE
        })
    );
    let none = Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, 0, 0).unwrap();
    assert_eq!(
        buy(&none, 5, 0, 25, &client, None),
        Err(PurchaseError::NoticeTooShort {
            notice: 0,
            min: MIN_NOTICE
        })
    );
    let enough = Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, MIN_NOTICE, 0).unwrap();
    assert!(buy(&enough, 5, 0, 25, &client, None).is_ok());
}

#[test]
fn too_many_slots_in_one_purchase_are_refused() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let most = PRICE * u128::from(MAX_SLOTS);
    assert_eq!(
        buy(&ch, 5, 100, 100 + most, &client, None).unwrap().slots,
        MAX_SLOTS
    );
    assert_eq!(
        buy(&ch, 5, 100, 100 + most + PRICE, &client, None),
        Err(PurchaseError::TooManySlots {
            slots: u128::from(MAX_SLOTS) + 1,
            max: MAX_SLOTS
        })
    );
}

/// The payer announces a new key at block 30 (in force at 50). The AS must keep `margin`
/// blocks to settle the old epoch before it ends, so it stops selling on the old key at
/// 40; nobody buys until 50; from 50 only the new key buys, counting from zero above what
/// was settled.
#[test]
fn a_pending_rotation_within_the_margin_stops_sales_and_the_new_epoch_starts_from_zero() {
    let old = secret(1);
    let new = secret(2);
    let mut ch = delegate_channel(&old);
    let rotation = ch
        .rotate(Authority::Delegate(keys::public_key(&new)), 30)
        .unwrap();
    assert_eq!(rotation.effective_at, 30 + MIN_NOTICE);
    assert!(buy(&ch, 39, 0, 25, &old, None).is_ok());
    for now in 40..50 {
        for (signer, epoch) in [(&old, 0), (&new, 1)] {
            assert_eq!(
                buy_in(&ch, now, Spent::default(), epoch, 25, signer, None),
                Err(PurchaseError::RotationPending { effective_at: 50 }),
                "block {now}"
            );
        }
    }
    // The AS settled 200 of the old epoch before 50: that is the new epoch's base.
    let settlement = ch
        .settlement(
            &Receipt {
                channel: ChannelId(0),
                epoch: 0,
                amount: 200,
            },
            45,
        )
        .unwrap();
    ch.apply(settlement);
    assert_eq!(
        buy_in(&ch, 50, Spent::default(), 0, 225, &old, None),
        Err(PurchaseError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
    // The old key signing the new epoch is not the authority any more.
    assert_eq!(
        buy_in(&ch, 50, Spent::default(), 1, 25, &old, None),
        Err(PurchaseError::Unauthorized(AuthError::NotDelegate))
    );
    let first = buy_in(&ch, 50, Spent::default(), 1, 25, &new, None).expect("new key");
    assert_eq!((first.epoch, first.previous_total, first.slots), (1, 0, 1));
    // What the deposit leaves for the new epoch is the deposit less the base.
    assert_eq!(
        buy_in(
            &ch,
            50,
            Spent {
                total: 775,
                by_signer: 775
            },
            1,
            825,
            &new,
            None
        ),
        Err(PurchaseError::ExceedsDeposit { limit: 800 })
    );
    assert!(buy_in(
        &ch,
        50,
        Spent {
            total: 775,
            by_signer: 775
        },
        1,
        800,
        &new,
        None
    )
    .is_ok());
}

/// A receipt whose signature was checked against the authority the AS read before a
/// rotation took effect (in the new epoch's number, signed by the old key) must not buy on
/// the channel as it stands now: only the screen-free part of the rule can see it.
#[test]
fn a_receipt_checked_against_a_superseded_authority_buys_nothing() {
    let old = secret(1);
    let new = secret(2);
    let old_authority = Authority::Delegate(keys::public_key(&old));
    let mut ch = channel(old_authority);
    ch.rotate(Authority::Delegate(keys::public_key(&new)), 0)
        .unwrap();
    let now = MIN_NOTICE;
    let current = ch.at(now);
    assert_eq!(current.epoch, 1);
    let receipt = Receipt {
        channel: ID,
        epoch: 1,
        amount: 25,
    };
    let signature = receipt.sign(&DOMAIN, &old);
    let stale = authorize::<SoftHasher, Libsecp256k1>(
        &old_authority,
        &DOMAIN,
        protocol::SignedReceipt {
            receipt,
            signature,
            proof: None,
        },
    )
    .expect("valid for the old authority");
    assert_eq!(screen(&AS, &tariff(), &current, now, &receipt, 0), Ok(()));
    assert_eq!(
        check_terms(&AS, &tariff(), ID, &current, now, Spent::default(), &stale),
        Err(PurchaseError::WrongEpoch {
            claimed: 1,
            current: 1
        })
    );
}

#[test]
fn a_receipt_for_another_channel_is_refused() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let receipt = Receipt {
        channel: ChannelId(5),
        epoch: 0,
        amount: 25,
    };
    let signature = receipt.sign(&DOMAIN, &client);
    let authorized = authorize::<SoftHasher, Libsecp256k1>(
        &ch.authority,
        &DOMAIN,
        protocol::SignedReceipt {
            receipt,
            signature,
            proof: None,
        },
    )
    .expect("a valid signature, for channel 5");
    assert_eq!(
        check_terms(&AS, &tariff(), ID, &ch, 5, Spent::default(), &authorized),
        Err(PurchaseError::ChannelNotFound)
    );
}

#[test]
fn a_revoked_channel_sells_nothing() {
    let client = secret(1);
    let mut ch = delegate_channel(&client);
    ch.rotate(Authority::Revoked, 0).unwrap();
    let now = MIN_NOTICE;
    for epoch in [0, 1] {
        assert_eq!(
            buy_in(&ch, now, Spent::default(), epoch, 25, &client, None),
            Err(PurchaseError::Unauthorized(AuthError::Revoked))
        );
    }
}

#[test]
fn stale_against_the_total_seen_and_against_the_ledger() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let receipt = |amount| Receipt {
        channel: ID,
        epoch: 0,
        amount,
    };
    // The screen refuses at or below a total once seen, for good ...
    for amount in [0, 75, 100] {
        assert_eq!(
            screen(&AS, &tariff(), &ch, 5, &receipt(amount), 100),
            Err(PurchaseError::StaleTotal { current_total: 100 })
        );
    }
    assert_eq!(screen(&AS, &tariff(), &ch, 5, &receipt(125), 100), Ok(()));
    // ... and the ledger, which has moved on since, refuses what the screen let through,
    // telling the client the total to sign above.
    assert_eq!(
        buy(&ch, 5, 150, 125, &client, None),
        Err(PurchaseError::StaleTotal { current_total: 150 })
    );
    assert_eq!(
        buy(&ch, 5, 150, 150, &client, None),
        Err(PurchaseError::StaleTotal { current_total: 150 })
    );
    assert_eq!(buy(&ch, 5, 150, 175, &client, None).unwrap().slots, 1);
}

#[test]
fn payer_account_key_buys_and_others_do_not() {
    let payer = secret(3);
    let account = account_id_of::<SoftHasher>(protocol::Substrate, &keys::public_key(&payer));
    let ch = Channel::open(
        account,
        AS,
        Authority::Account(account),
        DEPOSIT,
        EXPIRES_AT,
        MIN_NOTICE,
        0,
    )
    .unwrap();
    assert!(buy(&ch, 0, 0, 25, &payer, None).is_ok());
    assert_eq!(
        buy(&ch, 0, 0, 25, &secret(4), None),
        Err(PurchaseError::Unauthorized(AuthError::NotPayerAccount))
    );
}

fn group(secrets: &[SecretKey], caps: &[Balance]) -> (MerkleTree, Vec<PublicKey>) {
    let keys: Vec<PublicKey> = secrets.iter().map(keys::public_key).collect();
    let members: Vec<Member> = keys
        .iter()
        .zip(caps)
        .map(|(&key, &cap)| Member { key, cap })
        .collect();
    (
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("tree"),
        keys,
    )
}

#[test]
fn group_members_race_on_one_running_total() {
    let members: Vec<SecretKey> = (10..15).map(secret).collect();
    let (tree, keys) = group(&members, &[DEPOSIT; 5]);
    let ch = channel(Authority::Group(tree.root()));
    let proof = |i: usize| tree.proof(i).expect("proof");
    let mut ledger = Ledger::default();
    // Members 0 and 3 both sign total + price against total 0; the first wins ...
    let first = buy_in(
        &ch,
        0,
        ledger.spent(&keys[0]),
        0,
        25,
        &members[0],
        Some(&proof(0)),
    )
    .expect("first");
    assert_eq!(first.signer, keys[0]);
    ledger.record(&first);
    // ... the second learns the new total and signs above it.
    let lost = buy_in(
        &ch,
        0,
        ledger.spent(&keys[3]),
        0,
        25,
        &members[3],
        Some(&proof(3)),
    );
    assert_eq!(lost, Err(PurchaseError::StaleTotal { current_total: 25 }));
    let second = buy_in(
        &ch,
        0,
        ledger.spent(&keys[3]),
        0,
        50,
        &members[3],
        Some(&proof(3)),
    )
    .expect("retried above the total");
    assert_eq!((second.previous_total, second.added()), (25, 25));
    ledger.record(&second);
    // A member's proof does not carry another key; a group needs a proof.
    assert!(matches!(
        buy_in(
            &ch,
            0,
            ledger.spent(&keys[3]),
            0,
            75,
            &members[3],
            Some(&proof(2))
        ),
        Err(PurchaseError::Unauthorized(AuthError::NotMember(_)))
    ));
    assert_eq!(
        buy_in(&ch, 0, ledger.spent(&keys[3]), 0, 75, &members[3], None),
        Err(PurchaseError::Unauthorized(AuthError::MissingProof))
    );
    assert!(matches!(
        buy_in(
            &ch,
            0,
            Spent {
                total: 50,
                by_signer: 0
            },
            0,
            75,
            &secret(99),
            Some(&proof(3))
        ),
        Err(PurchaseError::Unauthorized(AuthError::NotMember(_)))
    ));
}

/// Member A may spend 3 slots' worth, B too. A buys one slot at a time until its cap is
/// used up; the running total it pushed up does not count against B, who still buys. A
/// cannot get around its cap by buying several slots at once, nor by presenting its proof
/// with B's bigger cap.
#[test]
fn a_greedy_group_member_cannot_buy_above_its_cap_while_another_still_can() {
    let members = [secret(20), secret(21)];
    let (tree, keys) = group(&members, &[3 * PRICE, 5 * PRICE]);
    let ch = channel(Authority::Group(tree.root()));
    let (a, b) = (tree.proof(0).unwrap(), tree.proof(1).unwrap());
    let mut ledger = Ledger::default();
    assert_eq!(
        buy_in(
            &ch,
            1,
            ledger.spent(&keys[0]),
            0,
            4 * PRICE,
            &members[0],
            Some(&a)
        ),
        Err(PurchaseError::OverCap {
            cap: 75,
            would_spend: 100
        })
    );
    for _ in 0..3 {
        let amount = ledger.total + PRICE;
        let bought = buy_in(
            &ch,
            1,
            ledger.spent(&keys[0]),
            0,
            amount,
            &members[0],
            Some(&a),
        )
        .expect("within A's cap");
        ledger.record(&bought);
    }
    assert_eq!(ledger.total, 75);
    assert_eq!(
        buy_in(
            &ch,
            1,
            ledger.spent(&keys[0]),
            0,
            100,
            &members[0],
            Some(&a)
        ),
        Err(PurchaseError::OverCap {
            cap: 75,
            would_spend: 100
        })
    );
    let inflated = MembershipProof {
        cap: 5 * PRICE,
        ..a
    };
    assert!(matches!(
        buy_in(
            &ch,
            1,
            ledger.spent(&keys[0]),
            0,
            100,
            &members[0],
            Some(&inflated)
        ),
        Err(PurchaseError::Unauthorized(AuthError::NotMember(_)))
    ));
    // B's cap is its own: it buys above the total A left, up to its 5 slots.
    let bought = buy_in(
        &ch,
        1,
        ledger.spent(&keys[1]),
        0,
        100,
        &members[1],
        Some(&b),
    )
    .expect("B is within its cap");
    ledger.record(&bought);
    let bought = buy_in(
        &ch,
        1,
        ledger.spent(&keys[1]),
        0,
        200,
        &members[1],
        Some(&b),
    )
    .expect("B's fifth slot");
    ledger.record(&bought);
    assert_eq!(
        buy_in(
            &ch,
            1,
            ledger.spent(&keys[1]),
            0,
            225,
            &members[1],
            Some(&b)
        ),
        Err(PurchaseError::OverCap {
            cap: 125,
            would_spend: 150
        })
    );
    assert_eq!(ledger.by_signer[&keys[0]], 75);
    assert_eq!(ledger.by_signer[&keys[1]], 125);
}

/// Offers the screen can refuse are refused with the screen's own reason and cost no key
/// recovery, whether the signature is a stranger's valid one or garbage; the same offers
/// through the whole rule are refused for the same reason.
#[test]
fn screen_refuses_before_any_key_recovery_with_its_own_reason() {
    let client = secret(1);
    let stranger = secret(2);
    let ch = delegate_channel(&client);
    let mut rotating = ch;
    rotating
        .rotate(Authority::Delegate(keys::public_key(&stranger)), 30)
        .unwrap();
    let mut revoked = ch;
    revoked.rotate(Authority::Revoked, 0).unwrap();
    let mut other_payee = ch;
    other_payee.payee = [0xB6; 32];
    let short_notice = Channel::open(PAYER, AS, ch.authority, DEPOSIT, EXPIRES_AT, 1, 0).unwrap();
    // (channel, now, total seen, epoch, amount, the screen's reason)
    let cases: Vec<(Channel, u32, u128, Epoch, u128, PurchaseError)> = vec![
        (other_payee, 5, 0, 0, 25, PurchaseError::WrongPayee),
        (
            short_notice,
            5,
            0,
            0,
            25,
            PurchaseError::NoticeTooShort {
                notice: 1,
                min: MIN_NOTICE,
            },
        ),
        (
            ch,
            95,
            0,
            0,
            25,
            PurchaseError::ExpiringSoon {
                expires_at: 100,
                now: 95,
                margin: MARGIN,
            },
        ),
        (
            rotating,
            45,
            0,
            0,
            25,
            PurchaseError::RotationPending { effective_at: 50 },
        ),
        (
            revoked,
            MIN_NOTICE,
            0,
            1,
            25,
            PurchaseError::Unauthorized(AuthError::Revoked),
        ),
        (
            ch,
            5,
            0,
            3,
            25,
            PurchaseError::WrongEpoch {
                claimed: 3,
                current: 0,
            },
        ),
        (
            ch,
            5,
            0,
            0,
            1025,
            PurchaseError::ExceedsDeposit { limit: DEPOSIT },
        ),
        (
            ch,
            5,
            100,
            0,
            100,
            PurchaseError::StaleTotal { current_total: 100 },
        ),
    ];
    for (ch, now, seen, epoch, amount, reason) in cases {
        let receipt = Receipt {
            channel: ID,
            epoch,
            amount,
        };
        let spent = Spent {
            total: seen,
            by_signer: 0,
        };
        for signature in [receipt.sign(&DOMAIN, &stranger), Signature([0xff; 65])] {
            let before = recoveries();
            assert_eq!(
                sell(&ch, now, spent, &receipt, &signature, None),
                Err(reason),
                "{reason:?}"
            );
            assert_eq!(recoveries(), before, "a key was recovered for {reason:?}");
        }
        // Had the AS recovered first, the stranger would have cost a recovery and come
        // out merely unauthorized.
        let signature = receipt.sign(&DOMAIN, &stranger);
        let at = ch.at(now);
        if at.authority != Authority::Revoked {
            assert!(matches!(
                authorize::<SoftHasher, Libsecp256k1>(
                    &at.authority,
                    &DOMAIN,
                    protocol::SignedReceipt {
                        receipt,
                        signature,
                        proof: None
                    }
                ),
                Err(AuthError::NotDelegate)
            ));
        }
        // With the client's own valid signature the whole rule refuses it just the same.
        let signature = receipt.sign(&DOMAIN, &client);
        if let Ok(authorized) = authorize::<SoftHasher, Libsecp256k1>(
            &at.authority,
            &DOMAIN,
            protocol::SignedReceipt {
                receipt,
                signature,
                proof: None,
            },
        ) {
            assert_eq!(
                check_terms(&AS, &tariff(), ID, &at, now, spent, &authorized),
                Err(reason)
            );
        }
    }
    // And an offer the screen lets through does cost its one recovery.
    let receipt = Receipt {
        channel: ID,
        epoch: 0,
        amount: 25,
    };
    let before = recoveries();
    assert!(sell(
        &ch,
        5,
        Spent::default(),
        &receipt,
        &receipt.sign(&DOMAIN, &client),
        None
    )
    .is_ok());
    assert_eq!(recoveries(), before + 1);
}

#[test]
fn malleated_signatures_are_refused_like_the_contract_does() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let receipt = Receipt {
        channel: ID,
        epoch: 0,
        amount: 25,
    };
    let high_s: Signature = receipt.sign(&DOMAIN, &client).malleate();
    let result = sell(&ch, 0, Spent::default(), &receipt, &high_s, None);
    let expected = authorize::<SoftHasher, Libsecp256k1>(
        &ch.authority,
        &DOMAIN,
        protocol::SignedReceipt {
            receipt,
            signature: high_s,
            proof: None,
        },
    )
    .expect_err("the contract's rule refuses it");
    assert_eq!(
        expected,
        AuthError::Receipt(protocol::ReceiptError::Signature(SignatureError::HighS))
    );
    assert_eq!(result, Err(PurchaseError::Unauthorized(expected)));
}

/// Which variant an error is; no wildcard, so a new variant fails to compile here until it
/// is given a reachable case below.
fn variant(e: &PurchaseError) -> usize {
    match e {
        PurchaseError::ChannelNotFound => 0,
        PurchaseError::WrongPayee => 1,
        PurchaseError::NoticeTooShort { .. } => 2,
        PurchaseError::ExpiringSoon { .. } => 3,
        PurchaseError::RotationPending { .. } => 4,
        PurchaseError::WrongEpoch { .. } => 5,
        PurchaseError::StaleTotal { .. } => 6,
        PurchaseError::NotWholeSlots { .. } => 7,
        PurchaseError::TooManySlots { .. } => 8,
        PurchaseError::ExceedsDeposit { .. } => 9,
        PurchaseError::OverCap { .. } => 10,
        PurchaseError::Unauthorized(_) => 11,
    }
}

/// Each refusal comes out of the rule for a real offer (none is dead code an API client
/// could never see), and each has its own published code.
#[test]
fn every_purchase_error_is_reachable_and_has_a_distinct_stable_code() {
    let client = secret(1);
    let ch = delegate_channel(&client);
    let (tree, keys) = group(&[secret(30)], &[PRICE]);
    let grouped = channel(Authority::Group(tree.root()));
    let mut rotating = ch;
    rotating.rotate(ch.authority, 30).unwrap();
    let mut other_payee = ch;
    other_payee.payee = [0xB6; 32];
    let short = Channel::open(PAYER, AS, ch.authority, DEPOSIT, EXPIRES_AT, 1, 0).unwrap();
    let wrong_channel = {
        let receipt = Receipt {
            channel: ChannelId(5),
            epoch: 0,
            amount: 25,
        };
        let signature = receipt.sign(&DOMAIN, &client);
        let authorized = authorize::<SoftHasher, Libsecp256k1>(
            &ch.authority,
            &DOMAIN,
            protocol::SignedReceipt {
                receipt,
                signature,
                proof: None,
            },
        )
        .unwrap();
        check_terms(&AS, &tariff(), ID, &ch, 5, Spent::default(), &authorized)
    };
    let refusals = [
        wrong_channel,
        buy(&other_payee, 5, 0, 25, &client, None),
        buy(&short, 5, 0, 25, &client, None),
        buy(&ch, 90, 0, 25, &client, None),
        buy(&rotating, 45, 0, 25, &client, None),
        buy_in(&ch, 5, Spent::default(), 1, 25, &client, None),
        buy(&ch, 5, 50, 50, &client, None),
        buy(&ch, 5, 50, 51, &client, None),
        buy(&ch, 5, 0, PRICE * 9, &client, None),
        buy(&ch, 5, 0, DEPOSIT + PRICE, &client, None),
        buy_in(
            &grouped,
            5,
            Spent::default(),
            0,
            2 * PRICE,
            &secret(30),
            Some(&tree.proof_for(&keys[0]).unwrap()),
        ),
        buy(&ch, 5, 0, 25, &secret(2), None),
    ];
    let mut seen = [false; 12];
    for (i, refusal) in refusals.iter().enumerate() {
        let error = refusal.expect_err("every offer above is refused");
        assert_eq!(variant(&error), i, "case {i} gave {error:?}");
        seen[variant(&error)] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

/// What the AS sells it can collect: for a sale at `now`, the contract's own settle and
/// close rules accept the receipt at every block of the margin the AS keeps in hand.
#[test]
fn a_sale_can_be_settled_or_closed_throughout_the_margin() {
    let client = secret(1);
    let mut ch = delegate_channel(&client);
    ch.rotate(ch.authority, 60).unwrap();
    for now in [0, 20, 69] {
        let bought = buy(&ch, now, 100, 300, &client, None).expect("a sale");
        for t in now..=now + MARGIN {
            let mut contract = ch;
            let settlement = contract
                .settlement(
                    &Receipt {
                        channel: ChannelId(0),
                        epoch: bought.epoch,
                        amount: bought.new_total,
                    },
                    t,
                )
                .unwrap_or_else(|e| panic!("sold at {now}, settle at {t}: {e}"));
            assert_eq!(settlement.settled, 300);
            let mut contract = ch;
            let payout = contract
                .payout(
                    Some(&Receipt {
                        channel: ChannelId(0),
                        epoch: bought.epoch,
                        amount: bought.new_total,
                    }),
                    t,
                )
                .unwrap();
            assert_eq!((payout.paid, payout.refunded), (300, DEPOSIT - 300));
        }
    }
}

/// The worst a payer can do to a sale it just made: announce a new key in the same block.
/// The notice the AS requires exceeds its margin, so the old epoch still settles at every
/// block the AS keeps in hand; with a notice equal to the margin (terms `Tariff::new`
/// refuses) the last of those blocks would already belong to the new key.
#[test]
fn a_rotation_announced_right_after_a_sale_leaves_the_as_its_margin() {
    let client = secret(1);
    let authority = Authority::Delegate(keys::public_key(&client));
    let tightest = Tariff::new(PRICE, MARGIN, MAX_SLOTS, MARGIN + 1).expect("notice above margin");
    let now = 5;
    for notice in [MARGIN + 1, MIN_NOTICE] {
        let ch = Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, notice, 0).unwrap();
        let receipt = Receipt {
            channel: ID,
            epoch: 0,
            amount: 50,
        };
        let signature = receipt.sign(&DOMAIN, &client);
        let authorized = authorize::<SoftHasher, Libsecp256k1>(
            &authority,
            &DOMAIN,
            protocol::SignedReceipt {
                receipt,
                signature,
                proof: None,
            },
        )
        .unwrap();
        let sale =
            check_terms(&AS, &tightest, ID, &ch, now, Spent::default(), &authorized).expect("sold");
        let mut rotated = ch;
        rotated.rotate(Authority::Revoked, now).unwrap();
        for t in now..=now + MARGIN {
            let mut settling = rotated;
            assert_eq!(
                settling
                    .settlement(
                        &Receipt {
                            channel: ChannelId(0),
                            epoch: sale.epoch,
                            amount: sale.new_total
                        },
                        t
                    )
                    .map(|s| s.paid),
                Ok(50),
                "notice {notice}, block {t}"
            );
        }
    }
    let mut too_short =
        Channel::open(PAYER, AS, authority, DEPOSIT, EXPIRES_AT, MARGIN, 0).unwrap();
    too_short.rotate(Authority::Revoked, now).unwrap();
    assert_eq!(
        too_short.settlement(
            &Receipt {
                channel: ChannelId(0),
                epoch: 0,
                amount: 50
            },
            now + MARGIN
        ),
        Err(protocol::ChannelError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
}
