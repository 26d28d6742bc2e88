// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title MeshToken
/// @notice The Meshwork token: ERC-20 with EIP-2612 permit and ERC-5805 votes, and a fixed maximum
/// supply. A genesis allocation goes to the treasury at deploy; everything else is minted only by the
/// minter (EpochRewards), which follows the emission schedule documented in docs/rewards.md.
///
/// Votes count once a holder delegates (to itself or another account), and are checkpointed by
/// timestamp (ERC-6372 `mode=timestamp`): the governor's voting delay and period are in seconds, the
/// same unit as epochs.
contract MeshToken is ERC20, ERC20Permit, ERC20Votes {
    /// @notice Hard cap on the total supply, fixed at deploy.
    uint256 public immutable maxSupply;

    /// @notice The only account allowed to mint (EpochRewards), fixed at deploy: the deploy script
    /// computes the address EpochRewards will have and checks it afterwards.
    address public immutable minter;

    error NotMinter(address caller);
    error MaxSupplyExceeded(uint256 requested, uint256 available);
    error ZeroAddress();

    constructor(
        string memory name_,
        string memory symbol_,
        uint256 maxSupply_,
        address treasury,
        uint256 genesisAmount,
        address minter_
    ) ERC20(name_, symbol_) ERC20Permit(name_) {
        if (treasury == address(0) || minter_ == address(0)) revert ZeroAddress();
        if (genesisAmount > maxSupply_) revert MaxSupplyExceeded(genesisAmount, maxSupply_);
        maxSupply = maxSupply_;
        minter = minter_;
        _mint(treasury, genesisAmount);
    }

    /// @notice Mints new tokens; only the minter, and never past {maxSupply}.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        uint256 available = maxSupply - totalSupply();
        if (amount > available) revert MaxSupplyExceeded(amount, available);
        _mint(to, amount);
    }

    /// @notice Burns the minter's own tokens (EpochRewards returns the emission of a revoked root).
    function burn(uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _burn(msg.sender, amount);
    }

    /// @notice The account `account` delegates its votes to. The minter (a contract with no way to
    /// delegate) and the zero address never have a delegate; answering that without reading storage
    /// saves two cold reads on every mint and claim.
    function delegates(address account) public view override returns (address) {
        if (account == minter || account == address(0)) return address(0);
        return super.delegates(account);
    }

    /// @notice ERC-6372 clock: votes are checkpointed by block timestamp.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock mode: timestamps.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
