// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {QuorumSignatures} from "./lib/QuorumSignatures.sol";

interface IMintableToken {
    function mint(address to, uint256 amount) external;
    function transfer(address to, uint256 amount) external returns (bool);
    function maxSupply() external view returns (uint256);
    function totalSupply() external view returns (uint256);
}

interface IVerifierQuorum {
    function requireQuorum(address[] memory signers) external view;
}

/// @title EpochRewards
/// @notice Holds the verifiers' cumulative reward roots and pays claims against them.
///
/// Each epoch a quorum of active verifiers signs (EIP-712) the Merkle root of every operator's
/// *cumulative* reward, with the content id of the bundle it was computed from. The root is accepted
/// only for the next epoch in order, after that epoch has ended by the chain's clock, and only when the
/// cumulative total stays within what the emission schedule has released so far; the newly released
/// amount is minted here. A root becomes claimable once its dispute window (in blocks) has passed; an
/// operator then claims the difference between its cumulative amount and what it already claimed, so
/// gas per operator does not grow with the number of epochs.
///
/// Emission schedule: epoch `e` (from 0) releases `initialEmission >> (e / halvingInterval)`.
contract EpochRewards is Ownable, EIP712 {
    /// @dev A posted root. `root` in one slot; the rest packed in a second.
    struct PostedRoot {
        bytes32 root;
        uint128 totalCumulative;
        uint64 epoch;
        uint64 postedBlock;
    }

    bytes32 public constant POST_ROOT_TYPEHASH =
        keccak256("PostRoot(uint64 epoch,bytes32 root,string bundleCid,uint128 totalCumulative)");
    bytes32 public constant REVOKE_ROOT_TYPEHASH = keccak256("RevokeRoot(uint64 epoch,bytes32 root)");
    uint64 public constant MAX_DISPUTE_WINDOW = 1_000_000;

    IMintableToken public immutable token;
    IVerifierQuorum public immutable registry;
    uint64 public immutable genesisTime;
    uint64 public immutable epochDuration;
    uint256 public immutable initialEmission;
    uint64 public immutable halvingInterval;
    /// @notice Everything the schedule will ever release (the limit of the halving series).
    uint256 public immutable totalEmission;

    // One slot: the next epoch to post, what has been minted, and the dispute window.
    uint64 public nextEpoch;
    uint128 public totalMinted;
    uint64 public disputeWindow;

    /// @dev The newest posted root, claimable once its dispute window has passed.
    PostedRoot private _latest;
    /// @dev The newest root that was already claimable when {_latest} was posted.
    PostedRoot private _previous;

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

    event RootPosted(uint64 indexed epoch, bytes32 root, string bundleCid, uint256 totalCumulative, uint256 minted);
    event RootRevoked(uint64 indexed epoch, bytes32 root, address[] signers);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);
    event DisputeWindowChanged(uint64 blocks);

    constructor(
        IMintableToken token_,
        IVerifierQuorum registry_,
        address owner_,
        uint64 genesisTime_,
        uint64 epochDuration_,
        uint256 initialEmission_,
        uint64 halvingInterval_,
        uint64 disputeWindow_
    ) Ownable(owner_) EIP712("Meshwork EpochRewards", "1") {
        if (epochDuration_ == 0) revert InvalidParameter("epochDuration");
        if (halvingInterval_ == 0) revert InvalidParameter("halvingInterval");
        if (initialEmission_ == 0 || initialEmission_ > type(uint128).max) revert InvalidParameter("initialEmission");
        token = token_;
        registry = registry_;
        genesisTime = genesisTime_;
        epochDuration = epochDuration_;
        initialEmission = initialEmission_;
        halvingInterval = halvingInterval_;
        uint256 total = _emittedBefore(type(uint64).max, initialEmission_, halvingInterval_);
        if (total > token_.maxSupply() - token_.totalSupply() || total > type(uint128).max) {
            revert InvalidParameter("emission exceeds the token's unminted supply");
        }
        totalEmission = total;
        _setDisputeWindow(disputeWindow_);
    }

    // ─── Posting roots ────────────────────────────────────────────────────────────────────────

    /// @notice Posts the cumulative reward root for `epoch`, signed by a quorum of active verifiers
    /// (EIP-712 `PostRoot`, signatures ordered by ascending signer address). Anyone may submit it.
    function postRoot(
        uint64 epoch,
        bytes32 root,
        string calldata bundleCid,
        uint128 totalCumulative,
        bytes[] calldata signatures
    ) external {
        uint64 expected = nextEpoch;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (root == bytes32(0)) revert EmptyRoot();
        PostedRoot memory latest = _latest;
        if (totalCumulative < latest.totalCumulative) revert CumulativeDecreased(totalCumulative, latest.totalCumulative);
        uint256 emitted = emittedThrough(epoch);
        if (totalCumulative > emitted) revert EmissionExceeded(totalCumulative, emitted);

        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(POST_ROOT_TYPEHASH, epoch, root, keccak256(bytes(bundleCid)), totalCumulative))
        );
        registry.requireQuorum(QuorumSignatures.recoverAscending(digest, signatures));

        if (latest.root != bytes32(0) && block.number >= uint256(latest.postedBlock) + disputeWindow) {
            _previous = latest;
        }
        _latest = PostedRoot(root, totalCumulative, epoch, uint64(block.number));
        nextEpoch = epoch + 1;
        uint128 minted = totalMinted;
        uint256 toMint = totalCumulative > minted ? totalCumulative - minted : 0;
        if (toMint != 0) {
            totalMinted = totalCumulative;
            token.mint(address(this), toMint);
        }
        emit RootPosted(epoch, root, bundleCid, totalCumulative, toMint);
    }

    /// @notice Withdraws the newest root while it is still inside its dispute window, with a quorum of
    /// verifier signatures over EIP-712 `RevokeRoot`. The epoch can then be posted again.
    function revokeRoot(uint64 epoch, bytes32 root, bytes[] calldata signatures) external {
        PostedRoot memory latest = _latest;
        if (latest.root != root || latest.epoch != epoch || root == bytes32(0)) revert RootNotPending(epoch, root);
        if (block.number >= uint256(latest.postedBlock) + disputeWindow) revert DisputeWindowOver(epoch);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REVOKE_ROOT_TYPEHASH, epoch, root)));
        address[] memory signers = QuorumSignatures.recoverAscending(digest, signatures);
        registry.requireQuorum(signers);
        _latest = _previous;
        nextEpoch = epoch;
        emit RootRevoked(epoch, root, signers);
    }

    // ─── Claims ───────────────────────────────────────────────────────────────────────────────

    /// @notice Pays `account` the difference between `cumulativeAmount` (its leaf in the newest
    /// claimable root) and what it has claimed before. Anyone may submit it; tokens go to `account`.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        (bytes32 newest, bytes32 older) = _claimableRoots();
        _claim(newest, older, account, cumulativeAmount, proof);
    }

    /// @notice Claims for many accounts (an operator's fleet) in one transaction.
    function claimMany(address[] calldata accounts, uint256[] calldata cumulativeAmounts, bytes32[][] calldata proofs)
        external
    {
        if (accounts.length != cumulativeAmounts.length || accounts.length != proofs.length) revert LengthMismatch();
        (bytes32 newest, bytes32 older) = _claimableRoots();
        for (uint256 i = 0; i < accounts.length; ++i) {
            _claim(newest, older, accounts[i], cumulativeAmounts[i], proofs[i]);
        }
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────────

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

    /// @notice The newest posted root (claimable or not yet).
    function latestRoot() external view returns (PostedRoot memory) {
        return _latest;
    }

    /// @notice The root a claim proof must be built against now, with its epoch; zero if none.
    function claimableRoot() external view returns (bytes32 root, uint64 epoch, uint128 totalCumulative) {
        PostedRoot memory r = _isClaimable(_latest) ? _latest : _previous;
        return (r.root, r.epoch, r.totalCumulative);
    }

    /// @notice The EIP-712 domain separator (binds chain id and this contract's address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ─── Parameters ───────────────────────────────────────────────────────────────────────────

    function setDisputeWindow(uint64 blocks) external onlyOwner {
        _setDisputeWindow(blocks);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────────

    function _isClaimable(PostedRoot memory r) private view returns (bool) {
        return r.root != bytes32(0) && block.number >= uint256(r.postedBlock) + disputeWindow;
    }

    /// @dev The newest claimable root, and the one before it (a proof built a moment earlier may still
    /// be against that one; cumulative amounts only grow, so accepting it is safe).
    function _claimableRoots() private view returns (bytes32 newest, bytes32 older) {
        PostedRoot memory latest = _latest;
        if (_isClaimable(latest)) return (latest.root, _previous.root);
        newest = _previous.root;
        if (newest == bytes32(0)) revert NoClaimableRoot();
    }

    function _claim(bytes32 newest, bytes32 older, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        private
    {
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, newest, leaf)) {
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

    function _setDisputeWindow(uint64 blocks) private {
        if (blocks > MAX_DISPUTE_WINDOW) revert InvalidParameter("disputeWindow");
        disputeWindow = blocks;
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
