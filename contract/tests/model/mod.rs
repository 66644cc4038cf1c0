//! A channel lifecycle checked against a small reference model.
//!
//! Bytes decode into a sequence of operations (open, top up, extend, rotate the authority,
//! settle, close with or without a receipt, claim after expiry, withdraw, blocks passing)
//! by several payers, the payee and a stranger. Each runs on the real contract in ink!'s
//! off-chain engine and on [`Model`], plain arithmetic written here from the protocol's
//! description, independently of `protocol::channel` (calling those rules would compare
//! the library with itself). After every operation the outcome (the exact error), every
//! balance, everything owed and every channel must agree, and money is conserved, counted
//! on the engine's real balances and the contract's own state, not the model's numbers.
//!
//! The first byte picks the world: in one of four runs the contract's account has no
//! balance in the engine, which then refuses every transfer out of it (the engine's one way
//! to refuse a payment), so every payment is deferred to `owed`.
//!
//! Shared by the property test (`lifecycle.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/lifecycle.rs`), so a crash the fuzzer finds replays as a test.
use ink::env::{test, DefaultEnvironment as Env};
use ink::primitives::AccountId;
use protocol::keys::{self, SecretKey};
use protocol::{Authority, Channel, ChannelId, Receipt, Rotation, SignedReceipt};
use slotpay_channels::slotpay_channels::{Error, SlotpayChannels};

const GENESIS: [u8; 32] = [7; 32];
const START: u128 = 1_000_000_000_000;
/// The engine panics below an existential deposit: keep every account above it.
const FLOOR: u128 = 1_000_000;

/// Who acts: 0..=2 payers, 3 the payee (the AS), 4 a stranger.
const ACTORS: usize = 5;
const PAYEE: usize = 3;
const STRANGER: usize = 4;
/// Client keys 0..=2 may be a channel's authority; key 3 never is.
const KEYS: usize = 4;

fn account(i: usize) -> AccountId {
    AccountId::from([0x10 + i as u8; 32])
}

fn raw(i: usize) -> [u8; 32] {
    [0x10 + i as u8; 32]
}

fn contract_account() -> AccountId {
    AccountId::from([0xC0; 32])
}

fn client_key(i: usize) -> SecretKey {
    SecretKey::from_slice(&[0x40 + i as u8; 32]).expect("valid scalar")
}

fn balance(a: AccountId) -> u128 {
    test::get_account_balance::<Env>(a).expect("account has a balance")
}

/// Who signs a channel's receipts, in the model: a client key, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    Key(usize),
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelChannel {
    payer: usize,
    signer: Signer,
    epoch: u32,
    deposit: u128,
    /// Paid to the payee so far.
    paid: u128,
    /// `paid` when the current epoch began.
    floor: u128,
    expires_at: u32,
    notice: u32,
    /// An announced signer and the first block it signs at.
    pending: Option<(Signer, u32)>,
}

impl ModelChannel {
    /// The channel at `block`: a pending signer whose block has come is in force, its
    /// receipts one epoch up and counted from what was paid when it took over.
    fn at(mut self, block: u32) -> Self {
        if let Some((signer, from)) = self.pending {
            if block >= from {
                self.signer = signer;
                self.epoch += 1;
                self.floor = self.paid;
                self.pending = None;
            }
        }
        self
    }
}

struct Model {
    channels: Vec<Option<ModelChannel>>,
    balances: [u128; ACTORS],
    owed: [u128; ACTORS],
    block: u32,
    /// Whether the contract's transfers go through (see the module's doc).
    funded: bool,
}

/// Reads small numbers off the input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn small(&mut self) -> u128 {
        u128::from(u16::from_le_bytes([self.byte(), self.byte()]))
    }

    fn offset(&mut self) -> i8 {
        (self.byte() % 5) as i8 - 2
    }
}

/// A receipt's amount: raw, or relative to the channel (so the boundaries, the most the
/// epoch may claim and what was already paid, are hit often rather than by luck).
#[derive(Debug, Clone, Copy)]
enum Amount {
    Raw(u128),
    /// deposit - floor + d: the whole rest of the deposit, and one unit around it.
    EpochMax(i8),
    /// paid - floor + d: what was paid, and one unit around it.
    Paid(i8),
}

#[derive(Debug, Clone, Copy)]
enum Epoch {
    Current,
    Previous,
    Next,
}

/// Who a payer-side operation is called by.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// The channel's payer (payer 0 for a channel that does not exist).
    Payer,
    Actor(usize),
}

#[derive(Debug, Clone, Copy)]
struct Signed {
    amount: Amount,
    epoch: Epoch,
    /// `None`: the key in force (key 0 if revoked); otherwise that client key.
    key: Option<usize>,
    /// A receipt of another channel replayed.
    other_channel: bool,
}

#[derive(Debug, Clone, Copy)]
enum RotateTo {
    Key(usize),
    Revoked,
    /// `Authority::Account` of the stranger: never the payer's own.
    ForeignAccount,
}

#[derive(Debug)]
enum Op {
    Open {
        payer: usize,
        deposit: u128,
        expires_in: u32,
        key: usize,
        notice: u32,
    },
    TopUp {
        caller: Caller,
        channel: u64,
        amount: u128,
    },
    Extend {
        caller: Caller,
        channel: u64,
        by: u32,
    },
    Rotate {
        caller: Caller,
        channel: u64,
        to: RotateTo,
    },
    Settle {
        caller: usize,
        channel: u64,
        receipt: Signed,
    },
    Close {
        caller: usize,
        channel: u64,
        receipt: Option<Signed>,
    },
    ClaimExpired {
        caller: Caller,
        channel: u64,
    },
    Withdraw {
        caller: usize,
    },
    Blocks(u32),
}

fn decode(input: &mut Input) -> Vec<Op> {
    let mut ops = Vec::new();
    let actor = |b: u8| usize::from(b) % ACTORS;
    let channel = |b: u8| u64::from(b % 8);
    // Mostly the party entitled to act: that is where state changes and money moves.
    let payer_side = |b: u8| {
        if b % 4 == 0 {
            Caller::Actor(actor(b / 4))
        } else {
            Caller::Payer
        }
    };
    let payee_side = |b: u8| if b % 4 == 0 { actor(b / 4) } else { PAYEE };
    let signed = |input: &mut Input| {
        let b = input.byte();
        Signed {
            amount: match b % 3 {
                0 => Amount::Raw(input.small()),
                1 => Amount::EpochMax(input.offset()),
                _ => Amount::Paid(input.offset()),
            },
            epoch: match (b / 3) % 8 {
                0 => Epoch::Previous,
                1 => Epoch::Next,
                _ => Epoch::Current,
            },
            key: if b / 24 % 4 == 0 {
                Some(usize::from(b) % KEYS)
            } else {
                None
            },
            other_channel: b >= 240,
        }
    };
    while !input.0.is_empty() && ops.len() < 64 {
        let kind = input.byte() % 9;
        ops.push(match kind {
            0 => Op::Open {
                payer: usize::from(input.byte()) % 3,
                deposit: input.small(),
                expires_in: u32::from(input.byte() % 16),
                key: usize::from(input.byte()) % 3,
                notice: u32::from(input.byte() % 6),
            },
            1 => Op::TopUp {
                caller: payer_side(input.byte()),
                channel: channel(input.byte()),
                amount: input.small(),
            },
            2 => Op::Extend {
                caller: payer_side(input.byte()),
                channel: channel(input.byte()),
                by: u32::from(input.byte() % 8),
            },
            3 => Op::Rotate {
                caller: payer_side(input.byte()),
                channel: channel(input.byte()),
                to: match input.byte() % 5 {
                    k @ 0..=2 => RotateTo::Key(usize::from(k)),
                    3 => RotateTo::Revoked,
                    _ => RotateTo::ForeignAccount,
                },
            },
            4 => Op::Settle {
                caller: payee_side(input.byte()),
                channel: channel(input.byte()),
                receipt: signed(input),
            },
            5 => {
                let caller = payee_side(input.byte());
                let channel = channel(input.byte());
                let with_receipt = input.byte() % 4 != 0;
                Op::Close {
                    caller,
                    channel,
                    receipt: with_receipt.then(|| signed(input)),
                }
            }
            6 => Op::ClaimExpired {
                caller: payer_side(input.byte()),
                channel: channel(input.byte()),
            },
            7 => Op::Withdraw {
                caller: actor(input.byte()),
            },
            _ => Op::Blocks(1 + u32::from(input.byte() % 4)),
        });
    }
    ops
}

/// A receipt resolved against the model's view of the channel: what is presented and who
/// signed it for which channel.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    epoch: u32,
    amount: u128,
    key: usize,
    for_channel: u64,
}

impl Model {
    fn live(&self, channel: u64) -> Option<ModelChannel> {
        self.channels.get(channel as usize).copied().flatten()
    }

    fn caller(&self, caller: Caller, channel: u64) -> usize {
        match caller {
            Caller::Payer => self.live(channel).map_or(0, |c| c.payer),
            Caller::Actor(i) => i,
        }
    }

    fn resolve(&self, channel: u64, signed: Signed) -> Resolved {
        let now = self.live(channel).map(|c| c.at(self.block));
        let (epoch, floor, paid, deposit) =
            now.map_or((0, 0, 0, 0), |c| (c.epoch, c.floor, c.paid, c.deposit));
        let around = |base: u128, d: i8| base.saturating_add_signed(i128::from(d));
        Resolved {
            epoch: match signed.epoch {
                Epoch::Current => epoch,
                Epoch::Previous => epoch.wrapping_sub(1),
                Epoch::Next => epoch.wrapping_add(1),
            },
            amount: match signed.amount {
                Amount::Raw(a) => a,
                Amount::EpochMax(d) => around(deposit - floor, d),
                Amount::Paid(d) => around(paid - floor, d),
            },
            key: signed.key.unwrap_or(match now.map(|c| c.signer) {
                Some(Signer::Key(k)) => k,
                _ => 0,
            }),
            for_channel: if signed.other_channel {
                channel + 1
            } else {
                channel
            },
        }
    }

    /// Pays `amount` to `to` out of the contract, or owes it.
    fn pay(&mut self, to: usize, amount: u128) {
        if self.funded {
            self.balances[to] += amount;
        } else {
            self.owed[to] += amount;
        }
    }

    /// Whether a receipt passes the signature check of channel `c` (already at `now`).
    fn signature(c: &ModelChannel, channel: u64, r: &Resolved) -> Result<(), Error> {
        match c.signer {
            Signer::Revoked => Err(Error::Revoked),
            // A receipt signed for another channel recovers some other key.
            Signer::Key(k) if k == r.key && r.for_channel == channel => Ok(()),
            Signer::Key(_) => Err(Error::NotDelegate),
        }
    }

    /// What the contract must do, error for error.
    fn apply(&mut self, op: &Op, resolved: Option<Resolved>) -> Result<(), Error> {
        let now = self.block;
        match *op {
            Op::Open {
                payer,
                deposit,
                expires_in,
                key,
                notice,
            } => {
                let expires_at = now + expires_in;
                if deposit == 0 {
                    return Err(Error::ZeroDeposit);
                }
                if expires_at <= now {
                    return Err(Error::ExpiryNotInFuture);
                }
                self.balances[payer] -= deposit;
                self.channels.push(Some(ModelChannel {
                    payer,
                    signer: Signer::Key(key),
                    epoch: 0,
                    deposit,
                    paid: 0,
                    floor: 0,
                    expires_at,
                    notice,
                    pending: None,
                }));
            }
            Op::TopUp {
                caller,
                channel,
                amount,
            } => {
                let caller = self.caller(caller, channel);
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if c.payer != caller {
                    return Err(Error::NotPayer);
                }
                if amount == 0 {
                    return Err(Error::ZeroDeposit);
                }
                if now >= c.expires_at {
                    return Err(Error::ChannelExpired);
                }
                self.balances[caller] -= amount;
                self.channels[channel as usize] = Some(ModelChannel {
                    deposit: c.deposit + amount,
                    ..c.at(now)
                });
            }
            Op::Extend {
                caller,
                channel,
                by,
            } => {
                let caller = self.caller(caller, channel);
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if c.payer != caller {
                    return Err(Error::NotPayer);
                }
                if by == 0 {
                    return Err(Error::ExpiryNotLater);
                }
                self.channels[channel as usize] = Some(ModelChannel {
                    expires_at: c.expires_at + by,
                    ..c.at(now)
                });
            }
            Op::Rotate {
                caller,
                channel,
                to,
            } => {
                let caller = self.caller(caller, channel);
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if c.payer != caller {
                    return Err(Error::NotPayer);
                }
                if now >= c.expires_at {
                    return Err(Error::ChannelExpired);
                }
                let signer = match to {
                    RotateTo::Key(k) => Signer::Key(k),
                    RotateTo::Revoked => Signer::Revoked,
                    RotateTo::ForeignAccount => return Err(Error::AccountAuthorityNotPayer),
                };
                // A new announcement replaces a pending one, with a fresh notice.
                self.channels[channel as usize] = Some(ModelChannel {
                    pending: Some((signer, now + c.notice)),
                    ..c.at(now)
                });
            }
            Op::Settle {
                caller, channel, ..
            } => {
                let r = resolved.expect("a settle has a receipt");
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if caller != PAYEE {
                    return Err(Error::NotPayee);
                }
                let c = c.at(now);
                if now >= c.expires_at {
                    return Err(Error::ChannelExpired);
                }
                if r.epoch != c.epoch {
                    return Err(Error::WrongEpoch);
                }
                let total = c.floor.checked_add(r.amount);
                let total = match total {
                    Some(t) if t <= c.deposit => t,
                    _ => return Err(Error::AmountExceedsDeposit),
                };
                if total <= c.paid {
                    return Err(Error::NothingToSettle);
                }
                Self::signature(&c, channel, &r)?;
                self.pay(PAYEE, total - c.paid);
                self.channels[channel as usize] = Some(ModelChannel { paid: total, ..c });
            }
            Op::Close {
                caller, channel, ..
            } => {
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if caller != PAYEE {
                    return Err(Error::NotPayee);
                }
                let c = c.at(now);
                if now >= c.expires_at {
                    return Err(Error::ChannelExpired);
                }
                let total = match resolved {
                    None => c.paid,
                    Some(r) => {
                        if r.epoch != c.epoch {
                            return Err(Error::WrongEpoch);
                        }
                        let total = match c.floor.checked_add(r.amount) {
                            Some(t) if t <= c.deposit => t,
                            _ => return Err(Error::AmountExceedsDeposit),
                        };
                        if total < c.paid {
                            return Err(Error::BelowSettled);
                        }
                        Self::signature(&c, channel, &r)?;
                        total
                    }
                };
                let to_payee = total - c.paid;
                if to_payee > 0 {
                    self.pay(PAYEE, to_payee);
                }
                if c.deposit > total {
                    self.pay(c.payer, c.deposit - total);
                }
                self.channels[channel as usize] = None;
            }
            Op::ClaimExpired { caller, channel } => {
                let caller = self.caller(caller, channel);
                let c = self.live(channel).ok_or(Error::ChannelNotFound)?;
                if c.payer != caller {
                    return Err(Error::NotPayer);
                }
                if now < c.expires_at {
                    return Err(Error::NotExpired);
                }
                if c.deposit > c.paid {
                    self.pay(caller, c.deposit - c.paid);
                }
                self.channels[channel as usize] = None;
            }
            Op::Withdraw { caller } => {
                if self.owed[caller] == 0 {
                    return Err(Error::NothingToWithdraw);
                }
                if !self.funded {
                    return Err(Error::WithdrawFailed);
                }
                self.balances[caller] += self.owed[caller];
                self.owed[caller] = 0;
            }
            Op::Blocks(n) => self.block += n,
        }
        Ok(())
    }
}

/// The model's channel as the contract's `channel()` must show it.
fn expected_channel(c: &ModelChannel, block: u32) -> Channel {
    let authority = |signer: Signer| match signer {
        Signer::Key(k) => Authority::Delegate(keys::public_key(&client_key(k))),
        Signer::Revoked => Authority::Revoked,
    };
    let c = c.at(block);
    Channel {
        payer: raw(c.payer),
        payee: raw(PAYEE),
        authority: authority(c.signer),
        epoch: c.epoch,
        deposit: c.deposit,
        settled: c.paid,
        base: c.floor,
        expires_at: c.expires_at,
        notice: c.notice,
        rotation: c.pending.map(|(signer, effective_at)| Rotation {
            authority: authority(signer),
            effective_at,
        }),
    }
}

/// Runs `bytes` as a lifecycle on the contract and the model; panics on any disagreement.
/// Returns which operations succeeded.
pub(crate) fn run(bytes: &[u8]) -> Vec<bool> {
    let mut input = Input(bytes);
    let funded = input.byte() % 4 != 3;
    let ops = decode(&mut input);
    let mut outcomes = Vec::with_capacity(ops.len());
    test::run_test::<Env, _>(|_| {
        test::set_callee::<Env>(contract_account());
        if funded {
            test::set_account_balance::<Env>(contract_account(), FLOOR);
        }
        test::set_block_number::<Env>(1);
        let mut model = Model {
            channels: Vec::new(),
            balances: [START; ACTORS],
            owed: [0; ACTORS],
            block: 1,
            funded,
        };
        for i in 0..ACTORS {
            test::set_account_balance::<Env>(account(i), START);
        }
        let mut contract = SlotpayChannels::new(GENESIS);
        let domain = contract.domain();
        // Signed for `r.for_channel`, presented on `channel`: when they differ the
        // signature covers another receipt than the one presented.
        let claim = |channel: u64, r: Resolved| {
            let receipt = Receipt {
                channel: ChannelId(r.for_channel),
                epoch: r.epoch,
                amount: r.amount,
            };
            let mut signed = SignedReceipt::sign(receipt, &domain, &client_key(r.key), None);
            signed.receipt.channel = ChannelId(channel);
            signed
        };
        for (step, op) in ops.iter().enumerate() {
            let resolved = match *op {
                Op::Settle {
                    channel, receipt, ..
                } => Some(model.resolve(channel, receipt)),
                Op::Close {
                    channel,
                    receipt: Some(receipt),
                    ..
                } => Some(model.resolve(channel, receipt)),
                _ => None,
            };
            let result = match *op {
                Op::Open {
                    payer,
                    deposit,
                    expires_in,
                    key,
                    notice,
                } => {
                    let expires_at = model.block + expires_in;
                    let authority = Authority::Delegate(keys::public_key(&client_key(key)));
                    paying(funded, payer, deposit, || {
                        contract
                            .open(account(PAYEE), authority, expires_at, notice)
                            .map(drop)
                    })
                }
                Op::TopUp {
                    caller,
                    channel,
                    amount,
                } => paying(funded, model.caller(caller, channel), amount, || {
                    contract.top_up(ChannelId(channel))
                }),
                Op::Extend {
                    caller,
                    channel,
                    by,
                } => {
                    test::set_caller::<Env>(account(model.caller(caller, channel)));
                    let current = contract
                        .channel(ChannelId(channel))
                        .map_or(0, |c| c.expires_at);
                    contract.extend(ChannelId(channel), current + by)
                }
                Op::Rotate {
                    caller,
                    channel,
                    to,
                } => {
                    test::set_caller::<Env>(account(model.caller(caller, channel)));
                    let authority = match to {
                        RotateTo::Key(k) => Authority::Delegate(keys::public_key(&client_key(k))),
                        RotateTo::Revoked => Authority::Revoked,
                        RotateTo::ForeignAccount => Authority::Account(raw(STRANGER)),
                    };
                    contract.rotate(ChannelId(channel), authority).map(drop)
                }
                Op::Settle {
                    caller, channel, ..
                } => {
                    test::set_caller::<Env>(account(caller));
                    let r = resolved.expect("resolved");
                    contract.settle(claim(channel, r)).map(drop)
                }
                Op::Close {
                    caller, channel, ..
                } => {
                    test::set_caller::<Env>(account(caller));
                    contract.close(ChannelId(channel), resolved.map(|r| claim(channel, r)))
                }
                Op::ClaimExpired { caller, channel } => {
                    test::set_caller::<Env>(account(model.caller(caller, channel)));
                    contract.claim_expired(ChannelId(channel))
                }
                Op::Withdraw { caller } => {
                    test::set_caller::<Env>(account(caller));
                    contract.withdraw().map(drop)
                }
                Op::Blocks(n) => {
                    for _ in 0..n {
                        test::advance_block::<Env>();
                    }
                    Ok(())
                }
            };
            let expected = model.apply(op, resolved);
            outcomes.push(expected.is_ok());
            assert_eq!(
                result, expected,
                "step {step} {op:?} ({resolved:?}): contract vs model"
            );
            for i in 0..ACTORS {
                assert_eq!(
                    balance(account(i)),
                    model.balances[i],
                    "step {step} {op:?}: balance of actor {i}"
                );
                assert_eq!(
                    contract.owed(account(i)),
                    model.owed[i],
                    "step {step} {op:?}: owed to actor {i}"
                );
            }
            for id in 0..=model.channels.len() as u64 {
                assert_eq!(
                    contract.channel(ChannelId(id)),
                    model.live(id).map(|c| expected_channel(&c, model.block)),
                    "step {step} {op:?}: channel {id}"
                );
            }
            conserved(&contract, model.channels.len() as u64, funded, step);
        }
        Ok(())
    })
    .expect("off-chain engine");
    outcomes
}

/// Money conservation on the engine's real balances and the contract's own state (never
/// the model's numbers): what left the actors is exactly what the contract still holds for
/// open channels (deposit - settled) and what it owes.
fn conserved(contract: &SlotpayChannels, channels: u64, funded: bool, step: usize) {
    let actors: u128 = (0..ACTORS).map(|i| balance(account(i))).sum();
    let held: u128 = (0..channels)
        .filter_map(|id| contract.channel(ChannelId(id)))
        .map(|c| c.deposit - c.settled)
        .sum();
    let owed: u128 = (0..ACTORS).map(|i| contract.owed(account(i))).sum();
    assert_eq!(
        actors + held + owed,
        START * ACTORS as u128,
        "step {step}: actors {actors} + held {held} + owed {owed}"
    );
    if funded {
        assert_eq!(
            balance(contract_account()) - FLOOR,
            held + owed,
            "step {step}: the contract's balance is what it holds and owes"
        );
    }
}

/// Calls a payable message as `caller` with `value`, moving the value the way the chain
/// does (the off-chain engine only records it) and back if the call fails. Without a
/// funded contract account, the value only leaves the caller (see the module's doc).
fn paying(
    funded: bool,
    caller: usize,
    value: u128,
    call: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    let (from, to) = (account(caller), contract_account());
    test::set_caller::<Env>(from);
    test::set_value_transferred::<Env>(value);
    test::set_account_balance::<Env>(from, balance(from) - value);
    if funded {
        test::set_account_balance::<Env>(to, balance(to) + value);
    }
    let result = call();
    if result.is_err() {
        test::set_account_balance::<Env>(from, balance(from) + value);
        if funded {
            test::set_account_balance::<Env>(to, balance(to) - value);
        }
    }
    test::set_value_transferred::<Env>(0);
    result
}
