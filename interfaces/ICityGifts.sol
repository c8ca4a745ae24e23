// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICityToken} from "./ICityToken.sol";

/// @title A city's gifts (선물하기): general money bought with KRW, from one resident to another
/// @notice A gift moves only money the giver bought with KRW: not incentive (the share of its
/// charges the treasury counts as incentive stays behind), not policy money, never expired money;
/// between two active residents of the same city, under the city's monthly caps on what a
/// resident sends and receives (a control against illegal exchange, 부정유통). Each part keeps its
/// expiry. Relayable: the giver signs an EIP-712 `GiftAuthorization` in the domain
/// "<token name> Gifts", version "1", this contract and chain, valid for at most a day.
interface ICityGifts {
    enum AuthorizationState {
        Unused,
        Used,
        Canceled
    }

    /// @notice What a resident sent and received in gifts in a month (KST, `KoreanCalendar`).
    struct GiftTally {
        uint32 month;
        uint112 sent;
        uint112 received;
    }

    /// @notice `nonce` is the authorization's (zero for a gift the giver sent itself).
    event Gifted(address indexed from, address indexed to, uint256 value, bytes32 indexed nonce);
    event GiftAuthorizationCanceled(address indexed from, bytes32 indexed nonce);
    event GiftCapsChanged(uint256 monthlySendCap, uint256 monthlyReceiveCap);

    error CityGiftsZeroAddress();
    error CityGiftsZeroValue();
    error CityGiftsToSelf(address account);
    error CityGiftsNotActiveResident(address account);
    /// @notice More than the giver's general money bought with KRW (`giftable`).
    error CityGiftsNotCashFunded(address from, uint256 giftable, uint256 value);
    error CityGiftsSendCapExceeded(address from, uint256 sentThisMonth, uint256 value, uint256 cap);
    error CityGiftsReceiveCapExceeded(address to, uint256 receivedThisMonth, uint256 value, uint256 cap);
    error CityGiftsHoldingCapExceeded(address to, uint256 balance, uint256 value, uint256 cap);
    error CityGiftsAuthorizationNotYetValid(address from, uint256 validAfter, uint256 blockTimestamp);
    error CityGiftsAuthorizationExpired(address from, uint256 validBefore, uint256 blockTimestamp);
    error CityGiftsAuthorizationWindowTooLong(address from, uint256 validAfter, uint256 validBefore, uint256 maxValidity);
    error CityGiftsAuthorizationUsed(address from, bytes32 nonce);
    error CityGiftsAuthorizationCanceled(address from, bytes32 nonce);
    error CityGiftsInvalidSignature(address from, bytes32 nonce);

    /// @notice The caller gives `value` to `to`.
    function gift(address to, uint256 value) external;
    /// @notice Anyone relays a gift `from` signed. Reverts with the refusal.
    function giftWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
    /// @notice Anyone relays `from`'s signed cancellation of an unused authorization.
    function cancelGiftAuthorization(address from, bytes32 nonce, bytes calldata signature) external;
    /// @notice The city's admin: the most a resident may send, and receive, in gifts a month.
    function setMonthlyCaps(uint256 sendCap, uint256 receiveCap) external;

    /// @notice Empty when `from` may give `value` to `to` now, else the revert data of the refusal:
    /// a wallet asks before the resident signs.
    function giftRefusal(address from, address to, uint256 value) external view returns (bytes memory);
    /// @notice The most `account` may give now: its general money bought with KRW, within what is
    /// left of its monthly send cap (the receiver's caps aside).
    function giftableOf(address account) external view returns (uint256);
    /// @notice This month's tally of `account` (its first wallet's, across recoveries).
    function giftTallyOf(address account) external view returns (GiftTally memory);
    function authorizationState(address from, bytes32 nonce) external view returns (AuthorizationState);
    function monthlySendCap() external view returns (uint256);
    function monthlyReceiveCap() external view returns (uint256);
    /// @notice The city's token: CityPrograms links only its own city's gifts.
    function token() external view returns (ICityToken);
}
