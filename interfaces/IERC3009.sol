// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EIP-3009: transfer with authorization
/// @notice Function signatures, type strings and events exactly as in Circle's FiatTokenV2_2, so
/// wallets that sign USDC's gasless transfers sign a city token's unchanged.
interface IERC3009 {
    /// @notice The authorization was used: its nonce can never be used again.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice The authorizer cancelled an authorization before it was used.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    /// @notice A relayer's batch refused a correctly signed authorization (a rule of the token:
    /// balance, an inactive merchant, a pause): it can never be used, so a payment the till was told
    /// had failed cannot be settled later by whoever holds the signature.
    event AuthorizationVoided(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The authorization's validAfter is still in the future.
    error EIP3009AuthorizationNotYetValid(uint256 validAfter, uint256 blockTimestamp);
    /// @notice The authorization's validBefore has passed.
    error EIP3009AuthorizationExpired(uint256 validBefore, uint256 blockTimestamp);
    /// @notice The authorization was used: the payment it authorizes went through.
    error EIP3009AuthorizationUsed(address authorizer, bytes32 nonce);
    /// @notice The authorizer cancelled this nonce.
    error EIP3009AuthorizationCanceled(address authorizer, bytes32 nonce);
    /// @notice A relayer's batch refused this authorization (see AuthorizationVoided).
    error EIP3009AuthorizationVoided(address authorizer, bytes32 nonce);
    /// @notice The signature does not recover to the authorizer.
    error EIP3009InvalidSignature(address authorizer);
    /// @notice receiveWithAuthorization must be called by the payee.
    error EIP3009CallerMustBePayee(address caller, address payee);

    /// @notice Whether the nonce of the authorizer is used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

    /// @notice Moves `value` from `from` to `to` with `from`'s signed authorization.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice As above, with the signature as bytes (ECDSA, or ERC-1271 for a contract wallet).
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;

    /// @notice As transferWithAuthorization, callable only by the payee `to` (a merchant pulling a
    /// QR payment), so a front-runner cannot settle it elsewhere.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice As above, with the signature as bytes.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;

    /// @notice Cancels an unused authorization of `authorizer`.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice As above, with the signature as bytes.
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external;
}
