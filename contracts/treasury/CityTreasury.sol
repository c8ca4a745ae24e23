// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityRegistry} from "../../interfaces/ICityRegistry.sol";
import {KoreanCalendar} from "../libraries/KoreanCalendar.sol";

/// @dev What the treasury asks of the contract it links as its cashback: that it is the city's.
interface ITokenBound {
    function token() external view returns (ICityToken);
}

/// @title A city's treasury: charging (충전), cash-out (환전) and resident refund (환불)
/// @notice Issuers mint charges within their allowance (USDC minter style), the city's annual
/// issuance cap, each resident's monthly purchase limit and holding cap, with the city's incentive
/// on top. Every burned won ends as a settled bank transfer, is returned, or was confiscated for
/// illegal exchange (a redemption settled for nothing): auditors check
/// supply == issued - burned + returned. A revoked account keeps a way out for its money: a
/// merchant's closing cash-out to its registered payout account, a resident's closing refund.
contract CityTreasury is ICityTreasury, AccessControl, EIP712 {
    using SafeCast for uint256;

    bytes32 public constant ISSUER_ADMIN_ROLE = keccak256("ISSUER_ADMIN_ROLE");
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant CASH_OUT_AUTHORIZATION_TYPEHASH = keccak256(
        "CashOutAuthorization(address merchant,uint256 amount,bytes32 payoutAccountHash,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_CASH_OUT_AUTHORIZATION_TYPEHASH =
        keccak256("CancelCashOutAuthorization(address merchant,bytes32 nonce)");
    /// @notice The longest a signed cash-out may stay valid: a signature is not a standing order.
    uint256 public constant MAX_CASH_OUT_VALIDITY = 1 days;

    uint256 public constant MAX_BPS = 10_000;
    /// @notice The bounds of the share of its charges a resident must have used before it may ask
    /// for a refund: 60% to 80%, the city's ordinance picks (지역사랑상품권법 시행령).
    uint256 public constant MIN_REFUND_USED_BPS = 6_000;
    uint256 public constant MAX_REFUND_USED_BPS = 8_000;

    ICityToken public immutable token;
    /// @inheritdoc ICityTreasury
    uint8 public immutable fiscalYearStartMonth;

    Policy private _policy;
    /// @inheritdoc ICityTreasury
    uint256 public refundMinUsedBps = MIN_REFUND_USED_BPS;
    /// @inheritdoc ICityTreasury
    address public cashback;
    /// @inheritdoc ICityTreasury
    IncentiveMode public incentiveMode;

    mapping(address issuer => uint256 allowance) private _issuerAllowance;
    mapping(bytes32 depositReference => bool) private _depositIssued;
    mapping(address resident => ResidentTally) private _tallies;
    mapping(address merchant => mapping(bytes32 nonce => AuthorizationState)) private _cashOutAuthorizations;
    mapping(bytes32 bankReference => bool) private _bankReferenceUsed;
    /// @dev What a resident's last refund counted as used, and the incentive's share of what it had
    /// charged then: a merchant refund of a payment made before that refund gives the money back
    /// to that charge, so reversing a payment after the refund cannot have made it allowed.
    mapping(address resident => Reversible) private _reversible;
    Redemption[] private _redemptions;

    /// @dev The fiscal year `_issuedInFiscalYear` counts; a new year starts it from zero.
    uint256 private _fiscalYear;
    uint256 private _issuedInFiscalYear;

    uint256 private _totalIssued;
    uint256 private _totalIncentive;
    uint256 private _totalBurned;
    uint256 private _totalReturned;
    uint256 private _totalSettled;
    uint256 private _totalClawedBack;
    uint256 private _totalConfiscated;

    /// @param fiscalYearStartMonth_ 1 for a fiscal year that starts on 1 January (Korean
    /// local governments' fiscal year).
    /// The EIP-712 domain is "<token name> Treasury" (e.g. "Gimpo Pay Treasury"), version "1":
    /// read from the token so the deployment needs no extra argument and a wallet sees which city
    /// it authorizes a cash-out in.
    constructor(ICityToken token_, address cityAdmin, Policy memory policy_, uint8 fiscalYearStartMonth_)
        EIP712(string.concat(IERC20Metadata(address(token_)).name(), " Treasury"), "1")
    {
        if (fiscalYearStartMonth_ < 1 || fiscalYearStartMonth_ > 12) revert CityTreasuryInvalidMonth(fiscalYearStartMonth_);
        token = token_;
        fiscalYearStartMonth = fiscalYearStartMonth_;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
        // USDC's master minter: the issuer admin alone grants issuers and their allowances.
        _setRoleAdmin(ISSUER_ROLE, ISSUER_ADMIN_ROLE);
        _requireRate(policy_.incentiveBps);
        _policy = policy_;
        _fiscalYear = KoreanCalendar.fiscalYear(block.timestamp, fiscalYearStartMonth_);
    }

    modifier onlyRegistry() {
        if (msg.sender != token.registry()) revert CityTreasuryOnlyRegistry(msg.sender);
        _;
    }

    modifier onlyPrograms() {
        if (msg.sender != address(token.programs())) revert CityTreasuryOnlyPrograms(msg.sender);
        _;
    }

    modifier onlyCashback() {
        if (msg.sender != cashback || msg.sender == address(0)) revert CityTreasuryOnlyCashback(msg.sender);
        _;
    }

    modifier onlyToken() {
        if (msg.sender != address(token)) revert CityTreasuryOnlyToken(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                              CHARGING (충전)
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityTreasury
    function issue(address resident, uint256 amount, bytes32 depositReference)
        external
        onlyRole(ISSUER_ROLE)
        returns (uint256 incentive)
    {
        if (amount == 0) revert CityTreasuryZeroAmount();
        if (depositReference == bytes32(0)) revert CityTreasuryEmptyReference();
        if (_depositIssued[depositReference]) revert CityTreasuryDepositAlreadyIssued(depositReference);
        if (token.accountKind(resident) != ICityToken.AccountKind.Resident) revert CityTreasuryNotResident(resident);

        ResidentTally memory tally = _currentTally(resident);
        Policy memory p = _policy;
        if (tally.purchasedThisMonth + amount > p.monthlyPurchaseLimit) {
            revert CityTreasuryMonthlyLimitExceeded(resident, tally.purchasedThisMonth, amount, p.monthlyPurchaseLimit);
        }
        // The incentive is cut, not refused, once the month's incentive limit is reached.
        incentive = (amount * p.incentiveBps) / MAX_BPS;
        incentive = Math.min(incentive, _left(p.monthlyIncentiveLimit, tally.incentiveThisMonth));
        uint256 total = amount + incentive;

        uint256 balance = token.balanceOf(resident);
        if (balance + total > p.holdingCap) revert CityTreasuryHoldingCapExceeded(resident, balance, total, p.holdingCap);
        uint256 issuedThisYear = issuedThisFiscalYear();
        if (issuedThisYear + total > p.annualIssuanceCap) {
            revert CityTreasuryAnnualCapExceeded(issuedThisYear, total, p.annualIssuanceCap);
        }
        uint256 allowance = _issuerAllowance[msg.sender];
        if (total > allowance) revert CityTreasuryIssuerAllowanceExceeded(msg.sender, allowance, total);

        _depositIssued[depositReference] = true;
        _issuerAllowance[msg.sender] = allowance - total;
        _mint(resident, tally, issuedThisYear, amount, incentive);
        emit Issued(resident, depositReference, msg.sender, amount, incentive);
    }

    /*//////////////////////////////////////////////////////////////
                        CASHBACK (결제 캐시백)
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityTreasury
    function linkCashback(address cashback_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Once: whoever is linked mints incentive within the policy's limits.
        if (cashback != address(0)) revert CityTreasuryCashbackAlreadyLinked(cashback);
        if (cashback_.code.length == 0 || ITokenBound(cashback_).token() != token) {
            revert CityTreasuryNotCashback(cashback_);
        }
        cashback = cashback_;
        emit CashbackLinked(cashback_);
    }

    /// @inheritdoc ICityTreasury
    function setIncentiveMode(IncentiveMode mode) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (mode == IncentiveMode.Cashback) {
            if (cashback == address(0)) revert CityTreasuryCashbackNotLinked();
            // One incentive at a time: a resident charging in cashback mode gets no discount.
            emit PolicyChanged("incentiveBps", _policy.incentiveBps, 0);
            _policy.incentiveBps = 0;
        }
        emit IncentiveModeChanged(incentiveMode, mode);
        incentiveMode = mode;
    }

    /// @inheritdoc ICityTreasury
    function issueCashback(address resident, uint256 amount) external onlyCashback returns (uint256 minted) {
        if (incentiveMode != IncentiveMode.Cashback) revert CityTreasuryNotCashbackMode();
        ResidentTally memory tally = _currentTally(resident);
        Policy memory p = _policy;
        minted = Math.min(amount, _left(p.monthlyIncentiveLimit, tally.incentiveThisMonth));
        minted = Math.min(minted, _left(p.holdingCap, token.balanceOf(resident)));
        uint256 issuedThisYear = issuedThisFiscalYear();
        minted = Math.min(minted, _left(p.annualIssuanceCap, issuedThisYear));
        if (minted != 0) _mint(resident, tally, issuedThisYear, 0, minted);
    }

    /// @inheritdoc ICityTreasury
    function reverseCashback(address resident, uint256 amount) external onlyCashback returns (uint256 burned) {
        if (token.isActive(resident) && !token.isFrozen(resident) && !token.isHeld(resident)) {
            burned = Math.min(amount, token.generalBalanceOf(resident));
        }
        ResidentTally memory tally = _currentTally(resident);
        tally.incentiveThisMonth -= uint48(Math.min(amount, tally.incentiveThisMonth));
        tally.chargedValue -= uint48(Math.min(burned, tally.chargedValue));
        tally.incentiveCharged -= uint48(Math.min(burned, tally.incentiveCharged));
        _tallies[resident] = tally;
        if (burned == 0) return 0;
        _totalBurned += burned;
        _totalClawedBack += burned;
        token.redeem(resident, burned);
    }

    /// @dev Mints a charge of `amount` with its `incentive` (or cashback: no amount) and counts it.
    function _mint(address resident, ResidentTally memory tally, uint256 issuedThisYear, uint256 amount, uint256 incentive)
        private
    {
        uint256 total = amount + incentive;
        _fiscalYear = currentFiscalYear();
        _issuedInFiscalYear = issuedThisYear + total;
        _totalIssued += total;
        _totalIncentive += incentive;
        tally.purchasedThisMonth += amount.toUint48();
        tally.incentiveThisMonth += incentive.toUint48();
        tally.chargedValue += total.toUint48();
        tally.incentiveCharged += incentive.toUint48();
        _tallies[resident] = tally;
        token.issue(resident, total);
    }

    /*//////////////////////////////////////////////////////////////
                    CASH-OUT (환전) AND RESIDENT REFUND (환불)
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityTreasury
    function cashOut(uint256 amount) external returns (uint256 id) {
        (id,) = _cashOut(msg.sender, amount);
    }

    /// @inheritdoc ICityTreasury
    function cashOutWithAuthorization(
        address merchant,
        uint256 amount,
        bytes32 payoutAccountHash,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external onlyRole(SETTLER_ROLE) returns (uint256 id) {
        // Merchants cannot send transactions on the permissioned network: the settler relays
        // the merchant's signed request, so the merchant alone decides the amount and the account.
        if (block.timestamp <= validAfter) {
            revert CityTreasuryAuthorizationNotYetValid(merchant, validAfter, block.timestamp);
        }
        if (block.timestamp >= validBefore) {
            revert CityTreasuryAuthorizationExpired(merchant, validBefore, block.timestamp);
        }
        if (validBefore - validAfter > MAX_CASH_OUT_VALIDITY) {
            revert CityTreasuryAuthorizationWindowTooLong(merchant, validAfter, validBefore, MAX_CASH_OUT_VALIDITY);
        }
        _requireUnused(merchant, nonce);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CASH_OUT_AUTHORIZATION_TYPEHASH, merchant, amount, payoutAccountHash, validAfter, validBefore, nonce
                )
            )
        );
        if (!SignatureChecker.isValidSignatureNow(merchant, digest, signature)) {
            revert CityTreasuryInvalidSignature(merchant, nonce);
        }
        _cashOutAuthorizations[merchant][nonce] = AuthorizationState.Used;
        bytes32 registered;
        (id, registered) = _cashOut(merchant, amount);
        // The registrar alone cannot redirect it: the merchant signed the account it is paid to.
        if (registered != payoutAccountHash) {
            revert CityTreasuryPayoutAccountMismatch(merchant, payoutAccountHash, registered);
        }
        // Ties the nonce to the redemption id, so a relayer that crashed after sending finds it.
        emit CashOutAuthorized(id, merchant, nonce);
    }

    /// @inheritdoc ICityTreasury
    function cancelCashOutAuthorization(address merchant, bytes32 nonce, bytes calldata signature) external {
        _requireUnused(merchant, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_CASH_OUT_AUTHORIZATION_TYPEHASH, merchant, nonce)));
        if (!SignatureChecker.isValidSignatureNow(merchant, digest, signature)) {
            revert CityTreasuryInvalidSignature(merchant, nonce);
        }
        _cashOutAuthorizations[merchant][nonce] = AuthorizationState.Canceled;
        emit CashOutAuthorizationCanceled(merchant, nonce);
    }

    /// @inheritdoc ICityTreasury
    function requestResidentRefund(bytes32 payoutAccountHash) external returns (uint256 id) {
        if (payoutAccountHash == bytes32(0)) revert CityTreasuryEmptyReference();
        if (token.accountKind(msg.sender) != ICityToken.AccountKind.Resident) revert CityTreasuryNotResident(msg.sender);
        // General money only: policy money is never paid out in cash, expired money is the city's.
        uint256 balance = token.generalBalanceOf(msg.sender);
        if (balance == 0) revert CityTreasuryNothingToRefund(msg.sender);
        bool closing = _closingAccount(msg.sender, _registry().residentOf(msg.sender).status);
        ResidentTally memory tally = _currentTally(msg.sender);
        uint256 charged = tally.chargedValue;
        // Merchant refunds can lift the balance over what was charged: nothing was used then.
        uint256 used = charged > balance ? charged - balance : 0;
        // A revoked resident's registration is over: what it holds is refunded whatever it used.
        uint256 requiredBps = refundMinUsedBps;
        if (!closing && (used * MAX_BPS < charged * requiredBps || charged == 0)) {
            revert CityTreasuryRefundBelowUsage(msg.sender, used, charged, requiredBps);
        }
        // Incentive and principal are taken as spent in proportion; the unspent incentive is
        // clawed back, not paid out (all of it at most, for a balance lifted by merchant refunds).
        uint256 unusedIncentive = charged == 0 ? 0 : (balance * tally.incentiveCharged) / charged;
        if (unusedIncentive > tally.incentiveCharged) unusedIncentive = tally.incentiveCharged;
        // A tally shrunk by gifts and expiry holds the incentive of what is left: never above it.
        if (unusedIncentive > balance) unusedIncentive = balance;
        id = _openRedemption(
            msg.sender, RedemptionKind.ResidentRefund, balance, balance - unusedIncentive, payoutAccountHash, closing
        );
        // The next refund counts from the charges made after this one.
        _redemptions[id].chargedBefore = tally.chargedValue;
        _redemptions[id].incentiveBefore = tally.incentiveCharged;
        // An earlier refund's record gives way: what it counted was paid out or returned.
        _reversible[msg.sender] = Reversible({
            usage: used.toUint48(),
            incentiveShareBps: uint16(charged == 0 ? 0 : Math.min((uint256(tally.incentiveCharged) * MAX_BPS) / charged, MAX_BPS)),
            chargedBack: 0,
            incentiveBack: 0,
            redemptionId: id.toUint64()
        });
        tally.chargedValue = 0;
        tally.incentiveCharged = 0;
        _tallies[msg.sender] = tally;
        _totalClawedBack += unusedIncentive;
    }

    /// @inheritdoc ICityTreasury
    function recordMerchantRefund(address resident, uint256 value) external onlyToken {
        Reversible memory reversible = _reversible[resident];
        uint256 back = value < reversible.usage ? value : reversible.usage;
        if (back == 0) return;
        // A refund of a payment this refund's usage counted: that money is charged money again,
        // with the incentive share it had, so the next refund counts it and claws its incentive.
        uint48 incentiveBack = ((back * reversible.incentiveShareBps) / MAX_BPS).toUint48();
        reversible.usage -= uint48(back);
        reversible.chargedBack += uint48(back);
        reversible.incentiveBack += incentiveBack;
        _reversible[resident] = reversible;
        ResidentTally memory tally = _currentTally(resident);
        tally.chargedValue += uint48(back);
        tally.incentiveCharged += incentiveBack;
        _tallies[resident] = tally;
    }

    /// @inheritdoc ICityTreasury
    function settle(uint256 id, address account, uint256 payout, bytes32 bankReference)
        external
        onlyRole(SETTLER_ROLE)
    {
        if (bankReference == bytes32(0)) revert CityTreasuryEmptyReference();
        Redemption storage r = _closeRedemption(id, RedemptionStatus.Settled, bankReference);
        _requireTerms(id, r, account, r.payout, payout);
        // One bank transfer pays one redemption.
        if (_bankReferenceUsed[bankReference]) revert CityTreasuryBankReferenceUsed(bankReference);
        _bankReferenceUsed[bankReference] = true;
        _requirePayable(token.currentWallet(r.account));
        _totalSettled += r.payout;
        emit RedemptionSettled(id, r.account, r.payout, bankReference);
    }

    /// @inheritdoc ICityTreasury
    function returnRedemption(uint256 id, address account, uint256 burned, bytes32 reason)
        external
        onlyRole(SETTLER_ROLE)
    {
        Redemption storage r = _closeRedemption(id, RedemptionStatus.Returned, reason);
        _requireTerms(id, r, account, r.burned, burned);
        uint256 restored = r.burned;
        // A wallet recovered while its redemption was pending gets the tokens in its replacement.
        // A revoked account gets them too: it keeps its closing cash-out or refund.
        address wallet = token.currentWallet(r.account);
        _totalReturned += restored;
        if (r.kind == RedemptionKind.ResidentRefund) {
            // Put back what the request reset, on top of any charge made since.
            ResidentTally memory tally = _currentTally(wallet);
            tally.chargedValue += r.chargedBefore;
            tally.incentiveCharged += r.incentiveBefore;
            Reversible memory reversible = _reversible[wallet];
            if (reversible.redemptionId == id && reversible.usage + reversible.chargedBack != 0) {
                // The refund did not happen: the merchant refunds of payments it counted as used
                // come back to the charge put back just now, where they only lift the balance.
                tally.chargedValue -= reversible.chargedBack;
                tally.incentiveCharged -= reversible.incentiveBack;
                delete _reversible[wallet];
            }
            _tallies[wallet] = tally;
            _totalClawedBack -= restored - r.payout;
        }
        token.restore(wallet, restored);
        emit RedemptionReturned(id, wallet, restored, reason);
    }

    /// @inheritdoc ICityTreasury
    function confiscate(address account, bytes32 reason) external onlyRegistry returns (uint256 id, uint256 amount) {
        // Its general money; its policy money goes back to the programs as the token closes it.
        amount = token.generalBalanceOf(account);
        if (token.balanceOf(account) == 0) revert CityTreasuryZeroAmount();
        id = _redemptions.length;
        _redemptions.push(
            Redemption({
                account: account,
                kind: RedemptionKind.Confiscation,
                status: RedemptionStatus.Settled,
                requestedAt: uint64(block.timestamp),
                closedAt: uint64(block.timestamp),
                burned: amount.toUint128(),
                chargedBefore: 0,
                payout: 0,
                incentiveBefore: 0,
                payoutAccountHash: bytes32(0),
                closingReference: reason
            })
        );
        _totalBurned += amount;
        _totalConfiscated += amount;
        token.close(account, amount, true);
        // Burned and closed at once: nothing is paid out, the KRW stays in the city's custody.
        emit RedemptionRequested(id, account, RedemptionKind.Confiscation, amount, 0, bytes32(0));
        emit RedemptionSettled(id, account, 0, reason);
    }

    /*//////////////////////////////////////////////////////////////
                           ISSUERS AND POLICY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityTreasury
    function configureIssuer(address issuer, uint256 allowance) external onlyRole(ISSUER_ADMIN_ROLE) {
        uint256 old = _issuerAllowance[issuer];
        _issuerAllowance[issuer] = allowance;
        _grantRole(ISSUER_ROLE, issuer);
        emit IssuerConfigured(issuer, old, allowance);
    }

    /// @inheritdoc ICityTreasury
    function removeIssuer(address issuer) external onlyRole(ISSUER_ADMIN_ROLE) {
        delete _issuerAllowance[issuer];
        _revokeRole(ISSUER_ROLE, issuer);
        emit IssuerRemoved(issuer);
    }

    /// @inheritdoc ICityTreasury
    function setAnnualIssuanceCap(uint256 cap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit PolicyChanged("annualIssuanceCap", _policy.annualIssuanceCap, cap);
        _policy.annualIssuanceCap = cap;
    }

    /// @inheritdoc ICityTreasury
    function setMonthlyPurchaseLimit(uint256 limit) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit PolicyChanged("monthlyPurchaseLimit", _policy.monthlyPurchaseLimit, limit);
        _policy.monthlyPurchaseLimit = limit;
    }

    /// @inheritdoc ICityTreasury
    function setHoldingCap(uint256 cap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit PolicyChanged("holdingCap", _policy.holdingCap, cap);
        _policy.holdingCap = cap;
    }

    /// @inheritdoc ICityTreasury
    function setIncentiveBps(uint256 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireRate(bps);
        if (bps != 0 && incentiveMode == IncentiveMode.Cashback) revert CityTreasuryCashbackMode(bps);
        emit PolicyChanged("incentiveBps", _policy.incentiveBps, bps);
        _policy.incentiveBps = bps;
    }

    /// @inheritdoc ICityTreasury
    function setMonthlyIncentiveLimit(uint256 limit) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit PolicyChanged("monthlyIncentiveLimit", _policy.monthlyIncentiveLimit, limit);
        _policy.monthlyIncentiveLimit = limit;
    }

    /// @inheritdoc ICityTreasury
    function setRefundMinUsedBps(uint256 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (bps < MIN_REFUND_USED_BPS || bps > MAX_REFUND_USED_BPS) {
            revert CityTreasuryRefundRatioOutOfRange(bps, MIN_REFUND_USED_BPS, MAX_REFUND_USED_BPS);
        }
        emit PolicyChanged("refundMinUsedBps", refundMinUsedBps, bps);
        refundMinUsedBps = bps;
    }

    /// @inheritdoc ICityTreasury
    function recordGift(address giver, uint256 general, uint256 value) external onlyPrograms {
        _shrinkTally(giver, general, value, false);
    }

    /// @inheritdoc ICityTreasury
    function recordExpired(address resident, uint256 general, uint256 expired) external onlyPrograms {
        _shrinkTally(resident, general, expired, true);
    }

    /// @inheritdoc ICityTreasury
    function moveResidentTally(address lost, address replacement) external onlyRegistry {
        _tallies[replacement] = _tallies[lost];
        _reversible[replacement] = _reversible[lost];
        delete _tallies[lost];
        delete _reversible[lost];
        emit ResidentTallyMoved(lost, replacement);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityTreasury
    function policy() external view returns (Policy memory) {
        return _policy;
    }

    /// @inheritdoc ICityTreasury
    function issuerAllowance(address issuer) external view returns (uint256) {
        return _issuerAllowance[issuer];
    }

    /// @inheritdoc ICityTreasury
    function depositIssued(bytes32 depositReference) external view returns (bool) {
        return _depositIssued[depositReference];
    }

    /// @inheritdoc ICityTreasury
    function redemption(uint256 id) external view returns (Redemption memory) {
        return _redemptions[id];
    }

    /// @inheritdoc ICityTreasury
    function redemptionCount() external view returns (uint256) {
        return _redemptions.length;
    }

    /// @inheritdoc ICityTreasury
    function cashOutAuthorizationState(address merchant, bytes32 nonce) external view returns (AuthorizationState) {
        return _cashOutAuthorizations[merchant][nonce];
    }

    /// @inheritdoc ICityTreasury
    function bankReferenceUsed(bytes32 bankReference) external view returns (bool) {
        return _bankReferenceUsed[bankReference];
    }

    /// @inheritdoc ICityTreasury
    function totalConfiscated() external view returns (uint256) {
        return _totalConfiscated;
    }

    /// @inheritdoc ICityTreasury
    function residentTally(address resident) external view returns (ResidentTally memory) {
        return _currentTally(resident);
    }

    /// @inheritdoc ICityTreasury
    function currentFiscalYear() public view returns (uint256) {
        return KoreanCalendar.fiscalYear(block.timestamp, fiscalYearStartMonth);
    }

    /// @inheritdoc ICityTreasury
    function issuedThisFiscalYear() public view returns (uint256) {
        return _fiscalYear == currentFiscalYear() ? _issuedInFiscalYear : 0;
    }

    /// @inheritdoc ICityTreasury
    function totals()
        external
        view
        returns (uint256 issued, uint256 incentive, uint256 burned, uint256 returned, uint256 settled, uint256 clawedBack)
    {
        return (_totalIssued, _totalIncentive, _totalBurned, _totalReturned, _totalSettled, _totalClawedBack);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev The stored tally with this month's counters zeroed when the month has turned.
    function _currentTally(address resident) private view returns (ResidentTally memory tally) {
        tally = _tallies[resident];
        uint32 month = KoreanCalendar.monthIndex(block.timestamp).toUint32();
        if (tally.month != month) {
            tally.month = month;
            tally.purchasedThisMonth = 0;
            tally.incentiveThisMonth = 0;
        }
    }

    /// @dev `out` of the `general` money a resident held left unused: its charged value (and,
    /// when the money took its incentive with it, its incentive) shrink by the share that left.
    function _shrinkTally(address resident, uint256 general, uint256 out, bool incentiveToo) private {
        if (general == 0 || out > general) return;
        ResidentTally memory tally = _currentTally(resident);
        // Below 2^48 by the tally's own type: the products fit, the quotients shrink.
        tally.chargedValue = uint48((uint256(tally.chargedValue) * (general - out)) / general);
        if (incentiveToo) {
            tally.incentiveCharged = uint48((uint256(tally.incentiveCharged) * (general - out)) / general);
        }
        _tallies[resident] = tally;
    }

    function _registry() private view returns (ICityRegistry) {
        return ICityRegistry(token.registry());
    }

    /// @dev Whether a redemption of the account's is its closing one: its registration is revoked.
    /// One revoked for illegal exchange has no way out: its money waits for confiscation.
    function _closingAccount(address account, ICityRegistry.Status status) private view returns (bool) {
        if (status != ICityRegistry.Status.Revoked) return false;
        if (_registry().revokedForIllegalExchange(account)) revert CityTreasuryAwaitingConfiscation(account);
        return true;
    }

    function _requireUnused(address merchant, bytes32 nonce) private view {
        AuthorizationState state = _cashOutAuthorizations[merchant][nonce];
        if (state == AuthorizationState.Used) revert CityTreasuryAuthorizationUsed(merchant, nonce);
        if (state == AuthorizationState.Canceled) revert CityTreasuryAuthorizationCanceled(merchant, nonce);
    }

    /// @dev A settlement pays out: not to a frozen account or one held for a recovery, nor to one
    /// revoked for illegal exchange, whose redemption is returned for confiscation instead.
    function _requirePayable(address account) private view {
        if (token.isFrozen(account) || token.isHeld(account)) revert CityTreasuryAccountLocked(account);
        if (_registry().revokedForIllegalExchange(account)) revert CityTreasuryAwaitingConfiscation(account);
    }

    /// @dev The merchant's own cash-out and the relayed one: the same checks and event, to the
    /// payout account registered for the merchant (returned, for the relayed one to compare).
    function _cashOut(address merchant, uint256 amount) private returns (uint256 id, bytes32 payoutAccount) {
        if (amount == 0) revert CityTreasuryZeroAmount();
        if (token.accountKind(merchant) != ICityToken.AccountKind.Merchant) revert CityTreasuryNotMerchant(merchant);
        ICityRegistry.Merchant memory record = _registry().merchantOf(merchant);
        payoutAccount = record.payoutAccountHash;
        // Fee-free: the bank transfer pays every burned won.
        id = _openRedemption(
            merchant, RedemptionKind.CashOut, amount, amount, payoutAccount, _closingAccount(merchant, record.status)
        );
    }

    function _openRedemption(
        address account,
        RedemptionKind kind,
        uint256 burned,
        uint256 payout,
        bytes32 payoutAccountHash,
        bool closing
    ) private returns (uint256 id) {
        id = _redemptions.length;
        _redemptions.push(
            Redemption({
                account: account,
                kind: kind,
                status: RedemptionStatus.Pending,
                requestedAt: uint64(block.timestamp),
                closedAt: 0,
                burned: burned.toUint128(),
                chargedBefore: 0,
                payout: payout.toUint128(),
                incentiveBefore: 0,
                payoutAccountHash: payoutAccountHash,
                closingReference: bytes32(0)
            })
        );
        _totalBurned += burned;
        if (closing) token.close(account, burned, false);
        else token.redeem(account, burned);
        emit RedemptionRequested(id, account, kind, burned, payout, payoutAccountHash);
    }

    /// @dev Each redemption ends once: settled or returned, never both, never twice.
    function _closeRedemption(uint256 id, RedemptionStatus status, bytes32 closingReference)
        private
        returns (Redemption storage r)
    {
        RedemptionStatus current = id < _redemptions.length ? _redemptions[id].status : RedemptionStatus.None;
        if (current != RedemptionStatus.Pending) revert CityTreasuryRedemptionNotPending(id, current);
        r = _redemptions[id];
        r.status = status;
        r.closedAt = uint64(block.timestamp);
        r.closingReference = closingReference;
    }

    /// @dev A settlement or return names the redemption it closes by id and by its account and
    /// amount: sent again after a rollback that renumbered the redemptions, it closes the one it
    /// was for or nothing, never another merchant's.
    function _requireTerms(uint256 id, Redemption storage r, address account, uint256 recorded, uint256 named)
        private
        view
    {
        if (r.account != account || recorded != named) {
            revert CityTreasuryRedemptionMismatch(id, r.account, recorded, account, named);
        }
    }

    /// @dev What is left under `limit` once `used` is counted: zero past it.
    function _left(uint256 limit, uint256 used) private pure returns (uint256) {
        return limit > used ? limit - used : 0;
    }

    function _requireRate(uint256 bps) private pure {
        if (bps > MAX_BPS) revert CityTreasuryRateTooHigh(bps, MAX_BPS);
    }
}
