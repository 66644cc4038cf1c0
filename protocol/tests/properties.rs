//! Property tests of the protocol's rules (proptest: random inputs, shrunk on failure).
use proptest::prelude::*;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{hotp, Digits, HmacSha256, HotpVerifier};
use protocol::merkle::MerkleTree;
use protocol::signature::keys::{self, SecretKey};
use protocol::{
    authorize, check_terms, AuthError, Authority, ChannelId, ChannelView, Domain, MembershipProof,
    PublicKey, Receipt, Tariff,
};
use std::collections::BTreeSet;

fn secret(seed: [u8; 32]) -> Option<SecretKey> {
    SecretKey::from_slice(&seed).ok()
}

fn key_strategy() -> impl Strategy<Value = PublicKey> {
    (prop_oneof![Just(2u8), Just(3u8)], any::<[u8; 32]>()).prop_map(|(prefix, x)| {
        let mut k = [0u8; 33];
        k[0] = prefix;
        k[1..].copy_from_slice(&x);
        PublicKey(k)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A receipt's signature verifies for its own chain, contract, channel and amount, and
    /// for nothing that differs in any one of them.
    #[test]
    fn a_receipt_verifies_only_for_its_own_domain_channel_and_amount(
        seed in any::<[u8; 32]>(),
        genesis in any::<[u8; 32]>(),
        contract in any::<[u8; 32]>(),
        channel in any::<u64>(),
        amount in any::<u128>(),
        field in 0usize..4,
        change in any::<[u8; 32]>(),
    ) {
        let Some(secret) = secret(seed) else { return Ok(()) };
        let domain = Domain { genesis_hash: genesis, contract };
        let receipt = Receipt { channel: ChannelId(channel), amount };
        let signature = receipt.sign(&domain, &secret);
        let authority = Authority::Delegate(keys::public_key(&secret));
        prop_assert_eq!(
            authorize::<SoftHasher, Libsecp256k1>(&authority, &domain, &receipt, &signature, None),
            Ok(keys::public_key(&secret))
        );
        let (mut other_domain, mut other_receipt) = (domain, receipt);
        let delta = u64::from_le_bytes(change[..8].try_into().unwrap_or_default()) | 1;
        match field {
            0 => other_domain.genesis_hash[change[0] as usize % 32] ^= change[1] | 1,
            1 => other_domain.contract[change[0] as usize % 32] ^= change[1] | 1,
            2 => other_receipt.channel = ChannelId(channel ^ delta),
            _ => other_receipt.amount = amount ^ u128::from(delta),
        }
        let result = authorize::<SoftHasher, Libsecp256k1>(
            &authority, &other_domain, &other_receipt, &signature, None,
        );
        prop_assert!(result.is_err(), "verified after changing field {}", field);
    }

    /// The AS's terms never let a receipt claim more than the deposit, and what it adds is
    /// exactly the slots' price: the payee can never be owed more than the deposit, and the
    /// payer + payee split of any accepted total is the deposit.
    #[test]
    fn accepted_receipts_stay_within_the_deposit_and_buy_whole_slots(
        deposit in 0u128..1_000_000_000,
        price in 0u128..1_000_000,
        total in 0u128..1_000_000_000,
        // Mostly near a valid amount (total + k * price, sometimes off by a little), so
        // acceptances are common and the boundaries are hit.
        k in 0u128..2_000,
        off in prop_oneof![4 => Just(0u128), 1 => 1u128..1_000],
        now in 0u32..100,
        expires_at in 0u32..200,
    ) {
        let amount = total + k * price + off;
        let channel = ChannelView {
            payee: [9; 32],
            authority: Authority::Delegate(PublicKey([2; 33])),
            deposit,
            expires_at,
        };
        let tariff = Tariff { price, expiry_margin: 5 };
        if let Ok(slots) = check_terms(&[9; 32], &tariff, &channel, now, total, amount) {
            prop_assert!(amount <= deposit);
            prop_assert!(amount > total);
            prop_assert_eq!(amount - total, u128::from(slots) * price);
            prop_assert!(slots >= 1);
            prop_assert_eq!((deposit - amount) + amount, deposit);
            prop_assert!(now + 5 < expires_at);
        }
    }

    /// Whatever order OTPs are presented in, replays included, no counter is accepted
    /// twice, and only counters the AS could have issued (within the window) are.
    #[test]
    fn hotp_never_accepts_a_counter_twice(
        window in 1u32..16,
        presented in proptest::collection::vec(0u64..48, 1..96),
    ) {
        let key = [0x33u8; 32];
        let digits = Digits::new(6).expect("6 digits");
        let mut verifier = HotpVerifier::<HmacSha256>::new(0, window, digits).expect("verifier");
        let mut accepted = BTreeSet::new();
        for counter in presented {
            let next = verifier.next_counter();
            let otp = hotp::<HmacSha256>(&key, counter, digits);
            if let Ok(c) = verifier.verify(&key, &otp) {
                prop_assert!(accepted.insert(c), "counter {} accepted twice", c);
                prop_assert!(c < next + u64::from(window));
            }
        }
    }

    /// A Merkle proof never verifies for a key outside the group: neither a member's proof
    /// nor one made up.
    #[test]
    fn merkle_proofs_never_verify_for_a_non_member(
        members in proptest::collection::btree_set(key_strategy(), 1..40),
        outsider in key_strategy(),
        left_siblings in any::<u32>(),
        siblings in proptest::collection::vec(any::<[u8; 32]>(), 0..40),
    ) {
        prop_assume!(!members.contains(&outsider));
        let members: Vec<PublicKey> = members.into_iter().collect();
        let tree = MerkleTree::build::<SoftHasher>(&members).expect("tree");
        let root = tree.root();
        for (i, member) in members.iter().enumerate() {
            let proof = tree.proof(i).expect("proof");
            prop_assert!(proof.verify::<SoftHasher>(member, &root).is_ok());
            prop_assert!(proof.verify::<SoftHasher>(&outsider, &root).is_err());
        }
        let made_up = MembershipProof { left_siblings, siblings };
        prop_assert!(made_up.verify::<SoftHasher>(&outsider, &root).is_err());
        // Through the whole rule, as the contract runs it: an outsider's receipt is refused.
        let authority = Authority::Group(root);
        let domain = Domain { genesis_hash: [1; 32], contract: [2; 32] };
        let receipt = Receipt { channel: ChannelId(1), amount: 5 };
        let signature = receipt.sign(&domain, &secret([7; 32]).expect("key"));
        let result = authorize::<SoftHasher, Libsecp256k1>(
            &authority, &domain, &receipt, &signature, Some(&tree.proof(0).expect("proof")),
        );
        prop_assert!(matches!(result, Err(AuthError::NotMember(_))), "{:?}", result);
    }
}
