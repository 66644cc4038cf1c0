// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "./lib/Vm.sol";
import {Fixture} from "./lib/Fixture.sol";
import {SlotpayChannels} from "../src/SlotpayChannels.sol";

/// test-vectors/eip712.json, generated from the contract itself (its domainSeparator,
/// receiptDigest, leafHash, nodeHash and rootOf), for the Rust side to check its
/// encodings against byte for byte. The test fails if the committed file differs from
/// what the contract computes; `SLOTPAY_WRITE_VECTORS=1` (scripts/evm.sh vectors)
/// rewrites it.
contract VectorsTest is Fixture {
    string internal constant PATH = "test-vectors/eip712.json";
    string internal constant HEAD =
        "{\n  \"about\": \"slotpay EVM encodings, generated from evm/src/SlotpayChannels.sol by evm/test/Vectors.t.sol. "
        "domain: EIP712Domain(string name,string version,uint256 chainId,address verifyingContract), name slotpay, version 1; "
        "type: Receipt(uint64 channel,uint32 epoch,uint128 amount); digest = keccak256(0x1901 || domainSeparator || structHash); "
        "signature = r || s || v, v in {27, 28}, low s; signer = the address ecrecover returns. "
        "Group leaf = keccak256(0x00 || member (20 bytes) || cap (16 bytes, big-endian)); node = keccak256(0x01 || left || right); "
        "proof siblings bottom-up, bit i of leftSiblings set when sibling i is on the left; odd nodes promoted. "
        "Amounts and channel ids are decimal strings.\",\n";

    struct Case {
        uint256 chainId;
        address target;
        uint64 channel;
        uint32 epoch;
        uint128 amount;
    }

    function hex32(bytes32 x) internal pure returns (string memory) {
        return string.concat("\"", vm.toString(x), "\"");
    }

    function receiptCase(SlotpayChannels deployed, Case memory k, uint256 signer) internal returns (string memory) {
        // The same code at another address and chain id: the contract computes its own
        // separator for both (its cached one belongs to the address it was deployed at).
        vm.etch(k.target, address(deployed).code);
        vm.chainId(k.chainId);
        SlotpayChannels c = SlotpayChannels(k.target);
        eq(c.domainSeparator(), domainOf(k.target, k.chainId), "separator from the definition");
        bytes32 digest = c.receiptDigest(k.channel, k.epoch, k.amount);
        eq(digest, digestOf(k.target, k.chainId, k.channel, k.epoch, k.amount), "digest from the definition");
        return string.concat(caseHead(k), caseHashes(c, k, digest), caseSignature(signer, digest));
    }

    function caseHead(Case memory k) internal pure returns (string memory) {
        return string.concat(
            "    {\"chainId\": ",
            vm.toString(k.chainId),
            ", \"contract\": \"",
            vm.toString(k.target),
            "\", \"channel\": \"",
            vm.toString(uint256(k.channel)),
            "\", \"epoch\": ",
            vm.toString(uint256(k.epoch)),
            ", \"amount\": \"",
            vm.toString(uint256(k.amount))
        );
    }

    function caseHashes(SlotpayChannels c, Case memory k, bytes32 digest) internal view returns (string memory) {
        return string.concat(
            "\",\n     \"domainSeparator\": ",
            hex32(c.domainSeparator()),
            ",\n     \"structHash\": ",
            hex32(structHashOf(k.channel, k.epoch, k.amount)),
            ",\n     \"digest\": ",
            hex32(digest)
        );
    }

    function caseSignature(uint256 signer, bytes32 digest) internal pure returns (string memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signer, digest);
        isTrue(uint256(s) <= N / 2 && (v == 27 || v == 28), "canonical signature");
        return string.concat(
            ",\n     \"signer\": \"",
            vm.toString(vm.addr(signer)),
            "\", \"signature\": \"",
            vm.toString(abi.encodePacked(r, s, v)),
            "\"}"
        );
    }

    function vectors() internal returns (string memory out) {
        SlotpayChannels deployed = new SlotpayChannels();
        uint256 signer = key("vector-signer");
        Case[6] memory cases = [
            Case(31337, 0x5FbDB2315678afecb367f032d93F642f64180aa3, 0, 0, 1),
            Case(31337, 0x5FbDB2315678afecb367f032d93F642f64180aa3, 1, 0, 1_000_000_000_000_000),
            Case(31337, 0x5FbDB2315678afecb367f032d93F642f64180aa3, 1, 1, 1_000_000_000_000_000),
            Case(1, 0x5FbDB2315678afecb367f032d93F642f64180aa3, 1, 0, 1_000_000_000_000_000),
            Case(420420421, 0x1111111111111111111111111111111111111111, 7, 3, 123456789),
            Case(31337, 0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF, type(uint64).max, type(uint32).max, type(uint128).max)
        ];
        out = string.concat(HEAD, "  \"receiptTypeHash\": ", hex32(deployed.RECEIPT_TYPEHASH()), ",\n  \"receipts\": [\n");
        for (uint256 i; i < cases.length; i++) {
            out = string.concat(out, receiptCase(deployed, cases[i], signer), i + 1 < cases.length ? ",\n" : "\n");
        }
        out = string.concat(out, "  ],\n", groupVectors(deployed), "\n}\n");
    }

    function groupVectors(SlotpayChannels c) internal view returns (string memory out) {
        // Five members: the fifth leaf is promoted unpaired twice.
        Member[] memory members = new Member[](5);
        for (uint256 i; i < 5; i++) {
            members[i] = Member(addrOf(memberName(i)), i == 4 ? type(uint128).max : uint128(1 ether * (i + 1)));
        }
        Group memory g = build(members);
        out = "  \"group\": {\n    \"members\": [\n";
        for (uint256 i; i < members.length; i++) {
            bytes32 leaf = c.leafHash(members[i].key, members[i].cap);
            eq(leaf, leafOf(members[i]), "leaf from the definition");
            out = string.concat(out, memberJson(members[i], leaf), i + 1 < members.length ? ",\n" : "\n");
        }
        out = string.concat(out, "    ],\n    \"root\": ", hex32(rootOf(g)), ",\n    \"proofs\": [\n");
        uint256[3] memory which = [uint256(0), 3, 4];
        for (uint256 j; j < which.length; j++) {
            SlotpayChannels.MembershipProof memory p = proofOf(g, which[j]);
            eq(c.rootOf(members[which[j]].key, p), rootOf(g), "the contract's root of the proof");
            out = string.concat(out, proofJson(which[j], p), j + 1 < which.length ? ",\n" : "\n");
        }
        out = string.concat(
            out,
            "    ],\n    \"node\": {\"left\": ",
            hex32(bytes32(uint256(1))),
            ", \"right\": ",
            hex32(bytes32(uint256(2))),
            ", \"hash\": ",
            hex32(c.nodeHash(bytes32(uint256(1)), bytes32(uint256(2)))),
            "}\n  }"
        );
    }

    function memberJson(Member memory m, bytes32 leaf) internal pure returns (string memory) {
        return string.concat(
            "      {\"member\": \"",
            vm.toString(m.key),
            "\", \"cap\": \"",
            vm.toString(uint256(m.cap)),
            "\", \"leaf\": ",
            hex32(leaf),
            "}"
        );
    }

    function proofJson(uint256 index, SlotpayChannels.MembershipProof memory p) internal pure returns (string memory) {
        string memory siblings;
        for (uint256 i; i < p.siblings.length; i++) {
            siblings = string.concat(siblings, i > 0 ? ", " : "", hex32(p.siblings[i]));
        }
        return string.concat(
            "      {\"index\": ",
            vm.toString(index),
            ", \"cap\": \"",
            vm.toString(uint256(p.cap)),
            "\", \"leftSiblings\": ",
            vm.toString(uint256(p.leftSiblings)),
            ", \"siblings\": [",
            siblings,
            "]}"
        );
    }

    function test_vectors_match_the_committed_file() public {
        string memory generated = vectors();
        if (vm.envOr("SLOTPAY_WRITE_VECTORS", uint256(0)) == 1) {
            vm.writeFile(PATH, generated);
            return;
        }
        string memory committed = vm.readFile(PATH);
        eq(keccak256(bytes(committed)), keccak256(bytes(generated)), "test-vectors/eip712.json is stale: scripts/evm.sh vectors");
    }
}
