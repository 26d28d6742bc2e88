// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

interface IEpochClock {
    function genesisTime() external view returns (uint64);
    function epochDuration() external view returns (uint64);
}

/// @title NetworkParams
/// @notice The reward function's parameter set (docs/rewards.md, "Parameters"), versioned by epoch,
/// and the hardware makers whose device certificates count (docs/governance.md, "Hardware makers").
///
/// Version 1 is the deploy's set and applies from epoch 0. Each change, made by the owner (the
/// governance timelock), is a whole new version that applies from the epoch after the one the
/// chain's clock is in when it executes, so every verifier settles a given epoch with the same
/// version, and an epoch's version never changes once it has started. A version is a parameter set
/// and a maker list: {setParams} replaces the set and keeps the makers, {setMakers} replaces the
/// makers and keeps the set. The history is kept: {paramsAt}, {makersAt} and {versionAt} answer for
/// any epoch. Epochs are EpochRewards' (its genesis time and epoch length, read once at
/// construction).
contract NetworkParams is Ownable {
    /// @notice One parameter set. Weights are each service's share of an epoch's emission in basis
    /// points and sum to 10,000; ppm values are parts per million.
    struct Params {
        uint16 uptimeWeightBps;
        uint16 computeWeightBps;
        uint16 storageWeightBps;
        uint16 relayWeightBps;
        uint16 sensorWeightBps;
        /// A node whose uptime score is below this earns no uptime reward (at most 1,000,000).
        uint32 uptimeThresholdPpm;
        /// Stake above this (base units) adds no uptime weight (more than 0).
        uint128 stakeCap;
        /// The capped stake one H3 cell (resolution 7) counts in all: more in one cell is shared
        /// (at least stakeCap, so that one full node per cell is never scaled down).
        uint128 cellStakeCap;
        /// A node registered fewer than this many epochs before an epoch is being vetted in it.
        uint32 vettingEpochs;
        /// The weight of a node being vetted, in basis points of the full weight (at most 10,000).
        uint16 vettingFactorBps;
        /// Sensors paid per H3 cell and epoch: more in one cell share the same reward (at least 1).
        uint32 sensorCellCapacity;
        /// Bounds of the probability of re-running a compute job to verify it, in ppm:
        /// 0 < min <= max <= 1,000,000.
        uint32 computeVerifyMinPpm;
        uint32 computeVerifyMaxPpm;
        /// An operator's compute, storage and relay rewards in an epoch are together at most this
        /// share of the payment fees its payments burned in the epoch, in basis points: below
        /// 10,000, so paying oneself never pays.
        uint16 workRebateBps;
        /// The share of a node's uptime weight, in basis points, that is linear in its stake; the
        /// rest counts only with a certified device in its registered place (at most 10,000).
        uint16 linearBps;
    }

    struct Version {
        uint64 fromEpoch;
        /// Its maker list, an index into `_makerLists` (versions made by {setParams} share the list
        /// of the version they replace).
        uint32 makerList;
        Params params;
    }

    uint256 public constant BPS = 10_000;
    uint256 public constant PPM = 1_000_000;
    /// @notice The most makers one version lists.
    uint256 public constant MAX_MAKERS = 256;

    uint64 public immutable genesisTime;
    uint64 public immutable epochDuration;

    Version[] private _versions;
    /// Every maker list ever set, in order; each is strictly ascending, without the zero key.
    bytes32[][] private _makerLists;

    error WeightsDoNotSum(uint256 sum);
    error InvalidParameter(string name);
    error ParamsVersionStale(uint32 baseVersion, uint32 latestVersion);
    error UnknownVersion(uint32 version);
    /// @notice The maker at `index` is the zero key, or not above the one before it (a repeat, or
    /// out of order: a list is strictly ascending).
    error InvalidMaker(uint256 index, bytes32 maker);

    /// @notice A new version, in force from epoch `fromEpoch` on, and its parameter set (every
    /// version emits it, also one made by {setMakers}, whose set is the one it replaces).
    event ParamsChanged(uint32 indexed version, uint64 indexed fromEpoch, Params params);
    /// @notice The makers of a new version, in force from epoch `fromEpoch` on: emitted for version 1
    /// and for each version made by {setMakers}.
    event MakersChanged(uint32 indexed version, uint64 indexed fromEpoch, bytes32[] makers);

    /// @param makers The makers whose device certificates count from epoch 0: their raw 32-byte
    /// Ed25519 public keys, strictly ascending, at most {MAX_MAKERS}, none zero.
    constructor(address owner_, IEpochClock epochs, Params memory initial, bytes32[] memory makers)
        Ownable(owner_)
    {
        uint64 duration = epochs.epochDuration();
        if (duration == 0) revert InvalidParameter("epochDuration");
        genesisTime = epochs.genesisTime();
        epochDuration = duration;
        _push(0, initial, _addMakers(makers));
        emit MakersChanged(1, 0, makers);
    }

    /// @notice Sets a whole new parameter set, in force from the next epoch, keeping the makers of
    /// the version it replaces. `baseVersion` must be the newest version ({versionCount}): a
    /// proposal built on a set that another proposal has replaced meanwhile reverts instead of
    /// silently undoing that change.
    function setParams(uint32 baseVersion, Params calldata p) external onlyOwner {
        uint64 fromEpoch = _nextFromEpoch(baseVersion);
        _push(fromEpoch, p, _versions[baseVersion - 1].makerList);
    }

    /// @notice Sets a whole new maker list, in force from the next epoch, keeping the parameter set
    /// of the version it replaces. `makers` are raw 32-byte Ed25519 public keys, strictly ascending
    /// (so none repeats), none zero, at most {MAX_MAKERS}; an empty list approves no maker.
    /// `baseVersion` must be the newest version, as for {setParams}.
    function setMakers(uint32 baseVersion, bytes32[] calldata makers) external onlyOwner {
        uint64 fromEpoch = _nextFromEpoch(baseVersion);
        _push(fromEpoch, _versions[baseVersion - 1].params, _addMakers(makers));
        emit MakersChanged(uint32(_versions.length), fromEpoch, makers);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────────

    /// @notice The epoch the chain's clock is in now (0 before and during the first epoch).
    function currentEpoch() public view returns (uint64) {
        if (block.timestamp < genesisTime) return 0;
        return uint64((block.timestamp - genesisTime) / epochDuration);
    }

    /// @notice How many versions exist; the newest one's number.
    function versionCount() external view returns (uint32) {
        return uint32(_versions.length);
    }

    /// @notice Version `version` (from 1) and the epoch it applies from.
    function getVersion(uint32 version) external view returns (uint64 fromEpoch, Params memory params) {
        if (version == 0 || version > _versions.length) revert UnknownVersion(version);
        Version storage v = _versions[version - 1];
        return (v.fromEpoch, v.params);
    }

    /// @notice The version in force in `epoch`.
    function versionAt(uint64 epoch) public view returns (uint32) {
        // The newest version whose fromEpoch is at most `epoch`; version 1 applies from epoch 0.
        uint256 low = 0;
        uint256 high = _versions.length;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (_versions[mid].fromEpoch <= epoch) low = mid;
            else high = mid;
        }
        return uint32(low + 1);
    }

    /// @notice The parameter set in force in `epoch`.
    function paramsAt(uint64 epoch) external view returns (Params memory) {
        return _versions[versionAt(epoch) - 1].params;
    }

    /// @notice The parameter set in force now, and its version.
    function current() external view returns (uint32 version, Params memory params) {
        version = versionAt(currentEpoch());
        params = _versions[version - 1].params;
    }

    /// @notice The makers of version `version` (from 1): raw Ed25519 public keys, ascending.
    function makersOf(uint32 version) external view returns (bytes32[] memory) {
        if (version == 0 || version > _versions.length) revert UnknownVersion(version);
        return _makerLists[_versions[version - 1].makerList];
    }

    /// @notice The makers whose device certificates count in `epoch`.
    function makersAt(uint64 epoch) external view returns (bytes32[] memory) {
        return _makerLists[_versions[versionAt(epoch) - 1].makerList];
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────────

    /// The epoch a change made now applies from, once `baseVersion` is checked to be the newest.
    function _nextFromEpoch(uint32 baseVersion) private view returns (uint64) {
        uint32 latestVersion = uint32(_versions.length);
        if (baseVersion != latestVersion) revert ParamsVersionStale(baseVersion, latestVersion);
        return block.timestamp < genesisTime ? 0 : currentEpoch() + 1;
    }

    function _push(uint64 fromEpoch, Params memory p, uint32 makerList) private {
        _check(p);
        _versions.push(Version(fromEpoch, makerList, p));
        emit ParamsChanged(uint32(_versions.length), fromEpoch, p);
    }

    /// Checks and stores a maker list; returns its index.
    function _addMakers(bytes32[] memory makers) private returns (uint32) {
        if (makers.length > MAX_MAKERS) revert InvalidParameter("hardware.makers");
        bytes32 previous = 0;
        for (uint256 i = 0; i < makers.length; ++i) {
            // Strictly ascending from above zero: no zero key and no repeat.
            if (makers[i] <= previous) revert InvalidMaker(i, makers[i]);
            previous = makers[i];
        }
        _makerLists.push(makers);
        return uint32(_makerLists.length - 1);
    }

    function _check(Params memory p) private pure {
        uint256 sum = uint256(p.uptimeWeightBps) + p.computeWeightBps + p.storageWeightBps + p.relayWeightBps
            + p.sensorWeightBps;
        if (sum != BPS) revert WeightsDoNotSum(sum);
        if (p.uptimeThresholdPpm > PPM) revert InvalidParameter("uptime.thresholdPpm");
        if (p.stakeCap == 0) revert InvalidParameter("uptime.stakeCap");
        if (p.cellStakeCap < p.stakeCap) revert InvalidParameter("uptime.cellStakeCap");
        if (p.vettingFactorBps > BPS) revert InvalidParameter("uptime.vettingFactorBps");
        if (p.sensorCellCapacity == 0) revert InvalidParameter("sensor.cellCapacity");
        if (p.computeVerifyMinPpm == 0 || p.computeVerifyMinPpm > p.computeVerifyMaxPpm) {
            revert InvalidParameter("compute.verifyMinPpm");
        }
        if (p.computeVerifyMaxPpm > PPM) revert InvalidParameter("compute.verifyMaxPpm");
        if (p.workRebateBps >= BPS) revert InvalidParameter("work.rebateBps");
        if (p.linearBps > BPS) revert InvalidParameter("hardware.linearBps");
    }
}
