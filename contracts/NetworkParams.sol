// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

interface IEpochClock {
    function genesisTime() external view returns (uint64);
    function epochDuration() external view returns (uint64);
}

/// @title NetworkParams
/// @notice The reward function's parameter set (docs/rewards.md, "Parameters"), versioned by epoch.
///
/// Version 1 is the deploy's set and applies from epoch 0. Each change, made by the owner (the
/// governance timelock), is a whole new set that applies from the epoch after the one the chain's
/// clock is in when it executes, so every verifier settles a given epoch with the same set, and an
/// epoch's set never changes once it has started. The history is kept: {paramsAt} and {versionAt}
/// answer for any epoch. Epochs are EpochRewards' (its genesis time and epoch length, read once at
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
        /// An operator's compute reward in an epoch is at most this share of the payment fees its
        /// payments burned in the epoch, in basis points: below 10,000, so paying oneself never pays.
        uint16 computeRebateBps;
    }

    struct Version {
        uint64 fromEpoch;
        Params params;
    }

    uint256 public constant BPS = 10_000;
    uint256 public constant PPM = 1_000_000;

    uint64 public immutable genesisTime;
    uint64 public immutable epochDuration;

    Version[] private _versions;

    error WeightsDoNotSum(uint256 sum);
    error InvalidParameter(string name);
    error ParamsVersionStale(uint32 baseVersion, uint32 latestVersion);
    error UnknownVersion(uint32 version);

    /// @notice A new parameter set, in force from epoch `fromEpoch` on.
    event ParamsChanged(uint32 indexed version, uint64 indexed fromEpoch, Params params);

    constructor(address owner_, IEpochClock epochs, Params memory initial) Ownable(owner_) {
        uint64 duration = epochs.epochDuration();
        if (duration == 0) revert InvalidParameter("epochDuration");
        genesisTime = epochs.genesisTime();
        epochDuration = duration;
        _push(0, initial);
    }

    /// @notice Sets a whole new parameter set, in force from the next epoch. `baseVersion` must be
    /// the newest version ({versionCount}): a proposal built on a set that another proposal has
    /// replaced meanwhile reverts instead of silently undoing that change.
    function setParams(uint32 baseVersion, Params calldata p) external onlyOwner {
        uint32 latestVersion = uint32(_versions.length);
        if (baseVersion != latestVersion) revert ParamsVersionStale(baseVersion, latestVersion);
        uint64 fromEpoch = block.timestamp < genesisTime ? 0 : currentEpoch() + 1;
        _push(fromEpoch, p);
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

    // ─── Internals ────────────────────────────────────────────────────────────────────────────

    function _push(uint64 fromEpoch, Params memory p) private {
        _check(p);
        _versions.push(Version(fromEpoch, p));
        emit ParamsChanged(uint32(_versions.length), fromEpoch, p);
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
        if (p.computeRebateBps >= BPS) revert InvalidParameter("compute.rebateBps");
    }
}
