// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {QuorumSignatures} from "./lib/QuorumSignatures.sol";

/// @title NodeRegistry
/// @notice Binds each operator node (its libp2p peer id) to an operator address and a stake, and each
/// verifier address to a larger stake. Stake leaves only through an unbonding period, and can be
/// slashed to the treasury by a quorum of M active verifiers signing EIP-712 evidence.
contract NodeRegistry is Ownable, EIP712 {
    using SafeERC20 for IERC20;

    struct Node {
        address operator;
        uint32 services;
        uint64 registeredAt;
        uint64 h3Cell;
        uint128 stake;
        uint64 unbondingEndsAt;
        uint128 unbonding;
        bytes32 metadataHash;
    }

    struct Verifier {
        uint128 stake;
        uint64 unbondingEndsAt;
        uint64 registeredAt;
        uint128 unbonding;
    }

    /// @notice Limits on each parameter, so that no owner (later: the governance timelock) can set a
    /// value that breaks the protocol.
    uint256 public constant MAX_UNBONDING_PERIOD = 365 days;
    uint256 public constant MAX_PEER_ID_LENGTH = 128;

    bytes32 public constant SLASH_NODE_TYPEHASH =
        keccak256("SlashNode(bytes32 nodeId,uint256 amount,bytes32 evidenceHash)");
    bytes32 public constant SLASH_VERIFIER_TYPEHASH =
        keccak256("SlashVerifier(address verifier,uint256 amount,bytes32 evidenceHash)");

    IERC20 public immutable token;
    address public immutable treasury;

    uint128 public minNodeStake;
    uint64 public unbondingPeriod;
    // One slot: everything a quorum check reads besides the signers' own stakes.
    uint128 public minVerifierStake;
    uint32 public quorum;
    uint32 public maxVerifiers;
    uint32 public verifierCount;

    mapping(bytes32 nodeId => Node) private _nodes;
    mapping(address verifier => Verifier) private _verifiers;
    mapping(bytes32 evidenceHash => bool) public evidenceUsed;

    error ZeroAddress();
    error InvalidParameter(string name);
    error InvalidPeerId();
    error NodeAlreadyRegistered(bytes32 nodeId);
    error NodeNotRegistered(bytes32 nodeId);
    error NotOperator(bytes32 nodeId, address caller);
    error StakeBelowMinimum(uint256 stake, uint256 minimum);
    error InsufficientStake(uint256 requested, uint256 available);
    error NothingToWithdraw();
    error UnbondingNotFinished(uint256 endsAt);
    error VerifierAlreadyRegistered(address verifier);
    error VerifierNotRegistered(address verifier);
    error VerifierSetFull(uint256 maxVerifiers);
    error QuorumNotReached(uint256 signatures, uint256 quorum);
    error NotActiveVerifier(address signer);
    error EvidenceAlreadyUsed(bytes32 evidenceHash);
    error SignerIsAccused(address verifier);
    error ZeroAmount();

    event NodeRegistered(
        bytes32 indexed nodeId,
        address indexed operator,
        bytes peerId,
        uint32 services,
        uint64 h3Cell,
        bytes32 metadataHash,
        uint256 stake
    );
    event NodeUpdated(bytes32 indexed nodeId, uint32 services, uint64 h3Cell, bytes32 metadataHash);
    event NodeStakeAdded(bytes32 indexed nodeId, uint256 amount, uint256 stake);
    event NodeUnbondRequested(bytes32 indexed nodeId, uint256 amount, uint256 stake, uint256 endsAt);
    event NodeWithdrawn(bytes32 indexed nodeId, address indexed operator, uint256 amount);
    event NodeDeregistered(bytes32 indexed nodeId);
    event NodeSlashed(bytes32 indexed nodeId, uint256 amount, bytes32 indexed evidenceHash, address[] signers);
    event VerifierRegistered(address indexed verifier, bytes peerId, uint256 stake);
    event VerifierStakeAdded(address indexed verifier, uint256 amount, uint256 stake);
    event VerifierUnbondRequested(address indexed verifier, uint256 amount, uint256 stake, uint256 endsAt);
    event VerifierWithdrawn(address indexed verifier, uint256 amount);
    event VerifierDeregistered(address indexed verifier);
    event VerifierSlashed(address indexed verifier, uint256 amount, bytes32 indexed evidenceHash, address[] signers);
    event ParameterChanged(string name, uint256 value);

    constructor(
        IERC20 token_,
        address treasury_,
        address owner_,
        uint128 minNodeStake_,
        uint128 minVerifierStake_,
        uint64 unbondingPeriod_,
        uint32 quorum_,
        uint32 maxVerifiers_
    ) Ownable(owner_) EIP712("Meshwork NodeRegistry", "1") {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        _setMinNodeStake(minNodeStake_);
        _setMinVerifierStake(minVerifierStake_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setVerifierLimits(quorum_, maxVerifiers_);
    }

    // ─── Nodes ────────────────────────────────────────────────────────────────────────────────

    /// @notice Registers a node for the caller (its operator) with at least {minNodeStake}. The node id
    /// is keccak256 of the libp2p peer id bytes. Needs an ERC-20 allowance of `stake`.
    function registerNode(bytes calldata peerId, uint32 services, uint64 h3Cell, bytes32 metadataHash, uint128 stake)
        external
        returns (bytes32 nodeId)
    {
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LENGTH) revert InvalidPeerId();
        nodeId = keccak256(peerId);
        Node storage n = _nodes[nodeId];
        if (n.operator != address(0)) revert NodeAlreadyRegistered(nodeId);
        if (stake < minNodeStake || stake == 0) revert StakeBelowMinimum(stake, minNodeStake);
        n.operator = msg.sender;
        n.services = services;
        n.registeredAt = uint64(block.timestamp);
        n.h3Cell = h3Cell;
        n.stake = stake;
        n.metadataHash = metadataHash;
        token.safeTransferFrom(msg.sender, address(this), stake);
        emit NodeRegistered(nodeId, msg.sender, peerId, services, h3Cell, metadataHash, stake);
    }

    /// @notice Updates what a node offers and where it is; only its operator.
    function updateNode(bytes32 nodeId, uint32 services, uint64 h3Cell, bytes32 metadataHash) external {
        Node storage n = _operatorNode(nodeId);
        n.services = services;
        n.h3Cell = h3Cell;
        n.metadataHash = metadataHash;
        emit NodeUpdated(nodeId, services, h3Cell, metadataHash);
    }

    /// @notice Adds stake to a node; anyone may top up, the stake stays the node's.
    function addNodeStake(bytes32 nodeId, uint128 amount) external {
        if (amount == 0) revert ZeroAmount();
        Node storage n = _nodes[nodeId];
        if (n.operator == address(0)) revert NodeNotRegistered(nodeId);
        n.stake += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit NodeStakeAdded(nodeId, amount, n.stake);
    }

    /// @notice Starts unbonding `amount` of a node's stake. What stays must be zero (the node leaves)
    /// or at least {minNodeStake}. Unbonding stake is still slashable; a new request restarts the timer.
    function requestNodeUnbond(bytes32 nodeId, uint128 amount) external {
        if (amount == 0) revert ZeroAmount();
        Node storage n = _operatorNode(nodeId);
        if (amount > n.stake) revert InsufficientStake(amount, n.stake);
        uint128 remaining = n.stake - amount;
        if (remaining != 0 && remaining < minNodeStake) revert StakeBelowMinimum(remaining, minNodeStake);
        n.stake = remaining;
        n.unbonding += amount;
        uint64 endsAt = uint64(block.timestamp) + unbondingPeriod;
        n.unbondingEndsAt = endsAt;
        emit NodeUnbondRequested(nodeId, amount, remaining, endsAt);
    }

    /// @notice Pays a node's unbonded stake to its operator once the unbonding period is over. A node
    /// with no stake left is deregistered.
    function withdrawNode(bytes32 nodeId) external {
        Node storage n = _operatorNode(nodeId);
        uint128 amount = n.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < n.unbondingEndsAt) revert UnbondingNotFinished(n.unbondingEndsAt);
        address operator = n.operator;
        n.unbonding = 0;
        n.unbondingEndsAt = 0;
        if (n.stake == 0) {
            delete _nodes[nodeId];
            emit NodeDeregistered(nodeId);
        }
        token.safeTransfer(operator, amount);
        emit NodeWithdrawn(nodeId, operator, amount);
    }

    /// @notice Slashes up to `amount` of a node's stake (bonded first, then unbonding) to the treasury.
    /// Needs signatures of at least {quorum} distinct active verifiers over the EIP-712 `SlashNode`
    /// message, ordered by ascending signer address. Each evidence hash slashes once.
    function slashNode(bytes32 nodeId, uint256 amount, bytes32 evidenceHash, bytes calldata signatures)
        external
        returns (uint256 slashed)
    {
        Node storage n = _nodes[nodeId];
        if (n.operator == address(0)) revert NodeNotRegistered(nodeId);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(SLASH_NODE_TYPEHASH, nodeId, amount, evidenceHash)));
        address[] memory signers = _useEvidence(digest, evidenceHash, signatures);
        (n.stake, n.unbonding, slashed) = _take(n.stake, n.unbonding, amount);
        token.safeTransfer(treasury, slashed);
        emit NodeSlashed(nodeId, slashed, evidenceHash, signers);
        if (n.stake == 0 && n.unbonding == 0) {
            // Nothing left to hold the peer id: free it.
            delete _nodes[nodeId];
            emit NodeDeregistered(nodeId);
        }
    }

    // ─── Verifiers ────────────────────────────────────────────────────────────────────────────

    /// @notice Registers the caller as a verifier with at least {minVerifierStake}; `peerId` is its
    /// libp2p identity on the mesh. Needs an ERC-20 allowance of `stake`.
    function registerVerifier(bytes calldata peerId, uint128 stake) external {
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LENGTH) revert InvalidPeerId();
        Verifier storage v = _verifiers[msg.sender];
        if (v.registeredAt != 0) revert VerifierAlreadyRegistered(msg.sender);
        if (verifierCount >= maxVerifiers) revert VerifierSetFull(maxVerifiers);
        if (stake < minVerifierStake || stake == 0) revert StakeBelowMinimum(stake, minVerifierStake);
        v.stake = stake;
        v.registeredAt = uint64(block.timestamp);
        verifierCount += 1;
        token.safeTransferFrom(msg.sender, address(this), stake);
        emit VerifierRegistered(msg.sender, peerId, stake);
    }

    /// @notice Adds stake to the caller's verifier registration.
    function addVerifierStake(uint128 amount) external {
        if (amount == 0) revert ZeroAmount();
        Verifier storage v = _verifiers[msg.sender];
        if (v.registeredAt == 0) revert VerifierNotRegistered(msg.sender);
        v.stake += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit VerifierStakeAdded(msg.sender, amount, v.stake);
    }

    /// @notice Starts unbonding the caller's verifier stake; what stays must be zero or at least
    /// {minVerifierStake}.
    function requestVerifierUnbond(uint128 amount) external {
        if (amount == 0) revert ZeroAmount();
        Verifier storage v = _verifiers[msg.sender];
        if (v.registeredAt == 0) revert VerifierNotRegistered(msg.sender);
        if (amount > v.stake) revert InsufficientStake(amount, v.stake);
        uint128 remaining = v.stake - amount;
        if (remaining != 0 && remaining < minVerifierStake) revert StakeBelowMinimum(remaining, minVerifierStake);
        v.stake = remaining;
        v.unbonding += amount;
        uint64 endsAt = uint64(block.timestamp) + unbondingPeriod;
        v.unbondingEndsAt = endsAt;
        emit VerifierUnbondRequested(msg.sender, amount, remaining, endsAt);
    }

    /// @notice Pays the caller's unbonded verifier stake after the unbonding period; a verifier with no
    /// stake left is deregistered and frees its seat.
    function withdrawVerifier() external {
        Verifier storage v = _verifiers[msg.sender];
        if (v.registeredAt == 0) revert VerifierNotRegistered(msg.sender);
        uint128 amount = v.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < v.unbondingEndsAt) revert UnbondingNotFinished(v.unbondingEndsAt);
        v.unbonding = 0;
        v.unbondingEndsAt = 0;
        if (v.stake == 0) {
            delete _verifiers[msg.sender];
            verifierCount -= 1;
            emit VerifierDeregistered(msg.sender);
        }
        token.safeTransfer(msg.sender, amount);
        emit VerifierWithdrawn(msg.sender, amount);
    }

    /// @notice Slashes a verifier (for example one that signed a wrong root) with a quorum of the others.
    function slashVerifier(address verifier, uint256 amount, bytes32 evidenceHash, bytes calldata signatures)
        external
        returns (uint256 slashed)
    {
        Verifier storage v = _verifiers[verifier];
        if (v.registeredAt == 0) revert VerifierNotRegistered(verifier);
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(SLASH_VERIFIER_TYPEHASH, verifier, amount, evidenceHash)));
        address[] memory signers = _useEvidence(digest, evidenceHash, signatures);
        for (uint256 i = 0; i < signers.length; ++i) {
            if (signers[i] == verifier) revert SignerIsAccused(verifier);
        }
        (v.stake, v.unbonding, slashed) = _take(v.stake, v.unbonding, amount);
        token.safeTransfer(treasury, slashed);
        emit VerifierSlashed(verifier, slashed, evidenceHash, signers);
        if (v.stake == 0 && v.unbonding == 0) {
            // Nothing left at stake: free the seat.
            delete _verifiers[verifier];
            verifierCount -= 1;
            emit VerifierDeregistered(verifier);
        }
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────────

    /// @notice A node's registration; `operator` is zero when the node is not registered.
    function getNode(bytes32 nodeId) external view returns (Node memory) {
        return _nodes[nodeId];
    }

    /// @notice A verifier's registration; `registeredAt` is zero when not registered.
    function getVerifier(address verifier) external view returns (Verifier memory) {
        return _verifiers[verifier];
    }

    /// @notice Whether a node is registered with at least the minimum stake.
    function isActiveNode(bytes32 nodeId) public view returns (bool) {
        Node storage n = _nodes[nodeId];
        return n.operator != address(0) && n.stake >= minNodeStake && n.stake != 0;
    }

    /// @notice Whether an address is a verifier with at least the minimum verifier stake bonded.
    function isActiveVerifier(address verifier) public view returns (bool) {
        uint128 stake = _verifiers[verifier].stake;
        return stake != 0 && stake >= minVerifierStake;
    }

    /// @notice Recovers the signers of `digest` from packed 65-byte signatures ordered by ascending
    /// signer address, and reverts unless they are at least {quorum} distinct active verifiers.
    /// EpochRewards calls this for every root, so the rule lives in one place.
    function requireQuorumSignatures(bytes32 digest, bytes calldata signatures) external view {
        requireQuorum(QuorumSignatures.recoverAscending(digest, signatures));
    }

    /// @notice Reverts unless `signers` (distinct, as {QuorumSignatures} guarantees) holds at least
    /// {quorum} active verifiers, all of them active.
    function requireQuorum(address[] memory signers) public view {
        if (signers.length < quorum) revert QuorumNotReached(signers.length, quorum);
        uint128 minimum = minVerifierStake;
        for (uint256 i = 0; i < signers.length; ++i) {
            uint128 stake = _verifiers[signers[i]].stake;
            if (stake == 0 || stake < minimum) revert NotActiveVerifier(signers[i]);
        }
    }

    /// @notice The EIP-712 domain separator (binds chain id and this contract's address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ─── Parameters (owner: the deployer now, the governance timelock later) ─────────────────

    function setMinNodeStake(uint128 value) external onlyOwner {
        _setMinNodeStake(value);
    }

    function setMinVerifierStake(uint128 value) external onlyOwner {
        _setMinVerifierStake(value);
    }

    function setUnbondingPeriod(uint64 value) external onlyOwner {
        _setUnbondingPeriod(value);
    }

    function setVerifierLimits(uint32 quorum_, uint32 maxVerifiers_) external onlyOwner {
        _setVerifierLimits(quorum_, maxVerifiers_);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────────

    function _operatorNode(bytes32 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.operator == address(0)) revert NodeNotRegistered(nodeId);
        if (n.operator != msg.sender) revert NotOperator(nodeId, msg.sender);
    }

    function _useEvidence(bytes32 digest, bytes32 evidenceHash, bytes calldata signatures)
        private
        returns (address[] memory signers)
    {
        if (evidenceUsed[evidenceHash]) revert EvidenceAlreadyUsed(evidenceHash);
        signers = QuorumSignatures.recoverAscending(digest, signatures);
        requireQuorum(signers);
        evidenceUsed[evidenceHash] = true;
    }

    function _take(uint128 bonded, uint128 unbonding, uint256 amount)
        private
        pure
        returns (uint128, uint128, uint256 taken)
    {
        uint256 available = uint256(bonded) + unbonding;
        taken = amount < available ? amount : available;
        if (taken <= bonded) return (bonded - uint128(taken), unbonding, taken);
        return (0, unbonding - uint128(taken - bonded), taken);
    }

    function _setMinNodeStake(uint128 value) private {
        if (value == 0) revert InvalidParameter("minNodeStake");
        minNodeStake = value;
        emit ParameterChanged("minNodeStake", value);
    }

    function _setMinVerifierStake(uint128 value) private {
        if (value == 0) revert InvalidParameter("minVerifierStake");
        minVerifierStake = value;
        emit ParameterChanged("minVerifierStake", value);
    }

    function _setUnbondingPeriod(uint64 value) private {
        if (value > MAX_UNBONDING_PERIOD) revert InvalidParameter("unbondingPeriod");
        unbondingPeriod = value;
        emit ParameterChanged("unbondingPeriod", value);
    }

    function _setVerifierLimits(uint32 quorum_, uint32 maxVerifiers_) private {
        if (quorum_ == 0 || maxVerifiers_ < quorum_) revert InvalidParameter("quorum");
        quorum = quorum_;
        maxVerifiers = maxVerifiers_;
        emit ParameterChanged("quorum", quorum_);
        emit ParameterChanged("maxVerifiers", maxVerifiers_);
    }
}
