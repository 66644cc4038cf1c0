// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// A contract account that acts as payer or payee and misbehaves on receive as told:
/// accepts, reverts, burns every unit of gas it is given, or calls back into the
/// contract that pays it. A cheap reentry (mode, target and argument in one storage
/// word, the outcome in transient storage at 100 gas a word) fits in a push payment's
/// gas, so the contract's lock, not the gas limit, is what it meets; ReenterWith replays
/// any stored call (it needs a forwarding of all gas, as withdraw gives).
contract Wallet {
    enum Mode {
        Accept,
        Revert,
        Burn,
        ReenterCloseSettled,
        ReenterWithdraw,
        ReenterWith
    }

    // One storage word.
    Mode public mode;
    address public target;
    uint64 public arg;
    // Only for ReenterWith.
    bytes public reentry;

    function setMode(Mode m) external {
        mode = m;
    }

    /// On receive, call `to`: closeSettled(id) or withdraw() as `m` says.
    function setReentry(Mode m, address to, uint64 id) external {
        (mode, target, arg) = (m, to, id);
    }

    /// On receive, call `to` with `data`.
    function setReentryWith(address to, bytes calldata data) external {
        (mode, target, reentry) = (Mode.ReenterWith, to, data);
    }

    /// Calls `to` with `data` and the value sent, bubbling a revert up unchanged.
    function exec(address to, bytes calldata data) external payable returns (bytes memory ret) {
        bool ok;
        (ok, ret) = to.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// Whether a reentry was attempted in this transaction, whether it succeeded, and
    /// the first 4 bytes it returned (an error's selector when it failed).
    function reentryOutcome() external view returns (bool attempted, bool succeeded, bytes4 selector) {
        assembly {
            attempted := tload(0)
            succeeded := tload(1)
            selector := tload(2)
        }
    }

    receive() external payable {
        Mode m = mode;
        if (m == Mode.Accept) return;
        if (m == Mode.Revert) revert("Wallet: no payments");
        if (m == Mode.Burn) {
            while (true) {}
        }
        bytes memory data;
        if (m == Mode.ReenterCloseSettled) data = abi.encodeWithSignature("closeSettled(uint64)", arg);
        else if (m == Mode.ReenterWithdraw) data = abi.encodeWithSignature("withdraw()");
        else data = reentry;
        (bool ok, bytes memory ret) = target.call(data);
        bytes4 sel = ret.length >= 4 ? bytes4(ret) : bytes4(0);
        assembly {
            tstore(0, 1)
            tstore(1, ok)
            tstore(2, sel)
        }
    }
}
