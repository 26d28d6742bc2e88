// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title QuorumSignatures
/// @notice Recovers the signers of an EIP-712 digest from a list of signatures that must be ordered by
/// strictly ascending signer address, so that one signer can never be counted twice.
library QuorumSignatures {
    error SignersNotAscending(uint256 index, address signer);

    /// @dev Reverts on a malformed or malleable signature (OpenZeppelin ECDSA) and on an unordered or
    /// repeated signer.
    function recoverAscending(bytes32 digest, bytes[] calldata signatures)
        internal
        pure
        returns (address[] memory signers)
    {
        signers = new address[](signatures.length);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            if (signer <= previous) revert SignersNotAscending(i, signer);
            signers[i] = signer;
            previous = signer;
        }
    }
}
