// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "./lib/Vm.sol";
import {Fixture} from "./lib/Fixture.sol";
import {Wallet} from "./lib/Wallet.sol";
import {SlotpayChannels} from "../src/SlotpayChannels.sol";

/// Random payers (two keys and a contract that may refuse payments), payees (two keys
/// and a contract that may refuse payments or burn its gas), delegated clients and two
/// groups, random amounts and blocks. Every settle and close is predicted by a model of
/// `protocol::channel` first and the contract must agree; every payment is counted as
/// what its recipient can get (balance + owed).
contract Handler is Fixture {
    SlotpayChannels public c;

    address[3] public payers;
    uint256[3] internal payerKeys; // 0 for the contract, which cannot sign
    address[3] public payees;
    Wallet public payerWallet;
    Wallet public payeeWallet;
    uint256[3] internal clientKeys;
    Group internal groupA;
    Group internal groupB;
    uint256 internal constant GROUP_A_FIRST = 0; // members 0..3
    uint256 internal constant GROUP_B_FIRST = 4; // members 4..6

    uint64[] public ids;
    mapping(uint64 => bool) public closed;
    mapping(uint64 => uint256) public deposited; // everything the payer put in
    mapping(uint64 => uint256) public paidOut; // what the payee got (balance + owed)
    mapping(uint64 => uint256) public refundedOut; // what the payer got back
    mapping(uint64 => uint256) public lastSettled;
    mapping(uint64 => uint256) public bestSigned; // highest base + amount signed by the authority in force
    mapping(uint64 => bytes) internal lastReceipt; // the last settle's call, replayed

    uint256 public violations;
    string public lastViolation;
    mapping(string => uint256) public calls;
    mapping(string => uint256) public outcomes;

    constructor() {
        c = new SlotpayChannels();
        payerWallet = new Wallet();
        payeeWallet = new Wallet();
        payerKeys = [key("inv-payer0"), key("inv-payer1"), 0];
        payers = [vm.addr(payerKeys[0]), vm.addr(payerKeys[1]), address(payerWallet)];
        payees = [addrOf("inv-payee0"), addrOf("inv-payee1"), address(payeeWallet)];
        clientKeys = [key("inv-client0"), key("inv-client1"), key("inv-client2")];
        Member[] memory a = new Member[](4);
        for (uint256 i; i < 4; i++) a[i] = Member(addrOf(memberName(GROUP_A_FIRST + i)), uint128(1 ether * (i + 1)));
        Member[] memory b = new Member[](3);
        for (uint256 i; i < 3; i++) b[i] = Member(addrOf(memberName(GROUP_B_FIRST + i)), 5 ether);
        store(groupA, build(a));
        store(groupB, build(b));
        for (uint256 i; i < 3; i++) vm.deal(payers[i], 1e30);
        payerWallet.setMode(Wallet.Mode.Revert);
        payeeWallet.setMode(Wallet.Mode.Burn);
    }

    function store(Group storage g, Group memory m) internal {
        for (uint256 i; i < m.members.length; i++) g.members.push(m.members[i]);
        for (uint256 d; d < m.levels.length; d++) g.levels.push(m.levels[d]);
    }

    // ---------------------------------------------------------------- accounting

    function credit(address a) public view returns (uint256) {
        return a.balance + c.owed(a);
    }

    function totalOwed() public view returns (uint256 sum) {
        address[6] memory all = actors();
        for (uint256 i; i < 6; i++) sum += c.owed(all[i]);
    }

    function actors() public view returns (address[6] memory all) {
        all = [payers[0], payers[1], payers[2], payees[0], payees[1], payees[2]];
    }

    function idsLength() external view returns (uint256) {
        return ids.length;
    }

    /// After every action: settled only grows on every open channel.
    modifier tracked() {
        uint256 owedBefore = totalOwed();
        _;
        if (totalOwed() > owedBefore) outcomes["deferred"]++;
        for (uint256 i; i < ids.length; i++) {
            uint64 id = ids[i];
            if (closed[id]) continue;
            uint128 settled = c.channel(id).settled;
            if (settled < lastSettled[id]) fail("settled went down");
            lastSettled[id] = settled;
        }
    }

    function refused() internal {
        outcomes["refused"]++;
    }

    function fail(string memory why) internal {
        violations++;
        lastViolation = why;
    }

    function pick(uint256 seed) internal view returns (uint64 id, bool any) {
        if (ids.length == 0) return (0, false);
        return (ids[seed % ids.length], true);
    }

    function asPayer(address payer, uint256 value, bytes memory data) internal returns (bool ok, bytes memory ret) {
        if (payer == address(payerWallet)) {
            vm.deal(address(this), address(this).balance + value);
            (ok, ret) = address(payerWallet).call{value: value}(abi.encodeCall(Wallet.exec, (address(c), data)));
            if (ok) ret = abi.decode(ret, (bytes));
        } else {
            vm.prank(payer);
            (ok, ret) = address(c).call{value: value}(data);
        }
    }

    function authorityFor(uint256 payerIndex, uint256 seed) internal view returns (SlotpayChannels.Authority memory) {
        uint256 k = seed % 5;
        if (k == 0) return account(payers[payerIndex]);
        if (k == 1) return delegate(vm.addr(clientKeys[(seed >> 8) % 3]));
        if (k == 2) return group(rootOf(groupA));
        if (k == 3) return group(rootOf(groupB));
        return revoked();
    }

    // ---------------------------------------------------------------- payer's actions

    function open(uint256 payerSeed, uint256 payeeSeed, uint256 authSeed, uint256 deposit, uint32 life, uint32 notice)
        external tracked
    {
        calls["open"]++;
        uint256 pi = payerSeed % 3;
        address payer = payers[pi];
        address payee = payees[payeeSeed % 3];
        deposit = bound(deposit, 1, 100 ether);
        uint32 expiresAt = uint32(block.number + bound(life, 1, 200));
        notice = uint32(bound(notice, 0, 30));
        SlotpayChannels.Authority memory a = authorityFor(pi, authSeed);
        bytes memory data = abi.encodeCall(c.open, (payee, a, expiresAt, notice));
        bool ok;
        bytes memory ret;
        if (payer == address(payerWallet)) {
            vm.deal(address(this), address(this).balance + deposit);
            (ok, ret) = address(payerWallet).call{value: deposit}(abi.encodeCall(Wallet.exec, (address(c), data)));
            if (ok) ret = abi.decode(ret, (bytes));
        } else {
            vm.prank(payer);
            (ok, ret) = address(c).call{value: deposit}(data);
        }
        if (!ok) return fail("open refused");
        uint64 id = abi.decode(ret, (uint64));
        ids.push(id);
        deposited[id] = deposit;
    }

    function topUp(uint256 seed, uint256 amount) external tracked {
        calls["topUp"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        amount = bound(amount, 1, 10 ether);
        if (s.payer == address(payerWallet)) return; // its top-ups need value through exec: skipped
        vm.prank(s.payer);
        (bool ok,) = address(c).call{value: amount}(abi.encodeCall(c.topUp, (id)));
        if (ok != (block.number < s.expiresAt)) fail("topUp disagrees with the model");
        if (ok) deposited[id] += amount;
    }

    function extend(uint256 seed, uint32 by) external tracked {
        calls["extend"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        uint32 to = uint32(s.expiresAt + bound(by, 0, 100));
        (bool ok,) = asPayer(s.payer, 0, abi.encodeCall(c.extend, (id, to)));
        if (ok != (to > s.expiresAt)) fail("extend disagrees with the model");
    }

    function rotate(uint256 seed, uint256 authSeed) external tracked {
        calls["rotate"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        uint256 pi = s.payer == payers[0] ? 0 : s.payer == payers[1] ? 1 : 2;
        (bool ok, bytes memory ret) = asPayer(s.payer, 0, abi.encodeCall(c.rotate, (id, authorityFor(pi, authSeed))));
        if (ok != (block.number < s.expiresAt)) return fail("rotate disagrees with the model");
        if (ok && abi.decode(ret, (uint32)) != block.number + s.notice) fail("rotate: effective block");
        if (ok) outcomes["rotated"]++;
    }

    function claimExpired(uint256 seed) external tracked {
        calls["claimExpired"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        uint256 before = credit(s.payer);
        (bool ok,) = asPayer(s.payer, 0, abi.encodeCall(c.claimExpired, (id)));
        if (ok != (block.number >= s.expiresAt)) return fail("claimExpired disagrees with the model");
        if (!ok) return;
        if (credit(s.payer) - before != s.deposit - s.settled) fail("claimExpired: payer got other than deposit - settled");
        refundedOut[id] += credit(s.payer) - before;
        outcomes["claimed"]++;
        finish(id);
    }

    // ---------------------------------------------------------------- payee's actions

    struct Receipt {
        uint32 epoch;
        uint128 amount;
        bytes signature;
        bool member;
        SlotpayChannels.MembershipProof proof;
        bool valid; // signed by the authority in force, for the current epoch
    }

    /// A receipt for channel `id` as it stands: usually valid, sometimes signed by the
    /// wrong key or for the wrong epoch; an amount around what the deposit allows.
    function receiptFor(uint64 id, SlotpayChannels.Channel memory s, uint256 seed, uint256 amountSeed)
        internal
        view
        returns (Receipt memory r)
    {
        r.epoch = seed % 16 == 0 ? s.epoch + 1 : s.epoch;
        uint256 room = s.deposit - s.base;
        r.amount = uint128(bound(amountSeed, 0, room + 2));
        bool wrongKey = (seed >> 4) % 8 == 0;
        uint256 signer;
        if (s.authority.kind == GROUP) {
            Group storage g = s.authority.value == rootOf(groupA) ? groupA : groupB;
            uint256 first = s.authority.value == rootOf(groupA) ? GROUP_A_FIRST : GROUP_B_FIRST;
            uint256 index = (seed >> 8) % g.members.length;
            r.member = true;
            r.proof = proofOf(g, index);
            signer = wrongKey ? clientKeys[0] : key(memberName(first + index));
            r.valid = !wrongKey;
        } else if (s.authority.kind == ACCOUNT) {
            uint256 k = s.payer == payers[0] ? payerKeys[0] : s.payer == payers[1] ? payerKeys[1] : 0;
            signer = wrongKey || k == 0 ? clientKeys[1] : k;
            r.valid = !wrongKey && k != 0;
        } else if (s.authority.kind == DELEGATE) {
            uint256 right;
            for (uint256 i; i < 3; i++) {
                if (bytes32(uint256(uint160(vm.addr(clientKeys[i])))) == s.authority.value) right = clientKeys[i];
            }
            signer = wrongKey ? (right == clientKeys[2] ? clientKeys[0] : clientKeys[2]) : right;
            r.valid = !wrongKey;
        } else {
            signer = clientKeys[0];
            r.valid = false;
        }
        r.valid = r.valid && r.epoch == s.epoch;
        r.signature = signFor(address(c), signer, id, r.epoch, r.amount);
    }

    function settleData(uint64 id, Receipt memory r) internal view returns (bytes memory) {
        return r.member
            ? abi.encodeCall(c.settleMember, (id, r.epoch, r.amount, r.signature, r.proof))
            : abi.encodeCall(c.settle, (id, r.epoch, r.amount, r.signature));
    }

    function settle(uint256 seed, uint256 sigSeed, uint256 amountSeed) external tracked {
        calls["settle"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        Receipt memory r = receiptFor(id, s, sigSeed, amountSeed);
        uint256 total = uint256(s.base) + r.amount;
        if (r.valid && total <= s.deposit && total > bestSigned[id]) bestSigned[id] = total;
        bool expected = r.valid && block.number < s.expiresAt && total <= s.deposit && total > s.settled;
        uint256 before = credit(s.payee);
        bytes memory data = settleData(id, r);
        vm.prank(s.payee);
        (bool ok,) = address(c).call(data);
        if (ok != expected) return fail("settle disagrees with the model");
        if (!ok) return refused();
        uint256 got = credit(s.payee) - before;
        if (got != total - s.settled) fail("settle paid other than the difference to settled");
        paidOut[id] += got;
        lastReceipt[id] = data;
        outcomes["settled"]++;
    }

    /// The last receipt that settled, again: it must pay nothing.
    function replay(uint256 seed) external tracked {
        calls["replay"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id] || lastReceipt[id].length == 0) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        uint256 before = credit(s.payee);
        vm.prank(s.payee);
        (bool ok,) = address(c).call(lastReceipt[id]);
        if (ok || credit(s.payee) != before) fail("a receipt paid twice");
    }

    function close(uint256 seed, uint256 sigSeed, uint256 amountSeed) external tracked {
        calls["close"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        Receipt memory r = receiptFor(id, s, sigSeed, amountSeed);
        uint256 total = uint256(s.base) + r.amount;
        if (r.valid && total <= s.deposit && total > bestSigned[id]) bestSigned[id] = total;
        bool expected = r.valid && block.number < s.expiresAt && total <= s.deposit && total >= s.settled;
        (uint256 payeeBefore, uint256 payerBefore) = (credit(s.payee), credit(s.payer));
        bytes memory data = r.member
            ? abi.encodeCall(c.closeMember, (id, r.epoch, r.amount, r.signature, r.proof))
            : abi.encodeCall(c.close, (id, r.epoch, r.amount, r.signature));
        vm.prank(s.payee);
        (bool ok,) = address(c).call(data);
        if (ok != expected) return fail("close disagrees with the model");
        if (!ok) return refused();
        uint256 paid = credit(s.payee) - payeeBefore;
        uint256 refunded = credit(s.payer) - payerBefore;
        if (paid != total - s.settled) fail("close paid other than claimed - settled");
        if (refunded != s.deposit - total) fail("close refunded other than deposit - claimed");
        paidOut[id] += paid;
        refundedOut[id] += refunded;
        outcomes["closed"]++;
        finish(id);
    }

    function closeSettled(uint256 seed) external tracked {
        calls["closeSettled"]++;
        (uint64 id, bool any) = pick(seed);
        if (!any || closed[id]) return;
        SlotpayChannels.Channel memory s = c.channel(id);
        uint256 before = credit(s.payer);
        vm.prank(s.payee);
        (bool ok,) = address(c).call(abi.encodeCall(c.closeSettled, (id)));
        if (ok != (block.number < s.expiresAt)) return fail("closeSettled disagrees with the model");
        if (!ok) return;
        if (credit(s.payer) - before != s.deposit - s.settled) fail("closeSettled refund");
        refundedOut[id] += credit(s.payer) - before;
        outcomes["closedSettled"]++;
        finish(id);
    }

    function finish(uint64 id) internal {
        closed[id] = true;
        if (c.channel(id).payer != address(0)) fail("a closed channel is still stored");
        if (paidOut[id] + refundedOut[id] != deposited[id]) fail("paid + refunded != deposit");
    }

    // ---------------------------------------------------------------- anyone's actions

    function withdraw(uint256 actorSeed, bool elsewhere) external tracked {
        calls["withdraw"]++;
        address who = actors()[actorSeed % 6];
        uint256 owedBefore = c.owed(who);
        address to = elsewhere ? payees[0] : who;
        uint256 before = credit(to);
        vm.prank(who);
        // Bounded: a withdrawal forwards all gas, which the burning wallet would take.
        (bool ok,) = address(c).call{gas: 300_000}(abi.encodeCall(c.withdrawTo, (to)));
        if (owedBefore == 0 && ok) fail("withdrew nothing owed");
        if (ok && to != who && credit(to) - before != owedBefore) fail("withdrawTo paid other than owed");
        if (ok && c.owed(who) != 0) fail("owed after withdrawal");
        if (ok) outcomes["withdrawn"]++;
    }

    function setModes(uint256 payerMode, uint256 payeeMode) external tracked {
        calls["setModes"]++;
        payerWallet.setMode(payerMode % 2 == 0 ? Wallet.Mode.Accept : Wallet.Mode.Revert);
        uint256 m = payeeMode % 3;
        payeeWallet.setMode(m == 0 ? Wallet.Mode.Accept : m == 1 ? Wallet.Mode.Revert : Wallet.Mode.Burn);
    }

    function roll(uint256 blocks) external tracked {
        calls["roll"]++;
        vm.roll(block.number + bound(blocks, 1, 40));
    }

    // ---------------------------------------------------------------- checks for the invariants

    /// Σ over open channels of (deposit - settled), and Σ of what is owed.
    function liabilities() external view returns (uint256 open_, uint256 owed_) {
        for (uint256 i; i < ids.length; i++) {
            if (closed[ids[i]]) continue;
            SlotpayChannels.Channel memory s = c.channel(ids[i]);
            open_ += s.deposit - s.settled;
        }
        address[6] memory all = actors();
        for (uint256 i; i < 6; i++) owed_ += c.owed(all[i]);
    }

    /// Settled only grows (recorded here), and what each channel paid its payee is at
    /// most the best receipt its authorities signed and what it holds.
    function checkChannels() external view returns (string memory) {
        for (uint256 i; i < ids.length; i++) {
            uint64 id = ids[i];
            if (paidOut[id] > bestSigned[id]) return "payee got more than the best signed receipt";
            if (paidOut[id] + refundedOut[id] > deposited[id]) return "paid out more than deposited";
            if (closed[id]) {
                if (paidOut[id] + refundedOut[id] != deposited[id]) return "closed: paid + refunded != deposit";
                continue;
            }
            SlotpayChannels.Channel memory s = c.channel(id);
            if (s.settled != paidOut[id]) return "settled != what the payee got";
            if (s.deposit != deposited[id]) return "deposit != what was put in";
        }
        return "";
    }

    receive() external payable {}
}

contract SlotpayInvariants is Fixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    Handler internal h;

    function setUp() public {
        vm.roll(100);
        h = new Handler();
        // Every run starts with one channel of each construction and payer kind.
        for (uint256 i; i < 6; i++) h.open(i, i, i, 10 ether, 150, 5);
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(h);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory s = new bytes4[](13);
        s[0] = Handler.open.selector;
        s[1] = Handler.topUp.selector;
        s[2] = Handler.extend.selector;
        s[3] = Handler.rotate.selector;
        s[4] = Handler.claimExpired.selector;
        s[5] = Handler.settle.selector;
        s[6] = Handler.replay.selector;
        s[7] = Handler.close.selector;
        s[8] = Handler.closeSettled.selector;
        s[9] = Handler.withdraw.selector;
        s[10] = Handler.setModes.selector;
        s[11] = Handler.roll.selector;
        s[12] = Handler.settle.selector; // settles twice as often as the rest
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector(address(h), s);
    }

    /// The contract holds exactly what it owes: every open channel's unsettled deposit and
    /// every deferred payment.
    function invariant_conservation() public view {
        (uint256 open_, uint256 owed_) = h.liabilities();
        eq(address(h.c()).balance, open_ + owed_, "balance == sum(deposit - settled) + sum(owed)");
    }

    /// No receipt pays twice, settled only grows, the payee gets at most the best signed
    /// amount, the payer exactly deposit - claimed, and every settle and close agrees with
    /// the model; closed channels split their deposit exactly.
    function invariant_channels_agree_with_the_model() public view {
        eq(h.violations(), 0, h.lastViolation());
        string memory broken = h.checkChannels();
        eq(bytes(broken).length, 0, broken);
    }

    /// The handler is not vacuous: a fixed pseudo-random sequence of its actions (the
    /// same mix the invariant runs draw from) makes settles, closes, claims and deferred
    /// payments succeed.
    function test_the_handler_exercises_every_outcome() public {
        uint256 r = 1;
        for (uint256 i; i < 1500; i++) {
            r = uint256(keccak256(abi.encode(r)));
            uint256 a = r % 12;
            uint256 x = r >> 8;
            uint256 y = r >> 80;
            uint256 z = r >> 160;
            if (a == 0) h.open(x, y, z, x >> 40, uint32(y >> 40), uint32(z >> 40));
            else if (a == 1) h.topUp(x, y);
            else if (a == 2) h.extend(x, uint32(y));
            else if (a == 3) h.rotate(x, y);
            else if (a == 4) h.claimExpired(x);
            else if (a == 5 || a == 6) h.settle(x, y, z);
            else if (a == 7) h.replay(x);
            else if (a == 8) h.close(x, y, z);
            else if (a == 9) h.closeSettled(x);
            else if (a == 10) h.withdraw(x, y % 2 == 0);
            else if (r % 2 == 0) h.setModes(x, y);
            else h.roll(x % 8);
        }
        eq(h.violations(), 0, h.lastViolation());
        string memory broken = h.checkChannels();
        eq(bytes(broken).length, 0, broken);
        string[8] memory outcomes =
            ["settled", "closed", "closedSettled", "claimed", "deferred", "withdrawn", "rotated", "refused"];
        for (uint256 i; i < outcomes.length; i++) {
            isTrue(h.outcomes(outcomes[i]) > 0, string.concat("no ", outcomes[i]));
        }
    }
}
