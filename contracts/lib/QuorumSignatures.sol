// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title QuorumSignatures
/// @notice Recovers the signers of an EIP-712 digest from packed 65-byte signatures (r, s, v), which
/// must be ordered by strictly ascending signer address so that one signer is never counted twice.
library QuorumSignatures {
    error SignersNotAscending(uint256 index, address signer);
    error SignaturesMalformed(uint256 length);

    /// @dev Reverts on a malformed or malleable signature (OpenZeppelin ECDSA) and on an unordered or
    /// repeated signer.
    function recoverAscending(bytes32 digest, bytes calldata signatures)
        internal
        pure
        returns (address[] memory signers)
    {
        if (signatures.length % 65 != 0) revert SignaturesMalformed(signatures.length);
        uint256 count = signatures.length / 65;
        signers = new address[](count);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i * 65:(i + 1) * 65]);
            if (signer <= previous) revert SignersNotAscending(i, signer);
            signers[i] = signer;
            previous = signer;
        }
    }
}
