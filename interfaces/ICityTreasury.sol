// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A city's treasury rules: charging (충전), cash-out (환전) and resident refund (환불)
interface ICityTreasury {
    enum RedemptionKind {
        CashOut,
        ResidentRefund,
        /// The balance of an account revoked for illegal exchange: burned and settled for nothing.
        Confiscation
    }

    enum RedemptionStatus {
        None,
        Pending,
        Settled,
        Returned
    }

    /// @notice Tokens burned for a bank transfer: a merchant's cash-out or a resident's refund.
    struct Redemption {
        address account;
        RedemptionKind kind;
        RedemptionStatus status;
        uint64 requestedAt;
        uint64 closedAt;
        /// Tokens burned.
        uint128 burned;
        /// A resident refund's tally before the request (what it had charged and the incentive
        /// in it), put back if the bank transfer fails; zero for a cash-out.
        uint48 chargedBefore;
        /// KRW to transfer: all of a cash-out; a refund less its clawed-back incentive.
        uint128 payout;
        uint48 incentiveBefore;
        bytes32 payoutAccountHash;
        /// The bank's transfer reference once settled, or the reason code once returned.
        bytes32 closingReference;
    }

    /// @notice A merchant's signed cash-out nonce.
    enum AuthorizationState {
        Unused,
        Used,
        Canceled
    }

    /// @notice What a resident's last refund (redemption `redemptionId`) counted as used, less what
    /// merchants refunded of it since; the incentive's share of its charges then, in basis points;
    /// and what those merchant refunds made charged again (a return of the refund takes it back).
    struct Reversible {
        uint48 usage;
        uint16 incentiveShareBps;
        uint48 chargedBack;
        uint48 incentiveBack;
        uint64 redemptionId;
    }

    /// @notice What a resident charged, this month and since the last refund.
    struct ResidentTally {
        uint32 month;
        uint48 purchasedThisMonth;
        uint48 incentiveThisMonth;
        uint48 chargedValue;
        uint48 incentiveCharged;
    }

    /// @notice How the city pays its purchase incentive: as a discount when a resident charges
    /// (`incentiveBps` of the charge), or as cashback when it pays a merchant (the city's
    /// CityCashback, at its rates). Never both: in Cashback mode the discount rate is zero.
    enum IncentiveMode {
        Discount,
        Cashback
    }

    /// @notice The city's policy. Amounts in KRW; rates in basis points.
    struct Policy {
        uint256 annualIssuanceCap;
        uint256 monthlyPurchaseLimit;
        uint256 holdingCap;
        uint256 incentiveBps;
        uint256 monthlyIncentiveLimit;
    }

    event Issued(
        address indexed resident, bytes32 indexed depositReference, address indexed issuer, uint256 amount, uint256 incentive
    );
    event RedemptionRequested(
        uint256 indexed id,
        address indexed account,
        RedemptionKind kind,
        uint256 burned,
        uint256 payout,
        bytes32 payoutAccountHash
    );
    event RedemptionSettled(uint256 indexed id, address indexed account, uint256 payout, bytes32 bankReference);
    event RedemptionReturned(uint256 indexed id, address indexed account, uint256 restored, bytes32 reason);
    /// @notice A relayed cash-out: the merchant's authorization `nonce` opened redemption `id`.
    event CashOutAuthorized(uint256 indexed id, address indexed merchant, bytes32 indexed nonce);
    /// @notice The merchant withdrew a signed cash-out before it was used.
    event CashOutAuthorizationCanceled(address indexed merchant, bytes32 indexed nonce);
    event IssuerConfigured(address indexed issuer, uint256 oldAllowance, uint256 newAllowance);
    event IssuerRemoved(address indexed issuer);
    /// @notice A policy value changed; `parameter` is the setter's name.
    event PolicyChanged(bytes32 indexed parameter, uint256 oldValue, uint256 newValue);
    event ResidentTallyMoved(address indexed lost, address indexed replacement);
    event CashbackLinked(address indexed cashback);
    event IncentiveModeChanged(IncentiveMode oldMode, IncentiveMode newMode);

    error CityTreasuryDepositAlreadyIssued(bytes32 depositReference);
    error CityTreasuryZeroAmount();
    error CityTreasuryIssuerAllowanceExceeded(address issuer, uint256 allowance, uint256 requested);
    error CityTreasuryAnnualCapExceeded(uint256 issuedThisYear, uint256 requested, uint256 cap);
    error CityTreasuryMonthlyLimitExceeded(address resident, uint256 purchasedThisMonth, uint256 requested, uint256 limit);
    error CityTreasuryHoldingCapExceeded(address resident, uint256 balance, uint256 requested, uint256 cap);
    error CityTreasuryNotResident(address account);
    error CityTreasuryNotMerchant(address account);
    error CityTreasuryRefundBelowUsage(address resident, uint256 used, uint256 charged, uint256 requiredBps);
    error CityTreasuryNothingToRefund(address resident);
    error CityTreasuryRedemptionNotPending(uint256 id, RedemptionStatus status);
    /// @notice The redemption under this id is another account's or amount than the call names.
    error CityTreasuryRedemptionMismatch(
        uint256 id, address account, uint256 amount, address namedAccount, uint256 namedAmount
    );
    error CityTreasuryEmptyReference();
    error CityTreasuryRateTooHigh(uint256 bps, uint256 maxBps);
    error CityTreasuryRefundRatioOutOfRange(uint256 bps, uint256 minBps, uint256 maxBps);
    error CityTreasuryInvalidMonth(uint8 month);
    error CityTreasuryOnlyRegistry(address caller);
    error CityTreasuryOnlyToken(address caller);
    error CityTreasuryOnlyPrograms(address caller);
    error CityTreasuryOnlyCashback(address caller);
    /// @notice Not the city's cashback contract: a contract whose `token()` is this treasury's.
    error CityTreasuryNotCashback(address account);
    error CityTreasuryCashbackAlreadyLinked(address cashback);
    /// @notice Cashback mode needs the city's cashback contract linked first.
    error CityTreasuryCashbackNotLinked();
    /// @notice In cashback mode the incentive is paid on payments, not as a discount at charge.
    error CityTreasuryCashbackMode(uint256 bps);
    error CityTreasuryNotCashbackMode();
    error CityTreasuryAuthorizationNotYetValid(address merchant, uint256 validAfter, uint256 blockTimestamp);
    error CityTreasuryAuthorizationExpired(address merchant, uint256 validBefore, uint256 blockTimestamp);
    error CityTreasuryAuthorizationWindowTooLong(address merchant, uint256 validAfter, uint256 validBefore, uint256 maxValidity);
    error CityTreasuryAuthorizationUsed(address merchant, bytes32 nonce);
    error CityTreasuryAuthorizationCanceled(address merchant, bytes32 nonce);
    error CityTreasuryInvalidSignature(address merchant, bytes32 nonce);
    /// @notice The merchant signed a cash-out to another payout account than the registry holds.
    error CityTreasuryPayoutAccountMismatch(address merchant, bytes32 signed, bytes32 registered);
    /// @notice Another redemption was settled with this bank transfer.
    error CityTreasuryBankReferenceUsed(bytes32 bankReference);
    /// @notice The account is frozen or held for a pending recovery: it is not paid meanwhile.
    error CityTreasuryAccountLocked(address account);
    /// @notice The account was revoked for illegal exchange: its money waits for confiscation.
    error CityTreasuryAwaitingConfiscation(address account);

    /// @notice Mints a resident's charge of `amount` KRW plus the city's incentive, once per bank
    /// deposit reference.
    function issue(address resident, uint256 amount, bytes32 depositReference) external returns (uint256 incentive);
    /// @notice A merchant redeems `amount` of its balance, fee-free, to its registered payout account.
    /// A revoked merchant may too (its closing cash-out), unless revoked for illegal exchange.
    function cashOut(uint256 amount) external returns (uint256 id);
    /// @notice Settler only: relays a merchant's cash-out of `amount`, authorized by the merchant's
    /// EIP-712 signature of CashOutAuthorization(merchant, amount, payoutAccountHash, validAfter,
    /// validBefore, nonce) (domain "<token name> Treasury", version "1"): after `validAfter`, before
    /// `validBefore`, a window of at most MAX_CASH_OUT_VALIDITY, each nonce once, and only to the
    /// payout account the registry holds for the merchant, which the signature names.
    function cashOutWithAuthorization(
        address merchant,
        uint256 amount,
        bytes32 payoutAccountHash,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external returns (uint256 id);
    /// @notice Withdraws an unused signed cash-out: the merchant's EIP-712 signature of
    /// CancelCashOutAuthorization(merchant, nonce); anyone may send it.
    function cancelCashOutAuthorization(address merchant, bytes32 nonce, bytes calldata signature) external;
    /// @notice A resident who used at least 60% of what it charged redeems the rest to its bank account,
    /// less the unused incentive, which is clawed back. A revoked resident redeems all it holds so
    /// (its closing refund), whatever it used, unless revoked for illegal exchange.
    function requestResidentRefund(bytes32 payoutAccountHash) external returns (uint256 id);
    /// @notice Token only: a merchant refunded `value` to the resident. What of it the resident's
    /// last refund had counted as used is charged money again, with its incentive share.
    function recordMerchantRefund(address resident, uint256 value) external;
    /// @notice Records the bank transfer that paid a redemption: each bank reference once, and not
    /// while the account is frozen or held for a recovery, nor once it was revoked for illegal
    /// exchange (return it, then confiscate). `account` and `payout` must be the redemption's:
    /// the call names what it settles, so it can never settle another redemption under that id.
    function settle(uint256 id, address account, uint256 payout, bytes32 bankReference) external;
    /// @notice The bank transfer failed: the burned tokens go back to the account (to its current
    /// wallet if it was recovered meanwhile), and a refunded resident's tally is put back.
    /// `account` and `burned` must be the redemption's, as for settle.
    function returnRedemption(uint256 id, address account, uint256 burned, bytes32 reason) external;
    /// @notice Registry only: burns the whole balance of an account revoked for illegal exchange,
    /// recorded as a Confiscation redemption settled at once for nothing, closed with `reason`.
    function confiscate(address account, bytes32 reason) external returns (uint256 id, uint256 amount);

    function configureIssuer(address issuer, uint256 allowance) external;
    function removeIssuer(address issuer) external;
    function setAnnualIssuanceCap(uint256 cap) external;
    function setMonthlyPurchaseLimit(uint256 limit) external;
    function setHoldingCap(uint256 cap) external;
    function setIncentiveBps(uint256 bps) external;
    function setMonthlyIncentiveLimit(uint256 limit) external;
    /// @notice The share of its charges (basis points, 6,000 to 8,000) a resident must have used
    /// before it may ask for a refund; 6,000 until the city sets its ordinance's.
    function refundMinUsedBps() external view returns (uint256);
    function setRefundMinUsedBps(uint256 bps) external;
    /// @notice The city's CityPrograms only: a resident holding `general` money gave `value` of it
    /// as a gift, all bought with KRW. What its tally counts as charged shrinks in proportion and
    /// its incentive does not: the share of its charges it used is what it was (a gift is no use
    /// toward a refund), and the incentive stays with the money it keeps (a refund claws it
    /// back). The receiver's tally is left alone: gifted money is for spending, and counts
    /// against the receiver's own refund as money it holds but did not buy.
    function recordGift(address giver, uint256 general, uint256 value) external;
    /// @notice The city's CityPrograms only: `expired` of the `general` money a resident held
    /// expired. Its charges and their incentive shrink in proportion: expiry is no use toward a
    /// refund, and the expired money took its share of the incentive with it.
    function recordExpired(address resident, uint256 general, uint256 expired) external;
    /// @notice The city's cashback contract, linked once by the admin (zero until then).
    function cashback() external view returns (address);
    function linkCashback(address cashback_) external;
    function incentiveMode() external view returns (IncentiveMode);
    /// @notice Admin only: Cashback (needs the cashback contract linked) sets the discount rate
    /// to zero; back to Discount, the admin sets the rate again with setIncentiveBps.
    function setIncentiveMode(IncentiveMode mode) external;
    /// @notice The city's cashback contract only, in Cashback mode: mints up to `amount` of
    /// cashback to a resident as incentive: cut, not refused, to the month's incentive limit
    /// left, the holding cap and the annual issuance cap (what is minted is returned). It counts
    /// as a charge's incentive does: in the month's incentive, the annual cap and the totals, and
    /// in the resident's charges as incentive, so it is never refunded in cash or given as a gift.
    function issueCashback(address resident, uint256 amount) external returns (uint256 minted);
    /// @notice The city's cashback contract only: takes back `amount` of cashback whose payment
    /// was refunded: burns what the resident's general money covers (none from a wallet that
    /// cannot move money now) and returns it; the cashback contract keeps the rest as a debt.
    /// The month's incentive gets its room back.
    function reverseCashback(address resident, uint256 amount) external returns (uint256 burned);
    /// @notice Registry only: moves a resident's charge history to its replacement wallet.
    function moveResidentTally(address lost, address replacement) external;

    function policy() external view returns (Policy memory);
    function issuerAllowance(address issuer) external view returns (uint256);
    function depositIssued(bytes32 depositReference) external view returns (bool);
    function redemption(uint256 id) external view returns (Redemption memory);
    function redemptionCount() external view returns (uint256);
    /// @notice The resident's tally as of now (this month's counters are zero in a new month).
    function residentTally(address resident) external view returns (ResidentTally memory);
    /// @notice What became of the merchant's cash-out authorization `nonce`.
    function cashOutAuthorizationState(address merchant, bytes32 nonce) external view returns (AuthorizationState);
    /// @notice Whether a settlement already names this bank reference.
    function bankReferenceUsed(bytes32 bankReference) external view returns (bool);
    /// @notice The balances confiscated for illegal exchange, in all (part of `burned` in totals()).
    function totalConfiscated() external view returns (uint256);
    function fiscalYearStartMonth() external view returns (uint8);
    function currentFiscalYear() external view returns (uint256);
    function issuedThisFiscalYear() external view returns (uint256);
    /// @notice Lifetime totals: supply == issued - burned + returned. Cashback is issued as
    /// incentive; a reversed cashback's burn is burned and clawed back.
    function totals()
        external
        view
        returns (uint256 issued, uint256 incentive, uint256 burned, uint256 returned, uint256 settled, uint256 clawedBack);
}
