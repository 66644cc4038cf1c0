//! slotpay payment channels.
//!
//! One contract instance holds many channels. A payer opens a channel with a deposit for a
//! payee (the Authorization Server) and binds it to a signing authority: the payer's own
//! ECDSA account key, a delegated client key, or the Merkle root of a group of client keys.
//! The payee closes the channel with one transaction carrying the best (highest)
//! cumulative receipt; the contract pays the receipt's amount to the payee and the rest of
//! the deposit back to the payer. If the payee never closes, the payer takes the deposit
//! back once the channel expires.
//!
//! Every receipt rule (payload, canonical signature, Merkle membership) comes from the
//! `protocol` crate; this contract only plugs in the chain's host functions for hashing
//! and public-key recovery, so the AS and the contract accept exactly the same receipts.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

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

#[ink::contract]
pub mod slotpay_channels {
    use crate::host::InkHost;
    use ink::storage::Mapping;
    use protocol::{
        authorize, AuthError, Authority, ChannelId, Domain, MembershipProof, MerkleError, Receipt,
        ReceiptError, Signature, SignatureError,
    };

    /// One open channel.
    #[derive(Debug, Clone, PartialEq, Eq, scale::Encode, scale::Decode)]
    #[cfg_attr(feature = "std", derive(scale_info::TypeInfo))]
    pub struct Channel {
        pub payer: AccountId,
        pub payee: AccountId,
        pub authority: Authority,
        pub deposit: Balance,
        /// The first block at which the channel is expired: the payee may close before it,
        /// the payer may claim the deposit back from it on.
        pub expires_at: BlockNumber,
    }

    // A channel is stored SCALE-encoded as one value: lay it out as a single leaf.
    #[cfg(feature = "std")]
    impl ink::storage::traits::StorageLayout for Channel {
        fn layout(key: &ink::primitives::Key) -> ink::metadata::layout::Layout {
            ink::metadata::layout::Layout::Leaf(
                ink::metadata::layout::LeafLayout::from_key::<Self>(
                    ink::metadata::layout::LayoutKey::from(key),
                ),
            )
        }
    }

    /// Every way a message can fail; each failure has its own variant.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, scale::Encode, scale::Decode)]
    #[cfg_attr(feature = "std", derive(scale_info::TypeInfo))]
    pub enum Error {
        /// `open` or `top_up` was called without value.
        ZeroDeposit,
        /// `open` with an expiry that is not after the current block.
        ExpiryNotInFuture,
        /// `open` with `Authority::Account` naming another account than the caller.
        AccountAuthorityNotCaller,
        /// The payer cannot be its own payee.
        PayeeIsPayer,
        /// No open channel has this id.
        ChannelNotFound,
        /// Only the channel's payer may do this.
        NotPayer,
        /// Only the channel's payee may do this.
        NotPayee,
        /// `extend` must move the expiry later.
        ExpiryNotLater,
        /// The channel has expired: it can no longer be closed or topped up.
        ChannelExpired,
        /// `claim_expired` before the channel's expiry.
        NotExpired,
        /// The receipt's amount is larger than the deposit.
        AmountExceedsDeposit,
        /// The deposit would overflow.
        DepositOverflow,
        /// Channel ids are used up (2^64 channels).
        ChannelIdsExhausted,
        /// Signature recovery id is not 0, 1, 27 or 28.
        InvalidRecoveryId,
        /// Signature r is zero or not below the curve order.
        SignatureROutOfRange,
        /// Signature s is zero or not below the curve order.
        SignatureSOutOfRange,
        /// Signature s is in the upper half of the order (a malleated signature).
        SignatureHighS,
        /// No public key recovers from the signature.
        SignatureRecoveryFailed,
        /// The signer is not the payer's account key.
        NotPayerAccount,
        /// The signer is not the delegated key.
        NotDelegate,
        /// A group channel was closed without a membership proof.
        MissingProof,
        /// A membership proof was given for a channel that is not a group.
        UnexpectedProof,
        /// The membership proof is longer than the protocol's maximum depth.
        ProofTooLong,
        /// The membership proof's direction bits are not canonical.
        NonCanonicalProof,
        /// The signer is not a member of the channel's group.
        NotMember,
        /// A balance transfer out of the contract failed.
        TransferFailed,
    }

    impl From<AuthError> for Error {
        fn from(error: AuthError) -> Self {
            match error {
                AuthError::Receipt(ReceiptError::Signature(e)) => match e {
                    SignatureError::InvalidRecoveryId(_) => Error::InvalidRecoveryId,
                    SignatureError::ROutOfRange => Error::SignatureROutOfRange,
                    SignatureError::SOutOfRange => Error::SignatureSOutOfRange,
                    SignatureError::HighS => Error::SignatureHighS,
                    SignatureError::RecoveryFailed => Error::SignatureRecoveryFailed,
                },
                AuthError::NotPayerAccount => Error::NotPayerAccount,
                AuthError::NotDelegate => Error::NotDelegate,
                AuthError::MissingProof => Error::MissingProof,
                AuthError::UnexpectedProof => Error::UnexpectedProof,
                AuthError::NotMember(MerkleError::ProofTooLong { .. }) => Error::ProofTooLong,
                AuthError::NotMember(MerkleError::NonCanonicalPath) => Error::NonCanonicalProof,
                // The verifier yields only the three above; tree-building errors are
                // off-chain only and also mean "not a member" here.
                AuthError::NotMember(_) => Error::NotMember,
            }
        }
    }

    pub type Result<T> = core::result::Result<T, Error>;

    #[ink(event)]
    pub struct Opened {
        #[ink(topic)]
        pub channel: ChannelId,
        #[ink(topic)]
        pub payer: AccountId,
        #[ink(topic)]
        pub payee: AccountId,
        pub authority: Authority,
        pub deposit: Balance,
        pub expires_at: BlockNumber,
    }

    #[ink(event)]
    pub struct ToppedUp {
        #[ink(topic)]
        pub channel: ChannelId,
        pub added: Balance,
        pub deposit: Balance,
    }

    #[ink(event)]
    pub struct Extended {
        #[ink(topic)]
        pub channel: ChannelId,
        pub expires_at: BlockNumber,
    }

    #[ink(event)]
    pub struct Closed {
        #[ink(topic)]
        pub channel: ChannelId,
        pub paid: Balance,
        pub refunded: Balance,
    }

    #[ink(event)]
    pub struct ExpiredClaimed {
        #[ink(topic)]
        pub channel: ChannelId,
        pub refunded: Balance,
    }

    #[ink(storage)]
    pub struct SlotpayChannels {
        channels: Mapping<ChannelId, Channel>,
        /// Only grows: channel ids are never reused, so old receipts never revive.
        next_id: u64,
        /// Bound into every receipt. ink! cannot read it on chain, so the deployer passes
        /// it and the AS and clients check it against the chain they talk to.
        genesis_hash: [u8; 32],
    }

    impl SlotpayChannels {
        /// A contract for the chain whose genesis block hash is `genesis_hash`.
        #[ink(constructor)]
        pub fn new(genesis_hash: [u8; 32]) -> Self {
            Self {
                channels: Mapping::default(),
                next_id: 0,
                genesis_hash,
            }
        }

        /// Opens a channel with the transferred value as deposit; returns its id.
        #[ink(message, payable)]
        pub fn open(
            &mut self,
            payee: AccountId,
            authority: Authority,
            expires_at: BlockNumber,
        ) -> Result<ChannelId> {
            let payer = self.env().caller();
            let deposit = self.env().transferred_value();
            if deposit == 0 {
                return Err(Error::ZeroDeposit);
            }
            if payee == payer {
                return Err(Error::PayeeIsPayer);
            }
            if expires_at <= self.env().block_number() {
                return Err(Error::ExpiryNotInFuture);
            }
            if let Authority::Account(account) = authority {
                if account != *AsRef::<[u8; 32]>::as_ref(&payer) {
                    return Err(Error::AccountAuthorityNotCaller);
                }
            }
            let channel = ChannelId(self.next_id);
            self.next_id = self
                .next_id
                .checked_add(1)
                .ok_or(Error::ChannelIdsExhausted)?;
            self.channels.insert(
                channel,
                &Channel {
                    payer,
                    payee,
                    authority,
                    deposit,
                    expires_at,
                },
            );
            self.env().emit_event(Opened {
                channel,
                payer,
                payee,
                authority,
                deposit,
                expires_at,
            });
            Ok(channel)
        }

        /// Adds the transferred value to an open, unexpired channel's deposit.
        #[ink(message, payable)]
        pub fn top_up(&mut self, channel: ChannelId) -> Result<()> {
            let mut state = self.payers_channel(channel)?;
            let added = self.env().transferred_value();
            if added == 0 {
                return Err(Error::ZeroDeposit);
            }
            if self.is_expired(&state) {
                return Err(Error::ChannelExpired);
            }
            state.deposit = state
                .deposit
                .checked_add(added)
                .ok_or(Error::DepositOverflow)?;
            self.channels.insert(channel, &state);
            self.env().emit_event(ToppedUp {
                channel,
                added,
                deposit: state.deposit,
            });
            Ok(())
        }

        /// Moves a channel's expiry later. Works on an expired, unclaimed channel too: the
        /// payer may choose to revive it instead of claiming.
        #[ink(message)]
        pub fn extend(&mut self, channel: ChannelId, expires_at: BlockNumber) -> Result<()> {
            let mut state = self.payers_channel(channel)?;
            if expires_at <= state.expires_at {
                return Err(Error::ExpiryNotLater);
            }
            state.expires_at = expires_at;
            self.channels.insert(channel, &state);
            self.env().emit_event(Extended {
                channel,
                expires_at,
            });
            Ok(())
        }

        /// Closes a channel with the receipt for `amount`: pays `amount` to the payee and
        /// the rest of the deposit to the payer, in this one transaction. Payee only,
        /// before expiry. `membership` is the signer's proof for group channels.
        #[ink(message)]
        pub fn close(
            &mut self,
            channel: ChannelId,
            amount: Balance,
            signature: Signature,
            membership: Option<MembershipProof>,
        ) -> Result<()> {
            let state = self.channels.get(channel).ok_or(Error::ChannelNotFound)?;
            if self.env().caller() != state.payee {
                return Err(Error::NotPayee);
            }
            if self.is_expired(&state) {
                return Err(Error::ChannelExpired);
            }
            let refunded = state
                .deposit
                .checked_sub(amount)
                .ok_or(Error::AmountExceedsDeposit)?;
            let receipt = Receipt { channel, amount };
            authorize::<InkHost, InkHost>(
                &state.authority,
                &self.domain(),
                &receipt,
                &signature,
                membership.as_ref(),
            )?;
            self.channels.remove(channel);
            self.pay(state.payee, amount)?;
            self.pay(state.payer, refunded)?;
            self.env().emit_event(Closed {
                channel,
                paid: amount,
                refunded,
            });
            Ok(())
        }

        /// Gives the whole deposit back to the payer once the channel has expired.
        #[ink(message)]
        pub fn claim_expired(&mut self, channel: ChannelId) -> Result<()> {
            let state = self.payers_channel(channel)?;
            if !self.is_expired(&state) {
                return Err(Error::NotExpired);
            }
            self.channels.remove(channel);
            self.pay(state.payer, state.deposit)?;
            self.env().emit_event(ExpiredClaimed {
                channel,
                refunded: state.deposit,
            });
            Ok(())
        }

        /// The open channel with this id, if any.
        #[ink(message)]
        pub fn channel(&self, channel: ChannelId) -> Option<Channel> {
            self.channels.get(channel)
        }

        /// What every receipt for this contract is bound to.
        #[ink(message)]
        pub fn domain(&self) -> Domain {
            Domain {
                genesis_hash: self.genesis_hash,
                contract: *AsRef::<[u8; 32]>::as_ref(&self.env().account_id()),
            }
        }

        /// The id the next `open` will assign.
        #[ink(message)]
        pub fn next_channel_id(&self) -> ChannelId {
            ChannelId(self.next_id)
        }

        fn payers_channel(&self, channel: ChannelId) -> Result<Channel> {
            let state = self.channels.get(channel).ok_or(Error::ChannelNotFound)?;
            if self.env().caller() != state.payer {
                return Err(Error::NotPayer);
            }
            Ok(state)
        }

        fn is_expired(&self, state: &Channel) -> bool {
            self.env().block_number() >= state.expires_at
        }

        fn pay(&self, to: AccountId, amount: Balance) -> Result<()> {
            if amount == 0 {
                return Ok(());
            }
            self.env()
                .transfer(to, amount)
                .map_err(|_| Error::TransferFailed)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::{test, DefaultEnvironment as Env};
        use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
        use protocol::crypto::{EcdsaRecover, Hasher};
        use protocol::merkle::MerkleTree;
        use protocol::signature::keys::{self, SecretKey};
        use protocol::PublicKey;

        const GENESIS: [u8; 32] = [7; 32];
        const START_BALANCE: Balance = 1_000_000_000;
        /// The off-chain engine refuses balances below its existential minimum (10^6) and
        /// reaps accounts set to 0, so the contract starts with exactly the minimum.
        const CONTRACT_FLOOR: Balance = 1_000_000;

        fn secret(seed: u8) -> SecretKey {
            SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
        }

        struct World {
            contract: SlotpayChannels,
            id: AccountId,
            payer: AccountId,
            payee: AccountId,
            stranger: AccountId,
        }

        fn world() -> World {
            let accounts = test::default_accounts::<Env>();
            // The engine's default callee is one of the default accounts: give the
            // contract an account of its own.
            let id = AccountId::from([0xC0; 32]);
            test::set_callee::<Env>(id);
            for account in [accounts.alice, accounts.bob, accounts.charlie] {
                test::set_account_balance::<Env>(account, START_BALANCE);
            }
            test::set_account_balance::<Env>(id, CONTRACT_FLOOR);
            World {
                contract: SlotpayChannels::new(GENESIS),
                id,
                payer: accounts.alice,
                payee: accounts.bob,
                stranger: accounts.charlie,
            }
        }

        fn balance(account: AccountId) -> Balance {
            test::get_account_balance::<Env>(account).expect("account has a balance")
        }

        fn set_balance(account: AccountId, value: Balance) {
            test::set_account_balance::<Env>(account, value);
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
                // Saturating: the overflow test moves more than u128 can hold in total;
                // the contract's own arithmetic is what it checks.
                set_balance(caller, balance(caller) - value);
                set_balance(self.id, balance(self.id).saturating_add(value));
                let result = call(&mut self.contract);
                if result.is_err() {
                    set_balance(caller, balance(caller) + value);
                    set_balance(self.id, balance(self.id).saturating_sub(value));
                }
                test::set_value_transferred::<Env>(0);
                result
            }

            fn open(&mut self, authority: Authority, deposit: Balance) -> Result<ChannelId> {
                let (payer, payee) = (self.payer, self.payee);
                self.paying(payer, deposit, |c| c.open(payee, authority, 10))
            }

            fn close_as(
                &mut self,
                caller: AccountId,
                channel: ChannelId,
                amount: Balance,
                signature: Signature,
                proof: Option<MembershipProof>,
            ) -> Result<()> {
                test::set_caller::<Env>(caller);
                self.contract.close(channel, amount, signature, proof)
            }

            fn close(
                &mut self,
                channel: ChannelId,
                amount: Balance,
                signature: Signature,
                proof: Option<MembershipProof>,
            ) -> Result<()> {
                self.close_as(self.payee, channel, amount, signature, proof)
            }

            fn domain(&self) -> Domain {
                self.contract.domain()
            }

            fn sign(&self, channel: ChannelId, amount: Balance, key: &SecretKey) -> Signature {
                Receipt { channel, amount }.sign(&self.domain(), key)
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
            assert_eq!(w.domain().contract, *AsRef::<[u8; 32]>::as_ref(&w.id));
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
                    payer: w.payer,
                    payee: w.payee,
                    authority,
                    deposit: 500,
                    expires_at: 10
                })
            );
            assert_eq!(balance(w.id) - CONTRACT_FLOOR, 1200);
            assert_eq!(balance(w.payer), START_BALANCE - 1200);
            assert_eq!(test::recorded_events().count(), 2);
            assert_eq!(w.contract.next_channel_id(), ChannelId(2));
        }

        #[ink::test]
        fn open_rejects_bad_arguments() {
            let mut w = world();
            let (_, authority) = delegate(1);
            assert_eq!(w.open(authority, 0), Err(Error::ZeroDeposit));
            let (payer, payee, stranger) = (w.payer, w.payee, w.stranger);
            assert_eq!(
                w.paying(payer, 5, |c| c.open(payer, authority, 10)),
                Err(Error::PayeeIsPayer)
            );
            advance_to(4);
            assert_eq!(
                w.paying(payer, 5, |c| c.open(payee, authority, 4)),
                Err(Error::ExpiryNotInFuture)
            );
            assert_eq!(
                w.open(Authority::Account(*AsRef::<[u8; 32]>::as_ref(&stranger)), 5),
                Err(Error::AccountAuthorityNotCaller)
            );
            assert_eq!(balance(w.payer), START_BALANCE);
            assert_eq!(w.contract.next_channel_id(), ChannelId(0));
        }

        #[ink::test]
        fn close_with_a_delegate_receipt_pays_exactly_the_amount() {
            let mut w = world();
            let (sk, authority) = delegate(2);
            let channel = w.open(authority, 1000).unwrap();
            let sig = w.sign(channel, 300, &sk);
            assert_eq!(w.close(channel, 300, sig, None), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 300);
            assert_eq!(balance(w.payer), START_BALANCE - 300);
            assert_eq!(balance(w.id), CONTRACT_FLOOR);
            assert_eq!(w.contract.channel(channel), None);
            let closed = test::recorded_events().last().expect("an event");
            let event = <Closed as scale::Decode>::decode(&mut &closed.data[..]).unwrap();
            assert_eq!(
                (event.channel, event.paid, event.refunded),
                (channel, 300, 700)
            );
            // Double close: the channel is gone.
            assert_eq!(
                w.close(channel, 300, sig, None),
                Err(Error::ChannelNotFound)
            );
        }

        #[ink::test]
        fn close_with_the_payers_own_account_key() {
            let mut w = world();
            let sk = secret(3);
            let account = SoftHasher::blake2_256(&keys::public_key(&sk).0);
            w.payer = AccountId::from(account);
            set_balance(w.payer, START_BALANCE);
            let channel = w.open(Authority::Account(account), 1000).unwrap();
            let foreign = w.sign(channel, 400, &secret(4));
            assert_eq!(
                w.close(channel, 400, foreign, None),
                Err(Error::NotPayerAccount)
            );
            let sig = w.sign(channel, 400, &sk);
            assert_eq!(w.close(channel, 400, sig, None), Ok(()));
            assert_eq!(balance(w.payer), START_BALANCE - 400);
            assert_eq!(balance(w.payee), START_BALANCE + 400);
        }

        fn group(n: u8) -> (Vec<SecretKey>, MerkleTree) {
            let secrets: Vec<SecretKey> = (1..=n).map(|s| secret(s.wrapping_mul(7))).collect();
            let members: Vec<PublicKey> = secrets.iter().map(keys::public_key).collect();
            let tree = MerkleTree::build::<SoftHasher>(&members).unwrap();
            (secrets, tree)
        }

        #[ink::test]
        fn close_a_group_channel_with_the_latest_members_receipt() {
            let mut w = world();
            let (secrets, tree) = group(5);
            let channel = w.open(Authority::Group(tree.root()), 1000).unwrap();
            // Members 1, 4 and 2 each pay 100 on top of the running total; the last
            // receipt (300, by member 2) covers all three.
            let last = w.sign(channel, 300, &secrets[2]);
            let proof = tree.proof(2).unwrap();
            assert_eq!(w.close(channel, 300, last, None), Err(Error::MissingProof));
            assert_eq!(
                w.close(channel, 300, last, Some(tree.proof(1).unwrap())),
                Err(Error::NotMember)
            );
            let outsider = w.sign(channel, 300, &secret(200));
            assert_eq!(
                w.close(channel, 300, outsider, Some(proof.clone())),
                Err(Error::NotMember)
            );
            let mut stray = proof.clone();
            stray.left_siblings |= 1 << 20;
            assert_eq!(
                w.close(channel, 300, last, Some(stray)),
                Err(Error::NonCanonicalProof)
            );
            let long = MembershipProof {
                left_siblings: 0,
                siblings: vec![[0u8; 32]; 33],
            };
            assert_eq!(
                w.close(channel, 300, last, Some(long)),
                Err(Error::ProofTooLong)
            );
            assert_eq!(w.close(channel, 300, last, Some(proof)), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 300);
            assert_eq!(balance(w.payer), START_BALANCE - 300);
        }

        #[ink::test]
        fn close_is_payee_only() {
            let mut w = world();
            let (sk, authority) = delegate(5);
            let channel = w.open(authority, 1000).unwrap();
            let sig = w.sign(channel, 100, &sk);
            let (payer, stranger) = (w.payer, w.stranger);
            assert_eq!(
                w.close_as(payer, channel, 100, sig, None),
                Err(Error::NotPayee)
            );
            assert_eq!(
                w.close_as(stranger, channel, 100, sig, None),
                Err(Error::NotPayee)
            );
            assert!(w.contract.channel(channel).is_some());
        }

        #[ink::test]
        fn close_rejects_amount_above_deposit_even_if_signed() {
            let mut w = world();
            let (sk, authority) = delegate(6);
            let channel = w.open(authority, 1000).unwrap();
            let sig = w.sign(channel, 1001, &sk);
            assert_eq!(
                w.close(channel, 1001, sig, None),
                Err(Error::AmountExceedsDeposit)
            );
            let exact = w.sign(channel, 1000, &sk);
            assert_eq!(w.close(channel, 1000, exact, None), Ok(()));
            assert_eq!(balance(w.payee), START_BALANCE + 1000);
        }

        #[ink::test]
        fn receipts_for_another_channel_contract_or_chain_are_rejected() {
            let mut w = world();
            let (sk, authority) = delegate(7);
            let a = w.open(authority, 1000).unwrap();
            let b = w.open(authority, 1000).unwrap();
            let for_a = w.sign(a, 100, &sk);
            assert_eq!(w.close(b, 100, for_a, None), Err(Error::NotDelegate));
            let other_contract = Domain {
                contract: [0xEE; 32],
                ..w.domain()
            };
            let sig = Receipt {
                channel: b,
                amount: 100,
            }
            .sign(&other_contract, &sk);
            assert_eq!(w.close(b, 100, sig, None), Err(Error::NotDelegate));
            let other_chain = Domain {
                genesis_hash: [8; 32],
                ..w.domain()
            };
            let sig = Receipt {
                channel: b,
                amount: 100,
            }
            .sign(&other_chain, &sk);
            assert_eq!(w.close(b, 100, sig, None), Err(Error::NotDelegate));
            // A receipt for a lower amount does not stretch to a higher one.
            assert_eq!(w.close(a, 101, for_a, None), Err(Error::NotDelegate));
            assert_eq!(w.close(a, 100, for_a, None), Ok(()));
        }

        #[ink::test]
        fn forged_and_malleated_signatures_are_rejected() {
            let mut w = world();
            let (sk, authority) = delegate(8);
            let channel = w.open(authority, 1000).unwrap();
            let sig = w.sign(channel, 100, &sk);
            assert_eq!(
                w.close(channel, 100, sig.malleate(), None),
                Err(Error::SignatureHighS)
            );
            let mut bad = sig;
            bad.0[64] = 2;
            assert_eq!(
                w.close(channel, 100, bad, None),
                Err(Error::InvalidRecoveryId)
            );
            let mut bad = sig;
            bad.0[..32].fill(0);
            assert_eq!(
                w.close(channel, 100, bad, None),
                Err(Error::SignatureROutOfRange)
            );
            let mut bad = sig;
            bad.0[32..64].fill(0);
            assert_eq!(
                w.close(channel, 100, bad, None),
                Err(Error::SignatureSOutOfRange)
            );
            let forged = w.sign(channel, 100, &secret(9));
            assert_eq!(w.close(channel, 100, forged, None), Err(Error::NotDelegate));
            assert_eq!(
                w.close(channel, 100, sig, Some(MembershipProof::default())),
                Err(Error::UnexpectedProof)
            );
            // The legacy 27/28 recovery id is the same signature, accepted once.
            let mut legacy = sig;
            legacy.0[64] += 27;
            assert_eq!(w.close(channel, 100, legacy, None), Ok(()));
            assert_eq!(
                w.close(channel, 100, sig, None),
                Err(Error::ChannelNotFound)
            );
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
            assert_eq!(
                w.close(channel, 100, Signature(sig), None),
                Err(Error::SignatureRecoveryFailed)
            );
        }

        #[ink::test]
        fn expired_channels_cannot_be_closed_only_claimed_by_the_payer() {
            let mut w = world();
            let (sk, authority) = delegate(11);
            let channel = w.open(authority, 1000).unwrap();
            let sig = w.sign(channel, 100, &sk);
            test::set_caller::<Env>(w.payer);
            assert_eq!(w.contract.claim_expired(channel), Err(Error::NotExpired));
            advance_to(10);
            assert_eq!(w.close(channel, 100, sig, None), Err(Error::ChannelExpired));
            test::set_caller::<Env>(w.stranger);
            assert_eq!(w.contract.claim_expired(channel), Err(Error::NotPayer));
            test::set_caller::<Env>(w.payee);
            assert_eq!(w.contract.claim_expired(channel), Err(Error::NotPayer));
            test::set_caller::<Env>(w.payer);
            assert_eq!(w.contract.claim_expired(channel), Ok(()));
            assert_eq!(balance(w.payer), START_BALANCE);
            assert_eq!(balance(w.payee), START_BALANCE);
            assert_eq!(
                w.contract.claim_expired(channel),
                Err(Error::ChannelNotFound)
            );
            let claimed = test::recorded_events().last().expect("an event");
            let event = <ExpiredClaimed as scale::Decode>::decode(&mut &claimed.data[..]).unwrap();
            assert_eq!((event.channel, event.refunded), (channel, 1000));
        }

        #[ink::test]
        fn top_up_is_payer_only_and_grows_the_deposit() {
            let mut w = world();
            let (sk, authority) = delegate(12);
            let channel = w.open(authority, 1000).unwrap();
            let (payer, stranger, payee) = (w.payer, w.stranger, w.payee);
            assert_eq!(
                w.paying(stranger, 50, |c| c.top_up(channel)),
                Err(Error::NotPayer)
            );
            assert_eq!(
                w.paying(payee, 50, |c| c.top_up(channel)),
                Err(Error::NotPayer)
            );
            assert_eq!(
                w.paying(payer, 0, |c| c.top_up(channel)),
                Err(Error::ZeroDeposit)
            );
            assert_eq!(
                w.paying(payer, 50, |c| c.top_up(ChannelId(99))),
                Err(Error::ChannelNotFound)
            );
            assert_eq!(w.paying(payer, 500, |c| c.top_up(channel)), Ok(()));
            assert_eq!(w.contract.channel(channel).unwrap().deposit, 1500);
            let sig = w.sign(channel, 1200, &sk);
            assert_eq!(w.close(channel, 1200, sig, None), Ok(()));
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
            let channel = w.contract.open(payee, authority, 10).unwrap();
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
            test::set_caller::<Env>(w.stranger);
            assert_eq!(w.contract.extend(channel, 20), Err(Error::NotPayer));
            test::set_caller::<Env>(w.payee);
            assert_eq!(w.contract.extend(channel, 20), Err(Error::NotPayer));
            test::set_caller::<Env>(w.payer);
            assert_eq!(w.contract.extend(channel, 10), Err(Error::ExpiryNotLater));
            assert_eq!(w.contract.extend(channel, 9), Err(Error::ExpiryNotLater));
            assert_eq!(
                w.contract.extend(ChannelId(5), 30),
                Err(Error::ChannelNotFound)
            );
            assert_eq!(w.contract.extend(channel, 20), Ok(()));
            advance_to(15);
            // Past the original expiry, the extended channel still closes.
            let sig = w.sign(channel, 10, &sk);
            assert_eq!(w.close(channel, 10, sig, None), Ok(()));
        }

        /// The contract's verification path (ink!'s host functions) and the AS's
        /// (libsecp256k1 + software hashes) agree on accept/reject and on the key.
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
