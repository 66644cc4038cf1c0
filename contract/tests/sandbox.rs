//! End-to-end: the compiled contract on pallet-contracts, in process. Every channel's
//! whole life, balances checked to the unit (storage deposits included).
#![cfg(feature = "e2e-tests")]

mod support;

use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::merkle::MerkleTree;
use slotpay_channels::protocol::signature::keys;
use slotpay_channels::protocol::{Authority, ChannelId, PublicKey};
use slotpay_channels::slotpay_channels::Error;
use std::sync::OnceLock;
use support::*;

fn code() -> &'static [u8] {
    static CODE: OnceLock<Vec<u8>> = OnceLock::new();
    CODE.get_or_init(contract_code)
}

const DEPOSIT: Balance = 5_000_000;
const PRICE: Balance = 12_345;

struct Parties {
    payer: ink_sandbox::AccountId32,
    payee: ink_sandbox::AccountId32,
}

fn parties() -> Parties {
    Parties {
        payer: account(1),
        payee: account(2),
    }
}

/// Opens, has `slots` slots bought (receipts signed by `signer_for(slot)`), closes with the
/// last receipt only, and checks every balance to the unit.
fn whole_life(
    chain: &mut Chain,
    p: &Parties,
    authority: Authority,
    slots: u32,
    sign: impl Fn(
        &Chain,
        ChannelId,
        Balance,
        u32,
    ) -> (
        slotpay_channels::protocol::Signature,
        Option<slotpay_channels::protocol::MembershipProof>,
    ),
) {
    let payer_start = chain.balance(&p.payer);
    let payee_start = chain.balance(&p.payee);
    let contract_start = chain.balance(&chain.contract.clone());

    let opened = chain.open(&p.payer, &p.payee, authority, 1_000, DEPOSIT);
    let channel = opened.value.expect("open succeeds");
    assert!(
        opened.storage_deposit > 0,
        "a new channel is charged storage"
    );
    assert_eq!(
        chain.balance(&p.payer),
        payer_start - DEPOSIT - opened.storage_deposit as Balance
    );

    // Receipts are cumulative: each slot's receipt replaces the previous one.
    let mut last = None;
    for slot in 1..=slots {
        let total = PRICE * Balance::from(slot);
        last = Some((total, sign(chain, channel, total, slot)));
    }
    let (amount, (signature, proof)) = last.expect("at least one slot");

    let closed = chain.close(&p.payee, channel, amount, signature, proof.clone());
    assert_eq!(closed.value, Ok(()));
    assert_eq!(chain.channel(channel), None);
    // pallet-contracts refunds the freed storage to the closer (the payee): all but one
    // unit of what open charged (measured; the pallet keeps the rounding).
    let refund = (-closed.storage_deposit) as Balance;
    assert!(
        refund > 0 && refund as i128 <= opened.storage_deposit,
        "{refund} vs {}",
        opened.storage_deposit
    );
    assert_eq!(chain.balance(&p.payee), payee_start + amount + refund);
    assert_eq!(
        chain.balance(&p.payer),
        payer_start - amount - opened.storage_deposit as Balance,
        "the payer gets exactly the deposit minus the receipt back"
    );
    assert_eq!(
        chain.balance(&chain.contract.clone()),
        contract_start,
        "the contract keeps nothing of the deposit"
    );
    // The same receipt can never be used again.
    let again = chain.close(&p.payee, channel, amount, signature, proof);
    assert_eq!(again.value, Err(Error::ChannelNotFound));
}

#[test]
fn delegated_client_key_channel_life() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let client = secret(0x31);
    let authority = Authority::Delegate(keys::public_key(&client));
    whole_life(&mut chain, &p, authority, 40, |c, channel, total, _| {
        (c.sign(channel, total, &client), None)
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
    let authority = Authority::Account(*p.payer.as_ref());
    whole_life(&mut chain, &p, authority, 7, |c, channel, total, _| {
        (c.sign(channel, total, &payer_key), None)
    });
}

#[test]
fn group_channel_life_with_interleaved_members() {
    let p = parties();
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee]);
    let members: Vec<_> = (1..=5u8).map(|i| secret(0x50 + i)).collect();
    let keys_: Vec<PublicKey> = members.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&keys_).expect("group");
    // Members take turns in an irregular order; each signs the running total + price.
    let order = [3usize, 0, 4, 4, 1, 2, 0, 3];
    whole_life(
        &mut chain,
        &p,
        Authority::Group(tree.root()),
        order.len() as u32,
        |c, channel, total, slot| {
            let member = order[(slot - 1) as usize];
            (
                c.sign(channel, total, &members[member]),
                Some(tree.proof(member).expect("member proof")),
            )
        },
    );
}

#[test]
fn expiry_returns_the_deposit_to_the_payer_only() {
    let p = parties();
    let stranger = account(3);
    let mut chain = Chain::new(code(), &[&p.payer, &p.payee, &stranger]);
    let client = secret(0x61);
    let payer_start = chain.balance(&p.payer);
    let expires_at = chain.block_number() + 5;
    let opened = chain.open(
        &p.payer,
        &p.payee,
        Authority::Delegate(keys::public_key(&client)),
        expires_at,
        DEPOSIT,
    );
    let channel = opened.value.expect("open");
    let receipt = chain.sign(channel, PRICE, &client);

    assert_eq!(
        chain.claim_expired(&p.payer, channel).value,
        Err(Error::NotExpired)
    );
    chain.build_blocks(5);
    assert_eq!(chain.block_number(), expires_at);
    assert_eq!(
        chain.close(&p.payee, channel, PRICE, receipt, None).value,
        Err(Error::ChannelExpired)
    );
    assert_eq!(
        chain.claim_expired(&stranger, channel).value,
        Err(Error::NotPayer)
    );
    assert_eq!(
        chain.claim_expired(&p.payee, channel).value,
        Err(Error::NotPayer)
    );
    let claimed = chain.claim_expired(&p.payer, channel);
    assert_eq!(claimed.value, Ok(()));
    // The payer paid the storage deposit on open and gets it back (but for the unit the
    // pallet keeps) on claim, with the whole channel deposit.
    let refund = -claimed.storage_deposit;
    assert!(refund > 0 && refund <= opened.storage_deposit);
    assert_eq!(
        chain.balance(&p.payer),
        payer_start - (opened.storage_deposit - refund) as Balance
    );
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
    let client = secret(0x71);
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
    let sig = chain.sign(channel, all, &client);
    let payee_before = chain.balance(&p.payee);
    let closed = chain.close(&p.payee, channel, all, sig, None);
    assert_eq!(closed.value, Ok(()));
    assert_eq!(
        chain.balance(&p.payee),
        payee_before + all + (-closed.storage_deposit) as Balance
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
    let client = secret(0x81);
    let authority = Authority::Delegate(keys::public_key(&client));
    let zero = chain
        .open(&p.payer, &p.payee, authority, 100, DEPOSIT)
        .value
        .expect("open");
    let one = chain
        .open(&p.payer, &p.payee, authority, 100, DEPOSIT)
        .value
        .expect("open");
    let receipt_for_zero = chain.sign(zero, PRICE, &client);
    assert_eq!(
        chain
            .close(&p.payee, one, PRICE, receipt_for_zero, None)
            .value,
        Err(Error::NotDelegate),
        "a receipt for channel 0 does not close channel 1"
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
            .close(&p.payee, zero_there, PRICE, receipt_for_zero, None)
            .value,
        Err(Error::NotDelegate),
        "a receipt for instance A does not close the same id on instance B"
    );
    let own = chain.sign(zero_there, PRICE, &client);
    assert_eq!(
        chain.close(&p.payee, zero_there, PRICE, own, None).value,
        Ok(())
    );
    chain.contract = first;
    assert_eq!(
        chain
            .close(&p.payee, zero, PRICE, receipt_for_zero, None)
            .value,
        Ok(())
    );
}
