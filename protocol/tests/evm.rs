//! The EVM layer against the Solidity contract's own encodings, byte for byte:
//! `evm/test-vectors/eip712.json`, written by the contract's forge test `VectorsTest`
//! (`scripts/evm.sh vectors`), which fails if the contract computes anything else. The
//! keys are the vectors' own (forge's `key(name)`: keccak256(name) mod (n - 1) + 1).
//! The differential test of `authorize` against the compiled contract is
//! `tests/tests/evm_differential.rs`.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::crypto::Hasher;
use protocol::keys::{self, SecretKey};
use protocol::{
    authorize, evm_account, evm_address_of, AnyDomain, AuthError, Authority, ChannelId, Domain,
    Evm, EvmDomain, Layer, Member, MembershipProof, MerkleTree, Receipt, ReceiptError, Signature,
    SignatureError, SignedReceipt, Substrate, EIP712_DOMAIN_TYPEHASH, RECEIPT_TYPEHASH,
};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../evm/test-vectors/eip712.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the vectors")).expect("JSON")
}

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    let text = v.as_str().expect("hex");
    let vec = hex::decode(text.trim_start_matches("0x")).expect("hex");
    vec.try_into().expect("length")
}

fn decimal(v: &Value) -> u128 {
    v.as_str().expect("decimal").parse().expect("decimal")
}

/// forge's `key(name)`.
fn forge_key(name: &str) -> SecretKey {
    let mut k = SoftHasher::keccak256(name.as_bytes());
    // + 1, big-endian (keccak256 of these names is below n - 1, which the address checks
    // below confirm).
    for b in k.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            break;
        }
    }
    SecretKey::from_slice(&k).expect("a key")
}

fn address(key: &SecretKey) -> [u8; 20] {
    evm_address_of::<SoftHasher>(&keys::public_key(key)).expect("a point")
}

#[test]
fn the_type_hashes_are_those_of_the_type_strings() {
    assert_eq!(
        EIP712_DOMAIN_TYPEHASH,
        SoftHasher::keccak256(
            b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
        )
    );
    assert_eq!(
        RECEIPT_TYPEHASH,
        SoftHasher::keccak256(b"Receipt(uint64 channel,uint32 epoch,uint128 amount)")
    );
    assert_eq!(RECEIPT_TYPEHASH, bytes(&vectors()["receiptTypeHash"]));
}

#[test]
fn receipts_hash_and_sign_as_the_contract_does() {
    let v = vectors();
    let signer = forge_key("vector-signer");
    let cases = v["receipts"].as_array().expect("receipts");
    assert_eq!(cases.len(), 6);
    for case in cases {
        let domain = EvmDomain {
            chain_id: case["chainId"].as_u64().expect("chain id"),
            contract: bytes(&case["contract"]),
        };
        let receipt = Receipt {
            channel: ChannelId(decimal(&case["channel"]) as u64),
            epoch: case["epoch"].as_u64().expect("epoch") as u32,
            amount: decimal(&case["amount"]),
        };
        assert_eq!(
            domain.separator::<SoftHasher>(),
            bytes::<32>(&case["domainSeparator"]),
            "{case}"
        );
        let digest = receipt.signing_hash::<SoftHasher>(&domain);
        assert_eq!(digest, bytes::<32>(&case["digest"]), "{case}");
        assert_eq!(address(&signer), bytes::<20>(&case["signer"]), "{case}");
        // RFC 6979 on both sides: the very same bytes, v = 27 or 28.
        let signature = receipt.sign(&domain, &signer);
        assert_eq!(signature.0, bytes::<65>(&case["signature"]), "{case}");
        let recovered = receipt
            .recover_signer::<SoftHasher, Libsecp256k1>(&domain, &signature)
            .expect("recovers");
        assert_eq!(recovered, keys::public_key(&signer));
        // The same receipt through the run-time layer: the same digest.
        assert_eq!(
            receipt.signing_hash::<SoftHasher>(&AnyDomain::Evm(domain)),
            digest
        );
    }
}

#[test]
fn group_leaves_roots_and_proofs_are_the_contracts() {
    let v = vectors();
    let g = &v["group"];
    let members: Vec<Member> = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let key = forge_key(&format!("member{i}"));
            assert_eq!(address(&key), bytes::<20>(&m["member"]), "member {i}");
            let member = Member {
                key: keys::public_key(&key),
                cap: decimal(&m["cap"]),
            };
            assert_eq!(
                Evm.leaf_hash::<SoftHasher>(&member),
                bytes::<32>(&m["leaf"]),
                "leaf {i}"
            );
            member
        })
        .collect();
    let tree = MerkleTree::build::<SoftHasher>(Evm, &members).expect("tree");
    assert_eq!(tree.root().0, bytes::<32>(&g["root"]));
    for p in g["proofs"].as_array().expect("proofs") {
        let index = p["index"].as_u64().expect("index") as usize;
        let expected = MembershipProof {
            cap: decimal(&p["cap"]),
            left_siblings: p["leftSiblings"].as_u64().expect("bits") as u32,
            siblings: p["siblings"]
                .as_array()
                .expect("siblings")
                .iter()
                .map(bytes::<32>)
                .collect(),
        };
        let proof = tree.proof(index).expect("proof");
        assert_eq!(proof, expected, "proof {index}");
        proof
            .verify::<SoftHasher>(Evm, &members[index].key, &tree.root())
            .expect("verifies");
        // The same members under the ink! layer's leaves: another root, and the proof
        // does not verify there.
        assert!(proof
            .verify::<SoftHasher>(Substrate, &members[index].key, &tree.root())
            .is_err());
    }
    let node = &g["node"];
    assert_eq!(
        protocol::node_hash::<SoftHasher>(&bytes(&node["left"]), &bytes(&node["right"])),
        bytes::<32>(&node["hash"])
    );
    assert_ne!(
        MerkleTree::build::<SoftHasher>(Substrate, &members)
            .expect("tree")
            .root(),
        tree.root()
    );
}

fn evm_domain() -> EvmDomain {
    EvmDomain {
        chain_id: 31337,
        contract: [0x5F; 20],
    }
}

fn signed(domain: &impl protocol::ReceiptDomain, key: &SecretKey, amount: u128) -> SignedReceipt {
    SignedReceipt::sign(
        Receipt {
            channel: ChannelId(3),
            epoch: 0,
            amount,
        },
        domain,
        key,
        None,
    )
}

#[test]
fn each_layer_takes_its_own_v_and_nothing_else() {
    let key = forge_key("v");
    let evm = signed(&evm_domain(), &key, 10);
    assert!(matches!(evm.signature.0[64], 27 | 28));
    let ink_domain = Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    };
    let ink = signed(&ink_domain, &key, 10);
    assert!(matches!(ink.signature.0[64], 0 | 1));
    let delegate = Authority::Delegate(keys::public_key(&key));
    authorize::<SoftHasher, Libsecp256k1>(&delegate, &evm_domain(), evm.clone()).expect("27/28");
    authorize::<SoftHasher, Libsecp256k1>(&delegate, &ink_domain, ink.clone()).expect("0/1");
    // The EVM contract refuses 0 and 1 (no normalisation), so the EVM layer does.
    let mut low = evm.clone();
    low.signature.0[64] -= 27;
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(&delegate, &evm_domain(), low).err(),
        Some(AuthError::Receipt(ReceiptError::Signature(
            SignatureError::InvalidRecoveryId(evm.signature.0[64] - 27)
        )))
    );
    // The ink! layer maps 27/28 to 0/1, once.
    let mut high = ink.clone();
    high.signature.0[64] += 27;
    authorize::<SoftHasher, Libsecp256k1>(&delegate, &ink_domain, high).expect("27/28 on ink!");
    for v in [2u8, 3, 26, 29, 30, 255] {
        let mut other = evm.clone();
        other.signature.0[64] = v;
        assert_eq!(
            other.signature.canonical_for(Evm),
            Err(SignatureError::InvalidRecoveryId(v))
        );
        assert_eq!(
            other.signature.canonical_for(Substrate),
            Err(SignatureError::InvalidRecoveryId(v))
        );
    }
    // A receipt signed for one layer's domain recovers another key on the other's.
    let moved = SignedReceipt {
        signature: Signature(ink.signature.0),
        ..evm
    };
    assert!(authorize::<SoftHasher, Libsecp256k1>(&delegate, &evm_domain(), moved).is_err());
}

#[test]
fn on_the_evm_keys_are_named_by_their_address() {
    let payer = forge_key("payer");
    let client = forge_key("client");
    let payer_account = evm_account(&address(&payer));
    assert_eq!(&payer_account[20..], &[0xEE; 12]);
    assert_eq!(
        protocol::account_id_of::<SoftHasher>(Evm, &keys::public_key(&payer)),
        payer_account
    );
    assert_eq!(protocol::evm_address(&payer_account), Some(address(&payer)));
    assert_eq!(protocol::evm_address(&[7; 32]), None);
    let by_payer = signed(&evm_domain(), &payer, 10);
    let by_client = signed(&evm_domain(), &client, 10);
    let ok = |a: &Authority, s: &SignedReceipt| {
        authorize::<SoftHasher, Libsecp256k1>(a, &evm_domain(), s.clone()).map(|_| ())
    };
    let account = Authority::Account(payer_account);
    assert_eq!(ok(&account, &by_payer), Ok(()));
    assert_eq!(ok(&account, &by_client), Err(AuthError::NotPayerAccount));
    // A delegate the EVM contract names by address.
    let named = Authority::DelegateAccount(evm_account(&address(&client)));
    assert_eq!(ok(&named, &by_client), Ok(()));
    assert_eq!(ok(&named, &by_payer), Err(AuthError::NotDelegate));
    // The same rule on the ink! layer, with its account ids.
    let ink = Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    };
    let ink_named = Authority::DelegateAccount(protocol::account_id_of::<SoftHasher>(
        Substrate,
        &keys::public_key(&client),
    ));
    let ink_signed = signed(&ink, &client, 10);
    assert!(authorize::<SoftHasher, Libsecp256k1>(&ink_named, &ink, ink_signed.clone()).is_ok());
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(&named, &ink, ink_signed).err(),
        Some(AuthError::NotDelegate),
        "an EVM account id is no ink! account id"
    );
    // Groups: the member's leaf is its address's.
    let members = [
        Member {
            key: keys::public_key(&client),
            cap: 100,
        },
        Member {
            key: keys::public_key(&payer),
            cap: 5,
        },
    ];
    let tree = MerkleTree::build::<SoftHasher>(Evm, &members).expect("tree");
    let group = Authority::Group(tree.root());
    let mut member = by_client.clone();
    member.proof = Some(tree.proof(0).expect("proof"));
    let authorized =
        authorize::<SoftHasher, Libsecp256k1>(&group, &evm_domain(), member).expect("member");
    assert_eq!(authorized.cap(), Some(100));
    assert_eq!(ok(&group, &by_client), Err(AuthError::MissingProof));
}

#[test]
fn the_new_authority_keeps_the_ink_contracts_scale_indices() {
    use parity_scale_codec::Encode as _;
    assert_eq!(Authority::Account([0; 32]).encode()[0], 0);
    assert_eq!(
        Authority::Delegate(protocol::PublicKey([2; 33])).encode()[0],
        1
    );
    assert_eq!(
        Authority::Group(protocol::MerkleRoot([0; 32])).encode()[0],
        2
    );
    assert_eq!(Authority::Revoked.encode(), vec![3]);
    assert_eq!(Authority::DelegateAccount([0; 32]).encode()[0], 4);
}
