// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title MeshTimelock
/// @notice OpenZeppelin's TimelockController, unchanged: it owns every governable parameter
/// (NetworkParams, NodeRegistry, EpochRewards) and runs what the governor queued once `minDelay`
/// seconds have passed. After deploy the governor is its only proposer and canceller, anyone may
/// execute a ready operation, and its admin role is held by itself alone (the deployer renounces it),
/// so its own delay and roles change only by a proposal too.
contract MeshTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
