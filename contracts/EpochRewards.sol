// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

interface IMintableToken {
    function mint(address to, uint256 amount) external;
    function burn(uint256 amount) external;
    function transfer(address to, uint256 amount) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
    function maxSupply() external view returns (uint256);
    function totalSupply() external view returns (uint256);
}

interface IVerifierQuorum {
    function requireQuorumSignatures(bytes32 digest, bytes calldata signatures) external view;
}

/// @title EpochRewards
/// @notice Holds the verifiers' cumulative reward roots and pays claims against them.
///
/// Each epoch a quorum of active verifiers signs (EIP-712) the Merkle root of every operator's
/// *cumulative* reward, with the digest of the bundle it was computed from. The root is accepted only
/// for the next epoch in order, after that epoch has ended by the chain's clock, and only when the
/// cumulative total stays within what the emission schedule has released so far; the newly released
/// amount is minted here. A root becomes claimable once its dispute window (in blocks) has passed; an
/// operator then claims the difference between its cumulative amount and what it already claimed, so
/// gas per operator does not grow with the number of epochs.
///
/// At most one root is inside its dispute window at a time: a root is posted only once the one before
/// it has passed its window. So only the two newest roots are kept (a ring indexed by epoch parity;
/// cumulative amounts make older roots redundant), the one before the newest is always claimable, and
/// revoking the newest always falls back to a root that has passed its window.
///
/// Emission schedule: epoch `e` (from 0) releases `initialEmission >> (e / halvingInterval)`.
contract EpochRewards is Ownable, EIP712 {
    /// @dev The hot slot: read by every post and every claim.
    struct State {
        uint48 nextEpoch;
        // The block from which the newest root is claimable, fixed when it was posted, so that a
        // later change of the dispute window never reopens a settled root.
        uint48 latestClaimableAt;
        uint32 disputeWindow;
        uint96 totalMinted;
        // Roots revoked so far; signed into every PostRoot and RevokeRoot, so that no signature made
        // before a revocation can be replayed after it.
        uint32 revocations;
    }

    /// @dev What is kept of a posted root besides the root itself, in one slot.
    struct RootInfo {
        uint128 totalCumulative;
        uint64 epoch;
        uint64 claimableAt;
    }

    bytes32 public constant POST_ROOT_TYPEHASH = keccak256(
        "PostRoot(uint64 epoch,bytes32 root,bytes32 bundleDigest,uint128 totalCumulative,uint32 revocations)"
    );
    bytes32 public constant REVOKE_ROOT_TYPEHASH =
        keccak256("RevokeRoot(uint64 epoch,bytes32 root,uint32 revocations)");
    uint32 public constant MAX_DISPUTE_WINDOW = 1_000_000;

    IMintableToken public immutable token;
    IVerifierQuorum public immutable registry;
    uint64 public immutable genesisTime;
    uint64 public immutable epochDuration;
    uint256 public immutable initialEmission;
    uint64 public immutable halvingInterval;
    /// @notice Everything the schedule will ever release (the limit of the halving series).
    uint256 public immutable totalEmission;

    State private _state;
    bytes32[2] private _roots;
    RootInfo[2] private _info;

    mapping(address account => uint256) public claimed;

    error InvalidParameter(string name);
    error EpochOutOfOrder(uint64 expected, uint64 epoch);
    error EpochNotEnded(uint64 epoch, uint256 endsAt);
    error EmissionExceeded(uint256 totalCumulative, uint256 emitted);
    error CumulativeDecreased(uint256 totalCumulative, uint256 previous);
    error EmptyRoot();
    error NoClaimableRoot();
    error InvalidProof(address account, uint256 cumulativeAmount);
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);
    error LengthMismatch();
    error RootNotPending(uint64 epoch, bytes32 root);
    error DisputeWindowOver(uint64 epoch);
    error PreviousRootInDispute(uint64 epoch, uint256 claimableAtBlock);

    event RootPosted(uint64 indexed epoch, bytes32 root, bytes32 bundleDigest, uint256 totalCumulative);
    event RootRevoked(uint64 indexed epoch, bytes32 root);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);
    event DisputeWindowChanged(uint32 blocks);

    constructor(
        IMintableToken token_,
        IVerifierQuorum registry_,
        address owner_,
        uint64 genesisTime_,
        uint64 epochDuration_,
        uint256 initialEmission_,
        uint64 halvingInterval_,
        uint32 disputeWindow_
    ) Ownable(owner_) EIP712("Meshwork EpochRewards", "1") {
        if (epochDuration_ == 0) revert InvalidParameter("epochDuration");
        if (halvingInterval_ == 0) revert InvalidParameter("halvingInterval");
        if (initialEmission_ == 0 || initialEmission_ > type(uint96).max) revert InvalidParameter("initialEmission");
        token = token_;
        registry = registry_;
        genesisTime = genesisTime_;
        epochDuration = epochDuration_;
        initialEmission = initialEmission_;
        halvingInterval = halvingInterval_;
        uint256 total = _emittedBefore(type(uint64).max, initialEmission_, halvingInterval_);
        if (total > token_.maxSupply() - token_.totalSupply() || total > type(uint96).max) {
            revert InvalidParameter("emission exceeds the token's unminted supply");
        }
        totalEmission = total;
        _setDisputeWindow(disputeWindow_);
    }

    // ─── Posting roots ────────────────────────────────────────────────────────────────────────

    /// @notice Posts the cumulative reward root for `epoch`, signed by a quorum of active verifiers
    /// (EIP-712 `PostRoot`; packed 65-byte signatures ordered by ascending signer address). Anyone may
    /// submit it. `bundleDigest` is the sha2-256 digest of the epoch's input bundle (docs/rewards.md).
    function postRoot(
        uint64 epoch,
        bytes32 root,
        bytes32 bundleDigest,
        uint128 totalCumulative,
        bytes calldata signatures
    ) external {
        State memory s = _state;
        if (epoch != s.nextEpoch) revert EpochOutOfOrder(s.nextEpoch, epoch);
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (root == bytes32(0)) revert EmptyRoot();
        if (epoch != 0 && block.number < s.latestClaimableAt) revert PreviousRootInDispute(epoch - 1, s.latestClaimableAt);
        // After a revoke, the minted total is brought back to the previous root's, so it is always
        // the newest standing root's total.
        if (totalCumulative < s.totalMinted) revert CumulativeDecreased(totalCumulative, s.totalMinted);
        uint256 emitted = emittedThrough(epoch);
        if (totalCumulative > emitted) revert EmissionExceeded(totalCumulative, emitted);

        registry.requireQuorumSignatures(
            _hashTypedDataV4(
                keccak256(abi.encode(POST_ROOT_TYPEHASH, epoch, root, bundleDigest, totalCumulative, s.revocations))
            ),
            signatures
        );

        uint256 slot = epoch & 1;
        _roots[slot] = root;
        uint48 claimableAt = uint48(block.number + s.disputeWindow);
        _info[slot] = RootInfo(totalCumulative, epoch, claimableAt);
        uint256 toMint = totalCumulative - s.totalMinted;
        _state = State(uint48(epoch + 1), claimableAt, s.disputeWindow, uint96(totalCumulative), s.revocations);
        if (toMint != 0) token.mint(address(this), toMint);
        emit RootPosted(epoch, root, bundleDigest, totalCumulative);
    }

    /// @notice Withdraws the newest root while it is still inside its dispute window, with a quorum of
    /// verifier signatures over EIP-712 `RevokeRoot`; its new emission is burned, the root before it
    /// (past its window) is the newest again, and the epoch can be posted again with new signatures.
    function revokeRoot(uint64 epoch, bytes32 root, bytes calldata signatures) external {
        State memory s = _state;
        uint256 slot = epoch & 1;
        if (s.nextEpoch == 0 || epoch != s.nextEpoch - 1 || root == bytes32(0) || _roots[slot] != root) {
            revert RootNotPending(epoch, root);
        }
        if (block.number >= s.latestClaimableAt) revert DisputeWindowOver(epoch);
        registry.requireQuorumSignatures(
            _hashTypedDataV4(keccak256(abi.encode(REVOKE_ROOT_TYPEHASH, epoch, root, s.revocations))), signatures
        );
        RootInfo memory before = epoch == 0 ? RootInfo(0, 0, 0) : _info[slot ^ 1];
        delete _roots[slot];
        delete _info[slot];
        _state = State(
            uint48(epoch),
            uint48(before.claimableAt),
            s.disputeWindow,
            uint96(before.totalCumulative),
            s.revocations + 1
        );
        uint256 excess = s.totalMinted - before.totalCumulative;
        uint256 held = token.balanceOf(address(this));
        if (excess > held) excess = held;
        if (excess != 0) token.burn(excess);
        emit RootRevoked(epoch, root);
    }

    // ─── Claims ───────────────────────────────────────────────────────────────────────────────

    /// @notice Pays `account` the difference between `cumulativeAmount` (its leaf in the newest
    /// claimable root) and what it has claimed before. Anyone may submit it; tokens go to `account`.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        (uint256 newest, bool hasOlder) = _claimableSlot();
        _claim(newest, hasOlder, account, cumulativeAmount, proof);
    }

    /// @notice Claims for many accounts (an operator's fleet) in one transaction.
    function claimMany(address[] calldata accounts, uint256[] calldata cumulativeAmounts, bytes32[][] calldata proofs)
        external
    {
        if (accounts.length != cumulativeAmounts.length || accounts.length != proofs.length) revert LengthMismatch();
        (uint256 newest, bool hasOlder) = _claimableSlot();
        for (uint256 i = 0; i < accounts.length; ++i) {
            _claim(newest, hasOlder, accounts[i], cumulativeAmounts[i], proofs[i]);
        }
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────────

    /// @notice The next epoch a root may be posted for.
    function nextEpoch() external view returns (uint64) {
        return _state.nextEpoch;
    }

    /// @notice Tokens minted into this contract so far: the newest standing root's cumulative total.
    function totalMinted() external view returns (uint256) {
        return _state.totalMinted;
    }

    /// @notice Roots revoked so far: the `revocations` field every PostRoot and RevokeRoot signs.
    function revocations() external view returns (uint32) {
        return _state.revocations;
    }

    /// @notice Blocks a newly posted root waits before it can be claimed against (or revoked until).
    /// A change applies to roots posted after it.
    function disputeWindow() external view returns (uint32) {
        return _state.disputeWindow;
    }

    /// @notice The first second after `epoch` ends.
    function epochEnd(uint64 epoch) public view returns (uint256) {
        return uint256(genesisTime) + (uint256(epoch) + 1) * epochDuration;
    }

    /// @notice The epoch the chain's clock is in now (0 before and during the first epoch).
    function currentEpoch() external view returns (uint64) {
        if (block.timestamp < genesisTime) return 0;
        return uint64((block.timestamp - genesisTime) / epochDuration);
    }

    /// @notice What epoch `epoch` alone releases.
    function emissionOf(uint64 epoch) external view returns (uint256) {
        uint256 halvings = epoch / halvingInterval;
        return halvings >= 256 ? 0 : initialEmission >> halvings;
    }

    /// @notice Everything released by epochs 0 through `epoch`, inclusive.
    function emittedThrough(uint64 epoch) public view returns (uint256) {
        return _emittedBefore(uint256(epoch) + 1, initialEmission, halvingInterval);
    }

    /// @notice The newest posted root (claimable or not yet); zero root when none.
    function latestRoot()
        external
        view
        returns (bytes32 root, uint64 epoch, uint128 totalCumulative, uint64 claimableAt)
    {
        State memory s = _state;
        if (s.nextEpoch == 0) return (bytes32(0), 0, 0, 0);
        uint256 slot = (s.nextEpoch - 1) & 1;
        RootInfo memory info = _info[slot];
        return (_roots[slot], info.epoch, info.totalCumulative, info.claimableAt);
    }

    /// @notice The root a claim proof must be built against now, with its epoch; zero root when none.
    function claimableRoot() external view returns (bytes32 root, uint64 epoch, uint128 totalCumulative) {
        (bool ok, uint256 slot) = _findClaimable();
        if (!ok) return (bytes32(0), 0, 0);
        RootInfo memory info = _info[slot];
        return (_roots[slot], info.epoch, info.totalCumulative);
    }

    /// @notice The EIP-712 domain separator (binds chain id and this contract's address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ─── Parameters ───────────────────────────────────────────────────────────────────────────

    function setDisputeWindow(uint32 blocks) external onlyOwner {
        _setDisputeWindow(blocks);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────────

    /// @dev The ring slot of the newest root past its dispute window, if any. The root before the
    /// newest was past its window when the newest was posted.
    function _findClaimable() private view returns (bool ok, uint256 slot) {
        State memory s = _state;
        if (s.nextEpoch == 0) return (false, 0);
        uint256 latest = s.nextEpoch - 1;
        if (block.number >= s.latestClaimableAt) return (true, latest & 1);
        if (latest == 0) return (false, 0);
        return (true, (latest - 1) & 1);
    }

    /// @dev The newest claimable slot, and whether the other slot may serve as a fallback (a proof
    /// built a moment before a newer root matured; cumulative amounts only grow, so it is safe).
    function _claimableSlot() private view returns (uint256 slot, bool hasOlder) {
        bool ok;
        (ok, slot) = _findClaimable();
        if (!ok) revert NoClaimableRoot();
        hasOlder = slot == (_state.nextEpoch - 1) & 1;
    }

    function _claim(uint256 slot, bool hasOlder, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        private
    {
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, _roots[slot], leaf)) {
            bytes32 older = hasOlder ? _roots[slot ^ 1] : bytes32(0);
            if (older == bytes32(0) || !MerkleProof.verifyCalldata(proof, older, leaf)) {
                revert InvalidProof(account, cumulativeAmount);
            }
        }
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        claimed[account] = cumulativeAmount;
        uint256 amount = cumulativeAmount - already;
        token.transfer(account, amount);
        emit Claimed(account, amount, cumulativeAmount);
    }

    function _setDisputeWindow(uint32 blocks) private {
        if (blocks > MAX_DISPUTE_WINDOW) revert InvalidParameter("disputeWindow");
        _state.disputeWindow = blocks;
        emit DisputeWindowChanged(blocks);
    }

    /// @dev Sum of emissions of epochs [0, epochs), for `epochs` up to 2^64.
    function _emittedBefore(uint256 epochs, uint256 e0, uint256 h) private pure returns (uint256 sum) {
        uint256 full = epochs / h;
        uint256 halvings = full < 256 ? full : 256;
        for (uint256 j = 0; j < halvings; ++j) {
            uint256 perEpoch = e0 >> j;
            if (perEpoch == 0) return sum;
            sum += perEpoch * h;
        }
        if (full < 256) sum += (epochs % h) * (e0 >> full);
    }
}
