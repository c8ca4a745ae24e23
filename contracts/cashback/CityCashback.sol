// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ICityCashback} from "../../interfaces/ICityCashback.sol";
import {ICityRegistry} from "../../interfaces/ICityRegistry.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";
import {PaymentKey} from "../libraries/PaymentKey.sol";
import {Refusal} from "../libraries/Refusal.sol";

/// @title A city's cashback on payments (결제 캐시백)
/// @notice The payment path is untouched: the backend settles each payment it sees after it is
/// made, and the chain alone decides how much: the token's record of the payment (what is left
/// of it after refunds), CityPrograms' share of it that was program money, the merchant's
/// revenue band and region in the registry, and the treasury's limits, which mint the cashback
/// as incentive. Each payment key is settled on what changed since its last settlement, so a
/// payment is paid once however often it is settled, and a refund takes its share back.
///
/// Roles: the admin sets the rates and the budget and pays nobody. The cashback payer (the
/// backend) settles payments: it cannot choose an amount, pay a payment twice or pay past the
/// limits; it chooses when, and so which payments since the city went to cashback count (the
/// token keeps no payment's time). Anyone may settle a refund: taking cashback back never waits
/// for the backend.
contract CityCashback is ICityCashback, AccessControl {
    bytes32 public constant CASHBACK_PAYER_ROLE = keccak256("CASHBACK_PAYER_ROLE");
    uint256 public constant MAX_BPS = 10_000;
    /// @notice No city pays more than 30% back (Incheon's highest was 15%): a typo in the rates
    /// must not become a run on the budget.
    uint256 public constant MAX_RATE_BPS = 3_000;
    uint256 public constant MAX_BANDS = 8;
    uint256 public constant MAX_REGIONS = 64;

    ICityToken public immutable token;

    /// @inheritdoc ICityCashback
    uint256 public budget;
    Band[] private _bands;
    RegionRate[] private _regions;
    mapping(uint32 region => uint16 bps) private _regionBps;
    mapping(bytes32 paymentKey => Claim) private _claims;
    /// @dev By the resident's first wallet (the token's originOf): a recovery keeps the debt.
    mapping(address origin => uint256) private _debts;

    constructor(ICityToken token_, address cityAdmin) {
        if (address(token_) == address(0) || cityAdmin == address(0)) revert CityCashbackZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
    }

    /// @inheritdoc ICityCashback
    function settle(address payer, address merchant, bytes32 paymentId) external returns (int256 change) {
        bytes memory refusal;
        (change, refusal) = _settle(payer, merchant, paymentId);
        Refusal.revertIfAny(refusal);
    }

    /// @inheritdoc ICityCashback
    function settleBatch(Settlement[] calldata settlements)
        external
        onlyRole(CASHBACK_PAYER_ROLE)
        returns (uint256 settled)
    {
        for (uint256 i; i < settlements.length; ++i) {
            Settlement calldata s = settlements[i];
            (, bytes memory refusal) = _settle(s.payer, s.merchant, s.paymentId);
            if (refusal.length != 0) {
                emit CashbackRefused(s.payer, s.merchant, s.paymentId, refusal);
            } else {
                ++settled;
            }
        }
    }

    /// @inheritdoc ICityCashback
    function baseline(Settlement[] calldata settlements)
        external
        onlyRole(CASHBACK_PAYER_ROLE)
        returns (uint256 moved)
    {
        for (uint256 i; i < settlements.length; ++i) {
            Settlement calldata s = settlements[i];
            (bytes32 key, uint256 base, Claim memory claim) = _settlement(s.payer, s.merchant, s.paymentId);
            if (base <= claim.base) continue;
            _claims[key].base = uint128(base);
            emit CashbackBaselined(s.payer, s.merchant, s.paymentId, base);
            ++moved;
        }
    }

    /// @inheritdoc ICityCashback
    function setTerms(Band[] calldata bands_, RegionRate[] calldata regions) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (bands_.length > MAX_BANDS) revert CityCashbackTooManyRates(bands_.length, MAX_BANDS);
        if (regions.length > MAX_REGIONS) revert CityCashbackTooManyRates(regions.length, MAX_REGIONS);
        delete _bands;
        for (uint256 i; i < bands_.length; ++i) {
            _requireRate(bands_[i].bps);
            if (i != 0 && bands_[i].revenueUpTo <= bands_[i - 1].revenueUpTo) {
                revert CityCashbackBandsNotAscending(i, bands_[i].revenueUpTo);
            }
            _bands.push(bands_[i]);
        }
        for (uint256 i; i < _regions.length; ++i) {
            delete _regionBps[_regions[i].region];
        }
        delete _regions;
        for (uint256 i; i < regions.length; ++i) {
            _requireRate(regions[i].bps);
            _regionBps[regions[i].region] = regions[i].bps;
            _regions.push(regions[i]);
        }
        emit CashbackTermsChanged(bands_, regions);
    }

    /// @inheritdoc ICityCashback
    function setBudget(uint256 budget_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit CashbackBudgetChanged(budget, budget_);
        budget = budget_;
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityCashback
    function bands() external view returns (Band[] memory) {
        return _bands;
    }

    /// @inheritdoc ICityCashback
    function regionRates() external view returns (RegionRate[] memory) {
        return _regions;
    }

    /// @inheritdoc ICityCashback
    function rateOf(address merchant) public view returns (uint256 bps) {
        ICityRegistry.Merchant memory m = ICityRegistry(token.registry()).merchantOf(merchant);
        for (uint256 i; i < _bands.length; ++i) {
            if (m.annualRevenue <= _bands[i].revenueUpTo) {
                bps = _bands[i].bps;
                break;
            }
        }
        if (bps != 0) bps = Math.max(bps, _regionBps[m.region]);
    }

    /// @inheritdoc ICityCashback
    function settlementOf(address payer, address merchant, bytes32 paymentId)
        external
        view
        returns (uint256 base, Claim memory claim)
    {
        (, base, claim) = _settlement(payer, merchant, paymentId);
    }

    /// @inheritdoc ICityCashback
    function debtOf(address account) external view returns (uint256) {
        return _debts[token.originOf(account)];
    }

    /// @inheritdoc ICityCashback
    function settleRefusal(address payer, address merchant, bytes32) public view returns (bytes memory) {
        if (ICityTreasury(token.treasury()).incentiveMode() != ICityTreasury.IncentiveMode.Cashback) {
            return abi.encodeWithSelector(CityCashbackNotCashbackMode.selector);
        }
        address resident = token.currentWallet(payer);
        if (token.accountKind(resident) != ICityToken.AccountKind.Resident) {
            return abi.encodeWithSelector(CityCashbackNotResident.selector, payer);
        }
        if (!token.isActive(resident) || token.isFrozen(resident) || token.isHeld(resident)) {
            return abi.encodeWithSelector(CityCashbackAccountLocked.selector, resident);
        }
        if (token.accountKind(merchant) != ICityToken.AccountKind.Merchant) {
            return abi.encodeWithSelector(CityCashbackNotMerchant.selector, merchant);
        }
        return "";
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev Settles one payment: pays (the cashback payer only) or reverses; a refusal to pay
    /// changes nothing and is returned.
    function _settle(address payer, address merchant, bytes32 paymentId)
        private
        returns (int256 change, bytes memory refusal)
    {
        (bytes32 key, uint256 base, Claim memory claim) = _settlement(payer, merchant, paymentId);
        if (base > claim.base) {
            _checkRole(CASHBACK_PAYER_ROLE);
            refusal = settleRefusal(payer, merchant, paymentId);
            if (refusal.length == 0) change = int256(_pay(payer, merchant, paymentId, key, base, claim));
        } else if (base < claim.base) {
            change = -int256(_reverse(payer, merchant, paymentId, key, base, claim));
        }
    }

    /// @dev A payment's claim key, its general money as the chain counts it now, and its claim.
    /// A payment id's claim is the payment's at that merchant (by first wallet): the token's
    /// record answers 0 for any other merchant, which must not read as a refund of it.
    function _settlement(address payer, address merchant, bytes32 paymentId)
        private
        view
        returns (bytes32 claimKey, uint256 base, Claim memory claim)
    {
        address merchantOrigin = token.originOf(merchant);
        bytes32 key;
        if (paymentId == bytes32(0)) {
            key = PaymentKey.ofPair(token.originOf(payer), merchantOrigin);
            claimKey = key;
        } else {
            key = PaymentKey.ofPayment(payer, paymentId);
            claimKey = keccak256(abi.encode(key, merchantOrigin));
        }
        uint256 left = token.refundableAmount(payer, token.currentWallet(merchant), paymentId);
        uint256 programPart = token.programs().programPartOf(key);
        base = left > programPart ? left - programPart : 0;
        claim = _claims[claimKey];
    }

    function _pay(address payer, address merchant, bytes32 paymentId, bytes32 key, uint256 base, Claim memory claim)
        private
        returns (uint256 paid)
    {
        uint256 bps = rateOf(merchant);
        uint256 gross = Math.min(((base - claim.base) * bps) / MAX_BPS, budget);
        address origin = token.originOf(payer);
        uint256 debt = _debts[origin];
        uint256 fromDebt = Math.min(gross, debt);
        address resident = token.currentWallet(payer);
        // The base moves whatever is paid: a payment cut by a limit does not earn again later.
        _claims[key].base = uint128(base);
        uint256 minted;
        if (gross > fromDebt) minted = ICityTreasury(token.treasury()).issueCashback(resident, gross - fromDebt);
        paid = fromDebt + minted;
        // Below the token's supply cap: they fit.
        _claims[key].paid = claim.paid + uint128(paid);
        if (fromDebt != 0) _debts[origin] = debt - fromDebt;
        budget -= paid;
        emit CashbackPaid(payer, merchant, paymentId, resident, base - claim.base, bps, minted, fromDebt);
    }

    function _reverse(
        address payer,
        address merchant,
        bytes32 paymentId,
        bytes32 key,
        uint256 base,
        Claim memory claim
    ) private returns (uint256 amount) {
        // The payment's cashback in proportion to what was refunded, rounded toward the city.
        amount = Math.mulDiv(claim.paid, claim.base - base, claim.base, Math.Rounding.Ceil);
        _claims[key] = Claim(uint128(base), claim.paid - uint128(amount));
        address resident = token.currentWallet(payer);
        uint256 burned;
        if (amount != 0) {
            burned = ICityTreasury(token.treasury()).reverseCashback(resident, amount);
            if (burned < amount) _debts[token.originOf(payer)] += amount - burned;
            budget += amount;
        }
        // Evented even when nothing was paid on it: the claim's base moved.
        emit CashbackReversed(payer, merchant, paymentId, resident, claim.base - base, amount, burned);
    }

    function _requireRate(uint256 bps) private pure {
        if (bps > MAX_RATE_BPS) revert CityCashbackRateTooHigh(bps, MAX_RATE_BPS);
    }
}
