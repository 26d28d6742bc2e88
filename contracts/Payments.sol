// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Payments
/// @notice One-way payment channels from a builder to a provider. The builder deposits, then pays off
/// chain with EIP-712 vouchers that each carry the *cumulative* amount owed on the channel; the provider
/// redeems the latest voucher whenever it likes and is paid the difference since its last redeem, so no
/// voucher pays twice. The builder gets back what is left after asking to close and waiting out the
/// close timeout, during which the provider can still redeem.
contract Payments is EIP712 {
    using SafeERC20 for IERC20;

    struct Channel {
        address builder;
        uint64 closesAt;
        bool closed;
        address provider;
        uint128 deposit;
        uint128 redeemed;
    }

    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(uint256 channelId,uint128 cumulativeAmount)");

    IERC20 public immutable token;
    /// @notice Seconds a provider has to redeem after the builder asks to close.
    uint64 public immutable closeTimeout;
    /// @notice The protocol fee burned from every redeemed payment, in basis points (at most 2,000):
    /// what makes paying oneself cost, so that emission earned through payments can be capped below it.
    uint16 public immutable feeBps;
    /// @notice Where fees go: an address no key controls (MeshToken's own burn is the minter's only).
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    uint256 public channelCount;
    mapping(uint256 channelId => Channel) private _channels;

    error ZeroAddress();
    error ZeroAmount();
    error UnknownChannel(uint256 channelId);
    error NotBuilder(uint256 channelId, address caller);
    error ChannelClosed(uint256 channelId);
    error InvalidVoucherSigner(uint256 channelId, address signer);
    error VoucherAlreadyRedeemed(uint256 channelId, uint256 cumulativeAmount, uint256 redeemed);
    error VoucherExceedsDeposit(uint256 channelId, uint256 cumulativeAmount, uint256 deposit);
    error CloseNotRequested(uint256 channelId);
    error CloseTimeoutNotOver(uint256 channelId, uint256 closesAt);
    error FeeTooHigh(uint16 feeBps);

    event ChannelOpened(uint256 indexed channelId, address indexed builder, address indexed provider, uint256 deposit);
    event ChannelDeposited(uint256 indexed channelId, uint256 amount, uint256 deposit);
    /// @notice `amount` left the channel: the provider received `amount - fee`, and `fee` was burned.
    event VoucherRedeemed(
        uint256 indexed channelId, address indexed provider, uint256 amount, uint256 cumulativeAmount, uint256 fee
    );
    event ChannelCloseRequested(uint256 indexed channelId, uint256 closesAt);
    event ChannelWithdrawn(uint256 indexed channelId, address indexed builder, uint256 refund);

    constructor(IERC20 token_, uint64 closeTimeout_, uint16 feeBps_) EIP712("Meshwork Payments", "1") {
        if (address(token_) == address(0)) revert ZeroAddress();
        if (feeBps_ > 2_000) revert FeeTooHigh(feeBps_);
        token = token_;
        closeTimeout = closeTimeout_;
        feeBps = feeBps_;
    }

    /// @notice Opens a channel from the caller (builder) to `provider` with a first deposit.
    function openChannel(address provider, uint128 amount) external returns (uint256 channelId) {
        if (provider == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        channelId = ++channelCount;
        _channels[channelId] =
            Channel({builder: msg.sender, closesAt: 0, closed: false, provider: provider, deposit: amount, redeemed: 0});
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit ChannelOpened(channelId, msg.sender, provider, amount);
    }

    /// @notice Tops up a channel; only its builder. Cancels a pending close request.
    function deposit(uint256 channelId, uint128 amount) external {
        if (amount == 0) revert ZeroAmount();
        Channel storage c = _builderChannel(channelId);
        c.deposit += amount;
        c.closesAt = 0;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit ChannelDeposited(channelId, amount, c.deposit);
    }

    /// @notice Pays the provider the difference between a builder-signed cumulative voucher and what was
    /// already redeemed. Anyone may submit it; the tokens go to the provider.
    function redeemVoucher(uint256 channelId, uint128 cumulativeAmount, bytes calldata signature) external {
        Channel storage c = _channels[channelId];
        address builder = c.builder;
        if (builder == address(0)) revert UnknownChannel(channelId);
        if (c.closed) revert ChannelClosed(channelId);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount)));
        address signer = ECDSA.recover(digest, signature);
        if (signer != builder) revert InvalidVoucherSigner(channelId, signer);
        uint128 redeemed = c.redeemed;
        if (cumulativeAmount <= redeemed) revert VoucherAlreadyRedeemed(channelId, cumulativeAmount, redeemed);
        if (cumulativeAmount > c.deposit) revert VoucherExceedsDeposit(channelId, cumulativeAmount, c.deposit);
        c.redeemed = cumulativeAmount;
        address provider = c.provider;
        uint256 amount = cumulativeAmount - redeemed;
        uint256 fee = amount * feeBps / 10_000;
        token.safeTransfer(provider, amount - fee);
        if (fee > 0) token.safeTransfer(BURN_ADDRESS, fee);
        emit VoucherRedeemed(channelId, provider, amount, cumulativeAmount, fee);
    }

    /// @notice Starts the close timeout; only the builder.
    function requestClose(uint256 channelId) external {
        Channel storage c = _builderChannel(channelId);
        uint64 closesAt = uint64(block.timestamp) + closeTimeout;
        c.closesAt = closesAt;
        emit ChannelCloseRequested(channelId, closesAt);
    }

    /// @notice Refunds the unredeemed deposit to the builder once the close timeout is over, and closes
    /// the channel for good.
    function withdraw(uint256 channelId) external {
        Channel storage c = _builderChannel(channelId);
        if (c.closesAt == 0) revert CloseNotRequested(channelId);
        if (block.timestamp < c.closesAt) revert CloseTimeoutNotOver(channelId, c.closesAt);
        uint256 refund = c.deposit - c.redeemed;
        c.closed = true;
        c.deposit = c.redeemed;
        token.safeTransfer(c.builder, refund);
        emit ChannelWithdrawn(channelId, c.builder, refund);
    }

    /// @notice A channel's state; `builder` is zero for an unknown id.
    function getChannel(uint256 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// @notice The EIP-712 domain separator (binds chain id and this contract's address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _builderChannel(uint256 channelId) private view returns (Channel storage c) {
        c = _channels[channelId];
        if (c.builder == address(0)) revert UnknownChannel(channelId);
        if (c.builder != msg.sender) revert NotBuilder(channelId, msg.sender);
        if (c.closed) revert ChannelClosed(channelId);
    }
}
