// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "./lib/Vm.sol";
import {Fixture} from "./lib/Fixture.sol";
import {Wallet} from "./lib/Wallet.sol";
import {SlotpayChannels} from "../src/SlotpayChannels.sol";

/// Every message, construction and refusal of SlotpayChannels, with the channel rules of
/// `protocol::channel` and the ink! contract's unit tests as the reference.
contract SlotpayChannelsTest is Fixture {
    SlotpayChannels internal c;

    uint256 internal payerKey = key("payer");
    address internal payer = vm.addr(key("payer"));
    address internal payee = addrOf("payee");
    address internal stranger = addrOf("stranger");
    uint256 internal clientKey = key("client");
    address internal client = vm.addr(key("client"));
    uint256 internal client2Key = key("client2");
    address internal client2 = vm.addr(key("client2"));

    uint32 internal constant START = 1000;
    uint32 internal constant EXPIRES = 1100;
    uint32 internal constant NOTICE = 10;
    uint256 internal constant FUNDS = 100 ether;

    function setUp() public {
        vm.roll(START);
        c = new SlotpayChannels();
        vm.deal(payer, FUNDS);
        vm.deal(payee, FUNDS);
        vm.deal(stranger, FUNDS);
    }

    // ---------------------------------------------------------------- helpers

    function openBy(address who, SlotpayChannels.Authority memory a, uint256 deposit) internal returns (uint64) {
        vm.prank(who);
        return c.open{value: deposit}(payee, a, EXPIRES, NOTICE);
    }

    function openDelegate(uint256 deposit) internal returns (uint64) {
        return openBy(payer, delegate(client), deposit);
    }

    function sig(uint256 signer, uint64 id, uint32 epoch, uint128 amount) internal view returns (bytes memory) {
        return signFor(address(c), signer, id, epoch, amount);
    }

    function settleBy(uint256 signer, uint64 id, uint32 epoch, uint128 amount) internal returns (uint128) {
        bytes memory s = sig(signer, id, epoch, amount);
        vm.prank(payee);
        return c.settle(id, epoch, amount, s);
    }

    function state(uint64 id) internal view returns (SlotpayChannels.Channel memory) {
        return c.channel(id);
    }

    /// Everything a refusal must leave as it was.
    function snapshot(uint64 upTo) internal view returns (bytes32) {
        bytes memory all = abi.encode(
            address(c).balance,
            c.nextChannelId(),
            payer.balance,
            payee.balance,
            c.owed(payer),
            c.owed(payee),
            block.number
        );
        if (upTo > 16) upTo = 16;
        for (uint64 i; i <= upTo; i++) all = abi.encode(all, c.channel(i));
        return keccak256(all);
    }

    /// `who` calls with `value` and `data`; the call must fail with `err` and change nothing.
    function refuse(address who, uint256 value, bytes memory data, bytes memory err) internal {
        bytes32 before = snapshot(c.nextChannelId());
        vm.deal(who, who.balance + value);
        vm.prank(who);
        (bool ok, bytes memory ret) = address(c).call{value: value}(data);
        vm.assertFalse(ok, "the call must fail");
        vm.assertEq(ret, err, "with this error");
        vm.deal(who, who.balance - value);
        eq(snapshot(c.nextChannelId()), before, "a refusal changes nothing");
    }

    function e(bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }

    // ---------------------------------------------------------------- domain and encodings

    function test_domain_separator_is_eip712_of_this_chain_and_contract() public {
        eq(c.domainSeparator(), domainOf(address(c), block.chainid), "separator");
        eq(c.RECEIPT_TYPEHASH(), keccak256("Receipt(uint64 channel,uint32 epoch,uint128 amount)"), "type hash");
        eq(c.receiptDigest(7, 2, 1234), digestOf(address(c), block.chainid, 7, 2, 1234), "digest");
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            c.eip712Domain();
        eq(uint8(fields), 0x0f, "EIP-5267 fields");
        eq(keccak256(bytes(name)), keccak256("slotpay"), "name");
        eq(keccak256(bytes(version)), keccak256("1"), "version");
        eq(chainId, block.chainid, "chain id");
        eq(verifying, address(c), "contract");
        // Recomputed, not cached, on another chain id (a fork).
        vm.chainId(block.chainid + 1);
        eq(c.domainSeparator(), domainOf(address(c), block.chainid), "separator after a chain id change");
    }

    function test_leaf_and_node_encodings() public view {
        eq(c.leafHash(client, 5), keccak256(abi.encodePacked(uint8(0), client, uint128(5))), "leaf");
        eq(c.nodeHash(bytes32(uint256(1)), bytes32(uint256(2))), nodeOf(bytes32(uint256(1)), bytes32(uint256(2))), "node");
    }

    // ---------------------------------------------------------------- open

    function test_open_stores_every_construction_and_ids_grow() public {
        Group memory g = uniformGroup(2, 1 ether);
        SlotpayChannels.Authority[3] memory auths = [account(payer), delegate(client), group(rootOf(g))];
        for (uint64 i; i < 3; i++) {
            vm.expectEmit();
            emit SlotpayChannels.Opened(i, payer, payee, auths[i].kind, auths[i].value, 1 ether + i, EXPIRES, NOTICE);
            eq(openBy(payer, auths[i], 1 ether + i), i, "id");
            SlotpayChannels.Channel memory s = state(i);
            eq(s.payer, payer, "payer");
            eq(s.payee, payee, "payee");
            eq(s.authority.kind, auths[i].kind, "kind");
            eq(s.authority.value, auths[i].value, "value");
            eq(s.epoch, 0, "epoch");
            eq(s.deposit, 1 ether + i, "deposit");
            eq(s.settled + s.base, 0, "nothing settled");
            eq(s.expiresAt, EXPIRES, "expiry");
            eq(s.notice, NOTICE, "notice");
            isTrue(!s.rotationPending, "no rotation");
        }
        eq(c.nextChannelId(), 3, "next id");
        eq(address(c).balance, 3 ether + 3, "deposits held");
        eq(payer.balance, FUNDS - 3 ether - 3, "payer paid them");
        // A channel that does not exist reads as zeros.
        eq(state(3).payer, address(0), "no channel 3");
    }

    function test_open_refusals_change_nothing() public {
        bytes memory ok = abi.encodeCall(c.open, (payee, delegate(client), EXPIRES, NOTICE));
        refuse(payer, 0, ok, e(SlotpayChannels.ZeroDeposit.selector));
        refuse(payer, 1, abi.encodeCall(c.open, (payer, delegate(client), EXPIRES, NOTICE)), e(SlotpayChannels.PayeeIsPayer.selector));
        refuse(payer, 1, abi.encodeCall(c.open, (payee, delegate(client), START, NOTICE)), e(SlotpayChannels.ExpiryNotInFuture.selector));
        refuse(payer, 1, abi.encodeCall(c.open, (payee, delegate(client), START - 1, NOTICE)), e(SlotpayChannels.ExpiryNotInFuture.selector));
        refuse(payer, 1, abi.encodeCall(c.open, (payee, account(stranger), EXPIRES, NOTICE)), e(SlotpayChannels.AccountAuthorityNotPayer.selector));
        bytes memory invalid = e(SlotpayChannels.InvalidAuthority.selector);
        refuse(payer, 1, abi.encodeCall(c.open, (payee, SlotpayChannels.Authority(4, 0), EXPIRES, NOTICE)), invalid);
        refuse(payer, 1, abi.encodeCall(c.open, (payee, SlotpayChannels.Authority(DELEGATE, 0), EXPIRES, NOTICE)), invalid);
        refuse(payer, 1, abi.encodeCall(c.open, (payee, SlotpayChannels.Authority(DELEGATE, bytes32(uint256(1) << 160)), EXPIRES, NOTICE)), invalid);
        refuse(payer, 1, abi.encodeCall(c.open, (payee, SlotpayChannels.Authority(GROUP, 0), EXPIRES, NOTICE)), invalid);
        refuse(payer, 1, abi.encodeCall(c.open, (payee, SlotpayChannels.Authority(REVOKED, bytes32(uint256(1))), EXPIRES, NOTICE)), invalid);
        refuse(payer, uint256(type(uint128).max) + 1, ok, e(SlotpayChannels.DepositOverflow.selector));
        // The counter's slot (after the two mappings): next id 2^64 - 1 means used up.
        bytes32 counter = vm.load(address(c), bytes32(uint256(2)));
        vm.store(address(c), bytes32(uint256(2)), bytes32((uint256(counter) >> 64 << 64) | type(uint64).max));
        eq(c.nextChannelId(), type(uint64).max, "counter slot found");
        refuse(payer, 1, ok, e(SlotpayChannels.ChannelIdsExhausted.selector));
    }

    function test_a_revoked_channel_can_be_opened_and_takes_no_receipt() public {
        uint64 id = openBy(payer, revoked(), 1 ether);
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 1, sig(payerKey, id, 0, 1))), e(SlotpayChannels.Revoked.selector));
        vm.prank(payee);
        c.closeSettled(id);
        eq(payer.balance, FUNDS, "all refunded");
    }

    // ---------------------------------------------------------------- top up, extend

    function test_top_up_grows_the_deposit_payer_only() public {
        uint64 id = openDelegate(1 ether);
        vm.expectEmit();
        emit SlotpayChannels.ToppedUp(id, 3 ether);
        vm.prank(payer);
        c.topUp{value: 2 ether}(id);
        eq(state(id).deposit, 3 ether, "deposit");
        eq(address(c).balance, 3 ether, "held");
        bytes memory up = abi.encodeCall(c.topUp, (id));
        refuse(stranger, 1, up, e(SlotpayChannels.NotPayer.selector));
        refuse(payee, 1, up, e(SlotpayChannels.NotPayer.selector));
        refuse(payer, 0, up, e(SlotpayChannels.ZeroDeposit.selector));
        refuse(payer, 1, abi.encodeCall(c.topUp, (id + 1)), e(SlotpayChannels.ChannelNotFound.selector));
        refuse(payer, uint256(type(uint128).max) - 3 ether + 1, up, e(SlotpayChannels.DepositOverflow.selector));
        vm.roll(EXPIRES);
        refuse(payer, 1, up, e(SlotpayChannels.ChannelExpired.selector));
    }

    function test_extend_moves_expiry_later_payer_only_even_after_expiry() public {
        uint64 id = openDelegate(1 ether);
        refuse(payer, 0, abi.encodeCall(c.extend, (id, EXPIRES)), e(SlotpayChannels.ExpiryNotLater.selector));
        refuse(payer, 0, abi.encodeCall(c.extend, (id, EXPIRES - 1)), e(SlotpayChannels.ExpiryNotLater.selector));
        refuse(stranger, 0, abi.encodeCall(c.extend, (id, EXPIRES + 1)), e(SlotpayChannels.NotPayer.selector));
        refuse(payer, 0, abi.encodeCall(c.extend, (id + 1, EXPIRES + 1)), e(SlotpayChannels.ChannelNotFound.selector));
        vm.roll(EXPIRES + 5);
        vm.expectEmit();
        emit SlotpayChannels.Extended(id, EXPIRES + 50);
        vm.prank(payer);
        c.extend(id, EXPIRES + 50);
        eq(state(id).expiresAt, EXPIRES + 50, "revived");
        eq(settleBy(clientKey, id, 0, 5), 5, "a revived channel settles");
    }

    // ---------------------------------------------------------------- settle

    function test_settle_pays_above_what_was_settled_and_keeps_the_channel_open() public {
        uint64 id = openDelegate(1000);
        vm.expectEmit();
        emit SlotpayChannels.Settled(id, 0, 300, 300);
        eq(settleBy(clientKey, id, 0, 300), 300, "first settle pays all");
        eq(payee.balance, FUNDS + 300, "payee paid");
        eq(address(c).balance, 700, "rest held");
        (uint256 settled, uint256 deposit) = (state(id).settled, state(id).deposit);
        eq(settled, 300, "settled");
        eq(deposit, 1000, "deposit unchanged");
        // The same receipt again, or a lower one, pays nothing.
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 300, sig(clientKey, id, 0, 300))), e(SlotpayChannels.NothingToSettle.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 250, sig(clientKey, id, 0, 250))), e(SlotpayChannels.NothingToSettle.selector));
        eq(settleBy(clientKey, id, 0, 500), 200, "the next pays the difference");
        vm.prank(payee);
        c.closeSettled(id);
        eq(payee.balance, FUNDS + 500, "payee got 500");
        eq(payer.balance, FUNDS - 500, "payer got the rest");
        eq(address(c).balance, 0, "nothing left");
    }

    function test_settle_refusals_change_nothing() public {
        uint64 id = openDelegate(1000);
        bytes memory good = sig(clientKey, id, 0, 100);
        refuse(stranger, 0, abi.encodeCall(c.settle, (id, 0, 100, good)), e(SlotpayChannels.NotPayee.selector));
        refuse(payer, 0, abi.encodeCall(c.settle, (id, 0, 100, good)), e(SlotpayChannels.NotPayee.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id + 1, 0, 100, good)), e(SlotpayChannels.ChannelNotFound.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 100, sig(clientKey, id, 1, 100))), abi.encodeWithSelector(SlotpayChannels.WrongEpoch.selector, 1, 0));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 1001, sig(clientKey, id, 0, 1001))), e(SlotpayChannels.AmountExceedsDeposit.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, type(uint128).max, sig(clientKey, id, 0, type(uint128).max))), e(SlotpayChannels.AmountExceedsDeposit.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 0, sig(clientKey, id, 0, 0))), e(SlotpayChannels.NothingToSettle.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 100, sig(client2Key, id, 0, 100))), e(SlotpayChannels.NotDelegate.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 101, good)), e(SlotpayChannels.NotDelegate.selector));
        vm.roll(EXPIRES);
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 100, good)), e(SlotpayChannels.ChannelExpired.selector));
    }

    function test_settle_by_the_payers_own_key() public {
        uint64 id = openBy(payer, account(payer), 1000);
        eq(settleBy(payerKey, id, 0, 40), 40, "the payer's own signature");
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 50, sig(clientKey, id, 0, 50))), e(SlotpayChannels.NotPayerAccount.selector));
    }

    // ---------------------------------------------------------------- close

    function test_close_with_a_receipt_pays_above_settled_and_refunds_the_rest() public {
        uint64 id = openDelegate(1000);
        settleBy(clientKey, id, 0, 300);
        refuse(payee, 0, abi.encodeCall(c.close, (id, 0, 200, sig(clientKey, id, 0, 200))), e(SlotpayChannels.BelowSettled.selector));
        refuse(stranger, 0, abi.encodeCall(c.close, (id, 0, 400, sig(clientKey, id, 0, 400))), e(SlotpayChannels.NotPayee.selector));
        bytes memory s = sig(clientKey, id, 0, 400);
        vm.expectEmit();
        emit SlotpayChannels.Closed(id, 100, 600);
        vm.prank(payee);
        c.close(id, 0, 400, s);
        eq(payee.balance, FUNDS + 400, "payee got the receipt's amount");
        eq(payer.balance, FUNDS - 400, "payer got deposit - claimed");
        eq(address(c).balance, 0, "empty");
        eq(state(id).payer, address(0), "deleted");
        // Every word of the channel is zero again (nothing left in storage).
        refuse(payee, 0, abi.encodeCall(c.close, (id, 0, 400, s)), e(SlotpayChannels.ChannelNotFound.selector));
        refuse(payee, 0, abi.encodeCall(c.closeSettled, (id)), e(SlotpayChannels.ChannelNotFound.selector));
        refuse(payer, 0, abi.encodeCall(c.claimExpired, (id)), e(SlotpayChannels.ChannelNotFound.selector));
    }

    function test_close_at_settled_is_allowed_and_pays_nothing_more() public {
        uint64 id = openDelegate(1000);
        settleBy(clientKey, id, 0, 300);
        vm.prank(payee);
        c.close(id, 0, 300, sig(clientKey, id, 0, 300));
        eq(payee.balance, FUNDS + 300, "payee");
        eq(payer.balance, FUNDS - 300, "payer");
    }

    function test_close_of_the_whole_deposit_refunds_nothing() public {
        uint64 id = openDelegate(1000);
        vm.recordLogs();
        vm.prank(payee);
        c.close(id, 0, 1000, sig(clientKey, id, 0, 1000));
        eq(vm.getRecordedLogs().length, 1, "only Closed: no payment of zero, nothing deferred");
        eq(payee.balance, FUNDS + 1000, "payee got it all");
    }

    function test_expired_channels_cannot_be_closed_only_claimed_by_the_payer() public {
        uint64 id = openDelegate(1000);
        settleBy(clientKey, id, 0, 100);
        refuse(payer, 0, abi.encodeCall(c.claimExpired, (id)), e(SlotpayChannels.NotExpired.selector));
        vm.roll(EXPIRES - 1);
        refuse(payer, 0, abi.encodeCall(c.claimExpired, (id)), e(SlotpayChannels.NotExpired.selector));
        vm.roll(EXPIRES);
        refuse(payee, 0, abi.encodeCall(c.close, (id, 0, 200, sig(clientKey, id, 0, 200))), e(SlotpayChannels.ChannelExpired.selector));
        refuse(payee, 0, abi.encodeCall(c.closeSettled, (id)), e(SlotpayChannels.ChannelExpired.selector));
        refuse(payee, 0, abi.encodeCall(c.claimExpired, (id)), e(SlotpayChannels.NotPayer.selector));
        vm.expectEmit();
        emit SlotpayChannels.ExpiredClaimed(id, 900);
        vm.prank(payer);
        c.claimExpired(id);
        eq(payer.balance, FUNDS - 100, "payer took deposit - settled");
        eq(state(id).payer, address(0), "deleted");
        eq(address(c).balance, 0, "empty");
    }

    // ---------------------------------------------------------------- rotation

    function test_rotation_hands_over_at_exactly_the_effective_block() public {
        uint64 id = openDelegate(1000);
        settleBy(clientKey, id, 0, 100);
        vm.roll(START + 5);
        vm.expectEmit();
        emit SlotpayChannels.RotationAnnounced(id, DELEGATE, bytes32(uint256(uint160(client2))), 1, START + 5 + NOTICE);
        vm.prank(payer);
        eq(c.rotate(id, delegate(client2)), START + 5 + NOTICE, "effective block");
        SlotpayChannels.Channel memory s = state(id);
        isTrue(s.rotationPending, "pending");
        eq(s.rotationAuthority.value, bytes32(uint256(uint160(client2))), "pending key");
        eq(s.rotationEffectiveAt, START + 5 + NOTICE, "pending block");
        eq(s.epoch, 0, "still epoch 0");
        // One block before: the old key settles; the new key's epoch is not in force.
        vm.roll(START + 5 + NOTICE - 1);
        eq(settleBy(clientKey, id, 0, 250), 150, "old key before the effective block");
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 10, sig(client2Key, id, 1, 10))), abi.encodeWithSelector(SlotpayChannels.WrongEpoch.selector, 1, 0));
        // At the effective block: epoch 1, the new key counts from zero above settled.
        vm.roll(START + 5 + NOTICE);
        s = state(id);
        eq(s.epoch, 1, "epoch 1 shown in force");
        eq(s.base, 250, "base = settled");
        isTrue(!s.rotationPending, "no longer pending");
        eq(s.authority.value, bytes32(uint256(uint160(client2))), "new key");
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 300, sig(clientKey, id, 0, 300))), abi.encodeWithSelector(SlotpayChannels.WrongEpoch.selector, 0, 1));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 300, sig(clientKey, id, 1, 300))), e(SlotpayChannels.NotDelegate.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 751, sig(client2Key, id, 1, 751))), e(SlotpayChannels.AmountExceedsDeposit.selector));
        eq(settleBy(client2Key, id, 1, 50), 50, "new key from zero: 250 + 50");
        eq(state(id).settled, 300, "settled");
        vm.prank(payee);
        c.close(id, 1, 750, sig(client2Key, id, 1, 750));
        eq(payee.balance, FUNDS + 1000, "payee got base + 750");
        eq(payer.balance, FUNDS - 1000, "nothing to refund");
    }

    function test_a_new_rotation_replaces_the_pending_one_with_a_fresh_notice() public {
        uint64 id = openDelegate(1000);
        vm.prank(payer);
        c.rotate(id, delegate(client2));
        vm.roll(START + NOTICE - 1);
        vm.prank(payer);
        eq(c.rotate(id, revoked()), START + NOTICE - 1 + NOTICE, "fresh notice from the second announcement");
        // At the first announcement's block nothing happens: the old key still counts.
        vm.roll(START + NOTICE);
        eq(state(id).epoch, 0, "not shortened");
        eq(settleBy(clientKey, id, 0, 10), 10, "old key still in force");
        vm.roll(START + 2 * NOTICE - 1);
        eq(state(id).epoch, 1, "the second one is in force");
        eq(state(id).authority.kind, REVOKED, "revoked");
    }

    function test_rotation_after_the_effective_block_brings_the_first_into_force() public {
        uint64 id = openDelegate(1000);
        vm.prank(payer);
        c.rotate(id, delegate(client2));
        vm.roll(START + NOTICE + 3);
        vm.expectEmit();
        emit SlotpayChannels.RotationAnnounced(id, DELEGATE, bytes32(uint256(uint160(client))), 2, START + 2 * NOTICE + 3);
        vm.prank(payer);
        c.rotate(id, delegate(client));
        SlotpayChannels.Channel memory s = state(id);
        eq(s.epoch, 1, "the first rotation took effect");
        eq(s.authority.value, bytes32(uint256(uint160(client2))), "in force");
        eq(s.rotationAuthority.value, bytes32(uint256(uint160(client))), "pending");
        eq(settleBy(client2Key, id, 1, 7), 7, "epoch 1 key settles");
    }

    function test_revoked_refuses_every_receipt() public {
        Group memory g = uniformGroup(2, 500);
        uint64 id = openBy(payer, group(rootOf(g)), 1000);
        SlotpayChannels.MembershipProof memory p = proofOf(g, 0);
        uint256 m0 = key(memberName(0));
        bytes memory s0 = sig(m0, id, 0, 10);
        vm.prank(payee);
        c.settleMember(id, 0, 10, s0, p);
        vm.prank(payer);
        c.rotate(id, revoked());
        vm.roll(START + NOTICE);
        bytes memory s1 = sig(m0, id, 1, 20);
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 1, 20, s1, p)), e(SlotpayChannels.UnexpectedProof.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 20, s1)), e(SlotpayChannels.Revoked.selector));
        refuse(payee, 0, abi.encodeCall(c.close, (id, 1, 20, s1)), e(SlotpayChannels.Revoked.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 1, 20, sig(payerKey, id, 1, 20))), e(SlotpayChannels.Revoked.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 20, sig(m0, id, 0, 20))), abi.encodeWithSelector(SlotpayChannels.WrongEpoch.selector, 0, 1));
        // What was settled stays paid; closing without a receipt refunds the rest.
        vm.prank(payee);
        c.closeSettled(id);
        eq(payer.balance, FUNDS - 10, "refund of all but the settled 10");
    }

    function test_rotate_is_payer_only_before_expiry_and_checks_the_authority() public {
        uint64 id = openDelegate(1000);
        bytes memory r = abi.encodeCall(c.rotate, (id, delegate(client2)));
        refuse(stranger, 0, r, e(SlotpayChannels.NotPayer.selector));
        refuse(payee, 0, r, e(SlotpayChannels.NotPayer.selector));
        refuse(payer, 0, abi.encodeCall(c.rotate, (id + 1, delegate(client2))), e(SlotpayChannels.ChannelNotFound.selector));
        refuse(payer, 0, abi.encodeCall(c.rotate, (id, account(stranger))), e(SlotpayChannels.AccountAuthorityNotPayer.selector));
        refuse(payer, 0, abi.encodeCall(c.rotate, (id, SlotpayChannels.Authority(5, 0))), e(SlotpayChannels.InvalidAuthority.selector));
        vm.roll(EXPIRES);
        refuse(payer, 0, r, e(SlotpayChannels.ChannelExpired.selector));
    }

    function test_rotation_to_the_payers_own_account_and_to_a_group() public {
        uint64 id = openDelegate(1000);
        vm.prank(payer);
        c.rotate(id, account(payer));
        vm.roll(START + NOTICE);
        eq(state(id).authority.value, bytes32(uint256(uint160(payer))), "account shown as the payer");
        eq(settleBy(payerKey, id, 1, 5), 5, "payer signs epoch 1");
        Group memory g = uniformGroup(3, 100);
        vm.prank(payer);
        c.rotate(id, group(rootOf(g)));
        vm.roll(START + 2 * NOTICE);
        bytes memory s = sig(key(memberName(2)), id, 2, 30);
        SlotpayChannels.MembershipProof memory p = proofOf(g, 2);
        vm.prank(payee);
        eq(c.settleMember(id, 2, 30, s, p), 30, "a member of the new group");
        eq(state(id).base, 5, "base of epoch 2");
        vm.prank(payee);
        c.closeMember(id, 2, 40, sig(key(memberName(1)), id, 2, 40), proofOf(g, 1));
        eq(payee.balance, FUNDS + 45, "5 + 40");
        eq(payer.balance, FUNDS - 45, "payer");
    }

    // ---------------------------------------------------------------- groups

    function groupCase(uint256 n, uint256 index) internal {
        Group memory g = uniformGroup(n, 300);
        uint64 id = openBy(payer, group(rootOf(g)), 1000);
        uint256 paidBefore = payee.balance;
        uint256 k = key(memberName(index));
        SlotpayChannels.MembershipProof memory p = proofOf(g, index);
        eq(c.rootOf(vm.addr(k), p), rootOf(g), "the contract's root of the proof");
        bytes memory s = sig(k, id, 0, 100);
        vm.prank(payee);
        eq(c.settleMember(id, 0, 100, s, p), 100, "member settles");
        // Another cap than the leaf's: not a member.
        SlotpayChannels.MembershipProof memory bigger = proofOf(g, index);
        bigger.cap = 301;
        s = sig(k, id, 0, 200);
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 200, s, bigger)), e(SlotpayChannels.NotMember.selector));
        // A non-member's signature with a member's proof.
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 200, sig(clientKey, id, 0, 200), p)), e(SlotpayChannels.NotMember.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (id, 0, 200, s)), e(SlotpayChannels.MissingProof.selector));
        refuse(payee, 0, abi.encodeCall(c.close, (id, 0, 200, s)), e(SlotpayChannels.MissingProof.selector));
        vm.prank(payee);
        c.closeMember(id, 0, 200, s, p);
        eq(payee.balance, paidBefore + 200, "payee");
    }

    function test_group_of_two() public {
        groupCase(2, 1);
    }

    function test_group_of_one_has_an_empty_proof() public {
        groupCase(1, 0);
    }

    function test_group_of_1024_full_depth_proof() public {
        groupCase(1024, 777);
    }

    function test_group_with_an_odd_node_promoted() public {
        groupCase(5, 4); // the fifth leaf is promoted twice: a proof of one sibling
        groupCase(7, 6);
    }

    function test_proof_shape_refusals() public {
        Group memory g = uniformGroup(4, 300);
        uint64 id = openBy(payer, group(rootOf(g)), 1000);
        bytes memory s = sig(key(memberName(0)), id, 0, 100);
        SlotpayChannels.MembershipProof memory p = proofOf(g, 0);
        p.leftSiblings = 1 << 2; // a direction bit at the proof's length
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 100, s, p)), e(SlotpayChannels.NonCanonicalProof.selector));
        p.leftSiblings = 1 << 31;
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 100, s, p)), e(SlotpayChannels.NonCanonicalProof.selector));
        p = proofOf(g, 0);
        bytes32[] memory deep = new bytes32[](33);
        p.siblings = deep;
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 100, s, p)), e(SlotpayChannels.ProofTooLong.selector));
        // 32 siblings is the most: its direction bits may be anything (no bit above 31).
        p.siblings = new bytes32[](32);
        p.leftSiblings = type(uint32).max;
        refuse(payee, 0, abi.encodeCall(c.settleMember, (id, 0, 100, s, p)), e(SlotpayChannels.NotMember.selector));
        // A proof for a channel that is not a group.
        uint64 d = openDelegate(1000);
        refuse(payee, 0, abi.encodeCall(c.settleMember, (d, 0, 100, sig(clientKey, d, 0, 100), proofOf(g, 0))), e(SlotpayChannels.UnexpectedProof.selector));
        refuse(payee, 0, abi.encodeCall(c.closeMember, (d, 0, 100, sig(clientKey, d, 0, 100), proofOf(g, 0))), e(SlotpayChannels.UnexpectedProof.selector));
    }

    // ---------------------------------------------------------------- signatures and replays

    function settleCall(uint64 id, bytes memory signature) internal view returns (bytes memory) {
        return abi.encodeCall(c.settle, (id, 0, 100, signature));
    }

    function test_malleated_and_malformed_signatures_are_refused() public {
        uint64 id = openDelegate(1000);
        bytes memory good = sig(clientKey, id, 0, 100);
        (bytes32 r, bytes32 s, uint8 v) = split(good);
        // ecrecover itself accepts the malleated twin: only the low-s rule refuses it.
        (bytes32 r2, bytes32 s2, uint8 v2) = split(malleate(good));
        eq(ecrecover(c.receiptDigest(id, 0, 100), v2, r2, s2), client, "raw ecrecover accepts high s");
        refuse(payee, 0, settleCall(id, malleate(good)), e(SlotpayChannels.SignatureHighS.selector));
        refuse(payee, 0, settleCall(id, withV(good, v - 27)), abi.encodeWithSelector(SlotpayChannels.InvalidRecoveryId.selector, v - 27));
        refuse(payee, 0, settleCall(id, withV(good, 29)), abi.encodeWithSelector(SlotpayChannels.InvalidRecoveryId.selector, 29));
        refuse(payee, 0, settleCall(id, withV(good, 0)), abi.encodeWithSelector(SlotpayChannels.InvalidRecoveryId.selector, 0));
        refuse(payee, 0, settleCall(id, withV(good, 1)), abi.encodeWithSelector(SlotpayChannels.InvalidRecoveryId.selector, 1));
        refuse(payee, 0, settleCall(id, abi.encodePacked(bytes32(0), s, v)), e(SlotpayChannels.SignatureROutOfRange.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(bytes32(N), s, v)), e(SlotpayChannels.SignatureROutOfRange.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(r, bytes32(0), v)), e(SlotpayChannels.SignatureSOutOfRange.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(r, bytes32(N), v)), e(SlotpayChannels.SignatureSOutOfRange.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(r, bytes32(N / 2 + 1), v)), e(SlotpayChannels.SignatureHighS.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(r, s)), e(SlotpayChannels.InvalidSignatureLength.selector));
        refuse(payee, 0, settleCall(id, abi.encodePacked(good, uint8(0))), e(SlotpayChannels.InvalidSignatureLength.selector));
        refuse(payee, 0, settleCall(id, ""), e(SlotpayChannels.InvalidSignatureLength.selector));
        // An r that is no point's x-coordinate: ecrecover yields address(0).
        bytes32 digest = c.receiptDigest(id, 0, 100);
        uint256 bad = 1;
        while (ecrecover(digest, 27, bytes32(bad), bytes32(uint256(1))) != address(0)) bad++;
        refuse(payee, 0, settleCall(id, abi.encodePacked(bytes32(bad), bytes32(uint256(1)), uint8(27))), e(SlotpayChannels.SignatureRecoveryFailed.selector));
        // s exactly n/2 is low.
        vm.prank(payee);
        eq(c.settle(id, 0, 100, good), 100, "the canonical signature settles");
    }

    function test_replays_on_another_channel_epoch_contract_or_chain_are_refused() public {
        uint64 a = openDelegate(1000);
        uint64 b = openDelegate(1000);
        bytes memory forA = sig(clientKey, a, 0, 100);
        // Another channel of the same key.
        refuse(payee, 0, abi.encodeCall(c.settle, (b, 0, 100, forA)), e(SlotpayChannels.NotDelegate.selector));
        // Another contract on the same chain, same channel id, same key.
        SlotpayChannels other = new SlotpayChannels();
        vm.prank(payer);
        uint64 o = other.open{value: 1000}(payee, delegate(client), EXPIRES, NOTICE);
        eq(o, a, "same id on the other contract");
        vm.prank(payee);
        vm.expectRevert(SlotpayChannels.NotDelegate.selector);
        other.settle(o, 0, 100, forA);
        // Another epoch: after rotating to the same key, the epoch 0 signature is not epoch 1's.
        vm.prank(payer);
        c.rotate(a, delegate(client));
        vm.roll(START + NOTICE);
        refuse(payee, 0, abi.encodeCall(c.settle, (a, 1, 100, forA)), e(SlotpayChannels.NotDelegate.selector));
        refuse(payee, 0, abi.encodeCall(c.settle, (a, 0, 100, forA)), abi.encodeWithSelector(SlotpayChannels.WrongEpoch.selector, 0, 1));
        // Another chain id (a fork): the separator is recomputed, the receipt no longer verifies.
        bytes memory forB = sig(clientKey, b, 0, 100);
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        refuse(payee, 0, abi.encodeCall(c.settle, (b, 0, 100, forB)), e(SlotpayChannels.NotDelegate.selector));
        eq(settleBy(clientKey, b, 0, 100), 100, "signed for the new chain id it settles");
        vm.chainId(chain);
        refuse(payee, 0, abi.encodeCall(c.settle, (b, 0, 150, forB)), e(SlotpayChannels.NotDelegate.selector));
    }

    // ---------------------------------------------------------------- failing payments

    function test_a_reverting_payer_cannot_block_the_close_and_withdraws_later() public {
        Wallet w = new Wallet();
        vm.deal(address(w), 0);
        uint64 id = abi.decode(
            w.exec{value: 1000}(address(c), abi.encodeCall(c.open, (payee, delegate(client), EXPIRES, NOTICE))), (uint64)
        );
        w.setMode(Wallet.Mode.Revert);
        bytes memory s = sig(clientKey, id, 0, 999);
        vm.expectEmit();
        emit SlotpayChannels.Closed(id, 999, 1);
        vm.expectEmit();
        emit SlotpayChannels.PaymentDeferred(address(w), id, 1, 1);
        vm.prank(payee);
        c.close(id, 0, 999, s);
        eq(payee.balance, FUNDS + 999, "the payee is paid whatever the refund does");
        eq(c.owed(address(w)), 1, "the refund is owed");
        eq(address(c).balance, 1, "and held");
        // A contract that cannot receive withdraws to another address.
        vm.prank(address(w));
        vm.expectRevert(SlotpayChannels.WithdrawFailed.selector);
        c.withdraw();
        eq(c.owed(address(w)), 1, "a failed withdrawal keeps it owed");
        vm.expectEmit();
        emit SlotpayChannels.Withdrawn(address(w), stranger, 1);
        vm.prank(address(w));
        eq(c.withdrawTo(stranger), 1, "withdrawn to another address");
        eq(stranger.balance, FUNDS + 1, "received");
        eq(c.owed(address(w)), 0, "nothing owed");
        vm.prank(address(w));
        vm.expectRevert(SlotpayChannels.NothingToWithdraw.selector);
        c.withdraw();
        // Once it accepts payments again, it can also withdraw to itself.
        w.setMode(Wallet.Mode.Accept);
    }

    function test_a_payment_that_burns_its_gas_is_deferred_for_a_bounded_cost() public {
        Wallet w = new Wallet();
        vm.prank(payer);
        uint64 id = c.open{value: 1000}(address(w), delegate(client), EXPIRES, NOTICE);
        w.setMode(Wallet.Mode.Burn);
        bytes memory s = sig(clientKey, id, 0, 600);
        vm.prank(address(w));
        uint256 before = gasleft();
        c.close(id, 0, 600, s);
        uint256 used = before - gasleft();
        // The payee's payment burnt PAYMENT_GAS + the stipend and was deferred; the refund went out.
        eq(c.owed(address(w)), 600, "payee's payment owed");
        eq(payer.balance, FUNDS - 600, "payer refunded regardless");
        vm.assertLe(used, 120_000, "a burner costs the caller a bounded amount");
        w.setMode(Wallet.Mode.Accept);
        vm.prank(address(w));
        eq(c.withdraw(), 600, "withdrawn");
        eq(address(w).balance, 600, "received");
    }

    function test_refused_payments_on_settle_and_claim_are_owed_and_accumulate() public {
        Wallet w = new Wallet();
        w.setMode(Wallet.Mode.Revert);
        vm.prank(payer);
        uint64 id = c.open{value: 1000}(address(w), delegate(client), EXPIRES, NOTICE);
        bytes memory s = sig(clientKey, id, 0, 100);
        vm.prank(address(w));
        c.settle(id, 0, 100, s);
        s = sig(clientKey, id, 0, 250);
        vm.expectEmit();
        emit SlotpayChannels.PaymentDeferred(address(w), id, 150, 250);
        vm.prank(address(w));
        c.settle(id, 0, 250, s);
        eq(c.owed(address(w)), 250, "both settles owed");
        // And a payer contract's expired claim.
        Wallet p = new Wallet();
        uint64 id2 = abi.decode(
            p.exec{value: 500}(address(c), abi.encodeCall(c.open, (payee, delegate(client), EXPIRES, NOTICE))), (uint64)
        );
        p.setMode(Wallet.Mode.Revert);
        vm.roll(EXPIRES);
        vm.prank(address(p));
        c.claimExpired(id2);
        eq(c.owed(address(p)), 500, "claim owed");
        eq(address(c).balance, 750 + 250 + 500, "held: the open channel's 750 and the owed 250 + 500");
    }

    // ---------------------------------------------------------------- reentrancy

    function test_a_payee_reentering_on_its_payment_meets_the_lock() public {
        Wallet w = new Wallet();
        vm.prank(payer);
        uint64 id = c.open{value: 1000}(address(w), delegate(client), EXPIRES, NOTICE);
        w.setReentry(Wallet.Mode.ReenterCloseSettled, address(c), id);
        bytes memory s = sig(clientKey, id, 0, 100);
        vm.prank(address(w));
        c.settle(id, 0, 100, s);
        (bool attempted, bool succeeded, bytes4 sel) = w.reentryOutcome();
        isTrue(attempted && !succeeded, "a reentry was tried and failed");
        eq(bytes32(sel), bytes32(SlotpayChannels.Reentered.selector), "on the lock");
        eq(address(w).balance, 100, "paid once");
        eq(state(id).settled, 100, "settled once; the channel is still open");
        eq(address(c).balance, 900, "the rest held");
    }

    function test_a_payee_replaying_its_receipt_on_receive_is_paid_once() public {
        Wallet w = new Wallet();
        vm.prank(payer);
        uint64 id = c.open{value: 1000}(address(w), delegate(client), EXPIRES, NOTICE);
        bytes memory s = sig(clientKey, id, 0, 100);
        w.setReentryWith(address(c), abi.encodeCall(c.settle, (id, 0, 100, s)));
        vm.prank(address(w));
        c.settle(id, 0, 100, s);
        // Its receive ran out of PAYMENT_GAS before it could call, or met the lock:
        // either way the payment is deferred or made, never twice.
        eq(address(w).balance + c.owed(address(w)), 100, "100 in all");
        eq(state(id).settled, 100, "settled");
        eq(address(c).balance + address(w).balance, 1000, "conserved");
    }

    function test_reentering_withdraw_with_all_the_gas_meets_the_lock() public {
        Wallet w = new Wallet();
        w.setMode(Wallet.Mode.Revert);
        vm.prank(payer);
        uint64 id = c.open{value: 1000}(address(w), delegate(client), EXPIRES, NOTICE);
        vm.prank(address(w));
        c.settle(id, 0, 400, sig(clientKey, id, 0, 400));
        eq(c.owed(address(w)), 400, "owed");
        w.setReentry(Wallet.Mode.ReenterWithdraw, address(c), 0);
        vm.prank(address(w));
        eq(c.withdraw(), 400, "withdrawn once");
        (bool attempted, bool succeeded, bytes4 sel) = w.reentryOutcome();
        isTrue(attempted && !succeeded, "the nested withdraw failed");
        eq(bytes32(sel), bytes32(SlotpayChannels.Reentered.selector), "on the lock");
        eq(address(w).balance, 400, "received once");
        eq(address(c).balance, 600, "the rest held");
    }

    function test_a_payer_reentering_on_its_refund_meets_the_lock() public {
        Wallet w = new Wallet();
        uint64 id = abi.decode(
            w.exec{value: 1000}(address(c), abi.encodeCall(c.open, (payee, delegate(client), EXPIRES, NOTICE))), (uint64)
        );
        uint64 id2 = abi.decode(
            w.exec{value: 1000}(address(c), abi.encodeCall(c.open, (payee, delegate(client), EXPIRES, NOTICE))), (uint64)
        );
        // On its refund from closing `id`, it tries to close `id2` as if it were the payee.
        w.setReentry(Wallet.Mode.ReenterCloseSettled, address(c), id2);
        bytes memory s = sig(clientKey, id, 0, 300);
        vm.prank(payee);
        c.close(id, 0, 300, s);
        (bool attempted, bool succeeded, bytes4 sel) = w.reentryOutcome();
        isTrue(attempted && !succeeded, "tried and failed");
        eq(bytes32(sel), bytes32(SlotpayChannels.Reentered.selector), "on the lock");
        eq(address(w).balance, 700, "refunded once");
        eq(state(id2).deposit, 1000, "the other channel untouched");
    }

    // ---------------------------------------------------------------- fuzzed rules

    /// Any settle sequence: the payee's total is the highest receipt, settled only grows,
    /// and a close splits the deposit exactly.
    function testFuzz_settles_then_close_split_the_deposit_exactly(uint128 deposit, uint128[4] memory amounts, uint128 last)
        public
    {
        deposit = uint128(bound(deposit, 1, 1e30));
        vm.deal(payer, deposit);
        uint64 id = openDelegate(deposit);
        uint128 best;
        for (uint256 i; i < 4; i++) {
            uint128 a = uint128(bound(amounts[i], 0, deposit));
            bytes memory s = sig(clientKey, id, 0, a);
            vm.prank(payee);
            (bool ok,) = address(c).call(abi.encodeCall(c.settle, (id, 0, a, s)));
            eq(ok ? 1 : 0, a > best ? 1 : 0, "settles exactly when above settled");
            if (a > best) best = a;
            eq(state(id).settled, best, "settled is the best receipt");
        }
        last = uint128(bound(last, best, deposit));
        bytes memory ls = sig(clientKey, id, 0, last);
        vm.prank(payee);
        c.close(id, 0, last, ls);
        eq(payee.balance, FUNDS + last, "payee got the last receipt");
        eq(payer.balance, deposit - last, "payer got deposit - claimed");
    }
}
