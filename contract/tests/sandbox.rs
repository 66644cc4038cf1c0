//! End-to-end: the compiled contract on pallet-contracts, in process, with a real
//! existential deposit. Every channel's whole life, settlements, rotations and the
//! reaped-payer attack, balances checked to the unit (storage deposits included).
#![cfg(feature = "e2e-tests")]

mod support;

use slotpay_channels::interface::events::{
    Closed, ExpiredClaimed, PaymentDeferred, RotationAnnounced, Settled, Withdrawn,
};
use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::keys::{self, SecretKey};
use slotpay_channels::protocol::{Authority, ChannelId, MembershipProof, SignedReceipt};
use slotpay_channels::protocol::{Member, MerkleTree};
use slotpay_channels::slotpay_channels::Error;
use std::sync::OnceLock;
use support::*;

fn code() -> &'static [u8] {
    static CODE: OnceLock<Vec<u8>> = OnceLock::new();
    CODE.get_or_init(contract_code)
}

const DEPOSIT: Balance = 5_000_000;
const PRICE: Balance = 12_345;

type AccountId = ink_sandbox::AccountId32;

struct Parties {
    payer: AccountId,
    payee: AccountId,
}

fn parties() -> Parties {
    Parties {
        payer: account(1),
        payee: account(2),
    }
}

/// Expected balances, kept call by call: what each call moves, storage deposits included.
struct Ledger {
    payer: Balance,
    payee: Balance,
    contract: Balance,
}

impl Ledger {
    fn read(chain: &mut Chain, p: &Parties) -> Self {
        Self {
            payer: chain.balance(&p.payer),
            payee: chain.balance(&p.payee),
            contract: chain.balance(&chain.contract.clone()),
        }
    }

    fn check(&self, chain: &mut Chain, p: &Parties, when: &str) {
        assert_eq!(chain.balance(&p.payer), self.payer, "payer, {when}");
        assert_eq!(chain.balance(&p.payee), self.payee, "payee, {when}");
        assert_eq!(
            chain.balance(&chain.contract.clone()),
            self.contract,
            "contract, {when}"
        );
    }
}

/// `balance - charged`, where a negative charge is a refund.
fn less(balance: Balance, charged: i128) -> Balance {
    (balance as i128 - charged) as Balance
}

/// Opens, has `slots` slots bought (receipts signed by `sign(slot)`), settles at a third
/// and at two thirds of them, closes with the last receipt, and checks every balance to
/// the unit after every call.
fn whole_life(
    chain: &mut Chain,
    p: &Parties,
    authority: Authority,
    slots: u32,
    sign: impl Fn(&Chain, ChannelId, Balance, u32) -> SignedReceipt,
) {
    let mut ledger = Ledger::read(chain, p);
    let opened = chain.open(&p.payer, &p.payee, authority, 1_000, DEPOSIT);
    let channel = opened.value.expect("open succeeds");
    assert!(
        opened.storage_deposit > 0,
        "a new channel is charged storage"
    );
    ledger.payer = less(ledger.payer - DEPOSIT, opened.storage_deposit);
    // The contract holds the deposit, and the storage deposit on hold (not free).
    ledger.contract += DEPOSIT;
    ledger.check(chain, p, "after open");

    // Receipts are cumulative: each slot's receipt replaces the previous one. The payee
    // settles twice on the way, keeping the channel open.
    let mut settled = 0;
    for slot in 1..=slots {
        let total = PRICE * Balance::from(slot);
        let claim = sign(chain, channel, total, slot);
        if slot == slots / 3 || slot == 2 * slots / 3 {
            let settle = chain.settle(&p.payee, claim);
            assert_eq!(settle.value, Ok(total - settled), "settle at slot {slot}");
            assert_eq!(
                settle.events::<Settled>(),
                [Settled {
                    channel,
                    epoch: 0,
                    settled: total,
                    paid: total - settled
                }]
            );
            ledger.payee = less(ledger.payee + total - settled, settle.storage_deposit);
            ledger.contract -= total - settled;
            ledger.check(chain, p, "after a settle");
            settled = total;
            assert_eq!(chain.channel(channel).expect("still open").settled, total);
        }
    }
    let amount = PRICE * Balance::from(slots);
    let last = sign(chain, channel, amount, slots);

    let closed = chain.close(&p.payee, channel, Some(last.clone()));
    assert_eq!(closed.value, Ok(()));
    assert_eq!(
        closed.events::<Closed>(),
        [Closed {
            channel,
            paid: amount - settled,
            refunded: DEPOSIT - amount
        }]
    );
    assert!(closed.events::<PaymentDeferred>().is_empty());
    assert_eq!(chain.channel(channel), None);
    // pallet-contracts refunds the freed storage to the closer (the payee).
    assert!(closed.storage_deposit < 0);
    ledger.payee = less(ledger.payee + amount - settled, closed.storage_deposit);
    ledger.payer += DEPOSIT - amount;
    ledger.contract -= DEPOSIT - settled;
    ledger.check(chain, p, "after close");
    // The payer got exactly the deposit minus the receipt back; the payee the receipt.
    // The same receipt can never be used again.
    let again = chain.close(&p.payee, channel, Some(last));
    assert_eq!(again.value, Err(Error::ChannelNotFound));
}

#[test]
fn delegated_client_key_channel_life() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let client = secret(0x31);
    let authority = Authority::Delegate(keys::public_key(&client));
    whole_life(&mut chain, &p, authority, 40, |c, channel, total, _| {
        c.claim(channel, 0, total, &client, None)
    });
}

#[test]
fn payers_own_account_key_channel_life() {
    let payer_key = secret(0x41);
    let p = Parties {
        payer: ecdsa_account(&payer_key),
        payee: account(2),
    };
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let authority = Authority::Account(raw(&p.payer));
    whole_life(&mut chain, &p, authority, 7, |c, channel, total, _| {
        c.claim(channel, 0, total, &payer_key, None)
    });
}

fn group(caps: &[Balance], seed: u8) -> (Vec<SecretKey>, Vec<Member>, MerkleTree) {
    let secrets: Vec<SecretKey> = (1..=caps.len() as u8).map(|i| secret(seed + i)).collect();
    let members: Vec<Member> = secrets
        .iter()
        .zip(caps)
        .map(|(sk, &cap)| Member {
            key: keys::public_key(sk),
            cap,
        })
        .collect();
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("group");
    (secrets, members, tree)
}

#[test]
fn group_channel_life_with_interleaved_members() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let (members, _, tree) = group(&[DEPOSIT; 5], 0x50);
    // Members take turns in an irregular order; each signs the running total + price.
    let order = [3usize, 0, 4, 4, 1, 2, 0, 3, 2];
    whole_life(
        &mut chain,
        &p,
        Authority::Group(tree.root()),
        order.len() as u32,
        |c, channel, total, slot| {
            let member = order[(slot - 1) as usize];
            let proof = tree.proof(member).expect("member proof");
            c.claim(channel, 0, total, &members[member], Some(proof))
        },
    );
}

/// The old key's receipts settle during the notice and are refused from the effective
/// block on; the new key's receipts (epoch 1) count from zero above what was settled.
#[test]
fn rotation_hands_the_channel_to_a_new_key_after_the_notice() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let (old, new) = (secret(0x61), secret(0x62));
    let new_authority = Authority::Delegate(keys::public_key(&new));
    let mut ledger = Ledger::read(&mut chain, &p);
    let notice = 5;
    let opened = chain.open_with_notice(
        &p.payer,
        &p.payee,
        Authority::Delegate(keys::public_key(&old)),
        1_000,
        notice,
        DEPOSIT,
    );
    let channel = opened.value.expect("open");
    ledger.payer = less(ledger.payer - DEPOSIT, opened.storage_deposit);
    ledger.contract += DEPOSIT;

    let settle = chain.settle(&p.payee, chain.claim(channel, 0, 3 * PRICE, &old, None));
    assert_eq!(settle.value, Ok(3 * PRICE));
    ledger.payee = less(ledger.payee + 3 * PRICE, settle.storage_deposit);
    ledger.contract -= 3 * PRICE;

    let announced_at = chain.block_number();
    let rotated = chain.rotate(&p.payer, channel, new_authority);
    let effective_at = rotated.value.expect("rotate");
    assert_eq!(effective_at, announced_at + notice);
    assert_eq!(
        rotated.events::<RotationAnnounced>(),
        [RotationAnnounced {
            channel,
            authority: new_authority,
            epoch: 1,
            effective_at
        }]
    );
    // The pending rotation makes the stored channel longer: the payer pays for it.
    assert!(rotated.storage_deposit > 0);
    ledger.payer = less(ledger.payer, rotated.storage_deposit);
    ledger.check(&mut chain, &p, "after rotate");

    // During the notice: the old key settles, the new key's receipts do not count yet.
    chain.build_blocks(notice - 1);
    let early = chain.settle(&p.payee, chain.claim(channel, 1, PRICE, &new, None));
    assert_eq!(early.value, Err(Error::WrongEpoch));
    let settle = chain.settle(&p.payee, chain.claim(channel, 0, 5 * PRICE, &old, None));
    assert_eq!(settle.value, Ok(2 * PRICE));
    ledger.payee = less(ledger.payee + 2 * PRICE, settle.storage_deposit);
    ledger.contract -= 2 * PRICE;

    // From the effective block on, only the new key counts.
    chain.build_blocks(1);
    assert_eq!(chain.block_number(), effective_at);
    let state = chain.channel(channel).expect("open");
    assert_eq!(
        (state.authority, state.epoch, state.base, state.settled),
        (new_authority, 1, 5 * PRICE, 5 * PRICE)
    );
    let late = chain.settle(&p.payee, chain.claim(channel, 0, 6 * PRICE, &old, None));
    assert_eq!(late.value, Err(Error::WrongEpoch));
    let old_in_new_epoch = chain.settle(&p.payee, chain.claim(channel, 1, PRICE, &old, None));
    assert_eq!(old_in_new_epoch.value, Err(Error::NotDelegate));
    let settle = chain.settle(&p.payee, chain.claim(channel, 1, 2 * PRICE, &new, None));
    assert_eq!(settle.value, Ok(2 * PRICE));
    assert_eq!(
        settle.events::<Settled>(),
        [Settled {
            channel,
            epoch: 1,
            settled: 7 * PRICE,
            paid: 2 * PRICE
        }]
    );
    ledger.payee = less(ledger.payee + 2 * PRICE, settle.storage_deposit);
    ledger.contract -= 2 * PRICE;
    ledger.check(&mut chain, &p, "after the new key's first settle");

    let closed = chain.close(
        &p.payee,
        channel,
        Some(chain.claim(channel, 1, 4 * PRICE, &new, None)),
    );
    assert_eq!(closed.value, Ok(()));
    assert_eq!(
        closed.events::<Closed>(),
        [Closed {
            channel,
            paid: 2 * PRICE,
            refunded: DEPOSIT - 9 * PRICE
        }]
    );
    ledger.payee = less(ledger.payee + 2 * PRICE, closed.storage_deposit);
    ledger.payer += DEPOSIT - 9 * PRICE;
    ledger.contract -= DEPOSIT - 7 * PRICE;
    ledger.check(&mut chain, &p, "after close");
}

/// A payer removes a member from a group channel by rotating to the root of the group
/// without it; a member's proof carries the cap committed in its leaf, and a larger cap
/// is no proof.
#[test]
fn group_member_removed_by_rotating_to_a_new_root_and_caps_are_in_the_proof() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let (secrets, members, tree) = group(&[10 * PRICE, 20 * PRICE, 30 * PRICE], 0x70);
    let smaller = MerkleTree::build::<SoftHasher>(protocol::Substrate, &[members[0], members[2]])
        .expect("group");
    let expires_at = 1_000;
    let channel = chain
        .open_with_notice(
            &p.payer,
            &p.payee,
            Authority::Group(tree.root()),
            expires_at,
            2,
            DEPOSIT,
        )
        .value
        .expect("open");

    // A proof presenting a bigger cap than the payer committed proves nothing.
    let proof = tree.proof(1).expect("proof");
    for cap in [20 * PRICE + 1, Balance::MAX] {
        let inflated = MembershipProof {
            cap,
            ..proof.clone()
        };
        let claim = chain.claim(channel, 0, PRICE, &secrets[1], Some(inflated));
        assert_eq!(
            chain.settle(&p.payee, claim).value,
            Err(Error::NotMember),
            "cap {cap}"
        );
    }
    let claim = chain.claim(channel, 0, PRICE, &secrets[1], Some(proof.clone()));
    assert_eq!(chain.settle(&p.payee, claim).value, Ok(PRICE));

    let effective_at = chain
        .rotate(&p.payer, channel, Authority::Group(smaller.root()))
        .value
        .expect("rotate");
    let now = chain.block_number();
    chain.build_blocks(effective_at - now);
    let removed = chain.claim(channel, 1, PRICE, &secrets[1], Some(proof));
    assert_eq!(chain.settle(&p.payee, removed).value, Err(Error::NotMember));
    let kept = chain.claim(
        channel,
        1,
        PRICE,
        &secrets[2],
        Some(smaller.proof(1).expect("proof")),
    );
    assert_eq!(chain.settle(&p.payee, kept).value, Ok(PRICE));
    assert_eq!(chain.channel(channel).expect("open").settled, 2 * PRICE);
}

/// The attack: a payer opens with n slots' price + 1 unit, buys n slots, then empties and
/// so reaps its own account. The 1-unit refund is below the existential deposit, so the
/// chain refuses it; before the fix that made the whole close fail, every time, and the
/// payer took everything back after expiry. Now the payee's close goes through, the
/// payee gets exactly the receipt, and the refund waits for the payer to withdraw it.
#[test]
fn a_reaped_payer_cannot_block_the_close() {
    let p = parties();
    let sink = account(9);
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let ed = chain.existential_deposit();
    assert!(
        ed > 1,
        "the attack needs an existential deposit above 1 unit"
    );
    let client = secret(0x81);
    let slots = 12;
    let amount = PRICE * slots;
    let deposit = amount + 1;
    let contract = chain.contract.clone();
    let contract_start = chain.balance(&contract);
    let opened = chain.open(
        &p.payer,
        &p.payee,
        Authority::Delegate(keys::public_key(&client)),
        1_000,
        deposit,
    );
    let channel = opened.value.expect("open");
    let last = chain.claim(channel, 0, amount, &client, None);

    let everything = chain.balance(&p.payer);
    chain.transfer_allow_death(&p.payer, &sink, everything);
    assert!(!chain.exists(&p.payer), "the payer's account is reaped");
    assert!(deposit - amount < ed);

    let payee_before = chain.balance(&p.payee);
    let closed = chain.close(&p.payee, channel, Some(last));
    assert_eq!(closed.value, Ok(()), "the payee's close goes through");
    assert_eq!(
        chain.balance(&p.payee),
        less(payee_before + amount, closed.storage_deposit),
        "the payee gets exactly the receipt (and the storage refund, less the owed entry)"
    );
    assert_eq!(
        closed.events::<Closed>(),
        [Closed {
            channel,
            paid: amount,
            refunded: 1
        }]
    );
    assert_eq!(
        closed.events::<PaymentDeferred>(),
        [PaymentDeferred {
            account: raw(&p.payer),
            amount: 1,
            owed: 1
        }]
    );
    assert_eq!(chain.channel(channel), None);
    assert_eq!(chain.owed(&p.payer), 1);
    assert_eq!(chain.balance(&contract), contract_start + 1);
    assert!(!chain.exists(&p.payer));

    // Still reaped: a withdrawal is refused and the debt stays.
    let refused = chain.withdraw(&p.payer);
    assert_eq!(refused.value, Err(Error::WithdrawFailed));
    assert_eq!(chain.owed(&p.payer), 1);

    // Funded again, the payer withdraws exactly the rest.
    chain.mint(&p.payer, 10 * ed);
    let withdrawn = chain.withdraw(&p.payer);
    assert_eq!(withdrawn.value, Ok(1));
    assert_eq!(
        withdrawn.events::<Withdrawn>(),
        [Withdrawn {
            account: raw(&p.payer),
            amount: 1
        }]
    );
    assert_eq!(
        chain.balance(&p.payer),
        less(10 * ed + 1, withdrawn.storage_deposit)
    );
    assert_eq!(chain.owed(&p.payer), 0);
    assert_eq!(chain.balance(&contract), contract_start);
    assert_eq!(
        chain.withdraw(&p.payer).value,
        Err(Error::NothingToWithdraw)
    );
}

/// The same refused refund on `claim_expired`: the claim goes through and the rest is
/// owed to the payer.
#[test]
fn a_refund_refused_on_claim_expired_is_owed() {
    let p = parties();
    let sink = account(9);
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let ed = chain.existential_deposit();
    let client = secret(0x82);
    let amount = PRICE * 5;
    let contract = chain.contract.clone();
    let contract_start = chain.balance(&contract);
    let expires_at = chain.block_number() + 4;
    let channel = chain
        .open(
            &p.payer,
            &p.payee,
            Authority::Delegate(keys::public_key(&client)),
            expires_at,
            amount + 1,
        )
        .value
        .expect("open");
    let settle = chain.settle(&p.payee, chain.claim(channel, 0, amount, &client, None));
    assert_eq!(settle.value, Ok(amount));
    chain.build_blocks(4);
    let everything = chain.balance(&p.payer);
    chain.transfer_allow_death(&p.payer, &sink, everything);
    assert!(!chain.exists(&p.payer));

    let claimed = chain.claim_expired(&p.payer, channel);
    assert_eq!(claimed.value, Ok(()));
    assert_eq!(
        claimed.events::<ExpiredClaimed>(),
        [ExpiredClaimed {
            channel,
            refunded: 1
        }]
    );
    assert_eq!(
        claimed.events::<PaymentDeferred>(),
        [PaymentDeferred {
            account: raw(&p.payer),
            amount: 1,
            owed: 1
        }]
    );
    // The channel's storage deposit (net of the owed entry) is refunded to the caller at
    // the end of the call and is at least the existential deposit, so it revives the
    // account with exactly that; the 1-unit refund, paid during the call, was refused.
    let storage_refund = claimed.storage_refund() as Balance;
    assert!(storage_refund >= ed, "{storage_refund} < {ed}");
    assert_eq!(chain.balance(&p.payer), storage_refund);
    assert_eq!(chain.owed(&p.payer), 1);
    assert_eq!(chain.balance(&contract), contract_start + 1);

    let withdrawn = chain.withdraw(&p.payer);
    assert_eq!(withdrawn.value, Ok(1));
    assert_eq!(
        chain.balance(&p.payer),
        less(storage_refund + 1, withdrawn.storage_deposit)
    );
    assert_eq!(chain.balance(&contract), contract_start);
}

#[test]
fn expiry_returns_the_rest_to_the_payer_only() {
    let p = parties();
    let stranger = account(3);
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee, &stranger]);
    let client = secret(0x91);
    let mut ledger = Ledger::read(&mut chain, &p);
    let expires_at = chain.block_number() + 5;
    let opened = chain.open(
        &p.payer,
        &p.payee,
        Authority::Delegate(keys::public_key(&client)),
        expires_at,
        DEPOSIT,
    );
    let channel = opened.value.expect("open");
    ledger.payer = less(ledger.payer - DEPOSIT, opened.storage_deposit);
    ledger.contract += DEPOSIT;
    let settle = chain.settle(&p.payee, chain.claim(channel, 0, PRICE, &client, None));
    assert_eq!(settle.value, Ok(PRICE));
    ledger.payee = less(ledger.payee + PRICE, settle.storage_deposit);
    ledger.contract -= PRICE;
    let later = chain.claim(channel, 0, 2 * PRICE, &client, None);

    assert_eq!(
        chain.claim_expired(&p.payer, channel).value,
        Err(Error::NotExpired)
    );
    chain.build_blocks(5);
    assert_eq!(chain.block_number(), expires_at);
    assert_eq!(
        chain.close(&p.payee, channel, Some(later.clone())).value,
        Err(Error::ChannelExpired)
    );
    assert_eq!(
        chain.settle(&p.payee, later).value,
        Err(Error::ChannelExpired)
    );
    assert_eq!(
        chain.close(&p.payee, channel, None).value,
        Err(Error::ChannelExpired)
    );
    for who in [&stranger, &p.payee] {
        assert_eq!(
            chain.claim_expired(who, channel).value,
            Err(Error::NotPayer)
        );
    }
    let claimed = chain.claim_expired(&p.payer, channel);
    assert_eq!(claimed.value, Ok(()));
    assert_eq!(
        claimed.events::<ExpiredClaimed>(),
        [ExpiredClaimed {
            channel,
            refunded: DEPOSIT - PRICE
        }]
    );
    // The payer paid the storage deposit on open and gets it back (but for what the
    // pallet keeps) on claim, with the deposit less what was settled.
    assert!(claimed.storage_deposit < 0);
    ledger.payer = less(ledger.payer + DEPOSIT - PRICE, claimed.storage_deposit);
    ledger.contract -= DEPOSIT - PRICE;
    ledger.check(&mut chain, &p, "after the claim");
    assert_eq!(chain.channel(channel), None);
    assert_eq!(
        chain.claim_expired(&p.payer, channel).value,
        Err(Error::ChannelNotFound)
    );
}

#[test]
fn top_up_and_extend_on_chain() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let client = secret(0xA1);
    let expires_at = chain.block_number() + 3;
    let channel = chain
        .open(
            &p.payer,
            &p.payee,
            Authority::Delegate(keys::public_key(&client)),
            expires_at,
            DEPOSIT,
        )
        .value
        .expect("open");
    assert_eq!(
        chain.top_up(&p.payee, channel, 10).value,
        Err(Error::NotPayer)
    );
    assert_eq!(chain.top_up(&p.payer, channel, 1_000).value, Ok(()));
    assert_eq!(
        chain.extend(&p.payer, channel, expires_at).value,
        Err(Error::ExpiryNotLater)
    );
    assert_eq!(
        chain.extend(&p.payer, channel, expires_at + 10).value,
        Ok(())
    );
    let state = chain.channel(channel).expect("open channel");
    assert_eq!(
        (state.deposit, state.expires_at),
        (DEPOSIT + 1_000, expires_at + 10)
    );
    chain.build_blocks(5);
    // Past the first expiry, within the extended one: the payee closes for the whole
    // topped-up deposit.
    let all = DEPOSIT + 1_000;
    let claim = chain.claim(channel, 0, all, &client, None);
    let payee_before = chain.balance(&p.payee);
    let closed = chain.close(&p.payee, channel, Some(claim));
    assert_eq!(closed.value, Ok(()));
    assert_eq!(
        chain.balance(&p.payee),
        less(payee_before + all, closed.storage_deposit)
    );
}

#[test]
fn receipts_do_not_cross_contract_instances_or_channels() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let genesis = chain.genesis_hash;
    let first = chain.contract.clone();
    let second = Chain::instantiate(&mut chain.sandbox, code(), &account(0xDE), genesis, 1);
    assert_ne!(second, first);
    let client = secret(0xB1);
    let authority = Authority::Delegate(keys::public_key(&client));
    let zero = chain
        .open(&p.payer, &p.payee, authority, 100, DEPOSIT)
        .value
        .expect("open");
    let one = chain
        .open(&p.payer, &p.payee, authority, 100, DEPOSIT)
        .value
        .expect("open");
    assert_eq!(chain.next_channel_id(), ChannelId(2));
    let for_zero = chain.claim(zero, 0, PRICE, &client, None);
    let mut presented_on_one = for_zero.clone();
    presented_on_one.receipt.channel = one;
    assert_eq!(
        chain.settle(&p.payee, presented_on_one).value,
        Err(Error::NotDelegate),
        "a receipt for channel 0 does not pay on channel 1"
    );
    // The second instance assigns the same channel id 0 to its first channel.
    chain.contract = second;
    assert_eq!(chain.contract_domain(), chain.domain());
    let zero_there = chain
        .open(&p.payer, &p.payee, authority, 100, DEPOSIT)
        .value
        .expect("open");
    assert_eq!(zero_there, zero);
    assert_eq!(
        chain
            .close(&p.payee, zero_there, Some(for_zero.clone()))
            .value,
        Err(Error::NotDelegate),
        "a receipt for instance A does not close the same id on instance B"
    );
    let own = chain.claim(zero_there, 0, PRICE, &client, None);
    assert_eq!(chain.close(&p.payee, zero_there, Some(own)).value, Ok(()));
    chain.contract = first;
    assert_eq!(chain.close(&p.payee, zero, Some(for_zero)).value, Ok(()));
}
