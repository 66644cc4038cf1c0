// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "./Vm.sol";
import {SlotpayChannels} from "../../src/SlotpayChannels.sol";

/// What every test of the contract needs: a deployed contract, keys, receipts signed as
/// a wallet signs them (the digest computed here from the EIP-712 definition, not asked
/// of the contract), signatures in every malformed shape, and Merkle groups built the
/// way `protocol::merkle::MerkleTree` builds them (odd nodes promoted).
abstract contract Fixture {
    bool public IS_TEST = true;

    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint8 internal constant ACCOUNT = 0;
    uint8 internal constant DELEGATE = 1;
    uint8 internal constant GROUP = 2;
    uint8 internal constant REVOKED = 3;

    struct Member {
        address key;
        uint128 cap;
    }

    /// A group: its members and every level of its tree, leaves first.
    struct Group {
        Member[] members;
        bytes32[][] levels;
    }

    // ---------------------------------------------------------------- keys

    function key(string memory name) internal pure returns (uint256) {
        return uint256(keccak256(bytes(name))) % (N - 1) + 1;
    }

    function addrOf(string memory name) internal pure returns (address) {
        return vm.addr(key(name));
    }

    // ---------------------------------------------------------------- authorities

    function account(address payer) internal pure returns (SlotpayChannels.Authority memory) {
        return SlotpayChannels.Authority(ACCOUNT, bytes32(uint256(uint160(payer))));
    }

    function delegate(address client) internal pure returns (SlotpayChannels.Authority memory) {
        return SlotpayChannels.Authority(DELEGATE, bytes32(uint256(uint160(client))));
    }

    function group(bytes32 root) internal pure returns (SlotpayChannels.Authority memory) {
        return SlotpayChannels.Authority(GROUP, root);
    }

    function revoked() internal pure returns (SlotpayChannels.Authority memory) {
        return SlotpayChannels.Authority(REVOKED, 0);
    }

    // ---------------------------------------------------------------- receipts

    /// The EIP-712 domain separator of `target` on chain `chainId`, from the definition.
    function domainOf(address target, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes("slotpay")),
                keccak256(bytes("1")),
                chainId,
                target
            )
        );
    }

    function structHashOf(uint64 id, uint32 epoch, uint128 amount) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256("Receipt(uint64 channel,uint32 epoch,uint128 amount)"), id, epoch, amount));
    }

    function digestOf(address target, uint256 chainId, uint64 id, uint32 epoch, uint128 amount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(hex"1901", domainOf(target, chainId), structHashOf(id, epoch, amount)));
    }

    /// A receipt signed by `signer` for `target` on the current chain: r ‖ s ‖ v, v ∈ {27, 28}.
    function signFor(address target, uint256 signer, uint64 id, uint32 epoch, uint128 amount)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signer, digestOf(target, block.chainid, id, epoch, amount));
        return abi.encodePacked(r, s, v);
    }

    /// The malleated twin: s -> n - s, v flipped (what raw ecrecover also accepts).
    function malleate(bytes memory sig) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = split(sig);
        return abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function withV(bytes memory sig, uint8 v) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s,) = split(sig);
        return abi.encodePacked(r, s, v);
    }

    function split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        require(sig.length == 65, "65 bytes");
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
    }

    // ---------------------------------------------------------------- groups

    function leafOf(Member memory m) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(0x00), m.key, m.cap));
    }

    function nodeOf(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(0x01), left, right));
    }

    function build(Member[] memory members) internal pure returns (Group memory g) {
        require(members.length > 0, "empty group");
        g.members = members;
        uint256 depth = 1;
        for (uint256 n = members.length; n > 1; n = (n + 1) / 2) depth++;
        g.levels = new bytes32[][](depth);
        bytes32[] memory level = new bytes32[](members.length);
        for (uint256 i; i < members.length; i++) level[i] = leafOf(members[i]);
        g.levels[0] = level;
        for (uint256 d = 1; d < depth; d++) {
            bytes32[] memory below = g.levels[d - 1];
            bytes32[] memory above = new bytes32[]((below.length + 1) / 2);
            for (uint256 i; i < above.length; i++) {
                above[i] = 2 * i + 1 < below.length ? nodeOf(below[2 * i], below[2 * i + 1]) : below[2 * i];
            }
            g.levels[d] = above;
        }
    }

    function rootOf(Group memory g) internal pure returns (bytes32) {
        return g.levels[g.levels.length - 1][0];
    }

    function proofOf(Group memory g, uint256 index) internal pure returns (SlotpayChannels.MembershipProof memory p) {
        bytes32[] memory siblings = new bytes32[](g.levels.length);
        uint256 len;
        uint32 left;
        uint256 position = index;
        for (uint256 d; d + 1 < g.levels.length; d++) {
            uint256 sibling = position ^ 1;
            if (sibling < g.levels[d].length) {
                if (sibling < position) left |= uint32(1 << len);
                siblings[len++] = g.levels[d][sibling];
            }
            position /= 2;
        }
        assembly {
            mstore(siblings, len)
        }
        p = SlotpayChannels.MembershipProof(g.members[index].cap, left, siblings);
    }

    /// A group of `n` members; member i's key is key("member<i>"), cap `cap`.
    function uniformGroup(uint256 n, uint128 cap) internal pure returns (Group memory) {
        Member[] memory members = new Member[](n);
        for (uint256 i; i < n; i++) members[i] = Member(addrOf(memberName(i)), cap);
        return build(members);
    }

    function memberName(uint256 i) internal pure returns (string memory) {
        return string.concat("member", vm.toString(i));
    }

    // ---------------------------------------------------------------- checks

    function eq(uint256 a, uint256 b, string memory what) internal pure {
        vm.assertEq(a, b, what);
    }

    function eq(address a, address b, string memory what) internal pure {
        vm.assertEq(a, b, what);
    }

    function eq(bytes32 a, bytes32 b, string memory what) internal pure {
        vm.assertEq(a, b, what);
    }

    function isTrue(bool a, string memory what) internal pure {
        vm.assertTrue(a, what);
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        require(lo <= hi, "bound");
        if (hi - lo == type(uint256).max) return x;
        return lo + x % (hi - lo + 1);
    }
}
