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
contract MeshToken is ERC20, ERC20Permit, ERC20Votes {
    /// @notice Hard cap on the total supply, fixed at deploy.
    uint256 public immutable maxSupply;

    /// @notice The only account allowed to mint (EpochRewards). Set once, then immutable.
    address public minter;

    /// @dev The account allowed to call {setMinter} once; cleared when it does.
    address private _minterSetter;

    error MinterAlreadySet();
    error NotMinter(address caller);
    error MaxSupplyExceeded(uint256 requested, uint256 available);
    error ZeroAddress();

    event MinterSet(address indexed minter);

    constructor(string memory name_, string memory symbol_, uint256 maxSupply_, address treasury, uint256 genesisAmount)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        if (treasury == address(0)) revert ZeroAddress();
        if (genesisAmount > maxSupply_) revert MaxSupplyExceeded(genesisAmount, maxSupply_);
        maxSupply = maxSupply_;
        _minterSetter = msg.sender;
        _mint(treasury, genesisAmount);
    }

    /// @notice Sets the minter. Callable once, by the deployer, right after deploying EpochRewards.
    function setMinter(address minter_) external {
        if (msg.sender != _minterSetter || minter != address(0)) revert MinterAlreadySet();
        if (minter_ == address(0)) revert ZeroAddress();
        minter = minter_;
        _minterSetter = address(0);
        emit MinterSet(minter_);
    }

    /// @notice Mints new tokens; only the minter, and never past {maxSupply}.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        uint256 available = maxSupply - totalSupply();
        if (amount > available) revert MaxSupplyExceeded(amount, available);
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
