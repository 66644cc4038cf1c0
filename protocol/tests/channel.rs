//! The channel rules the contract runs and the AS predicts: each rule's refusals, what each
//! party is paid, when a rotation takes effect, and a whole channel life against an
//! independent model.
use proptest::prelude::*;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::keys::SecretKey;
use protocol::MerkleRoot;
use protocol::{
    authorize, AccountId32, AuthError, Authority, Balance, Channel, ChannelError, ChannelId,
    Domain, Payout, PublicKey, Receipt, Rotation, Settlement, SignedReceipt,
};

const PAYER: AccountId32 = [0x0B; 32];
const PAYEE: AccountId32 = [0xA5; 32];
const STRANGER: AccountId32 = [0x5E; 32];

/// The channel rules never look at keys (signatures are checked apart), so any bytes do.
fn delegate(i: u8) -> Authority {
    Authority::Delegate(PublicKey([i; 33]))
}

/// A receipt of `epoch` for `amount` (the channel rules do not read its channel id).
fn receipt(epoch: u32, amount: Balance) -> Receipt {
    Receipt {
        channel: ChannelId(0),
        epoch,
        amount,
    }
}

fn open(deposit: Balance, expires_at: u32, notice: u32, now: u32) -> Channel {
    Channel::open(PAYER, PAYEE, delegate(1), deposit, expires_at, notice, now).expect("open")
}

/// Settles on a copy and keeps it only if accepted, as the contract reverts a refused call.
fn settle(
    ch: &mut Channel,
    epoch: u32,
    amount: Balance,
    now: u32,
) -> Result<Balance, ChannelError> {
    let mut next = *ch;
    let settlement = next.settlement(&receipt(epoch, amount), now)?;
    next.apply(settlement);
    *ch = next;
    Ok(settlement.paid)
}

/// What settling would pay, leaving `ch` as it is.
fn would_settle(
    ch: &Channel,
    epoch: u32,
    amount: Balance,
    now: u32,
) -> Result<Balance, ChannelError> {
    settle(&mut ch.to_owned(), epoch, amount, now)
}

/// How closing would split the deposit, leaving `ch` as it is.
fn would_pay_out(
    ch: &Channel,
    claim: Option<(u32, Balance)>,
    now: u32,
) -> Result<Payout, ChannelError> {
    let mut closing = *ch;
    closing.payout(claim.map(|(e, a)| receipt(e, a)).as_ref(), now)
}

#[test]
fn open_refuses_what_cannot_be_a_channel() {
    let open_with = |payee, authority, deposit, expires_at, now| {
        Channel::open(PAYER, payee, authority, deposit, expires_at, 10, now)
    };
    assert_eq!(
        open_with(PAYEE, delegate(1), 0, 100, 5),
        Err(ChannelError::ZeroDeposit)
    );
    assert_eq!(
        open_with(PAYER, delegate(1), 10, 100, 5),
        Err(ChannelError::PayeeIsPayer)
    );
    for expires_at in [0, 4, 5] {
        assert_eq!(
            open_with(PAYEE, delegate(1), 10, expires_at, 5),
            Err(ChannelError::ExpiryNotInFuture),
            "expiry {expires_at} at block 5"
        );
    }
    // A payer binding another account's key as its "own account".
    assert_eq!(
        open_with(PAYEE, Authority::Account(STRANGER), 10, 100, 5),
        Err(ChannelError::AccountAuthorityNotPayer)
    );
    let ch = open_with(PAYEE, Authority::Account(PAYER), 10, 6, 5).expect("expires next block");
    assert_eq!(
        ch,
        Channel {
            payer: PAYER,
            payee: PAYEE,
            authority: Authority::Account(PAYER),
            epoch: 0,
            deposit: 10,
            settled: 0,
            base: 0,
            expires_at: 6,
            notice: 10,
            rotation: None,
        }
    );
}

#[test]
fn account_authority_must_be_the_payers_own_also_on_rotation() {
    let mut ch = open(100, 1_000, 10, 0);
    let before = ch;
    assert_eq!(
        ch.rotate(Authority::Account(STRANGER), 5),
        Err(ChannelError::AccountAuthorityNotPayer)
    );
    assert_eq!(ch, before);
    let group = Authority::Group(MerkleRoot([3; 32]));
    for authority in [
        Authority::Account(PAYER),
        delegate(2),
        group,
        Authority::Revoked,
    ] {
        assert_eq!(
            ch.rotate(authority, 5),
            Ok(Rotation {
                authority,
                effective_at: 15
            })
        );
    }
    assert_eq!(ch.at(15).authority, Authority::Revoked);
}

#[test]
fn top_up_refuses_nothing_expired_and_overflow() {
    let mut ch = open(100, 50, 10, 0);
    let before = ch;
    assert_eq!(ch.top_up(0, 10), Err(ChannelError::ZeroDeposit));
    assert_eq!(ch.top_up(5, 50), Err(ChannelError::Expired));
    assert_eq!(ch.top_up(5, 80), Err(ChannelError::Expired));
    assert_eq!(
        ch.top_up(Balance::MAX - 99, 10),
        Err(ChannelError::DepositOverflow)
    );
    assert_eq!(ch, before, "a refused top-up changed the channel");
    assert_eq!(ch.top_up(Balance::MAX - 100, 49), Ok(Balance::MAX));
    assert_eq!(ch.deposit, Balance::MAX);
}

#[test]
fn extend_only_moves_expiry_later_and_revives_an_expired_channel() {
    let mut ch = open(100, 50, 10, 0);
    let before = ch;
    for expires_at in [0, 49, 50] {
        assert_eq!(ch.extend(expires_at, 10), Err(ChannelError::ExpiryNotLater));
    }
    assert_eq!(ch, before);
    // Expired at 50; at 60 the payer revives it instead of claiming.
    assert_eq!(settle(&mut ch, 0, 10, 60), Err(ChannelError::Expired));
    assert_eq!(ch.extend(70, 60), Ok(()));
    assert_eq!(ch.expires_at, 70);
    assert_eq!(settle(&mut ch, 0, 10, 60), Ok(10));
    assert_eq!(ch.expired_refund(60), Err(ChannelError::NotExpired));
}

/// From the expiry block on the deposit is the payer's to claim: the payee can neither
/// settle nor close, and the payer can neither top up nor rotate (it claims or extends).
/// One block earlier every one of them works.
#[test]
fn expired_channels_refuse_settle_close_rotate_and_top_up_but_extend_revives() {
    let mut ch = open(1_000, 100, 10, 0);
    settle(&mut ch, 0, 200, 10).unwrap();
    for now in [100, 101, 5_000] {
        let mut c = ch;
        assert_eq!(
            c.settlement(
                &Receipt {
                    channel: ChannelId(0),
                    epoch: 0,
                    amount: 300
                },
                now
            ),
            Err(ChannelError::Expired)
        );
        assert_eq!(
            c.payout(
                Some(&Receipt {
                    channel: ChannelId(0),
                    epoch: 0,
                    amount: 300
                }),
                now
            ),
            Err(ChannelError::Expired)
        );
        assert_eq!(
            c.payout(
                Some(&Receipt {
                    channel: ChannelId(0),
                    epoch: 0,
                    amount: 200
                }),
                now
            ),
            Err(ChannelError::Expired)
        );
        assert_eq!(c.payout(None, now), Err(ChannelError::Expired));
        assert_eq!(c.rotate(delegate(2), now), Err(ChannelError::Expired));
        assert_eq!(c.top_up(1, now), Err(ChannelError::Expired));
        assert_eq!(c.expired_refund(now), Ok(800));
        assert_eq!(c.extend(now + 1, now), Ok(()));
        assert_eq!(c.expired_refund(now), Err(ChannelError::NotExpired));
        assert_eq!(settle(&mut c, 0, 300, now), Ok(100));
    }
    let mut c = ch;
    assert_eq!(c.expired_refund(99), Err(ChannelError::NotExpired));
    assert!(would_settle(&c, 0, 300, 99).is_ok());
    assert!(would_pay_out(&c, None, 99).is_ok());
    assert!(would_pay_out(&c, Some((0, 300)), 99).is_ok());
    assert!(c.to_owned().rotate(delegate(2), 99).is_ok());
    assert!(c.top_up(1, 99).is_ok());
}

#[test]
fn settle_twice_then_close_pays_exactly_the_differences() {
    let mut ch = open(1_000, 100, 10, 0);
    assert_eq!(
        ch.to_owned().settlement(
            &Receipt {
                channel: ChannelId(0),
                epoch: 0,
                amount: 300
            },
            1
        ),
        Ok(Settlement {
            settled: 300,
            paid: 300
        })
    );
    let mut to_payee = settle(&mut ch, 0, 300, 1).unwrap();
    assert_eq!(to_payee, 300);
    // The same receipt again, or an older one, pays nothing.
    assert_eq!(
        settle(&mut ch, 0, 300, 2),
        Err(ChannelError::NothingToSettle)
    );
    assert_eq!(
        settle(&mut ch, 0, 250, 2),
        Err(ChannelError::NothingToSettle)
    );
    to_payee += settle(&mut ch, 0, 700, 3).unwrap();
    assert_eq!((to_payee, ch.settled), (700, 700));
    // Closing below what was settled would refund the payer what the payee was paid.
    assert_eq!(
        would_pay_out(&ch, Some((0, 650)), 4),
        Err(ChannelError::BelowSettled)
    );
    assert_eq!(
        would_pay_out(&ch, Some((0, 1_001)), 4),
        Err(ChannelError::AmountExceedsDeposit)
    );
    let closed = would_pay_out(&ch, Some((0, 900)), 4).unwrap();
    assert_eq!(
        closed,
        Payout {
            paid: 200,
            refunded: 100
        }
    );
    // The settled receipt itself closes for nothing more; no claim closes at what was
    // settled.
    assert_eq!(
        would_pay_out(&ch, Some((0, 700)), 4),
        Ok(Payout {
            paid: 0,
            refunded: 300
        })
    );
    assert_eq!(
        would_pay_out(&ch, None, 4),
        Ok(Payout {
            paid: 0,
            refunded: 300
        })
    );
    // 300 + 400 + 200 to the payee, 100 back: the deposit, exactly.
    assert_eq!(to_payee + closed.paid, 900);
    assert_eq!(to_payee + closed.paid + closed.refunded, 1_000);
}

/// Rotation announced at 5 with notice 10: the old authority's epoch still settles and
/// closes at 14, not at 15; the new epoch is refused at 14 and accepted from 15.
#[test]
fn a_rotation_takes_effect_exactly_at_effective_at() {
    let mut ch = open(1_000, 1_000, 10, 0);
    settle(&mut ch, 0, 100, 3).unwrap();
    let rotation = ch.rotate(delegate(2), 5).unwrap();
    assert_eq!(rotation.effective_at, 15);
    let before = ch.at(14);
    assert_eq!((before.epoch, before.authority), (0, delegate(1)));
    assert_eq!(before.rotation, Some(rotation));
    assert_eq!(would_settle(&ch, 0, 200, 14), Ok(100));
    assert!(would_pay_out(&ch, Some((0, 200)), 14).is_ok());
    assert_eq!(
        would_settle(&ch, 1, 50, 14),
        Err(ChannelError::WrongEpoch {
            claimed: 1,
            current: 0
        })
    );
    let after = ch.at(15);
    assert_eq!((after.epoch, after.authority), (1, delegate(2)));
    assert_eq!((after.base, after.rotation), (100, None));
    assert_eq!(
        would_settle(&ch, 0, 200, 15),
        Err(ChannelError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
    assert_eq!(
        would_pay_out(&ch, Some((0, 200)), 15),
        Err(ChannelError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
    assert_eq!(would_settle(&ch, 1, 50, 15), Ok(50));
    // at() looks ahead without storing; advance() stores, once.
    assert_eq!(ch.epoch, 0);
    assert!(!ch.advance(14));
    assert_eq!(ch.epoch, 0);
    assert!(ch.advance(15));
    assert!(!ch.advance(15));
    assert_eq!(ch, after);
}

/// The new authority starts from zero above what was settled when its epoch began: an
/// old-epoch receipt the payee never settled is gone, not added on top, and the new
/// epoch's receipts can claim only what the deposit leaves above the base.
#[test]
fn a_new_epochs_receipts_count_above_the_base() {
    let mut ch = open(1_000, 1_000, 10, 0);
    settle(&mut ch, 0, 300, 5).unwrap();
    ch.rotate(delegate(2), 10).unwrap();
    assert_eq!(
        settle(&mut ch, 0, 500, 20),
        Err(ChannelError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
    assert_eq!(ch.at(20).base, 300);
    assert_eq!(settle(&mut ch, 1, 100, 20), Ok(100));
    assert_eq!(ch.settled, 400);
    assert_eq!(
        settle(&mut ch, 1, 701, 21),
        Err(ChannelError::AmountExceedsDeposit)
    );
    // An amount that wraps around when added to the base.
    assert_eq!(
        settle(&mut ch, 1, Balance::MAX - 299, 21),
        Err(ChannelError::AmountExceedsDeposit)
    );
    assert_eq!(
        would_pay_out(&ch, Some((1, Balance::MAX - 299)), 21),
        Err(ChannelError::AmountExceedsDeposit)
    );
    assert_eq!(
        would_pay_out(&ch, Some((1, 50)), 21),
        Err(ChannelError::BelowSettled)
    );
    assert_eq!(
        would_pay_out(&ch, Some((1, 700)), 21),
        Ok(Payout {
            paid: 600,
            refunded: 0
        })
    );
    assert_eq!(settle(&mut ch, 1, 700, 21), Ok(600));
    assert_eq!(ch.settled, 1_000);
    assert_eq!(
        would_pay_out(&ch, None, 22),
        Ok(Payout {
            paid: 0,
            refunded: 0
        })
    );
}

/// The payer announces A at 10 (in force at 30), then B at 11: B is in force at 31, one
/// block later, never earlier; A never is. Whenever the second announcement comes, it
/// cannot bring a change sooner than the first one promised.
#[test]
fn a_replacement_announcement_cannot_shorten_the_notice() {
    let notice = 20;
    let base = open(1_000, 10_000, notice, 0);
    let mut ch = base;
    assert_eq!(ch.rotate(delegate(2), 10).unwrap().effective_at, 30);
    assert_eq!(ch.rotate(delegate(3), 11).unwrap().effective_at, 31);
    let at30 = ch.at(30);
    assert_eq!((at30.epoch, at30.authority), (0, delegate(1)));
    // The payee may still settle the first epoch at 30.
    assert_eq!(would_settle(&ch, 0, 10, 30), Ok(10));
    let at31 = ch.at(31);
    assert_eq!((at31.epoch, at31.authority), (1, delegate(3)));
    assert!((0..200).all(|t| ch.at(t).authority != delegate(2)));
    for second in 10..30 {
        let mut ch = base;
        ch.rotate(delegate(2), 10).unwrap();
        let replaced = ch.rotate(delegate(3), second).unwrap();
        assert!(replaced.effective_at >= 30, "announced at {second}");
        assert_eq!(replaced.effective_at, second + notice);
        for t in 0..replaced.effective_at {
            assert_eq!(ch.at(t).epoch, 0, "second at {second}, block {t}");
        }
    }
}

/// An announcement made once the previous one is in force (even if nothing brought it
/// into force since) starts from the new authority: two rotations that take effect make
/// two epochs, each with the settled total at its start as its base.
#[test]
fn announcing_after_a_rotation_took_effect_folds_it_first() {
    let mut ch = open(1_000, 10_000, 10, 0);
    settle(&mut ch, 0, 100, 1).unwrap();
    ch.rotate(delegate(2), 2).unwrap();
    // Nothing happens on chain between 12 (A's effect) and 15.
    let second = ch.rotate(delegate(3), 15).unwrap();
    assert_eq!(second.effective_at, 25);
    assert_eq!((ch.epoch, ch.authority, ch.base), (1, delegate(2), 100));
    assert_eq!(settle(&mut ch, 1, 50, 16), Ok(50));
    let at25 = ch.at(25);
    assert_eq!(
        (at25.epoch, at25.authority, at25.base),
        (2, delegate(3), 150)
    );
    assert_eq!(settle(&mut ch, 2, 25, 25), Ok(25));
    assert_eq!(ch.settled, 175);
    // The same with the second announcement exactly at the first's effective block.
    let mut ch = open(1_000, 10_000, 10, 0);
    ch.rotate(delegate(2), 0).unwrap();
    ch.rotate(delegate(3), 10).unwrap();
    assert_eq!((ch.epoch, ch.authority), (1, delegate(2)));
    assert_eq!(ch.at(20).epoch, 2);
    // With notice 0 a rotation is in force at once, and a second one folds it first.
    let mut ch = open(1_000, 10_000, 0, 0);
    ch.rotate(delegate(2), 7).unwrap();
    assert_eq!(ch.at(7).authority, delegate(2));
    ch.rotate(delegate(3), 7).unwrap();
    let at7 = ch.at(7);
    assert_eq!((at7.epoch, at7.authority), (2, delegate(3)));
}

/// A whole life, with the numbers worked out by hand: open 1000 at block 100, top up 500,
/// settle 400, rotate, settle the old epoch up to 600 just before the new key takes over,
/// settle 300 in the new epoch (900 in all), then close at 850 of the new epoch.
#[test]
fn a_scripted_life_pays_the_hand_computed_amounts_and_exactly_the_deposit() {
    let mut ch = Channel::open(PAYER, PAYEE, delegate(1), 1_000, 200, 10, 100).unwrap();
    let mut to_payee = 0;
    assert_eq!(ch.top_up(500, 105), Ok(1_500));
    to_payee += settle(&mut ch, 0, 400, 110).unwrap();
    assert_eq!(to_payee, 400);
    assert_eq!(ch.rotate(delegate(2), 120).unwrap().effective_at, 130);
    to_payee += settle(&mut ch, 0, 600, 129).unwrap();
    assert_eq!(to_payee, 600);
    assert_eq!(
        settle(&mut ch, 0, 700, 130),
        Err(ChannelError::WrongEpoch {
            claimed: 0,
            current: 1
        })
    );
    to_payee += settle(&mut ch, 1, 300, 140).unwrap();
    assert_eq!(to_payee, 900);
    assert_eq!(
        settle(&mut ch, 1, 901, 141),
        Err(ChannelError::AmountExceedsDeposit)
    );
    let payout = ch.payout(Some(&receipt(1, 850)), 150).unwrap();
    assert_eq!(
        payout,
        Payout {
            paid: 550,
            refunded: 50
        }
    );
    to_payee += payout.paid;
    assert_eq!(to_payee, 1_450);
    assert_eq!(to_payee + payout.refunded, 1_500);
}

#[test]
fn an_expired_channel_refunds_exactly_what_was_not_settled() {
    let mut ch = open(1_000, 50, 10, 0);
    settle(&mut ch, 0, 350, 10).unwrap();
    ch.rotate(delegate(2), 20).unwrap();
    settle(&mut ch, 1, 100, 40).unwrap();
    assert_eq!(ch.settled, 450);
    assert_eq!(ch.expired_refund(49), Err(ChannelError::NotExpired));
    assert_eq!(ch.expired_refund(50), Ok(550));
    assert_eq!(ch.remaining(), 550);
}

/// A claim names no channel: the channel comes from the message, and the signature is over
/// the receipt for that channel, so a claim lifted from one channel fails on another.
#[test]
fn a_claim_is_checked_as_the_receipt_of_the_channel_it_is_presented_on() {
    let secret = SecretKey::from_slice(&[5; 32]).unwrap();
    let key = protocol::keys::public_key(&secret);
    let domain = Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    };
    let receipt = Receipt {
        channel: ChannelId(3),
        epoch: 1,
        amount: 40,
    };
    let signed = SignedReceipt::sign(receipt, &domain, &secret, None);
    // Presented on another channel, the same signature is over another payload.
    let check = |channel| {
        let mut presented = signed.clone();
        presented.receipt.channel = channel;
        authorize::<SoftHasher, Libsecp256k1>(&Authority::Delegate(key), &domain, presented)
    };
    assert!(check(ChannelId(3)).is_ok());
    assert_eq!(check(ChannelId(4)).err(), Some(AuthError::NotDelegate));
}

// ---------------------------------------------------------------------------------------
// A whole channel life against an independent model.

/// The model knows nothing of epochs as counters, bases or pending rotations: it keeps the
/// log of announcements and, per epoch, the best amount the payee was paid for, and derives
/// everything else from those.
#[derive(Debug, Clone)]
struct Model {
    deposits: Balance,
    expires_at: u32,
    notice: u32,
    opening: Authority,
    announced: Vec<(u32, Authority)>,
    best: Vec<Balance>,
    to_payee: Balance,
    to_payer: Balance,
    ended: bool,
}

impl Model {
    /// An announcement made at `a` is in force from `a + notice` on, unless another one was
    /// made before that block (which replaced it).
    fn in_force(&self, t: u32) -> Vec<Authority> {
        self.announced
            .iter()
            .enumerate()
            .filter(|(i, (at, _))| {
                let due = at + self.notice;
                let replaced = self
                    .announced
                    .get(i + 1)
                    .is_some_and(|(next, _)| *next < due);
                due <= t && !replaced
            })
            .map(|(_, (_, authority))| *authority)
            .collect()
    }

    fn epoch(&self, t: u32) -> u32 {
        self.in_force(t).len() as u32
    }

    fn authority(&self, t: u32) -> Authority {
        self.in_force(t).last().copied().unwrap_or(self.opening)
    }

    fn best_in(&self, epoch: u32) -> Balance {
        self.best.get(epoch as usize).copied().unwrap_or(0)
    }

    /// What the epochs before `epoch` paid: what `epoch`'s receipts count above.
    fn before(&self, epoch: u32) -> Balance {
        self.best.iter().take(epoch as usize).sum()
    }

    fn paid(&self) -> Balance {
        self.best.iter().sum()
    }

    fn set_best(&mut self, epoch: u32, amount: Balance) {
        if self.best.len() <= epoch as usize {
            self.best.resize(epoch as usize + 1, 0);
        }
        self.best[epoch as usize] = amount;
    }

    /// Whether a receipt of `epoch` for `amount` counts at `t`: before expiry, in the epoch
    /// in force, and within the deposit on top of what the epochs before it were paid.
    fn claimable(&self, t: u32, epoch: u32, amount: Balance) -> bool {
        t < self.expires_at
            && epoch == self.epoch(t)
            && self.before(epoch) + amount <= self.deposits
    }
}

#[derive(Debug, Clone)]
enum Op {
    Wait(u32),
    TopUp(Balance),
    /// Relative to the current expiry (may be earlier).
    Extend(i64),
    Rotate(u8),
    /// Epoch relative to the model's current one; amount in thousandths of what the deposit
    /// leaves for that epoch (above 1000: too much).
    Settle(i8, u16),
    Close(Option<(i8, u16)>),
    Claim,
}

fn authority_pick(i: u8) -> Authority {
    match i {
        0 => delegate(1),
        1 => delegate(2),
        2 => Authority::Group(MerkleRoot([4; 32])),
        3 => Authority::Revoked,
        4 => Authority::Account(PAYER),
        _ => Authority::Account(STRANGER),
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let epoch = prop_oneof![1 => Just(-1i8), 6 => Just(0i8), 1 => Just(1i8)];
    let share = prop_oneof![1 => Just(1000u16), 1 => Just(0u16), 8 => 0u16..1_100];
    prop_oneof![
        4 => (0u32..6).prop_map(Op::Wait),
        1 => (0u128..300).prop_map(Op::TopUp),
        1 => (-4i64..20).prop_map(Op::Extend),
        2 => (0u8..6).prop_map(Op::Rotate),
        5 => (epoch.clone(), share.clone()).prop_map(|(e, s)| Op::Settle(e, s)),
        1 => proptest::option::of((epoch, share)).prop_map(Op::Close),
        1 => Just(Op::Claim),
    ]
}

fn resolve(model: &Model, t: u32, epoch: i8, share: u16) -> (u32, Balance) {
    let epoch = (i64::from(model.epoch(t)) + i64::from(epoch)).max(0) as u32;
    let room = model.deposits.saturating_sub(model.before(epoch));
    (epoch, room * Balance::from(share) / 1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Over random sequences of every operation, the rules accept exactly what the model
    /// accepts and pay exactly what it pays; a refusal changes nothing (beyond bringing a
    /// due rotation into force); the payee never gets more than was deposited; and when
    /// the channel ends, payer and payee together got exactly every unit deposited.
    #[test]
    fn channel_life_agrees_with_an_independent_model(
        deposit in 1u128..1_000,
        start in 0u32..20,
        life in 1u32..60,
        notice in 0u32..8,
        opening in 0u8..5,
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let opening = authority_pick(opening);
        let mut t = start;
        let mut ch = Channel::open(PAYER, PAYEE, opening, deposit, start + life, notice, t)
            .expect("a valid opening");
        let mut model = Model {
            deposits: deposit,
            expires_at: start + life,
            notice,
            opening,
            announced: Vec::new(),
            best: Vec::new(),
            to_payee: 0,
            to_payer: 0,
            ended: false,
        };
        let (mut to_payee, mut to_payer) = (0u128, 0u128);
        // Then the channel ends: closed without a claim if it can be, claimed if expired.
        for op in ops.into_iter().chain([Op::Close(None), Op::Claim]) {
            if model.ended {
                break;
            }
            let mut next = ch;
            let accepted = match op {
                Op::Wait(dt) => {
                    t += dt;
                    true
                }
                Op::TopUp(added) => {
                    let expected = added > 0 && t < model.expires_at;
                    let got = next.top_up(added, t);
                    prop_assert_eq!(got.is_ok(), expected, "top up {} at {}", added, t);
                    if expected {
                        model.deposits += added;
                        prop_assert_eq!(got, Ok(model.deposits));
                    }
                    expected
                }
                Op::Extend(delta) => {
                    let to = (i64::from(model.expires_at) + delta).max(0) as u32;
                    let expected = to > model.expires_at;
                    prop_assert_eq!(next.extend(to, t).is_ok(), expected, "extend to {}", to);
                    if expected {
                        model.expires_at = to;
                    }
                    expected
                }
                Op::Rotate(pick) => {
                    let authority = authority_pick(pick);
                    let expected =
                        t < model.expires_at && authority != Authority::Account(STRANGER);
                    let got = next.rotate(authority, t);
                    prop_assert_eq!(got.is_ok(), expected, "rotate to {:?} at {}", authority, t);
                    if expected {
                        model.announced.push((t, authority));
                        prop_assert_eq!(got.map(|r| r.effective_at), Ok(t + model.notice));
                    }
                    expected
                }
                Op::Settle(epoch, share) => {
                    let (epoch, amount) = resolve(&model, t, epoch, share);
                    let expected =
                        model.claimable(t, epoch, amount) && amount > model.best_in(epoch);
                    let got = next.settlement(&Receipt { channel: ChannelId(0), epoch, amount }, t);
                    prop_assert_eq!(got.is_ok(), expected, "settle {}/{} at {}: {:?}", epoch, amount, t, got);
                    if let Ok(settlement) = got {
                        let paid = amount - model.best_in(epoch);
                        model.set_best(epoch, amount);
                        model.to_payee += paid;
                        prop_assert_eq!(settlement, Settlement { settled: model.paid(), paid });
                        next.apply(settlement);
                        to_payee += settlement.paid;
                    }
                    expected
                }
                Op::Close(claim) => {
                    let claim = claim.map(|(epoch, share)| resolve(&model, t, epoch, share));
                    let expected = match claim {
                        Some((epoch, amount)) => {
                            model.claimable(t, epoch, amount) && amount >= model.best_in(epoch)
                        }
                        None => t < model.expires_at,
                    };
                    let got = next.payout(claim.map(|(e, a)| receipt(e, a)).as_ref(), t);
                    prop_assert_eq!(got.is_ok(), expected, "close {:?} at {}: {:?}", claim, t, got);
                    if let Ok(payout) = got {
                        let (paid, claimed) = match claim {
                            Some((epoch, amount)) => {
                                (amount - model.best_in(epoch), model.before(epoch) + amount)
                            }
                            None => (0, model.paid()),
                        };
                        model.to_payee += paid;
                        model.to_payer += model.deposits - claimed;
                        model.ended = true;
                        prop_assert_eq!(payout, Payout { paid, refunded: model.deposits - claimed });
                        to_payee += payout.paid;
                        to_payer += payout.refunded;
                    }
                    expected
                }
                Op::Claim => {
                    let expected = t >= model.expires_at;
                    let got = next.expired_refund(t);
                    prop_assert_eq!(got.is_ok(), expected, "claim at {}", t);
                    if let Ok(refund) = got {
                        model.to_payer += model.deposits - model.paid();
                        model.ended = true;
                        prop_assert_eq!(refund, model.deposits - model.paid());
                        to_payer += refund;
                    }
                    expected
                }
            };
            if accepted {
                ch = next;
            } else {
                prop_assert_eq!(next.at(t), ch.at(t), "a refusal changed the channel");
            }
            let now = ch.at(t);
            prop_assert_eq!(now.epoch, model.epoch(t), "epoch at {}", t);
            prop_assert_eq!(now.authority, model.authority(t), "authority at {}", t);
            prop_assert_eq!(now.deposit, model.deposits);
            prop_assert_eq!(now.settled, model.paid());
            prop_assert_eq!(now.expires_at, model.expires_at);
            prop_assert!(to_payee <= model.deposits, "payee got {} of {}", to_payee, model.deposits);
        }
        prop_assert!(model.ended, "a close or a claim always ends the channel");
        prop_assert_eq!((to_payee, to_payer), (model.to_payee, model.to_payer));
        prop_assert_eq!(to_payee + to_payer, model.deposits);
    }
}
