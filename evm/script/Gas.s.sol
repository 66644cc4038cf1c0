// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "../test/lib/Vm.sol";
import {Fixture} from "../test/lib/Fixture.sol";
import {Wallet} from "../test/lib/Wallet.sol";
import {SlotpayChannels} from "../src/SlotpayChannels.sol";

/// Every message as a real transaction on a node (anvil), for `scripts/evm.sh gas`:
/// `forge script script/Gas.s.sol --sig 'phase1()' --broadcast --slow`, blocks mined,
/// then `--sig 'phase2()'`. Each transaction's label is written, in order, to
/// cache/gas-labels-<phase>.txt; tools/gas-report.mjs matches them with the broadcast
/// receipts and traces.
///
/// Accounts are anvil's dev accounts (its fixed mnemonic): 0 deploys, 1 is the payer
/// (and the Account construction's signer), 2 is the payee (the AS). Client and member
/// keys only sign receipts. The constructions: the payer's own key, a delegated key, a
/// group of 2 and a group of 2^10 (full-depth proofs of 10 siblings).
contract Gas is Fixture {
    uint256 internal constant DEPLOYER = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant PAYER = 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d;
    uint256 internal constant PAYEE = 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a;
    uint32 internal constant NOTICE = 5;
    /// Blocks scripts/evm.sh mines between the phases: past every rotation's notice and
    /// the short channels' expiry.
    uint32 internal constant SHORT_LIFE = 120;
    uint256 internal constant DEPOSIT = 0.1 ether;

    string[] internal labels;
    SlotpayChannels internal c;
    Wallet internal w;

    function construction(uint256 k) internal pure returns (string memory) {
        return ["account", "delegate", "group of 2", "group of 2^10"][k];
    }

    function groupOf(uint256 k, uint256 epoch) internal pure returns (Group memory) {
        // Epoch 1's group differs by its caps: another root.
        return uniformGroup(k == 2 ? 2 : 1024, uint128(1 ether + epoch));
    }

    function authority(uint256 k, uint256 epoch) internal pure returns (SlotpayChannels.Authority memory) {
        if (k == 0) return account(vm.addr(PAYER));
        if (k == 1) return delegate(addrOf(epoch == 0 ? "gas-client" : "gas-client2"));
        return group(rootOf(groupOf(k, epoch)));
    }

    function tx(uint256 signer, string memory label) internal {
        labels.push(label);
        vm.broadcast(signer);
    }

    /// The channel ids phase 1 opens, in order: four per construction, then one by a
    /// contract payer.
    function idOf(uint256 k, uint256 which) internal pure returns (uint64) {
        return uint64(4 * k + which);
    }

    function settleOrClose(uint256 k, uint64 id, uint32 epoch, uint128 amount, bool closing, string memory label)
        internal
    {
        uint256 signer;
        if (k == 0) signer = PAYER;
        else if (k == 1) signer = key(epoch == 0 ? "gas-client" : "gas-client2");
        else signer = key(memberName(k == 2 ? 1 : 777));
        bytes memory s = signFor(address(c), signer, id, epoch, amount);
        tx(PAYEE, string.concat(label, "|", construction(k)));
        if (k < 2) {
            if (closing) c.close(id, epoch, amount, s);
            else c.settle(id, epoch, amount, s);
        } else {
            SlotpayChannels.MembershipProof memory p = proofOf(groupOf(k, epoch), k == 2 ? 1 : 777);
            if (closing) c.closeMember(id, epoch, amount, s, p);
            else c.settleMember(id, epoch, amount, s, p);
        }
    }

    function addresses() internal {
        c = SlotpayChannels(vm.computeCreateAddress(vm.addr(DEPLOYER), 0));
        w = Wallet(payable(vm.computeCreateAddress(vm.addr(DEPLOYER), 1)));
    }

    function phase1() external {
        address payee = vm.addr(PAYEE);
        tx(DEPLOYER, "deploy|-");
        c = new SlotpayChannels();
        tx(DEPLOYER, "deploy the test wallet|-");
        w = new Wallet();
        addresses();
        uint32 far = uint32(block.number + 1_000_000);
        for (uint256 k; k < 4; k++) {
            string memory name = construction(k);
            uint64 a = idOf(k, 0);
            tx(PAYER, string.concat("open|", name));
            c.open{value: DEPOSIT}(payee, authority(k, 0), far, NOTICE);
            tx(PAYER, string.concat("topUp|", name));
            c.topUp{value: DEPOSIT}(a);
            tx(PAYER, string.concat("extend|", name));
            c.extend(a, far + 1);
            settleOrClose(k, a, 0, 0.01 ether, false, "settle (first)");
            settleOrClose(k, a, 0, 0.02 ether, false, "settle (again)");
            tx(PAYER, string.concat("rotate|", name));
            c.rotate(a, authority(k, 1));
            tx(PAYER, string.concat("open (again)|", name));
            c.open{value: DEPOSIT}(payee, authority(k, 0), far, NOTICE);
            settleOrClose(k, idOf(k, 1), 0, 0.03 ether, true, "close (one receipt)");
            tx(PAYER, string.concat("open (again)|", name));
            c.open{value: DEPOSIT}(payee, authority(k, 0), far, NOTICE);
            tx(PAYEE, string.concat("closeSettled (no receipt)|", name));
            c.closeSettled(idOf(k, 2));
            tx(PAYER, string.concat("open (short expiry)|", name));
            c.open{value: DEPOSIT}(payee, authority(k, 0), uint32(block.number + SHORT_LIFE), NOTICE);
        }
        // A payer that is a contract refusing payments: its refund is owed.
        tx(PAYER, "open by a contract payer (through its exec)|delegate");
        w.exec{value: DEPOSIT}(address(c), abi.encodeCall(c.open, (payee, authority(1, 0), far, NOTICE)));
        tx(PAYER, "the wallet refuses payments|-");
        w.setMode(Wallet.Mode.Revert);
        settleOrClose(1, 16, 0, 0.04 ether, true, "close (refund refused: owed)");
        write("phase1");
    }

    function phase2() external {
        addresses();
        for (uint256 k; k < 4; k++) {
            string memory name = construction(k);
            settleOrClose(k, idOf(k, 0), 1, 0.01 ether, false, "settle (a rotation comes into force)");
            settleOrClose(k, idOf(k, 0), 1, 0.05 ether, true, "close (after settles and a rotation)");
            tx(PAYER, string.concat("claimExpired|", name));
            c.claimExpired(idOf(k, 3));
        }
        tx(PAYER, "the wallet accepts payments|-");
        w.setMode(Wallet.Mode.Accept);
        tx(PAYER, "withdraw (through the wallet's exec)|delegate");
        w.exec(address(c), abi.encodeCall(c.withdraw, ()));
        write("phase2");
    }

    function write(string memory phase) internal {
        string memory all;
        for (uint256 i; i < labels.length; i++) all = string.concat(all, labels[i], "\n");
        vm.writeFile(string.concat("cache/gas-labels-", phase, ".txt"), all);
    }
}
