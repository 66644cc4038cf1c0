//! A channel lifecycle checked against a small reference model.
//!
//! Bytes decode into a sequence of operations (open, top up, extend, close with a receipt,
//! claim after expiry, blocks passing) by several payers, the payee and strangers. Each
//! runs on the real contract in ink!'s off-chain engine and on [`Model`], a few lines of
//! plain arithmetic; after every operation the outcome, every balance and every channel
//! must agree, and money is conserved. Shared by the property test (`lifecycle.rs`) and
//! the fuzz target (`fuzz/fuzz_targets/lifecycle.rs`), so a crash the fuzzer finds replays
//! as a test.
use ink::env::{test, DefaultEnvironment as Env};
use ink::primitives::AccountId;
use protocol::signature::keys::{self, SecretKey};
use protocol::{Authority, ChannelId, Receipt};
use slotpay_channels::slotpay_channels::{Channel, SlotpayChannels};

const GENESIS: [u8; 32] = [7; 32];
const START: u128 = 1_000_000_000_000;
/// The engine panics below an existential deposit: keep every account above it.
const FLOOR: u128 = 1_000_000;

/// Who acts: 0..=2 payers, 3 the payee (the AS), 4 a stranger.
const ACTORS: usize = 5;
const PAYEE: usize = 3;

fn account(i: usize) -> AccountId {
    AccountId::from([0x10 + i as u8; 32])
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelChannel {
    payer: usize,
    /// Index of the client key the channel is delegated to.
    key: usize,
    deposit: u128,
    expires_at: u32,
}

#[derive(Default)]
struct Model {
    channels: Vec<Option<ModelChannel>>,
    balances: [u128; ACTORS],
    held: u128,
    block: u32,
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
}

/// A close's amount: raw, or relative to the channel's deposit (so the boundary, the whole
/// deposit and one unit above it, is hit often rather than by luck).
#[derive(Debug, Clone, Copy)]
enum Amount {
    Raw(u128),
    DepositPlus(i8),
}

impl Amount {
    fn resolve(self, deposit: Option<u128>) -> u128 {
        match (self, deposit) {
            (Amount::Raw(a), _) => a,
            (Amount::DepositPlus(d), Some(deposit)) => deposit.saturating_add_signed(i128::from(d)),
            (Amount::DepositPlus(d), None) => u128::from(d.unsigned_abs()),
        }
    }
}

#[derive(Debug)]
enum Op {
    Open {
        payer: usize,
        deposit: u128,
        expires_in: u32,
        key: usize,
    },
    TopUp {
        caller: usize,
        channel: u64,
        amount: u128,
    },
    Extend {
        caller: usize,
        channel: u64,
        by: u32,
    },
    /// `signer` 3 is a key no channel is delegated to; `for_channel` may differ from
    /// `channel` (a receipt of another channel replayed).
    Close {
        caller: usize,
        channel: u64,
        amount: Amount,
        signer: usize,
        for_channel: u64,
    },
    Claim {
        caller: usize,
        channel: u64,
    },
    Blocks(u32),
}

fn decode(bytes: &[u8]) -> Vec<Op> {
    let mut input = Input(bytes);
    let mut ops = Vec::new();
    while !input.0.is_empty() && ops.len() < 64 {
        let kind = input.byte() % 6;
        let actor = |b: u8| usize::from(b) % ACTORS;
        let channel = |b: u8| u64::from(b % 8);
        ops.push(match kind {
            0 => Op::Open {
                payer: usize::from(input.byte()) % 3,
                deposit: input.small(),
                expires_in: u32::from(input.byte() % 16),
                key: usize::from(input.byte()) % 3,
            },
            1 => Op::TopUp {
                caller: actor(input.byte()),
                channel: channel(input.byte()),
                amount: input.small(),
            },
            2 => Op::Extend {
                caller: actor(input.byte()),
                channel: channel(input.byte()),
                by: u32::from(input.byte() % 8),
            },
            3 => {
                let b = input.byte();
                let ch = channel(input.byte());
                Op::Close {
                    // Mostly the payee: that is where the money moves.
                    caller: if b % 4 == 0 { actor(b / 4) } else { PAYEE },
                    channel: ch,
                    amount: match input.byte() {
                        m if m % 2 == 0 => Amount::DepositPlus((m as i8 >> 1) % 3),
                        _ => Amount::Raw(input.small()),
                    },
                    signer: usize::from(input.byte()) % 4,
                    for_channel: if b % 8 == 1 { ch + 1 } else { ch },
                }
            }
            4 => Op::Claim {
                caller: actor(input.byte()),
                channel: channel(input.byte()),
            },
            _ => Op::Blocks(1 + u32::from(input.byte() % 4)),
        });
    }
    ops
}

impl Model {
    fn live(&self, channel: u64) -> Option<ModelChannel> {
        self.channels.get(channel as usize).copied().flatten()
    }

    /// What the contract must do; `Ok(transfers out of the contract)`.
    fn apply(&mut self, op: &Op) -> Result<(), ()> {
        match *op {
            Op::Open {
                payer,
                deposit,
                expires_in,
                key,
            } => {
                let expires_at = self.block + expires_in;
                if deposit == 0 || expires_at <= self.block {
                    return Err(());
                }
                self.balances[payer] -= deposit;
                self.held += deposit;
                self.channels.push(Some(ModelChannel {
                    payer,
                    key,
                    deposit,
                    expires_at,
                }));
            }
            Op::TopUp {
                caller,
                channel,
                amount,
            } => {
                let c = self.live(channel).ok_or(())?;
                if c.payer != caller || amount == 0 || self.block >= c.expires_at {
                    return Err(());
                }
                self.balances[caller] -= amount;
                self.held += amount;
                self.channels[channel as usize] = Some(ModelChannel {
                    deposit: c.deposit + amount,
                    ..c
                });
            }
            Op::Extend {
                caller,
                channel,
                by,
            } => {
                let c = self.live(channel).ok_or(())?;
                if c.payer != caller || by == 0 {
                    return Err(());
                }
                self.channels[channel as usize] = Some(ModelChannel {
                    expires_at: c.expires_at + by,
                    ..c
                });
            }
            Op::Close {
                caller,
                channel,
                amount,
                signer,
                for_channel,
            } => {
                let c = self.live(channel).ok_or(())?;
                let amount = amount.resolve(Some(c.deposit));
                let valid = caller == PAYEE
                    && self.block < c.expires_at
                    && amount <= c.deposit
                    && signer == c.key
                    && for_channel == channel;
                if !valid {
                    return Err(());
                }
                self.balances[PAYEE] += amount;
                self.balances[c.payer] += c.deposit - amount;
                self.held -= c.deposit;
                self.channels[channel as usize] = None;
            }
            Op::Claim { caller, channel } => {
                let c = self.live(channel).ok_or(())?;
                if c.payer != caller || self.block < c.expires_at {
                    return Err(());
                }
                self.balances[caller] += c.deposit;
                self.held -= c.deposit;
                self.channels[channel as usize] = None;
            }
            Op::Blocks(n) => self.block += n,
        }
        Ok(())
    }
}

/// Runs `bytes` as a lifecycle on the contract and the model; panics on any disagreement.
/// Returns which operations succeeded.
pub fn run(bytes: &[u8]) -> Vec<bool> {
    let ops = decode(bytes);
    let mut outcomes = Vec::with_capacity(ops.len());
    test::run_test::<Env, _>(|_| {
        test::set_callee::<Env>(contract_account());
        test::set_account_balance::<Env>(contract_account(), FLOOR);
        test::set_block_number::<Env>(1);
        let mut model = Model {
            block: 1,
            ..Model::default()
        };
        for i in 0..ACTORS {
            test::set_account_balance::<Env>(account(i), START);
            model.balances[i] = START;
        }
        let mut contract = SlotpayChannels::new(GENESIS);
        let domain = contract.domain();
        for (step, op) in ops.iter().enumerate() {
            let result = match *op {
                Op::Open {
                    payer,
                    deposit,
                    expires_in,
                    key,
                } => {
                    let expires_at = model.block + expires_in;
                    let authority = Authority::Delegate(keys::public_key(&client_key(key)));
                    paying(payer, deposit, || {
                        contract
                            .open(account(PAYEE), authority, expires_at)
                            .map(drop)
                    })
                }
                Op::TopUp {
                    caller,
                    channel,
                    amount,
                } => paying(caller, amount, || contract.top_up(ChannelId(channel))),
                Op::Extend {
                    caller,
                    channel,
                    by,
                } => {
                    test::set_caller::<Env>(account(caller));
                    let current = contract
                        .channel(ChannelId(channel))
                        .map_or(0, |c| c.expires_at);
                    contract.extend(ChannelId(channel), current + by)
                }
                Op::Close {
                    caller,
                    channel,
                    amount,
                    signer,
                    for_channel,
                } => {
                    let amount = amount.resolve(model.live(channel).map(|c| c.deposit));
                    let receipt = Receipt {
                        channel: ChannelId(for_channel),
                        amount,
                    };
                    let signature = receipt.sign(&domain, &client_key(signer));
                    test::set_caller::<Env>(account(caller));
                    contract.close(ChannelId(channel), amount, signature, None)
                }
                Op::Claim { caller, channel } => {
                    test::set_caller::<Env>(account(caller));
                    contract.claim_expired(ChannelId(channel))
                }
                Op::Blocks(n) => {
                    for _ in 0..n {
                        test::advance_block::<Env>();
                    }
                    Ok(())
                }
            };
            let expected = model.apply(op);
            outcomes.push(expected.is_ok());
            assert_eq!(
                result.is_ok(),
                expected.is_ok(),
                "step {step} {op:?}: contract said {result:?}"
            );
            for i in 0..ACTORS {
                assert_eq!(
                    balance(account(i)),
                    model.balances[i],
                    "step {step} {op:?}: balance of actor {i}"
                );
            }
            assert_eq!(
                balance(contract_account()),
                FLOOR + model.held,
                "step {step}: contract holds the open deposits"
            );
            for id in 0..model.channels.len() as u64 {
                let on_chain: Option<Channel> = contract.channel(ChannelId(id));
                let modelled = model.live(id);
                assert_eq!(
                    on_chain
                        .as_ref()
                        .map(|c| (c.deposit, c.expires_at, c.payer)),
                    modelled.map(|c| (c.deposit, c.expires_at, account(c.payer))),
                    "step {step} {op:?}: channel {id}"
                );
            }
            // Conservation: nothing is created or lost.
            let total: u128 = model.balances.iter().sum::<u128>() + model.held;
            assert_eq!(total, START * ACTORS as u128);
        }
        Ok(())
    })
    .expect("off-chain engine");
    outcomes
}

/// Calls a payable message as `caller` with `value`, moving the value the way the chain
/// does (the off-chain engine only records it) and back if the call fails.
fn paying(
    caller: usize,
    value: u128,
    call: impl FnOnce() -> Result<(), slotpay_channels::slotpay_channels::Error>,
) -> Result<(), slotpay_channels::slotpay_channels::Error> {
    let (from, to) = (account(caller), contract_account());
    test::set_caller::<Env>(from);
    test::set_value_transferred::<Env>(value);
    test::set_account_balance::<Env>(from, balance(from) - value);
    test::set_account_balance::<Env>(to, balance(to) + value);
    let result = call();
    if result.is_err() {
        test::set_account_balance::<Env>(from, balance(from) + value);
        test::set_account_balance::<Env>(to, balance(to) - value);
    }
    test::set_value_transferred::<Env>(0);
    result
}
