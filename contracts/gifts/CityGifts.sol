// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ICityGifts} from "../../interfaces/ICityGifts.sol";
import {ICityPrograms} from "../../interfaces/ICityPrograms.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";
import {KoreanCalendar} from "../libraries/KoreanCalendar.sol";

/// @title A city's gifts (선물하기)
/// @notice Checks a gift (who, how much, the caps, the giver's signature) and has the city's
/// CityPrograms move it: the lots of general money keep their expiry, the treasury's tallies move
/// the charged money with it, the token moves the balance (a `Transfer` between two residents).
///
/// Roles: the city's admin sets the monthly caps and can do nothing else here. Nobody can give
/// a resident's money but the resident: a gift is the giver's own transaction or its signature.
contract CityGifts is ICityGifts, AccessControl, EIP712 {
    using SafeCast for uint256;

    bytes32 public constant GIFT_AUTHORIZATION_TYPEHASH = keccak256(
        "GiftAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_GIFT_AUTHORIZATION_TYPEHASH =
        keccak256("CancelGiftAuthorization(address from,bytes32 nonce)");
    /// @notice The longest a signed gift may stay valid: a signature is not a standing order.
    uint256 public constant MAX_GIFT_VALIDITY = 1 days;

    ICityToken public immutable token;

    /// @inheritdoc ICityGifts
    uint256 public monthlySendCap;
    /// @inheritdoc ICityGifts
    uint256 public monthlyReceiveCap;

    /// @dev By the resident's first wallet (the token's originOf): a recovery keeps the month's count.
    mapping(address origin => GiftTally) private _tallies;
    mapping(address from => mapping(bytes32 nonce => AuthorizationState)) private _authorizations;

    /// @dev The EIP-712 domain is "<token name> Gifts" (e.g. "Gimpo Pay Gifts"), version "1".
    /// @dev The city's CityPrograms and CityTreasury are the ones its token links: read from it
    /// at each gift, so the deployment creates this contract beside the programs.
    constructor(ICityToken token_, address cityAdmin, uint256 sendCap, uint256 receiveCap)
        EIP712(string.concat(IERC20Metadata(address(token_)).name(), " Gifts"), "1")
    {
        if (address(token_) == address(0) || cityAdmin == address(0)) revert CityGiftsZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
        _setCaps(sendCap, receiveCap);
    }

    /// @inheritdoc ICityGifts
    function gift(address to, uint256 value) external {
        _gift(msg.sender, to, value, bytes32(0));
    }

    /// @inheritdoc ICityGifts
    function giftWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (block.timestamp <= validAfter) revert CityGiftsAuthorizationNotYetValid(from, validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert CityGiftsAuthorizationExpired(from, validBefore, block.timestamp);
        if (validBefore - validAfter > MAX_GIFT_VALIDITY) {
            revert CityGiftsAuthorizationWindowTooLong(from, validAfter, validBefore, MAX_GIFT_VALIDITY);
        }
        _requireUnused(from, nonce);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(GIFT_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce))
        );
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert CityGiftsInvalidSignature(from, nonce);
        _authorizations[from][nonce] = AuthorizationState.Used;
        _gift(from, to, value, nonce);
    }

    /// @inheritdoc ICityGifts
    function cancelGiftAuthorization(address from, bytes32 nonce, bytes calldata signature) external {
        _requireUnused(from, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_GIFT_AUTHORIZATION_TYPEHASH, from, nonce)));
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert CityGiftsInvalidSignature(from, nonce);
        _authorizations[from][nonce] = AuthorizationState.Canceled;
        emit GiftAuthorizationCanceled(from, nonce);
    }

    /// @inheritdoc ICityGifts
    function setMonthlyCaps(uint256 sendCap, uint256 receiveCap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setCaps(sendCap, receiveCap);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityGifts
    function giftRefusal(address from, address to, uint256 value) public view returns (bytes memory) {
        if (Pausable(address(token)).paused()) return abi.encodeWithSelector(Pausable.EnforcedPause.selector);
        if (value == 0) return abi.encodeWithSelector(CityGiftsZeroValue.selector);
        if (from == to) return abi.encodeWithSelector(CityGiftsToSelf.selector, from);
        if (!_activeResident(from)) return abi.encodeWithSelector(CityGiftsNotActiveResident.selector, from);
        if (!_activeResident(to)) return abi.encodeWithSelector(CityGiftsNotActiveResident.selector, to);
        uint256 giftable = _cashFunded(from);
        if (value > giftable) return abi.encodeWithSelector(CityGiftsNotCashFunded.selector, from, giftable, value);
        uint256 sent = giftTallyOf(from).sent;
        if (value > monthlySendCap || sent + value > monthlySendCap) {
            return abi.encodeWithSelector(CityGiftsSendCapExceeded.selector, from, sent, value, monthlySendCap);
        }
        uint256 received = giftTallyOf(to).received;
        if (value > monthlyReceiveCap || received + value > monthlyReceiveCap) {
            return abi.encodeWithSelector(CityGiftsReceiveCapExceeded.selector, to, received, value, monthlyReceiveCap);
        }
        uint256 balance = token.balanceOf(to);
        uint256 holdingCap = treasury().policy().holdingCap;
        if (value > holdingCap || balance + value > holdingCap) {
            return abi.encodeWithSelector(CityGiftsHoldingCapExceeded.selector, to, balance, value, holdingCap);
        }
        return "";
    }

    /// @inheritdoc ICityGifts
    function giftableOf(address account) external view returns (uint256) {
        if (!_activeResident(account)) return 0;
        uint256 sent = giftTallyOf(account).sent;
        uint256 left = sent < monthlySendCap ? monthlySendCap - sent : 0;
        uint256 funded = _cashFunded(account);
        return funded < left ? funded : left;
    }

    /// @inheritdoc ICityGifts
    function giftTallyOf(address account) public view returns (GiftTally memory tally) {
        tally = _tallies[token.originOf(account)];
        uint32 month = KoreanCalendar.monthIndex(block.timestamp).toUint32();
        if (tally.month != month) tally = GiftTally(month, 0, 0);
    }

    /// @notice The city's CityPrograms, which moves a gift's money.
    function programs() public view returns (ICityPrograms) {
        return token.programs();
    }

    /// @notice The city's CityTreasury, whose tallies say what was bought with KRW.
    function treasury() public view returns (ICityTreasury) {
        return ICityTreasury(token.treasury());
    }

    /// @inheritdoc ICityGifts
    function authorizationState(address from, bytes32 nonce) external view returns (AuthorizationState) {
        return _authorizations[from][nonce];
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ICityGifts).interfaceId || super.supportsInterface(interfaceId);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _gift(address from, address to, uint256 value, bytes32 nonce) private {
        bytes memory refusal = giftRefusal(from, to, value);
        if (refusal.length != 0) {
            assembly ("memory-safe") {
                revert(add(refusal, 32), mload(refusal))
            }
        }
        GiftTally memory sender = giftTallyOf(from);
        sender.sent += value.toUint112();
        _tallies[token.originOf(from)] = sender;
        GiftTally memory receiver = giftTallyOf(to);
        receiver.received += value.toUint112();
        _tallies[token.originOf(to)] = receiver;
        programs().moveGeneral(from, to, value);
        emit Gifted(from, to, value, nonce);
    }

    /// @dev Unexpired general money less the incentive the treasury still counts in it (rounded
    /// up): the share a refund claws back, so what a gift takes was bought with KRW.
    function _cashFunded(address account) private view returns (uint256) {
        uint256 general = programs().generalBalanceOf(account);
        ICityTreasury.ResidentTally memory tally = treasury().residentTally(account);
        if (tally.incentiveCharged == 0) return general;
        if (tally.chargedValue == 0) return 0;
        uint256 incentive = Math.mulDiv(general, tally.incentiveCharged, tally.chargedValue, Math.Rounding.Ceil);
        if (incentive > tally.incentiveCharged) incentive = tally.incentiveCharged;
        return general > incentive ? general - incentive : 0;
    }

    function _activeResident(address account) private view returns (bool) {
        return token.accountKind(account) == ICityToken.AccountKind.Resident && token.isActive(account)
            && !token.isFrozen(account) && !token.isHeld(account);
    }

    function _requireUnused(address from, bytes32 nonce) private view {
        AuthorizationState state = _authorizations[from][nonce];
        if (state == AuthorizationState.Used) revert CityGiftsAuthorizationUsed(from, nonce);
        if (state == AuthorizationState.Canceled) revert CityGiftsAuthorizationCanceled(from, nonce);
    }

    function _setCaps(uint256 sendCap, uint256 receiveCap) private {
        monthlySendCap = sendCap;
        monthlyReceiveCap = receiveCap;
        emit GiftCapsChanged(sendCap, receiveCap);
    }
}
