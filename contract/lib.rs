//! slotpay payment channels.
//!
//! One contract instance holds many channels. A payer opens a channel with a deposit for a
//! payee (the Authorization Server) and binds it to a signing authority: the payer's own
//! ECDSA account key, a delegated client key, or the Merkle root of a group of client keys.
//! The payee settles the best (highest) cumulative receipt whenever it likes and keeps the
//! channel open, or closes it, with or without a last receipt; the payer may rotate the
//! authority (after the channel's notice period), top up, extend, and takes back what is
//! left once the channel expires.
//!
//! Every rule comes from the `protocol` crate (`protocol::Channel` for the money and the
//! epochs, `protocol::authorize` for receipts) and the interface (messages, events, errors)
//! from the `interface` crate; this contract only stores channels, plugs in the chain's
//! host functions for hashing and public-key recovery, and moves the money. So the AS and
//! the contract accept exactly the same receipts, and off-chain code decodes exactly what
//! the contract emits.
//!
//! Payments out of the contract never make an operation fail: a payment the chain refuses
//! (an account reaped below the existential deposit cannot receive less than it) is kept as
//! a balance its owner withdraws later. Otherwise a payer could make every close fail by
//! reaping its own account, and take the whole deposit back after expiry.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

pub use interface;
pub use protocol;

/// The chain's host functions behind the protocol's crypto traits.
pub mod host {
    use ink::env::hash::{Blake2x256, Keccak256};

    /// ink!'s `hash_bytes` and `ecdsa_recover` host functions.
    pub struct InkHost;

    impl protocol::crypto::Hasher for InkHost {
        fn keccak256(data: &[u8]) -> [u8; 32] {
            let mut out = [0u8; 32];
            ink::env::hash_bytes::<Keccak256>(data, &mut out);
            out
        }

        fn blake2_256(data: &[u8]) -> [u8; 32] {
            let mut out = [0u8; 32];
            ink::env::hash_bytes::<Blake2x256>(data, &mut out);
            out
        }
    }

    impl protocol::crypto::EcdsaRecover for InkHost {
        fn recover_compressed(signature: &[u8; 65], message_hash: &[u8; 32]) -> Option<[u8; 33]> {
            let mut out = [0u8; 33];
            ink::env::ecdsa_recover(signature, message_hash, &mut out).ok()?;
            Some(out)
        }
    }
}

/// The contract: its storage, constructor and messages (ink! generates the dispatch, the
/// metadata and a `SlotpayChannelsRef` for callers from this module).
// The on-chain build only (no `std`): ink! generates the contract's entry points here, as
// `#[no_mangle] pub extern "C" fn call()` and `deploy()` (spanned at the storage struct),
// which `unsafe_code` counts as unsafe and `unreachable_pub` as unreachable. Every build
// with `std` (clippy, the tests) keeps both lints over this module.
#[cfg_attr(not(feature = "std"), allow(unsafe_code, unreachable_pub))]
#[ink::contract]
pub mod slotpay_channels {
    use crate::host::InkHost;
    use ink::storage::Mapping;
    use interface::events::{
        Closed, ExpiredClaimed, Extended, Opened, PaymentDeferred, RotationAnnounced, Settled,
        ToppedUp, Withdrawn,
    };
    pub use interface::Error;
    pub use protocol::{Authority, Channel, ChannelId, Domain, SignedReceipt};

    /// What a message returns: its value, or the contract's [`Error`] (the call reverts).
    pub type Result<T> = core::result::Result<T, Error>;

    /// A [`Channel`] in storage: the same bytes, and the same type in the metadata. ink!
    /// needs a `StorageLayout` for a mapping's values, which this crate cannot implement for
    /// the protocol's type (orphan rule), hence the wrapper.
    #[derive(scale::Encode, scale::Decode)]
    pub struct Stored(Channel);

    #[cfg(feature = "std")]
    impl scale_info::TypeInfo for Stored {
        type Identity = Channel;

        fn type_info() -> scale_info::Type {
            <Channel as scale_info::TypeInfo>::type_info()
        }
    }

    // A channel is one SCALE-encoded value: lay it out as a single leaf.
    #[cfg(feature = "std")]
    impl ink::storage::traits::StorageLayout for Stored {
        fn layout(key: &ink::primitives::Key) -> ink::metadata::layout::Layout {
            use ink::metadata::layout::{Layout, LayoutKey, LeafLayout};
            Layout::Leaf(LeafLayout::from_key::<Channel>(LayoutKey::from(key)))
        }
    }

    /// The contract's storage: every open channel, and what the contract owes.
    #[ink(storage)]
    pub struct SlotpayChannels {
        /// The open channels by id; a closed or claimed channel's entry is removed.
        channels: Mapping<ChannelId, Stored>,
        /// Payments the chain refused, by recipient: theirs to withdraw.
        owed: Mapping<AccountId, Balance>,
        /// Only grows: channel ids are never reused, so old receipts never revive.
        next_id: u64,
        /// Bound into every receipt. ink! cannot read it on chain, so the deployer passes
        /// it and the AS and clients check it against the chain they talk to.
        genesis_hash: [u8; 32],
    }

    fn raw(account: &AccountId) -> [u8; 32] {
        *AsRef::<[u8; 32]>::as_ref(account)
    }

    // Every `&mut self` message below carries `#[allow(clippy::needless_pass_by_ref_mut)]`
    // for ink!'s generated code, not for the message: ink! copies a message's `allow`s onto
    // the `CallBuilder` method it generates for it (a caller's builder of the call), which
    // takes `&mut self` like the message but only reads the contract's address.
    impl SlotpayChannels {
        /// A contract for the chain whose genesis block hash is `genesis_hash`.
        #[ink(constructor)]
        pub fn new(genesis_hash: [u8; 32]) -> Self {
            Self {
                channels: Mapping::default(),
                owed: Mapping::default(),
                next_id: 0,
                genesis_hash,
            }
        }

        /// Opens a channel with the transferred value as deposit; returns its id.
        /// `notice`: blocks from a rotation's announcement to its effect.
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message, payable)]
        pub fn open(
            &mut self,
            payee: AccountId,
            authority: Authority,
            expires_at: BlockNumber,
            notice: BlockNumber,
        ) -> Result<ChannelId> {
            let state = Channel::open(
                raw(&self.env().caller()),
                raw(&payee),
                authority,
                self.env().transferred_value(),
                expires_at,
                notice,
                self.env().block_number(),
            )?;
            let channel = ChannelId(self.next_id);
            self.next_id = self
                .next_id
                .checked_add(1)
                .ok_or(Error::ChannelIdsExhausted)?;
            self.channels.insert(channel, &Stored(state));
            self.env().emit_event(Opened {
                channel,
                payer: state.payer,
                payee: state.payee,
                authority,
                deposit: state.deposit,
                expires_at,
                notice,
            });
            Ok(channel)
        }

        /// Adds the transferred value to an open, unexpired channel's deposit (payer only).
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message, payable)]
        pub fn top_up(&mut self, channel: ChannelId) -> Result<()> {
            let mut state = self.payers(channel)?;
            let deposit =
                state.top_up(self.env().transferred_value(), self.env().block_number())?;
            self.channels.insert(channel, &Stored(state));
            self.env().emit_event(ToppedUp { channel, deposit });
            Ok(())
        }

        /// Moves a channel's expiry later (payer only). Works on an expired, unclaimed
        /// channel too: the payer may revive it instead of claiming.
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn extend(&mut self, channel: ChannelId, expires_at: BlockNumber) -> Result<()> {
            let mut state = self.payers(channel)?;
            state.extend(expires_at, self.env().block_number())?;
            self.channels.insert(channel, &Stored(state));
            self.env().emit_event(Extended {
                channel,
                expires_at,
            });
            Ok(())
        }

        /// Announces `authority` to take over the channel after its notice period (payer
        /// only); replaces a rotation still pending. Returns the block it takes effect at.
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn rotate(&mut self, channel: ChannelId, authority: Authority) -> Result<BlockNumber> {
            let mut state = self.payers(channel)?;
            let rotation = state.rotate(authority, self.env().block_number())?;
            self.channels.insert(channel, &Stored(state));
            self.env().emit_event(RotationAnnounced {
                channel,
                authority,
                // The epoch its receipts will carry: rotate() brought any due rotation
                // into force first, so this is one above the epoch now in force.
                epoch: state.epoch.saturating_add(1),
                effective_at: rotation.effective_at,
            });
            Ok(rotation.effective_at)
        }

        /// Pays the payee what `receipt` claims above what was settled, on the channel it
        /// names; the channel stays open (payee only). Returns what was paid.
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn settle(&mut self, receipt: SignedReceipt) -> Result<Balance> {
            let channel = receipt.receipt.channel;
            let mut state = self.payees(channel)?;
            // The cheap rules first: no signature recovery for a claim they refuse.
            let settlement = state.settlement(&receipt.receipt, self.env().block_number())?;
            self.authorize(&state, receipt)?;
            state.apply(settlement);
            self.channels.insert(channel, &Stored(state));
            self.env().emit_event(Settled {
                channel,
                epoch: state.epoch,
                settled: settlement.settled,
                paid: settlement.paid,
            });
            self.pay(state.payee, settlement.paid);
            Ok(settlement.paid)
        }

        /// Closes a channel (payee only): pays the payee what `receipt` claims above what
        /// was settled, the payer the rest. Without a receipt, closes at what was settled.
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn close(&mut self, channel: ChannelId, receipt: Option<SignedReceipt>) -> Result<()> {
            let mut state = self.payees(channel)?;
            if receipt
                .as_ref()
                .is_some_and(|r| r.receipt.channel != channel)
            {
                return Err(Error::WrongChannel);
            }
            let payout = state.payout(
                receipt.as_ref().map(|r| &r.receipt),
                self.env().block_number(),
            )?;
            if let Some(receipt) = receipt {
                self.authorize(&state, receipt)?;
            }
            self.channels.remove(channel);
            self.env().emit_event(Closed {
                channel,
                paid: payout.paid,
                refunded: payout.refunded,
            });
            // Two independent payments: a refused refund never holds up the payee's.
            self.pay(state.payee, payout.paid);
            self.pay(state.payer, payout.refunded);
            Ok(())
        }

        /// Gives what is left of an expired channel back to the payer (payer only).
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn claim_expired(&mut self, channel: ChannelId) -> Result<()> {
            let state = self.payers(channel)?;
            let refunded = state.expired_refund(self.env().block_number())?;
            self.channels.remove(channel);
            self.env().emit_event(ExpiredClaimed { channel, refunded });
            self.pay(state.payer, refunded);
            Ok(())
        }

        /// Pays the caller what the contract owes it (payments the chain refused earlier).
        #[allow(clippy::needless_pass_by_ref_mut)] // ink!'s CallBuilder copy, see above
        #[ink(message)]
        pub fn withdraw(&mut self) -> Result<Balance> {
            let caller = self.env().caller();
            let amount = self.owed.get(caller).ok_or(Error::NothingToWithdraw)?;
            // A balance transfer runs no code, so nothing can re-enter before the entry is
            // removed; transferring first leaves the debt untouched if the chain refuses.
            self.env()
                .transfer(caller, amount)
                .map_err(|_| Error::WithdrawFailed)?;
            self.owed.remove(caller);
            self.env().emit_event(Withdrawn {
                account: raw(&caller),
                amount,
            });
            Ok(amount)
        }

        /// The open channel with this id as it stands at the current block (a rotation
        /// whose block has come is shown in force), if any.
        #[ink(message)]
        pub fn channel(&self, channel: ChannelId) -> Option<Channel> {
            self.channels
                .get(channel)
                .map(|Stored(state)| state.at(self.env().block_number()))
        }

        /// What the contract owes `account`.
        #[ink(message)]
        pub fn owed(&self, account: AccountId) -> Balance {
            self.owed.get(account).unwrap_or_default()
        }

        /// What every receipt for this contract is bound to.
        #[ink(message)]
        pub fn domain(&self) -> Domain {
            Domain {
                genesis_hash: self.genesis_hash,
                contract: raw(&self.env().account_id()),
            }
        }

        /// The id the next `open` will assign.
        #[ink(message)]
        pub fn next_channel_id(&self) -> ChannelId {
            ChannelId(self.next_id)
        }

        fn load(&self, channel: ChannelId) -> Result<Channel> {
            self.channels
                .get(channel)
                .map(|Stored(state)| state)
                .ok_or(Error::ChannelNotFound)
        }

        fn payers(&self, channel: ChannelId) -> Result<Channel> {
            let state = self.load(channel)?;
            if raw(&self.env().caller()) != state.payer {
                return Err(Error::NotPayer);
            }
            Ok(state)
        }

        fn payees(&self, channel: ChannelId) -> Result<Channel> {
            let state = self.load(channel)?;
            if raw(&self.env().caller()) != state.payee {
                return Err(Error::NotPayee);
            }
            Ok(state)
        }

        /// The receipt must be signed by the authority in force (`state` has been advanced
        /// by the channel rule that priced it).
        fn authorize(&self, state: &Channel, receipt: SignedReceipt) -> Result<()> {
            protocol::authorize::<InkHost, InkHost>(&state.authority, &self.domain(), receipt)?;
            Ok(())
        }

        /// Every payment out of the contract. If the chain refuses the transfer (say, less
        /// than the existential deposit to a reaped account), the amount is owed to
        /// `to` instead, for `withdraw`: the operation that pays never fails on it.
        fn pay(&mut self, to: [u8; 32], amount: Balance) {
            if amount == 0 {
                return;
            }
            let account = AccountId::from(to);
            if self.env().transfer(account, amount).is_ok() {
                return;
            }
            // Cannot saturate: everything owed is held by this contract.
            let owed = self.owed(account).saturating_add(amount);
            self.owed.insert(account, &owed);
            self.env().emit_event(PaymentDeferred {
                account: to,
                amount,
                owed,
            });
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::{test, DefaultEnvironment as Env};
        use interface::events::ContractEvent;
        use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
        use protocol::crypto::{EcdsaRecover, Hasher};
        use protocol::keys::{self, SecretKey};
        use protocol::{Member, MerkleTree, UNLIMITED};
        use protocol::{MembershipProof, Receipt, Rotation, Signature};

        const GENESIS: [u8; 32] = [7; 32];
        const START_BALANCE: Balance = 1_000_000_000;
        /// The off-chain engine refuses balances below its existential minimum (10^6), so
        /// the contract starts with exactly the minimum.
        const CONTRACT_FLOOR: Balance = 1_000_000;
        const EXPIRES: BlockNumber = 10;
        const NOTICE: BlockNumber = 3;

        fn secret(seed: u8) -> SecretKey {
            SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
        }

        struct World {
            contract: SlotpayChannels,
            id: AccountId,
            payer: AccountId,
            payee: AccountId,
            stranger: AccountId,
            /// Whether value moves between accounts (see [`unfunded_world`]).
            funded: bool,
        }

        fn world() -> World {
            let w = unfunded_world();
            test::set_account_balance::<Env>(w.id, CONTRACT_FLOOR);
            World { funded: true, ..w }
        }

        /// A contract account without a balance: the off-chain engine refuses every
        /// transfer out of it (its one way to make a transfer fail), as the chain refuses
        /// a payment below the existential deposit to a reaped account.
        fn unfunded_world() -> World {
            let accounts = test::default_accounts::<Env>();
            // The engine's default callee is one of the default accounts: give the
            // contract an account of its own.
            let id = AccountId::from([0xC0; 32]);
            test::set_callee::<Env>(id);
            for account in [accounts.alice, accounts.bob, accounts.charlie] {
                test::set_account_balance::<Env>(account, START_BALANCE);
            }
            World {
                contract: SlotpayChannels::new(GENESIS),
                id,
                payer: accounts.alice,
                payee: accounts.bob,
                stranger: accounts.charlie,
                funded: false,
            }
        }

        fn balance(account: AccountId) -> Balance {
            test::get_account_balance::<Env>(account).expect("account has a balance")
        }

        fn set_balance(account: AccountId, value: Balance) {
            test::set_account_balance::<Env>(account, value);
        }

        /// Every recorded event of type `E` (recognised by its signature topic, as
        /// off-chain code does), in order.
        fn events<E: ContractEvent>() -> Vec<E> {
            test::recorded_events()
                .filter(|e| e.topics.first().map(Vec::as_slice) == Some(&E::signature_topic()[..]))
                .map(|e| E::decode(&mut &e.data[..]).expect("decode event"))
                .collect()
        }

        impl World {
            /// Calls a payable message as the chain would: the value moves from the caller
            /// to the contract first, and back if the message fails.
            fn paying<T>(
                &mut self,
                caller: AccountId,
                value: Balance,
                call: impl FnOnce(&mut SlotpayChannels) -> Result<T>,
            ) -> Result<T> {
                test::set_caller::<Env>(caller);
                test::set_value_transferred::<Env>(value);
                let moves = self.funded;
                // Saturating: the overflow test moves more than u128 can hold in total;
                // the contract's own arithmetic is what it checks.
                if moves {
                    set_balance(caller, balance(caller) - value);
                    set_balance(self.id, balance(self.id).saturating_add(value));
                }
                let result = call(&mut self.contract);
                if moves && result.is_err() {
                    set_balance(caller, balance(caller) + value);
                    set_balance(self.id, balance(self.id).saturating_sub(value));
                }
                test::set_value_transferred::<Env>(0);
                result
            }

            /// Calls a message as `caller`.
            fn by<T>(
                &mut self,
                caller: AccountId,
                call: impl FnOnce(&mut SlotpayChannels) -> T,
            ) -> T {
                test::set_caller::<Env>(caller);
                call(&mut self.contract)
            }

            fn open(&mut self, authority: Authority, deposit: Balance) -> Result<ChannelId> {
                let (payer, payee) = (self.payer, self.payee);
                self.paying(payer, deposit, |c| {
                    c.open(payee, authority, EXPIRES, NOTICE)
                })
            }

            /// Settles `receipt` presented for `channel` (re-labelled if it names another:
            /// its signature then no longer covers it).
            fn settle(
                &mut self,
                channel: ChannelId,
                mut receipt: SignedReceipt,
            ) -> Result<Balance> {
                let payee = self.payee;
                receipt.receipt.channel = channel;
                self.by(payee, |c| c.settle(receipt))
            }

            fn close(&mut self, channel: ChannelId, claim: Option<SignedReceipt>) -> Result<()> {
                let payee = self.payee;
                self.by(payee, |c| c.close(channel, claim))
            }

            fn rotate(&mut self, channel: ChannelId, authority: Authority) -> Result<BlockNumber> {
                let payer = self.payer;
                self.by(payer, |c| c.rotate(channel, authority))
            }

            fn domain(&self) -> Domain {
                self.contract.domain()
            }

            /// A claim for `amount` in `epoch`, signed by `key`, without a proof.
            fn claim(
                &self,
                channel: ChannelId,
                epoch: u32,
                amount: Balance,
                key: &SecretKey,
            ) -> SignedReceipt {
                let receipt = Receipt {
                    channel,
                    epoch,
                    amount,
                };
                SignedReceipt::sign(receipt, &self.domain(), key, None)
            }

            fn state(&self, channel: ChannelId) -> Channel {
                self.contract.channel(channel).expect("an open channel")
            }
        }

        fn delegate(seed: u8) -> (SecretKey, Authority) {
            let sk = secret(seed);
            let authority = Authority::Delegate(keys::public_key(&sk));
            (sk, authority)
        }

        fn advance_to(block: BlockNumber) {
            while ink::env::block_number::<Env>() < block {
                test::advance_block::<Env>();
            }
        }

        #[ink::test]
        fn domain_binds_genesis_and_this_contract() {
            let w = world();
            assert_eq!(w.domain().genesis_hash, GENESIS);
            assert_eq!(w.domain().contract, raw(&w.id));
        }

        /// The interface's signature strings are what ink! hashes into each event's first
        /// topic: off-chain code recognises events by them.
        #[ink::test]
        fn event_signature_topics_are_the_interfaces() {
            fn check<E: ContractEvent + ink::env::Event>() {
                assert_eq!(
                    <E as ink::env::Event>::SIGNATURE_TOPIC,
                    Some(<E as ContractEvent>::signature_topic()),
                    "{}",
                    E::SIGNATURE
                );
            }
            check::<Opened>();
            check::<ToppedUp>();
            check::<Extended>();
            check::<RotationAnnounced>();
            check::<Settled>();
            check::<Closed>();
            check::<ExpiredClaimed>();
            check::<PaymentDeferred>();
            check::<Withdrawn>();
        }

        #[ink::test]
        fn open_stores_the_channel_and_assigns_growing_ids() {
            let mut w = world();
            let (_, authority) = delegate(1);
            let first = w.open(authority, 500).unwrap();
            let second = w.open(authority, 700).unwrap();
            assert_eq!((first, second), (ChannelId(0), ChannelId(1)));
            assert_eq!(
                w.contract.channel(first),
                Some(Channel {
                    payer: raw(&w.payer),
                    payee: raw(&w.payee),
                    authority,
                    epoch: 0,
                    deposit: 500,
                    settled: 0,
                    base: 0,
                    expires_at: EXPIRES,
                    notice: NOTICE,
                    rotation: None,
                })
            );
            assert_eq!(balance(w.id) - CONTRACT_FLOOR, 1200);
            assert_eq!(balance(w.payer), START_BALANCE - 1200);
            assert_eq!(w.contract.next_channel_id(), ChannelId(2));
            let opened = |channel, deposit| Opened {
                channel,
                payer: raw(&w.payer),
                payee: raw(&w.payee),
                authority,
                deposit,
                expires_at: EXPIRES,
                notice: NOTICE,
            };
            assert_eq!(
                events::<Opened>(),
                [opened(first, 500), opened(second, 700)]
            );
            // The channel id is an indexed topic, after the signature topic.
            let second_event = test::recorded_events().nth(1).expect("two events");
            assert_eq!(second_event.topics.len(), 2);
            assert_eq!(second_event.topics[1][..8], 1u64.to_le_bytes());
        }

        #[ink::test]
        fn open_rejects_bad_arguments() {
            let mut w = world();
            let (_, authority) = delegate(1);
            assert_eq!(w.open(authority, 0), Err(Error::ZeroDeposit));
            let (payer, payee, stranger) = (w.payer, w.payee, w.stranger);
            assert_eq!(
                w.paying(payer, 5, |c| c.open(payer, authority, 10, 1)),
                Err(Error::PayeeIsPayer)
            );
            advance_to(4);
            assert_eq!(
                w.paying(payer, 5, |c| c.open(payee, authority, 4, 1)),
                Err(Error::ExpiryNotInFuture)
            );
            assert_eq!(
                w.open(Authority::Account(raw(&stranger)), 5),
                Err(Error::AccountAuthorityNotPayer)
            );
            w.contract.next_id = u64::MAX;
            assert_eq!(w.open(authority, 5), Err(Error::ChannelIdsExhausted));
            assert_eq!(balance(w.payer), START_BALANCE);
            assert_eq!(test::recorded_events().count(), 0);
        }

        #[ink::test]
        fn settle_pays_above_what_was_settled_and_keeps_the_channel_open() {
            let mut w = world();
            let (sk, authority) = delegate(2);
            let channel = w.open(authority, 1000).unwrap();
            let first = w.claim(channel, 0, 300, &sk);
            assert_eq!(w.settle(channel, first.clone()), Ok(300));
            assert_eq!(balance(w.payee), START_BALANCE + 300);
            assert_eq!(balance(w.id), CONTRACT_FLOOR + 700);
            let state = w.state(channel);
            assert_eq!((state.settled, state.base, state.deposit), (300, 0, 1000));
            // The same receipt again, or a lower one, pays nothing.
            assert_eq!(w.settle(channel, first), Err(Error::NothingToSettle));
            let lower = w.claim(channel, 0, 250, &sk);
            assert_eq!(w.settle(channel, lower), Err(Error::NothingToSettle));
            // Receipts are cumulative: the next one pays the difference.
            let second = w.claim(channel, 0, 500, &sk);
            assert_eq!(w.settle(channel, second), Ok(200));
            assert_eq!(
                events::<Settled>(),
                [
                    Settled {
                        channel,
                        epoch: 0,
                        settled: 300,
                        paid: 300
                    },
                    Settled {
                        channel,
                        epoch: 0,
                        settled: 500,
                        paid: 200
                    }
                ]
            );
            // Closing without a receipt pays nothing more and refunds the rest.
            assert_eq!(w.close(channel, None), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 500);
            assert_eq!(balance(w.payer), START_BALANCE - 500);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
            assert_eq!(
                events::<Closed>(),
                [Closed {
                    channel,
                    paid: 0,
                    refunded: 500
                }]
            );
            assert!(events::<PaymentDeferred>().is_empty());
            assert_eq!(w.contract.owed(w.payee), 0);
        }

        #[ink::test]
        fn settle_refusals_change_nothing() {
            let mut w = world();
            let (sk, authority) = delegate(3);
            let channel = w.open(authority, 1000).unwrap();
            let good = w.claim(channel, 0, 100, &sk);
            let (payer, stranger) = (w.payer, w.stranger);
            for caller in [payer, stranger] {
                let claim = good.clone();
                assert_eq!(w.by(caller, |c| c.settle(claim)), Err(Error::NotPayee));
            }
            assert_eq!(
                w.settle(ChannelId(9), good.clone()),
                Err(Error::ChannelNotFound)
            );
            let above = w.claim(channel, 0, 1001, &sk);
            assert_eq!(w.settle(channel, above), Err(Error::AmountExceedsDeposit));
            let next_epoch = w.claim(channel, 1, 100, &sk);
            assert_eq!(w.settle(channel, next_epoch), Err(Error::WrongEpoch));
            let forged = w.claim(channel, 0, 100, &secret(4));
            assert_eq!(w.settle(channel, forged), Err(Error::NotDelegate));
            // The cheap rules run before signature recovery: a garbage signature on a
            // claim they refuse is reported as what they refuse.
            let garbage = SignedReceipt {
                signature: Signature([0xFF; 65]),
                ..w.claim(channel, 0, 2000, &sk)
            };
            assert_eq!(w.settle(channel, garbage), Err(Error::AmountExceedsDeposit));
            advance_to(EXPIRES);
            assert_eq!(w.settle(channel, good), Err(Error::ChannelExpired));
            assert_eq!(balance(w.payee), START_BALANCE);
            assert_eq!(w.state(channel).settled, 0);
            assert!(events::<Settled>().is_empty());
        }

        #[ink::test]
        fn close_with_a_claim_pays_above_what_was_settled() {
            let mut w = world();
            let (sk, authority) = delegate(5);
            let channel = w.open(authority, 1000).unwrap();
            let first = w.claim(channel, 0, 300, &sk);
            assert_eq!(w.settle(channel, first), Ok(300));
            let last = w.claim(channel, 0, 700, &sk);
            assert_eq!(w.close(channel, Some(last.clone())), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 700);
            assert_eq!(balance(w.payer), START_BALANCE - 700);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
            assert_eq!(w.contract.channel(channel), None);
            assert_eq!(
                events::<Closed>(),
                [Closed {
                    channel,
                    paid: 400,
                    refunded: 300
                }]
            );
            // Double close: the channel is gone.
            assert_eq!(w.close(channel, Some(last)), Err(Error::ChannelNotFound));
            assert_eq!(w.close(channel, None), Err(Error::ChannelNotFound));
        }

        #[ink::test]
        fn close_refusals_change_nothing() {
            let mut w = world();
            let (sk, authority) = delegate(6);
            let channel = w.open(authority, 1000).unwrap();
            let settled = w.claim(channel, 0, 400, &sk);
            assert_eq!(w.settle(channel, settled), Ok(400));
            let (payer, stranger) = (w.payer, w.stranger);
            for caller in [payer, stranger] {
                assert_eq!(
                    w.by(caller, |c| c.close(channel, None)),
                    Err(Error::NotPayee)
                );
            }
            let below = w.claim(channel, 0, 399, &sk);
            assert_eq!(w.close(channel, Some(below)), Err(Error::BelowSettled));
            let above = w.claim(channel, 0, 1001, &sk);
            assert_eq!(
                w.close(channel, Some(above)),
                Err(Error::AmountExceedsDeposit)
            );
            let next_epoch = w.claim(channel, 1, 500, &sk);
            assert_eq!(w.close(channel, Some(next_epoch)), Err(Error::WrongEpoch));
            let forged = w.claim(channel, 0, 500, &secret(4));
            assert_eq!(w.close(channel, Some(forged)), Err(Error::NotDelegate));
            assert_eq!(balance(w.payee), START_BALANCE + 400);
            assert_eq!(w.state(channel).settled, 400);
            // A claim at exactly what was settled closes, paying nothing more.
            let same = w.claim(channel, 0, 400, &sk);
            assert_eq!(w.close(channel, Some(same)), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 400);
            assert_eq!(balance(w.payer), START_BALANCE - 400);
        }

        #[ink::test]
        fn expired_channels_cannot_be_closed_only_claimed_by_the_payer() {
            let mut w = world();
            let (sk, authority) = delegate(11);
            let channel = w.open(authority, 1000).unwrap();
            let part = w.claim(channel, 0, 100, &sk);
            assert_eq!(w.settle(channel, part), Ok(100));
            let more = w.claim(channel, 0, 200, &sk);
            let (payer, payee, stranger) = (w.payer, w.payee, w.stranger);
            assert_eq!(
                w.by(payer, |c| c.claim_expired(channel)),
                Err(Error::NotExpired)
            );
            advance_to(EXPIRES);
            assert_eq!(w.close(channel, Some(more)), Err(Error::ChannelExpired));
            assert_eq!(w.close(channel, None), Err(Error::ChannelExpired));
            for caller in [stranger, payee] {
                assert_eq!(
                    w.by(caller, |c| c.claim_expired(channel)),
                    Err(Error::NotPayer)
                );
            }
            assert_eq!(w.by(payer, |c| c.claim_expired(channel)), Ok(()));
            // The payer gets the deposit less what was settled.
            assert_eq!(balance(w.payer), START_BALANCE - 100);
            assert_eq!(balance(w.payee), START_BALANCE + 100);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
            assert_eq!(
                w.by(payer, |c| c.claim_expired(channel)),
                Err(Error::ChannelNotFound)
            );
            assert_eq!(
                events::<ExpiredClaimed>(),
                [ExpiredClaimed {
                    channel,
                    refunded: 900
                }]
            );
        }

        #[ink::test]
        fn rotation_hands_over_at_the_effective_block() {
            let mut w = world();
            let (old, old_authority) = delegate(20);
            let (new, new_authority) = delegate(21);
            let channel = w.open(old_authority, 1000).unwrap();
            advance_to(1);
            let effective = w.rotate(channel, new_authority).unwrap();
            assert_eq!(effective, 1 + NOTICE);
            assert_eq!(
                events::<RotationAnnounced>(),
                [RotationAnnounced {
                    channel,
                    authority: new_authority,
                    epoch: 1,
                    effective_at: effective
                }]
            );
            let pending = w.state(channel);
            assert_eq!((pending.authority, pending.epoch), (old_authority, 0));
            assert_eq!(
                pending.rotation,
                Some(Rotation {
                    authority: new_authority,
                    effective_at: effective
                })
            );
            // During the notice, the old key's receipts settle as before; the new key's
            // do not count yet.
            let early = w.claim(channel, 1, 100, &new);
            assert_eq!(w.settle(channel, early), Err(Error::WrongEpoch));
            let old_300 = w.claim(channel, 0, 300, &old);
            assert_eq!(w.settle(channel, old_300), Ok(300));
            advance_to(effective - 1);
            let old_400 = w.claim(channel, 0, 400, &old);
            assert_eq!(w.settle(channel, old_400), Ok(100));
            // From the effective block on, the channel reads (and acts) as rotated,
            // before any message writes it.
            advance_to(effective);
            let rotated = w.state(channel);
            assert_eq!(
                (
                    rotated.authority,
                    rotated.epoch,
                    rotated.base,
                    rotated.settled,
                    rotated.rotation
                ),
                (new_authority, 1, 400, 400, None)
            );
            let old_500 = w.claim(channel, 0, 500, &old);
            assert_eq!(w.settle(channel, old_500), Err(Error::WrongEpoch));
            let old_in_new_epoch = w.claim(channel, 1, 100, &old);
            assert_eq!(w.settle(channel, old_in_new_epoch), Err(Error::NotDelegate));
            // The new key counts from zero above what was settled when its epoch began.
            let new_100 = w.claim(channel, 1, 100, &new);
            assert_eq!(w.settle(channel, new_100), Ok(100));
            assert_eq!(w.state(channel).settled, 500);
            let too_much = w.claim(channel, 1, 601, &new);
            assert_eq!(
                w.settle(channel, too_much),
                Err(Error::AmountExceedsDeposit)
            );
            let new_250 = w.claim(channel, 1, 250, &new);
            assert_eq!(w.close(channel, Some(new_250)), Ok(()));
            assert_eq!(
                events::<Closed>(),
                [Closed {
                    channel,
                    paid: 150,
                    refunded: 350
                }]
            );
            assert_eq!(balance(w.payee), START_BALANCE + 650);
            assert_eq!(balance(w.payer), START_BALANCE - 650);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
        }

        #[ink::test]
        fn a_new_rotation_replaces_the_pending_one_with_a_fresh_notice() {
            let mut w = world();
            let (old, old_authority) = delegate(22);
            let (first, first_authority) = delegate(23);
            let (second, second_authority) = delegate(24);
            let channel = w.open(old_authority, 1000).unwrap();
            advance_to(1);
            assert_eq!(w.rotate(channel, first_authority), Ok(1 + NOTICE));
            advance_to(2);
            assert_eq!(w.rotate(channel, second_authority), Ok(2 + NOTICE));
            // The first announced key never comes into force.
            advance_to(1 + NOTICE);
            assert_eq!(w.state(channel).epoch, 0);
            let by_first = w.claim(channel, 1, 100, &first);
            assert_eq!(w.settle(channel, by_first), Err(Error::WrongEpoch));
            let by_old = w.claim(channel, 0, 100, &old);
            assert_eq!(w.settle(channel, by_old), Ok(100));
            advance_to(2 + NOTICE);
            let by_first = w.claim(channel, 1, 100, &first);
            assert_eq!(w.settle(channel, by_first), Err(Error::NotDelegate));
            let by_second = w.claim(channel, 1, 100, &second);
            assert_eq!(w.settle(channel, by_second), Ok(100));
            let state = w.state(channel);
            assert_eq!(
                (state.authority, state.epoch, state.settled),
                (second_authority, 1, 200)
            );
            assert_eq!(
                events::<RotationAnnounced>()
                    .iter()
                    .map(|e| (e.epoch, e.effective_at))
                    .collect::<Vec<_>>(),
                [(1, 1 + NOTICE), (1, 2 + NOTICE)]
            );
        }

        #[ink::test]
        fn rotating_to_revoked_refuses_every_receipt() {
            let mut w = world();
            let (sk, authority) = delegate(25);
            let channel = w.open(authority, 1000).unwrap();
            let settled = w.claim(channel, 0, 300, &sk);
            assert_eq!(w.settle(channel, settled), Ok(300));
            let effective = w.rotate(channel, Authority::Revoked).unwrap();
            advance_to(effective);
            assert_eq!(w.state(channel).authority, Authority::Revoked);
            let old_epoch = w.claim(channel, 0, 400, &sk);
            assert_eq!(w.settle(channel, old_epoch), Err(Error::WrongEpoch));
            let new_epoch = w.claim(channel, 1, 100, &sk);
            assert_eq!(w.settle(channel, new_epoch.clone()), Err(Error::Revoked));
            assert_eq!(w.close(channel, Some(new_epoch)), Err(Error::Revoked));
            // What was settled stays paid; the payee can still close at it.
            assert_eq!(w.close(channel, None), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 300);
            assert_eq!(balance(w.payer), START_BALANCE - 300);
        }

        #[ink::test]
        fn rotate_is_payer_only_and_before_expiry() {
            let mut w = world();
            let (_, authority) = delegate(26);
            let (_, next) = delegate(27);
            let channel = w.open(authority, 1000).unwrap();
            let (payee, stranger) = (w.payee, w.stranger);
            for caller in [payee, stranger] {
                assert_eq!(
                    w.by(caller, |c| c.rotate(channel, next)),
                    Err(Error::NotPayer)
                );
            }
            assert_eq!(w.rotate(ChannelId(7), next), Err(Error::ChannelNotFound));
            assert_eq!(
                w.rotate(channel, Authority::Account(raw(&stranger))),
                Err(Error::AccountAuthorityNotPayer)
            );
            assert_eq!(w.state(channel).rotation, None);
            let own = Authority::Account(raw(&w.payer));
            assert_eq!(w.rotate(channel, own), Ok(NOTICE));
            advance_to(EXPIRES);
            assert_eq!(w.rotate(channel, next), Err(Error::ChannelExpired));
            assert_eq!(events::<RotationAnnounced>().len(), 1);
        }

        fn group(caps: &[Balance]) -> (Vec<SecretKey>, Vec<Member>, MerkleTree) {
            let secrets: Vec<SecretKey> = (1..=caps.len() as u8)
                .map(|s| secret(s.wrapping_mul(7)))
                .collect();
            let members: Vec<Member> = secrets
                .iter()
                .zip(caps)
                .map(|(sk, &cap)| Member {
                    key: keys::public_key(sk),
                    cap,
                })
                .collect();
            let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
            (secrets, members, tree)
        }

        #[ink::test]
        fn group_members_prove_membership_with_their_committed_cap() {
            let mut w = world();
            let (secrets, _, tree) = group(&[100, 200, 300, 400, UNLIMITED]);
            let channel = w.open(Authority::Group(tree.root()), 1000).unwrap();
            let proof = tree.proof(2).unwrap();
            let with = |claim: SignedReceipt, proof: Option<MembershipProof>| SignedReceipt {
                proof,
                ..claim
            };
            let signed = w.claim(channel, 0, 300, &secrets[2]);
            assert_eq!(w.settle(channel, signed.clone()), Err(Error::MissingProof));
            // Another member's proof, or this member's with a larger cap than the payer
            // committed, proves nothing.
            let others = with(signed.clone(), Some(tree.proof(1).unwrap()));
            assert_eq!(w.settle(channel, others), Err(Error::NotMember));
            for cap in [301, UNLIMITED, 299] {
                let inflated = MembershipProof {
                    cap,
                    ..proof.clone()
                };
                let claim = with(signed.clone(), Some(inflated));
                assert_eq!(w.settle(channel, claim), Err(Error::NotMember), "cap {cap}");
            }
            let outsider = with(w.claim(channel, 0, 300, &secret(200)), Some(proof.clone()));
            assert_eq!(w.settle(channel, outsider), Err(Error::NotMember));
            let mut stray = proof.clone();
            stray.left_siblings |= 1 << 20;
            assert_eq!(
                w.settle(channel, with(signed.clone(), Some(stray))),
                Err(Error::NonCanonicalProof)
            );
            let long = MembershipProof {
                cap: 300,
                left_siblings: 0,
                siblings: vec![[0u8; 32]; 33],
            };
            assert_eq!(
                w.settle(channel, with(signed.clone(), Some(long))),
                Err(Error::ProofTooLong)
            );
            assert_eq!(w.settle(channel, with(signed, Some(proof))), Ok(300));
            // The contract checks membership only: a member's cap is the AS's to enforce
            // on what it sells, so a receipt above it still settles.
            let above_cap = with(
                w.claim(channel, 0, 450, &secrets[0]),
                Some(tree.proof(0).unwrap()),
            );
            assert_eq!(w.settle(channel, above_cap), Ok(150));
            assert_eq!(balance(w.payee), START_BALANCE + 450);
        }

        #[ink::test]
        fn a_member_is_removed_by_rotating_to_a_new_root() {
            let mut w = world();
            let (secrets, members, tree) = group(&[500, 500, 500]);
            let smaller =
                MerkleTree::build::<SoftHasher>(protocol::Substrate, &[members[0], members[2]])
                    .unwrap();
            let channel = w.open(Authority::Group(tree.root()), 1000).unwrap();
            let effective = w.rotate(channel, Authority::Group(smaller.root())).unwrap();
            // Until the effective block, the removed member still pays.
            let mut by_removed = w.claim(channel, 0, 100, &secrets[1]);
            by_removed.proof = Some(tree.proof(1).unwrap());
            assert_eq!(w.settle(channel, by_removed), Ok(100));
            advance_to(effective);
            let mut by_removed = w.claim(channel, 1, 100, &secrets[1]);
            by_removed.proof = Some(tree.proof(1).unwrap());
            assert_eq!(w.settle(channel, by_removed), Err(Error::NotMember));
            let mut by_kept = w.claim(channel, 1, 100, &secrets[2]);
            by_kept.proof = Some(smaller.proof(1).unwrap());
            assert_eq!(w.settle(channel, by_kept), Ok(100));
            assert_eq!(w.state(channel).settled, 200);
        }

        #[ink::test]
        fn the_payers_own_account_key() {
            let mut w = world();
            let sk = secret(3);
            let account = SoftHasher::blake2_256(&keys::public_key(&sk).0);
            w.payer = AccountId::from(account);
            set_balance(w.payer, START_BALANCE);
            let channel = w.open(Authority::Account(account), 1000).unwrap();
            let foreign = w.claim(channel, 0, 400, &secret(4));
            assert_eq!(w.close(channel, Some(foreign)), Err(Error::NotPayerAccount));
            let own = w.claim(channel, 0, 400, &sk);
            assert_eq!(w.close(channel, Some(own)), Ok(()));
            assert_eq!(balance(w.payer), START_BALANCE - 400);
            assert_eq!(balance(w.payee), START_BALANCE + 400);
        }

        #[ink::test]
        fn receipts_for_another_channel_contract_chain_or_epoch_are_rejected() {
            let mut w = world();
            let (sk, authority) = delegate(7);
            let a = w.open(authority, 1000).unwrap();
            let b = w.open(authority, 1000).unwrap();
            let for_a = w.claim(a, 0, 100, &sk);
            assert_eq!(w.settle(b, for_a.clone()), Err(Error::NotDelegate));
            let signed_for = |domain: Domain, epoch| SignedReceipt {
                signature: Receipt {
                    channel: b,
                    epoch,
                    amount: 100,
                }
                .sign(&domain, &sk),
                ..for_a.clone()
            };
            let other_contract = Domain {
                contract: [0xEE; 32],
                ..w.domain()
            };
            assert_eq!(
                w.settle(b, signed_for(other_contract, 0)),
                Err(Error::NotDelegate)
            );
            let other_chain = Domain {
                genesis_hash: [8; 32],
                ..w.domain()
            };
            assert_eq!(
                w.settle(b, signed_for(other_chain, 0)),
                Err(Error::NotDelegate)
            );
            // Signed for epoch 1, presented as epoch 0: the epoch is signed too.
            assert_eq!(
                w.settle(b, signed_for(w.domain(), 1)),
                Err(Error::NotDelegate)
            );
            // A receipt for a lower amount does not stretch to a higher one.
            let stretched = SignedReceipt {
                receipt: Receipt {
                    amount: 101,
                    ..for_a.receipt
                },
                ..for_a.clone()
            };
            assert_eq!(w.settle(a, stretched), Err(Error::NotDelegate));
            let own = signed_for(w.domain(), 0);
            assert_eq!(w.settle(a, for_a), Ok(100));
            assert_eq!(w.settle(b, own), Ok(100));
        }

        #[ink::test]
        fn forged_and_malleated_signatures_are_rejected() {
            let mut w = world();
            let (sk, authority) = delegate(8);
            let channel = w.open(authority, 1000).unwrap();
            let good = w.claim(channel, 0, 100, &sk);
            let with = |signature: Signature| SignedReceipt {
                signature,
                ..good.clone()
            };
            let sig = good.signature;
            assert_eq!(
                w.settle(channel, with(sig.malleate())),
                Err(Error::SignatureHighS)
            );
            let mut bad = sig;
            bad.0[64] = 2;
            assert_eq!(w.settle(channel, with(bad)), Err(Error::InvalidRecoveryId));
            let mut bad = sig;
            bad.0[..32].fill(0);
            assert_eq!(
                w.settle(channel, with(bad)),
                Err(Error::SignatureROutOfRange)
            );
            let mut bad = sig;
            bad.0[32..64].fill(0);
            assert_eq!(
                w.settle(channel, with(bad)),
                Err(Error::SignatureSOutOfRange)
            );
            let forged = w.claim(channel, 0, 100, &secret(9));
            assert_eq!(w.settle(channel, forged), Err(Error::NotDelegate));
            let proofed = SignedReceipt {
                proof: Some(MembershipProof::default()),
                ..good.clone()
            };
            assert_eq!(w.settle(channel, proofed), Err(Error::UnexpectedProof));
            // The legacy 27/28 recovery id is the same signature, accepted once.
            let mut legacy = sig;
            legacy.0[64] += 27;
            assert_eq!(w.settle(channel, with(legacy)), Ok(100));
            assert_eq!(w.settle(channel, good), Err(Error::NothingToSettle));
        }

        #[ink::test]
        fn a_signature_that_recovers_no_key_is_rejected() {
            let mut w = world();
            let (_, authority) = delegate(10);
            let channel = w.open(authority, 1000).unwrap();
            // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p), so no key
            // recovers, though r and s are in range and s is low.
            let mut sig = [0u8; 65];
            sig[31] = 5;
            sig[63] = 1;
            let claim = SignedReceipt {
                receipt: Receipt {
                    channel,
                    epoch: 0,
                    amount: 100,
                },
                signature: Signature(sig),
                proof: None,
            };
            assert_eq!(
                w.close(channel, Some(claim)),
                Err(Error::SignatureRecoveryFailed)
            );
        }

        #[ink::test]
        fn top_up_is_payer_only_and_grows_the_deposit() {
            let mut w = world();
            let (sk, authority) = delegate(12);
            let channel = w.open(authority, 1000).unwrap();
            let (payer, stranger, payee) = (w.payer, w.stranger, w.payee);
            for caller in [stranger, payee] {
                assert_eq!(
                    w.paying(caller, 50, |c| c.top_up(channel)),
                    Err(Error::NotPayer)
                );
            }
            assert_eq!(
                w.paying(payer, 0, |c| c.top_up(channel)),
                Err(Error::ZeroDeposit)
            );
            assert_eq!(
                w.paying(payer, 50, |c| c.top_up(ChannelId(99))),
                Err(Error::ChannelNotFound)
            );
            assert_eq!(w.paying(payer, 500, |c| c.top_up(channel)), Ok(()));
            assert_eq!(w.state(channel).deposit, 1500);
            assert_eq!(
                events::<ToppedUp>(),
                [ToppedUp {
                    channel,
                    deposit: 1500
                }]
            );
            let all_but_300 = w.claim(channel, 0, 1200, &sk);
            assert_eq!(w.close(channel, Some(all_but_300)), Ok(()));
            assert_eq!(balance(w.payer), START_BALANCE - 1200);
            assert_eq!(balance(stranger), START_BALANCE);
        }

        #[ink::test]
        fn top_up_rejects_expired_channels_and_overflow() {
            let mut w = world();
            let (_, authority) = delegate(13);
            let (payer, payee) = (w.payer, w.payee);
            // No balance bookkeeping here: no account can hold what it takes to overflow
            // a deposit, and open/top_up only look at the transferred value.
            test::set_caller::<Env>(payer);
            test::set_value_transferred::<Env>(Balance::MAX - 10);
            let channel = w.contract.open(payee, authority, 10, 0).unwrap();
            test::set_value_transferred::<Env>(11);
            assert_eq!(w.contract.top_up(channel), Err(Error::DepositOverflow));
            test::set_value_transferred::<Env>(0);
            advance_to(10);
            assert_eq!(
                w.paying(payer, 1, |c| c.top_up(channel)),
                Err(Error::ChannelExpired)
            );
        }

        #[ink::test]
        fn extend_is_payer_only_and_later_only() {
            let mut w = world();
            let (sk, authority) = delegate(14);
            let channel = w.open(authority, 1000).unwrap();
            let (payer, payee, stranger) = (w.payer, w.payee, w.stranger);
            for caller in [stranger, payee] {
                assert_eq!(
                    w.by(caller, |c| c.extend(channel, 20)),
                    Err(Error::NotPayer)
                );
            }
            assert_eq!(
                w.by(payer, |c| c.extend(channel, EXPIRES)),
                Err(Error::ExpiryNotLater)
            );
            assert_eq!(
                w.by(payer, |c| c.extend(channel, EXPIRES - 1)),
                Err(Error::ExpiryNotLater)
            );
            assert_eq!(
                w.by(payer, |c| c.extend(ChannelId(5), 30)),
                Err(Error::ChannelNotFound)
            );
            // An expired channel may be revived instead of claimed.
            advance_to(EXPIRES + 2);
            assert_eq!(w.by(payer, |c| c.extend(channel, 20)), Ok(()));
            assert_eq!(
                events::<Extended>(),
                [Extended {
                    channel,
                    expires_at: 20
                }]
            );
            assert_eq!(w.state(channel).expires_at, 20);
            let claim = w.claim(channel, 0, 10, &sk);
            assert_eq!(w.close(channel, Some(claim)), Ok(()));
        }

        /// A payment the chain refuses is owed, not a failure: the payee's payment and
        /// the operation go through, and each recipient withdraws its own later.
        #[ink::test]
        fn refused_payments_are_owed_and_withdrawn_later() {
            let mut w = unfunded_world();
            let (sk, authority) = delegate(30);
            let channel = w.open(authority, 1000).unwrap();
            let first = w.claim(channel, 0, 300, &sk);
            assert_eq!(w.settle(channel, first), Ok(300));
            assert_eq!(w.contract.owed(w.payee), 300);
            let last = w.claim(channel, 0, 700, &sk);
            assert_eq!(w.close(channel, Some(last)), Ok(()));
            assert_eq!(w.contract.channel(channel), None);
            assert_eq!(w.contract.owed(w.payee), 700);
            assert_eq!(w.contract.owed(w.payer), 300);
            let (payer, payee, stranger) = (w.payer, w.payee, w.stranger);
            assert_eq!(
                events::<PaymentDeferred>(),
                [
                    PaymentDeferred {
                        account: raw(&payee),
                        amount: 300,
                        owed: 300
                    },
                    PaymentDeferred {
                        account: raw(&payee),
                        amount: 400,
                        owed: 700
                    },
                    PaymentDeferred {
                        account: raw(&payer),
                        amount: 300,
                        owed: 300
                    }
                ]
            );
            assert_eq!(
                w.by(stranger, |c| c.withdraw()),
                Err(Error::NothingToWithdraw)
            );
            // Still refused: the debt stays.
            assert_eq!(w.by(payee, |c| c.withdraw()), Err(Error::WithdrawFailed));
            assert_eq!(w.contract.owed(payee), 700);
            // The contract's account can pay again (it holds the deposit).
            set_balance(w.id, CONTRACT_FLOOR + 1000);
            assert_eq!(w.by(payee, |c| c.withdraw()), Ok(700));
            assert_eq!(balance(payee), START_BALANCE + 700);
            assert_eq!(w.contract.owed(payee), 0);
            assert_eq!(w.by(payee, |c| c.withdraw()), Err(Error::NothingToWithdraw));
            assert_eq!(w.by(payer, |c| c.withdraw()), Ok(300));
            assert_eq!(balance(payer), START_BALANCE + 300);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
            assert_eq!(
                events::<Withdrawn>(),
                [
                    Withdrawn {
                        account: raw(&payee),
                        amount: 700
                    },
                    Withdrawn {
                        account: raw(&payer),
                        amount: 300
                    }
                ]
            );
        }

        #[ink::test]
        fn a_refused_refund_after_expiry_is_owed_to_the_payer() {
            let mut w = unfunded_world();
            let (_, authority) = delegate(31);
            let channel = w.open(authority, 1000).unwrap();
            // Nothing was settled: nothing is owed to the payee.
            advance_to(EXPIRES);
            let payer = w.payer;
            assert_eq!(w.by(payer, |c| c.claim_expired(channel)), Ok(()));
            assert_eq!(w.contract.channel(channel), None);
            assert_eq!(w.contract.owed(payer), 1000);
            assert_eq!(w.contract.owed(w.payee), 0);
            assert_eq!(
                events::<PaymentDeferred>(),
                [PaymentDeferred {
                    account: raw(&payer),
                    amount: 1000,
                    owed: 1000
                }]
            );
            assert_eq!(
                events::<ExpiredClaimed>(),
                [ExpiredClaimed {
                    channel,
                    refunded: 1000
                }]
            );
        }

        #[ink::test]
        fn withdraw_with_nothing_owed_is_refused() {
            let mut w = world();
            let payer = w.payer;
            assert_eq!(w.by(payer, |c| c.withdraw()), Err(Error::NothingToWithdraw));
            assert!(events::<Withdrawn>().is_empty());
        }

        /// The contract's verification path (ink!'s host functions) and the AS's
        /// (libsecp256k1 + software hashes) agree on accept/reject and on the key. (The
        /// off-chain engine runs libsecp256k1 for both: the differential test in
        /// tests/differential.rs runs the compiled contract on the runtime's own.)
        #[ink::test]
        fn host_and_off_chain_verification_agree() {
            for input in [&b""[..], b"slotpay", &[0xAB; 200]] {
                assert_eq!(InkHost::keccak256(input), SoftHasher::keccak256(input));
                assert_eq!(InkHost::blake2_256(input), SoftHasher::blake2_256(input));
            }
            let domain = Domain {
                genesis_hash: GENESIS,
                contract: [3; 32],
            };
            let mut state = 0x2545_F491_4F6C_DD1Du64;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let (mut accepted, mut rejected) = (0, 0);
            for i in 0..400u64 {
                let receipt = Receipt {
                    channel: ChannelId(i),
                    epoch: (next() % 3) as u32,
                    amount: Balance::from(next()),
                };
                let mut sig = receipt.sign(&domain, &secret((i % 200 + 1) as u8));
                match i % 5 {
                    0 => {}
                    1 => sig.0[(next() % 65) as usize] ^= 1 << (next() % 8),
                    2 => sig.0.iter_mut().for_each(|b| *b = next() as u8),
                    3 => sig = sig.malleate(),
                    _ => sig.0[64] = (next() % 32) as u8,
                }
                let host = receipt.recover_signer::<InkHost, InkHost>(&domain, &sig);
                let off_chain = receipt.recover_signer::<SoftHasher, Libsecp256k1>(&domain, &sig);
                assert_eq!(host, off_chain, "disagree on {sig:?}");
                // The raw host function too, for canonical signatures.
                if let Ok(canonical) = sig.canonical() {
                    let hash = receipt.signing_hash::<SoftHasher>(&domain);
                    assert_eq!(
                        InkHost::recover_compressed(&canonical.0, &hash),
                        Libsecp256k1::recover_compressed(&canonical.0, &hash)
                    );
                }
                if host.is_ok() {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
            }
            assert!(accepted > 50 && rejected > 50, "{accepted} / {rejected}");
        }
    }
}
