// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title slotpay payment channels on an EVM chain
/// @notice Many payment channels in one contract, with the rules of `protocol::channel`
/// (the Rust crate every other part of slotpay uses) and the interface of the ink!
/// contract (`contract/lib.rs`, `interface/`): a payer opens a channel with a deposit for
/// one payee (the Authorization Server) and binds it to an authority that signs
/// cumulative receipts (its own key, a delegated client key, or the Merkle root of a
/// group of client keys with spending caps). The payee settles the best receipt and
/// keeps the channel open, or closes it with one receipt or none; the payer tops up,
/// extends, rotates or revokes the authority after the channel's notice period, and takes
/// back what is left once the channel has expired.
///
/// Money. `deposit` is everything the payer put in; `settled` is what the payee has been
/// paid so far. A receipt of epoch `e` for `amount` claims `base + amount` in total
/// (`base`: what was settled when epoch `e` began) and is accepted only if that is at
/// most `deposit`; a settle pays the difference to `settled`; a close pays it too and
/// refunds `deposit - claimed` to the payer; from `expiresAt` on only the payer may act
/// on the money and takes `deposit - settled`.
///
/// Receipts (EIP-712 typed data, what wallets show when they sign):
///   domain    `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`
///             with name "slotpay", version "1", this chain's id and this contract;
///   type      `Receipt(uint64 channel,uint32 epoch,uint128 amount)`;
///   digest    keccak256("\x19\x01" ‖ domainSeparator ‖ keccak256(abi.encode(RECEIPT_TYPEHASH, channel, epoch, amount))).
/// The separator is computed at deployment and recomputed whenever `block.chainid` (or
/// the executing address) differs from the deployment's, as OpenZeppelin's EIP712 does,
/// so a receipt never verifies on a fork with another chain id.
///
/// Signatures: exactly 65 bytes `r ‖ s ‖ v`, one encoding only: `v` ∈ {27, 28} (0 and 1
/// are refused: no normalisation), 1 ≤ r < n, 1 ≤ s ≤ n/2 (low s), n the secp256k1
/// order; an ecrecover that yields address(0) is refused. Each refusal has its error.
///
/// Authorities, `Authority{kind, value}`:
///   kind 0 Account:  value = the payer's address, left-padded to 32 bytes; the receipt
///                    signer must be the payer. Only the payer's own address is accepted.
///   kind 1 Delegate: value = the client's address, left-padded (upper 12 bytes zero, not 0).
///   kind 2 Group:    value = the Merkle root of the members (not 0).
///   kind 3 Revoked:  value = 0; no receipt is authorized.
///
/// Groups: leaf = keccak256(abi.encodePacked(uint8(0x00), address member, uint128 cap))
/// (37 bytes, cap big-endian); inner node = keccak256(abi.encodePacked(uint8(0x01),
/// bytes32 left, bytes32 right)). A proof is (cap, leftSiblings, siblings): the sibling
/// hashes bottom-up, bit i of leftSiblings set when sibling i is on the left; at most 32
/// siblings; bits at or above the length must be zero (one encoding per path). A level
/// with an odd number of nodes promotes its last node unpaired (tree building, off-chain).
/// The contract checks membership and that the receipt's claim fits the deposit. The
/// member's cap is in the proof because its leaf commits to it, but the contract sees one
/// receipt only and does not enforce it: the AS keeps each member's spending in an epoch
/// within its cap (as on the ink! contract).
///
/// Payments out: checks, then effects, then interactions, under a reentrancy lock. A push
/// payment forwards PAYMENT_GAS; a payment that fails (a contract that reverts on
/// receive, or burns its gas) is recorded as owed and emits PaymentDeferred: the
/// operation goes through, and the owner takes it later with withdraw/withdrawTo. The
/// payee's payment is made before, and never depends on, the payer's refund.
///
/// Errors, against `interface::Error` (same name unless stated): ChannelNotFound,
/// NotPayer, NotPayee, ZeroDeposit, PayeeIsPayer, ExpiryNotInFuture,
/// AccountAuthorityNotPayer, ChannelExpired, NotExpired, ExpiryNotLater, DepositOverflow
/// (also: msg.value above uint128), WrongEpoch (carries claimed and current),
/// AmountExceedsDeposit, NothingToSettle, BelowSettled, ChannelIdsExhausted,
/// InvalidRecoveryId (v not 27/28; ink! also takes 0/1), SignatureROutOfRange,
/// SignatureSOutOfRange, SignatureHighS, SignatureRecoveryFailed, NotPayerAccount,
/// NotDelegate, MissingProof (settle/close on a group channel), UnexpectedProof
/// (settleMember/closeMember on another), ProofTooLong, NonCanonicalProof, NotMember,
/// Revoked, NothingToWithdraw, WithdrawFailed. EVM only: InvalidSignatureLength (ink!
/// takes a fixed [u8; 65]), InvalidAuthority (a kind above 3 or a value that is not the
/// kind's one encoding), BlockNumberOverflow (block.number above uint32), Reentered.
///
/// Storage, per channel (a mapping of six words; only non-zero words are ever written):
///   word 0  payer (160 bits) | expiresAt << 160 | notice << 192 | epoch << 224
///   word 1  payee (160 bits) | kind << 160 | pendingKind << 168 | effectiveAt << 176
///           (pendingKind 0: no rotation pending, else the announced kind + 1)
///   word 2  deposit (128 bits) | settled << 128
///   word 3  the authority's value (zero for Account and Revoked)
///   word 4  base (zero in epoch 0: only read when epoch > 0)
///   word 5  the pending rotation's value (zero unless a Delegate or Group is pending)
/// An account channel is three words; a delegate or group channel four.
contract SlotpayChannels {
    // ------------------------------------------------------------------ types

    /// @notice A channel's signing authority (see the contract's notice for each kind).
    struct Authority {
        uint8 kind;
        bytes32 value;
    }

    /// @notice A group member's cap and its path to the root (see the contract's notice).
    struct MembershipProof {
        uint128 cap;
        uint32 leftSiblings;
        bytes32[] siblings;
    }

    /// @notice A channel as it stands at the current block (a rotation whose block has
    /// come is shown in force), in the field order of `protocol::Channel`. The pending
    /// rotation is `rotationPending` with its authority and first block.
    struct Channel {
        address payer;
        address payee;
        Authority authority;
        uint32 epoch;
        uint128 deposit;
        uint128 settled;
        uint128 base;
        uint32 expiresAt;
        uint32 notice;
        bool rotationPending;
        Authority rotationAuthority;
        uint32 rotationEffectiveAt;
    }

    /// A channel in memory: its fields and the stored words they came from.
    struct Ch {
        address payer;
        uint32 expiresAt;
        uint32 notice;
        uint32 epoch;
        address payee;
        uint8 kind;
        uint8 pendingKind;
        uint32 effectiveAt;
        uint128 deposit;
        uint128 settled;
        bytes32 value;
        uint128 base;
        bytes32 pendingValue;
        // The stored words (a word not read is zero by the layout's rules).
        uint256 o0;
        uint256 o1;
        uint256 o2;
        bytes32 o3;
        uint256 o4;
        bytes32 o5;
    }

    /// A channel in storage (see the contract's notice for each word).
    struct Words {
        uint256 w0;
        uint256 w1;
        uint256 w2;
        bytes32 value;
        uint256 base;
        bytes32 pendingValue;
    }

    // ------------------------------------------------------------------ constants

    /// @notice Authority kind: the payer's own key.
    uint8 public constant ACCOUNT = 0;
    /// @notice Authority kind: a delegated client key.
    uint8 public constant DELEGATE = 1;
    /// @notice Authority kind: the Merkle root of a group of client keys with caps.
    uint8 public constant GROUP = 2;
    /// @notice Authority kind: nobody; no receipt counts.
    uint8 public constant REVOKED = 3;

    /// @notice Deepest membership proof accepted (groups of up to 2^32 keys).
    uint256 public constant MAX_PROOF_DEPTH = 32;

    /// @notice Gas forwarded with every push payment (the CALL adds its 2,300 stipend).
    /// An externally owned account uses none; a Safe-style proxy wallet needs about 5,000
    /// (a delegatecall to a cold implementation, 2,600, and its receive event); 10,000 +
    /// 2,300 leaves room for such wallets and bounds what a recipient can burn of the
    /// caller's gas (a payer's contract cannot make the payee's close expensive). A
    /// recipient that needs more is paid through `owed` and withdraws with all the gas it
    /// likes.
    uint256 public constant PAYMENT_GAS = 10_000;

    /// @notice keccak256("Receipt(uint64 channel,uint32 epoch,uint128 amount)").
    bytes32 public constant RECEIPT_TYPEHASH = keccak256("Receipt(uint64 channel,uint32 epoch,uint128 amount)");

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("slotpay");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// secp256k1's group order n and floor(n / 2).
    uint256 private constant CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 private constant MASK_128 = type(uint128).max;
    uint256 private constant MASK_160 = type(uint160).max;

    // ------------------------------------------------------------------ state

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;
    address private immutable _cachedThis;

    mapping(uint64 => Words) private _channels;
    mapping(address => uint128) private _owed;
    /// Only grows: an id is never reused, so a receipt for a closed channel never revives.
    uint64 private _nextId;
    /// Set at deployment so that the counter's slot is never zero: every open then pays a
    /// non-zero to non-zero write (5,000 gas), the first one included (not 22,100).
    bool private _deployed = true;
    /// 1 while a message runs (a whole word: a packed transient bool would cost a read per write).
    uint256 private transient _locked;

    // ------------------------------------------------------------------ events

    /// @notice A channel was opened. `authorityValue` as given (the payer for Account).
    event Opened(
        uint64 indexed channel,
        address payer,
        address indexed payee,
        uint8 authorityKind,
        bytes32 authorityValue,
        uint128 deposit,
        uint32 expiresAt,
        uint32 notice
    );
    /// @notice The payer added to a channel's deposit; `deposit` is the new total.
    event ToppedUp(uint64 indexed channel, uint128 deposit);
    /// @notice The payer moved a channel's expiry to `expiresAt`.
    event Extended(uint64 indexed channel, uint32 expiresAt);
    /// @notice The payer announced a new authority: from `effectiveAt` on, only its
    /// receipts count, in epoch `epoch`.
    event RotationAnnounced(
        uint64 indexed channel, uint8 authorityKind, bytes32 authorityValue, uint32 epoch, uint32 effectiveAt
    );
    /// @notice The payee was paid `paid`, bringing the settled total to `settled`; the
    /// channel stays open.
    event Settled(uint64 indexed channel, uint32 epoch, uint128 settled, uint128 paid);
    /// @notice The payee closed the channel: `paid` to it now (on top of earlier
    /// settlements), `refunded` to the payer. The channel is deleted.
    event Closed(uint64 indexed channel, uint128 paid, uint128 refunded);
    /// @notice The payer took back what was left of an expired channel; it is deleted.
    event ExpiredClaimed(uint64 indexed channel, uint128 refunded);
    /// @notice A payment of `amount` to `account` (for `channel`) failed: it is owed,
    /// `owed` in all, for `account` to withdraw. The operation that paid went through.
    event PaymentDeferred(address indexed account, uint64 indexed channel, uint128 amount, uint128 owed);
    /// @notice `account` withdrew `amount` it was owed, paid to `to`.
    event Withdrawn(address indexed account, address to, uint128 amount);

    // ------------------------------------------------------------------ errors

    /// @notice No open channel has this id.
    error ChannelNotFound();
    /// @notice Only the channel's payer may do this.
    error NotPayer();
    /// @notice Only the channel's payee may do this.
    error NotPayee();
    /// @notice `open` or `topUp` without value.
    error ZeroDeposit();
    /// @notice The payer cannot be its own payee.
    error PayeeIsPayer();
    /// @notice `open` with an expiry that is not after the current block.
    error ExpiryNotInFuture();
    /// @notice An Account authority naming another address than the payer.
    error AccountAuthorityNotPayer();
    /// @notice The channel has expired: it can no longer be settled, closed, topped up or rotated.
    error ChannelExpired();
    /// @notice `claimExpired` before the channel's expiry.
    error NotExpired();
    /// @notice `extend` must move the expiry later.
    error ExpiryNotLater();
    /// @notice The deposit would not fit in uint128.
    error DepositOverflow();
    /// @notice The receipt is for epoch `claimed`; the channel is in epoch `current`.
    error WrongEpoch(uint32 claimed, uint32 current);
    /// @notice The receipt claims more than the deposit.
    error AmountExceedsDeposit();
    /// @notice `settle` with a receipt that claims nothing above what was settled.
    error NothingToSettle();
    /// @notice `close` with a receipt below what was already settled.
    error BelowSettled();
    /// @notice Channel ids are used up (2^64 - 1 channels).
    error ChannelIdsExhausted();
    /// @notice Signature length is not 65 bytes.
    error InvalidSignatureLength();
    /// @notice Signature recovery id `v` is not 27 or 28.
    error InvalidRecoveryId(uint8 v);
    /// @notice Signature r is zero or not below the curve order.
    error SignatureROutOfRange();
    /// @notice Signature s is zero or not below the curve order.
    error SignatureSOutOfRange();
    /// @notice Signature s is in the upper half of the order (a malleated signature).
    error SignatureHighS();
    /// @notice No address recovers from the signature.
    error SignatureRecoveryFailed();
    /// @notice The signer is not the payer.
    error NotPayerAccount();
    /// @notice The signer is not the delegated key.
    error NotDelegate();
    /// @notice A group channel was settled or closed without a membership proof.
    error MissingProof();
    /// @notice A membership proof was given for a channel that is not a group.
    error UnexpectedProof();
    /// @notice The membership proof is longer than MAX_PROOF_DEPTH.
    error ProofTooLong();
    /// @notice The membership proof's direction bits are set at or above its length.
    error NonCanonicalProof();
    /// @notice The signer, with the proof's cap, is not a member of the channel's group.
    error NotMember();
    /// @notice The channel's keys are revoked: no receipt counts.
    error Revoked();
    /// @notice `withdraw` by an account the contract owes nothing.
    error NothingToWithdraw();
    /// @notice The withdrawal's transfer failed; the balance stays owed.
    error WithdrawFailed();
    /// @notice An authority kind above 3, or a value that is not the kind's one encoding.
    error InvalidAuthority();
    /// @notice block.number no longer fits the protocol's uint32 block numbers.
    error BlockNumberOverflow();
    /// @notice A call into the contract while it is paying out.
    error Reentered();

    // ------------------------------------------------------------------ construction

    /// @notice A contract whose receipts are bound to this chain and this address.
    constructor() {
        _cachedChainId = block.chainid;
        _cachedThis = address(this);
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    modifier nonReentrant() {
        if (_locked != 0) revert Reentered();
        _locked = 1;
        _;
        _locked = 0;
    }

    // ------------------------------------------------------------------ payer's messages

    /// @notice Opens a channel with `msg.value` as deposit, for `payee`, bound to
    /// `authority`, expiring at block `expiresAt`; `notice`: blocks from a rotation's
    /// announcement to its effect, fixed for the channel's life.
    /// @return id The new channel's id (from a counter that only grows).
    function open(address payee, Authority calldata authority, uint32 expiresAt, uint32 notice)
        external
        payable
        nonReentrant
        returns (uint64 id)
    {
        uint32 now_ = _now();
        if (msg.value == 0) revert ZeroDeposit();
        if (msg.value > MASK_128) revert DepositOverflow();
        if (payee == msg.sender) revert PayeeIsPayer();
        if (expiresAt <= now_) revert ExpiryNotInFuture();
        bytes32 value = _checkAuthority(authority.kind, authority.value);
        id = _nextId;
        if (id == type(uint64).max) revert ChannelIdsExhausted();
        _nextId = id + 1;
        Words storage s = _channels[id];
        s.w0 = uint256(uint160(msg.sender)) | (uint256(expiresAt) << 160) | (uint256(notice) << 192);
        s.w1 = uint256(uint160(payee)) | (uint256(authority.kind) << 160);
        s.w2 = msg.value;
        if (value != 0) s.value = value;
        emit Opened(id, msg.sender, payee, authority.kind, authority.value, uint128(msg.value), expiresAt, notice);
    }

    /// @notice Adds `msg.value` to an open, unexpired channel's deposit (payer only).
    function topUp(uint64 id) external payable nonReentrant {
        Words storage s = _channels[id];
        uint256 w0 = s.w0;
        if (w0 == 0) revert ChannelNotFound();
        if (address(uint160(w0)) != msg.sender) revert NotPayer();
        if (msg.value == 0) revert ZeroDeposit();
        if (_now() >= uint32(w0 >> 160)) revert ChannelExpired();
        uint256 w2 = s.w2;
        uint256 deposit = w2 & MASK_128;
        if (msg.value > MASK_128 - deposit) revert DepositOverflow();
        deposit += msg.value;
        // A rotation that came due stays to be applied by the next settle, close or
        // rotate: nothing here depends on it, and it is applied with the same base.
        s.w2 = (w2 & ~MASK_128) | deposit;
        emit ToppedUp(id, uint128(deposit));
    }

    /// @notice Moves a channel's expiry later (payer only). Works on an expired,
    /// unclaimed channel too: the payer may revive it instead of claiming.
    function extend(uint64 id, uint32 expiresAt) external nonReentrant {
        Words storage s = _channels[id];
        uint256 w0 = s.w0;
        if (w0 == 0) revert ChannelNotFound();
        if (address(uint160(w0)) != msg.sender) revert NotPayer();
        _now();
        if (expiresAt <= uint32(w0 >> 160)) revert ExpiryNotLater();
        s.w0 = (w0 & ~(uint256(type(uint32).max) << 160)) | (uint256(expiresAt) << 160);
        emit Extended(id, expiresAt);
    }

    /// @notice Announces `authority` to take over the channel `notice` blocks from now
    /// (payer only, before expiry). It replaces a rotation still pending, with a fresh
    /// notice, so a payer can never shorten the payee's notice; a pending rotation whose
    /// block has come is brought into force first. Revoked revokes every key.
    /// @return effectiveAt The first block at which `authority` is in force (epoch + 1).
    function rotate(uint64 id, Authority calldata authority) external nonReentrant returns (uint32 effectiveAt) {
        Ch memory c = _load(id);
        if (c.payer != msg.sender) revert NotPayer();
        uint32 now_ = _now();
        if (now_ >= c.expiresAt) revert ChannelExpired();
        bytes32 value = _checkAuthority(authority.kind, authority.value);
        _advance(c, now_);
        uint256 at = uint256(now_) + c.notice;
        effectiveAt = at > type(uint32).max ? type(uint32).max : uint32(at);
        c.pendingKind = authority.kind + 1;
        c.effectiveAt = effectiveAt;
        c.pendingValue = value;
        _save(id, c);
        emit RotationAnnounced(id, authority.kind, authority.value, _inc(c.epoch), effectiveAt);
    }

    /// @notice Gives what is left of an expired channel (`deposit - settled`) back to the
    /// payer (payer only, from `expiresAt` on) and deletes the channel.
    function claimExpired(uint64 id) external nonReentrant {
        Ch memory c = _load(id);
        if (c.payer != msg.sender) revert NotPayer();
        if (_now() < c.expiresAt) revert NotExpired();
        uint128 refunded = c.deposit - c.settled;
        _delete(id, c);
        emit ExpiredClaimed(id, refunded);
        _pay(id, c.payer, refunded);
    }

    // ------------------------------------------------------------------ payee's messages

    /// @notice Pays the payee what a receipt of `epoch` for `amount` claims above what
    /// was settled; the channel stays open (payee only, before expiry). For account and
    /// delegate channels; a group channel takes `settleMember`.
    /// @return paid What this settle paid (the payee may find it owed, see PaymentDeferred).
    function settle(uint64 id, uint32 epoch, uint128 amount, bytes calldata signature)
        external
        nonReentrant
        returns (uint128 paid)
    {
        Ch memory c = _loadPayee(id);
        uint128 total = _settlement(c, epoch, amount);
        _authorizeKey(c, _recover(_digest(id, epoch, amount), signature));
        return _settle(id, c, total);
    }

    /// @notice `settle` for a group channel: the receipt's signer proves membership with
    /// `proof` (its cap as committed in its leaf, and its path to the channel's root).
    /// @return paid What this settle paid.
    function settleMember(
        uint64 id,
        uint32 epoch,
        uint128 amount,
        bytes calldata signature,
        MembershipProof calldata proof
    ) external nonReentrant returns (uint128 paid) {
        Ch memory c = _loadPayee(id);
        uint128 total = _settlement(c, epoch, amount);
        _authorizeMember(c, _recover(_digest(id, epoch, amount), signature), proof);
        return _settle(id, c, total);
    }

    /// @notice Closes a channel with a receipt of `epoch` for `amount` (payee only,
    /// before expiry): pays the payee what it claims above `settled`, refunds the payer
    /// `deposit - claimed`, deletes the channel. For account and delegate channels.
    function close(uint64 id, uint32 epoch, uint128 amount, bytes calldata signature) external nonReentrant {
        Ch memory c = _loadPayee(id);
        uint128 total = _payout(c, epoch, amount);
        _authorizeKey(c, _recover(_digest(id, epoch, amount), signature));
        _close(id, c, total);
    }

    /// @notice `close` for a group channel, with the signer's membership `proof`.
    function closeMember(
        uint64 id,
        uint32 epoch,
        uint128 amount,
        bytes calldata signature,
        MembershipProof calldata proof
    ) external nonReentrant {
        Ch memory c = _loadPayee(id);
        uint128 total = _payout(c, epoch, amount);
        _authorizeMember(c, _recover(_digest(id, epoch, amount), signature), proof);
        _close(id, c, total);
    }

    /// @notice Closes a channel without a receipt, at what was settled (payee only,
    /// before expiry): refunds the payer `deposit - settled`, deletes the channel.
    function closeSettled(uint64 id) external nonReentrant {
        Ch memory c = _loadPayee(id);
        uint32 now_ = _now();
        _advance(c, now_);
        if (now_ >= c.expiresAt) revert ChannelExpired();
        _close(id, c, c.settled);
    }

    // ------------------------------------------------------------------ anyone's messages

    /// @notice Pays the caller everything the contract owes it (payments that failed),
    /// forwarding all gas. Reverts, keeping the balance owed, if the transfer fails.
    /// @return amount What was paid.
    function withdraw() external nonReentrant returns (uint128 amount) {
        return _withdraw(msg.sender);
    }

    /// @notice Pays what the contract owes the caller to `to` instead (for a contract
    /// that cannot receive value itself).
    /// @return amount What was paid.
    function withdrawTo(address to) external nonReentrant returns (uint128 amount) {
        return _withdraw(to);
    }

    // ------------------------------------------------------------------ views

    /// @notice The open channel `id` as it stands at the current block (a rotation whose
    /// block has come is shown in force, its base the settled total); all fields zero
    /// (payer address(0)) if no channel is open with this id. Readable at any block with
    /// eth_call: this is how the AS reads channels.
    function channel(uint64 id) external view returns (Channel memory view_) {
        Words storage s = _channels[id];
        if (s.w0 == 0) return view_;
        Ch memory c = _load(id);
        _advance(c, _now());
        view_.payer = c.payer;
        view_.payee = c.payee;
        view_.authority = Authority(c.kind, c.kind == ACCOUNT ? bytes32(uint256(uint160(c.payer))) : c.value);
        view_.epoch = c.epoch;
        view_.deposit = c.deposit;
        view_.settled = c.settled;
        view_.base = c.base;
        view_.expiresAt = c.expiresAt;
        view_.notice = c.notice;
        if (c.pendingKind != 0) {
            uint8 kind = c.pendingKind - 1;
            view_.rotationPending = true;
            view_.rotationAuthority =
                Authority(kind, kind == ACCOUNT ? bytes32(uint256(uint160(c.payer))) : c.pendingValue);
            view_.rotationEffectiveAt = c.effectiveAt;
        }
    }

    /// @notice What the contract owes `account` (payments that failed), for withdraw.
    function owed(address account) external view returns (uint128) {
        return _owed[account];
    }

    /// @notice The id the next `open` will assign.
    function nextChannelId() external view returns (uint64) {
        return _nextId;
    }

    /// @notice The EIP-712 domain separator every receipt for this contract is bound to,
    /// on the current chain.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparator();
    }

    /// @notice EIP-5267: the EIP-712 domain's fields (name, version, chain id, contract).
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", "slotpay", "1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @notice The digest a receipt's signer signs: keccak256("\x19\x01" ‖
    /// domainSeparator ‖ hashStruct(Receipt(channel, epoch, amount))).
    function receiptDigest(uint64 id, uint32 epoch, uint128 amount) external view returns (bytes32) {
        return _digest(id, epoch, amount);
    }

    /// @notice keccak256(abi.encodePacked(uint8(0x00), member, cap)): a group's leaf.
    function leafHash(address member, uint128 cap) public pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, 0)
            mstore(0x01, shl(96, member))
            mstore(0x15, shl(128, cap))
            h := keccak256(0x00, 37)
        }
    }

    /// @notice keccak256(abi.encodePacked(uint8(0x01), left, right)): a group's inner node.
    function nodeHash(bytes32 left, bytes32 right) public pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 1)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            h := keccak256(p, 65)
        }
    }

    /// @notice The root `proof` leads to from `member`, checking the proof's shape
    /// (ProofTooLong, NonCanonicalProof).
    function rootOf(address member, MembershipProof calldata proof) public pure returns (bytes32 acc) {
        uint256 len = proof.siblings.length;
        if (len > MAX_PROOF_DEPTH) revert ProofTooLong();
        uint256 left = proof.leftSiblings;
        if (len < 32 && left >> len != 0) revert NonCanonicalProof();
        acc = leafHash(member, proof.cap);
        for (uint256 i; i < len; ++i) {
            bytes32 sibling = proof.siblings[i];
            acc = (left >> i) & 1 == 1 ? nodeHash(sibling, acc) : nodeHash(acc, sibling);
        }
    }

    // ------------------------------------------------------------------ rules

    function _now() private view returns (uint32) {
        if (block.number > type(uint32).max) revert BlockNumberOverflow();
        return uint32(block.number);
    }

    function _inc(uint32 epoch) private pure returns (uint32) {
        return epoch == type(uint32).max ? epoch : epoch + 1;
    }

    /// The stored value of an authority, or why it is refused.
    function _checkAuthority(uint8 kind, bytes32 value) private view returns (bytes32 stored) {
        if (kind == ACCOUNT) {
            if (value != bytes32(uint256(uint160(msg.sender)))) revert AccountAuthorityNotPayer();
            return 0;
        }
        if (kind == DELEGATE) {
            if (uint256(value) > MASK_160 || value == 0) revert InvalidAuthority();
            return value;
        }
        if (kind == GROUP) {
            if (value == 0) revert InvalidAuthority();
            return value;
        }
        if (kind == REVOKED && value == 0) return 0;
        revert InvalidAuthority();
    }

    /// Brings a rotation whose block has come into force (`protocol::Channel::advance`).
    function _advance(Ch memory c, uint32 now_) private pure {
        if (c.pendingKind == 0 || now_ < c.effectiveAt) return;
        c.kind = c.pendingKind - 1;
        c.value = c.pendingValue;
        c.pendingKind = 0;
        c.effectiveAt = 0;
        c.pendingValue = 0;
        c.epoch = _inc(c.epoch);
        c.base = c.settled;
    }

    /// The total a receipt of `epoch` for `amount` claims, if the (advanced) channel
    /// takes it now, signature aside.
    function _claimed(Ch memory c, uint32 epoch, uint128 amount, uint32 now_) private pure returns (uint128) {
        if (now_ >= c.expiresAt) revert ChannelExpired();
        if (epoch != c.epoch) revert WrongEpoch(epoch, c.epoch);
        uint256 total = uint256(c.base) + amount;
        if (total > c.deposit) revert AmountExceedsDeposit();
        return uint128(total);
    }

    function _settlement(Ch memory c, uint32 epoch, uint128 amount) private view returns (uint128 total) {
        uint32 now_ = _now();
        _advance(c, now_);
        total = _claimed(c, epoch, amount, now_);
        if (total <= c.settled) revert NothingToSettle();
    }

    function _payout(Ch memory c, uint32 epoch, uint128 amount) private view returns (uint128 total) {
        uint32 now_ = _now();
        _advance(c, now_);
        total = _claimed(c, epoch, amount, now_);
        if (total < c.settled) revert BelowSettled();
    }

    function _settle(uint64 id, Ch memory c, uint128 total) private returns (uint128 paid) {
        paid = total - c.settled;
        c.settled = total;
        _save(id, c);
        emit Settled(id, c.epoch, total, paid);
        _pay(id, c.payee, paid);
    }

    function _close(uint64 id, Ch memory c, uint128 total) private {
        uint128 paid = total - c.settled;
        uint128 refunded = c.deposit - total;
        _delete(id, c);
        emit Closed(id, paid, refunded);
        // Two independent payments, the payee's first: a failed refund never holds it up.
        _pay(id, c.payee, paid);
        _pay(id, c.payer, refunded);
    }

    // ------------------------------------------------------------------ receipts

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _domainSeparator() private view returns (bytes32) {
        if (block.chainid == _cachedChainId && address(this) == _cachedThis) return _cachedDomainSeparator;
        return _buildDomainSeparator();
    }

    function _digest(uint64 id, uint32 epoch, uint128 amount) private view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(RECEIPT_TYPEHASH, id, epoch, amount));
        return keccak256(abi.encodePacked(hex"1901", _domainSeparator(), structHash));
    }

    /// The signer of `digest`, after the one-encoding checks.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) revert InvalidSignatureLength();
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 32))
            v := byte(0, calldataload(add(signature.offset, 64)))
        }
        if (v != 27 && v != 28) revert InvalidRecoveryId(v);
        if (r == 0 || uint256(r) >= CURVE_ORDER) revert SignatureROutOfRange();
        if (s == 0 || uint256(s) >= CURVE_ORDER) revert SignatureSOutOfRange();
        if (uint256(s) > HALF_CURVE_ORDER) revert SignatureHighS();
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert SignatureRecoveryFailed();
    }

    /// `protocol::authorize` without a proof. The signature has been checked already,
    /// so a revoked channel reports Revoked only for a well-formed signature.
    function _authorizeKey(Ch memory c, address signer) private pure {
        uint8 kind = c.kind;
        if (kind == ACCOUNT) {
            if (signer != c.payer) revert NotPayerAccount();
        } else if (kind == DELEGATE) {
            if (signer != address(uint160(uint256(c.value)))) revert NotDelegate();
        } else if (kind == GROUP) {
            revert MissingProof();
        } else {
            revert Revoked();
        }
    }

    /// `protocol::authorize` with a proof: only a group channel takes one.
    function _authorizeMember(Ch memory c, address signer, MembershipProof calldata proof) private pure {
        if (c.kind != GROUP) revert UnexpectedProof();
        if (rootOf(signer, proof) != c.value) revert NotMember();
    }

    // ------------------------------------------------------------------ storage

    function _load(uint64 id) private view returns (Ch memory c) {
        Words storage s = _channels[id];
        uint256 w0 = s.w0;
        if (w0 == 0) revert ChannelNotFound();
        uint256 w1 = s.w1;
        uint256 w2 = s.w2;
        c.o0 = w0;
        c.o1 = w1;
        c.o2 = w2;
        c.payer = address(uint160(w0));
        c.expiresAt = uint32(w0 >> 160);
        c.notice = uint32(w0 >> 192);
        c.epoch = uint32(w0 >> 224);
        c.payee = address(uint160(w1));
        c.kind = uint8(w1 >> 160);
        c.pendingKind = uint8(w1 >> 168);
        c.effectiveAt = uint32(w1 >> 176);
        c.deposit = uint128(w2);
        c.settled = uint128(w2 >> 128);
        if (c.kind == DELEGATE || c.kind == GROUP) c.value = c.o3 = s.value;
        if (c.epoch != 0) c.base = uint128(c.o4 = s.base);
        if (c.pendingKind == DELEGATE + 1 || c.pendingKind == GROUP + 1) c.pendingValue = c.o5 = s.pendingValue;
    }

    function _loadPayee(uint64 id) private view returns (Ch memory c) {
        c = _load(id);
        if (c.payee != msg.sender) revert NotPayee();
    }

    /// Writes the words that changed.
    function _save(uint64 id, Ch memory c) private {
        Words storage s = _channels[id];
        uint256 w0 = uint256(uint160(c.payer)) | (uint256(c.expiresAt) << 160) | (uint256(c.notice) << 192)
            | (uint256(c.epoch) << 224);
        uint256 w1 = uint256(uint160(c.payee)) | (uint256(c.kind) << 160) | (uint256(c.pendingKind) << 168)
            | (uint256(c.effectiveAt) << 176);
        uint256 w2 = uint256(c.deposit) | (uint256(c.settled) << 128);
        if (w0 != c.o0) s.w0 = w0;
        if (w1 != c.o1) s.w1 = w1;
        if (w2 != c.o2) s.w2 = w2;
        if (c.value != c.o3) s.value = c.value;
        if (c.base != c.o4) s.base = c.base;
        if (c.pendingValue != c.o5) s.pendingValue = c.pendingValue;
    }

    /// Zeroes every word that is not zero.
    function _delete(uint64 id, Ch memory c) private {
        Words storage s = _channels[id];
        s.w0 = 0;
        s.w1 = 0;
        s.w2 = 0;
        if (c.o3 != 0) s.value = 0;
        if (c.o4 != 0) s.base = 0;
        if (c.o5 != 0) s.pendingValue = 0;
    }

    // ------------------------------------------------------------------ payments

    /// Pays `amount` to `to` with PAYMENT_GAS; if that fails, owes it instead.
    function _pay(uint64 id, address to, uint128 amount) private {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            // No return data is copied: a recipient cannot make this call expensive.
            ok := call(PAYMENT_GAS, to, amount, 0, 0, 0, 0)
        }
        if (ok) return;
        uint128 total = _owed[to] + amount;
        _owed[to] = total;
        emit PaymentDeferred(to, id, amount, total);
    }

    function _withdraw(address to) private returns (uint128 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        delete _owed[msg.sender];
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert WithdrawFailed();
    }
}
