// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A city's money classes: general money by expiry and policy programs (정책발행)
/// @notice The token keeps each account's total (`balanceOf`); this contract keeps what the total
/// is made of and decides which money pays: money eligible at the merchant, policy money first
/// (soonest expiry first), then general money (oldest first). Expired money goes back to the city.
interface ICityPrograms {
    /// @notice A program's terms, as its manager creates it.
    struct ProgramTerms {
        /// @dev The city's name for it, e.g. "YOUTH-2026H1": unique, never zero.
        bytes32 code;
        /// @dev The most it may pay out in all, its own allowance apart from the general cap.
        uint256 budget;
        /// @dev The most one recipient may receive.
        uint256 maxPerRecipient;
        /// @dev Its money is spendable from this time until `expiry`, then goes back to the city.
        uint64 spendFrom;
        uint64 expiry;
        /// @dev Merchants with an annual revenue up to this may be paid with it (the city's cap
        /// for general money does not apply; type(uint64).max: any merchant of the city).
        uint64 revenueCap;
        /// @dev Business categories and merchant regions where it may be spent; empty: any.
        uint16[] categories;
        uint32[] regions;
    }

    /// @notice A program as the chain keeps it. Outstanding = paidOut - spent + refunded - expired.
    struct Program {
        bytes32 code;
        uint88 budget;
        uint88 funded;
        uint40 spendFrom;
        uint40 expiry;
        uint88 paidOut;
        uint88 spent;
        uint64 revenueCap;
        bool anyCategory;
        bool anyRegion;
        bool closed;
        uint88 refunded;
        uint88 expired;
        uint88 maxPerRecipient;
    }

    /// @notice One recipient of a payout and what it receives.
    struct Payout {
        address recipient;
        uint256 amount;
    }

    /// @notice A part of an account's money: general money expiring at `expiry` (`program` 0), or
    /// a program's money.
    struct Holding {
        uint32 program;
        uint64 expiry;
        uint256 amount;
    }

    event ProgramCreated(uint32 indexed program, bytes32 indexed code, ProgramTerms terms);
    event ProgramFunded(uint32 indexed program, uint256 amount, bytes32 bankReference, address by);
    event ProgramPaid(uint32 indexed program, address indexed recipient, uint256 amount);
    /// @notice A payout entry refused while the rest of its batch went on: `reason` is the revert
    /// data of the error that refuses it.
    event ProgramPayoutRefused(uint32 indexed program, address indexed recipient, uint256 amount, bytes reason);
    event ProgramSpent(uint32 indexed program, address indexed payer, address indexed merchant, uint256 amount);
    /// @notice A merchant's refund gave a program's money back to the payer (or to the city, the
    /// program having expired meanwhile: then an Expired event follows).
    event ProgramRefunded(uint32 indexed program, address indexed payer, uint256 amount);
    event ProgramClosed(uint32 indexed program, uint256 unpaidBudget);
    /// @notice Money of `account` expired and went back to the city: general money (`program` 0)
    /// or a program's.
    event Expired(address indexed account, uint32 indexed program, uint256 amount);
    /// @notice The city's gifts contract, linked once: the only caller of `moveGeneral`.
    event GiftsLinked(address gifts);

    error CityProgramsUnauthorized(address caller);
    error CityProgramsZeroAddress();
    error CityProgramsInvalidTerms(string field);
    error CityProgramsCodeInUse(bytes32 code, uint32 program);
    error CityProgramsUnknownProgram(uint32 program);
    error CityProgramsClosed(uint32 program);
    error CityProgramsOverBudget(uint32 program, uint256 left, uint256 requested);
    error CityProgramsOverFunds(uint32 program, uint256 left, uint256 requested);
    error CityProgramsAmountOutOfRange(uint32 program, uint256 amount, uint256 max);
    error CityProgramsAlreadyPaid(uint32 program, address recipient);
    error CityProgramsExpired(uint32 program, uint64 expiry);
    error CityProgramsTooManyHeld(address account, uint256 max);
    error CityProgramsBatchTooLarge(uint256 size, uint256 max);
    /// @notice A payment that the money eligible at `merchant` cannot cover. `held` is what the
    /// payer holds that has not expired, `eligible` what of it this merchant may take; `reasons`
    /// why the rest may not (bits: NOT_GENERAL 1, CATEGORY 2, REGION 4, NOT_YET 8, REVENUE 16).
    error CityProgramsNotEligible(
        address payer, address merchant, uint256 value, uint256 held, uint256 eligible, uint256 reasons
    );
    /// @notice A redemption (a resident's refund) asks more than its unexpired general money.
    error CityProgramsGeneralShort(address account, uint256 general, uint256 requested);
    error CityProgramsGiftsAlreadyLinked(address gifts);
    /// @notice Not a CityGifts of this city's token.
    error CityProgramsNotGifts(address gifts);

    // Token only: the classes of every balance change of a resident.

    /// @return state The first day (UTC days since 1970) on which some of the account's general
    /// money expires, 0 for none (bits 0-21), and whether it holds policy money (bit 22).
    function creditGeneral(address origin, uint256 value, uint256 balance) external returns (uint256 state);
    /// @notice Sweeps the payer's expired money, then takes `value` from the money eligible at
    /// `merchant` (general money only, for a redemption: `merchant` zero), recording a payment's
    /// program money under `paymentKey` for its refunds. Reverts with its refusal.
    /// @return expired What expired and must be burned first; state as creditGeneral's.
    function draw(
        address payer,
        address origin,
        address merchant,
        bool generalAccepted,
        uint256 balance,
        uint256 value,
        bytes32 paymentKey
    ) external returns (uint256 expired, uint256 state);
    /// @notice A refund of `value` of the payment recorded under `paymentKey`: its program money
    /// back to its programs first, the rest general money.
    /// @return expired The part whose program has expired: it goes back to the city.
    /// @return state As creditGeneral's.
    /// @return general The part credited as general money.
    function creditRefund(address payer, address origin, bytes32 paymentKey, uint256 value, uint256 balance)
        external
        returns (uint256 expired, uint256 state, uint256 general);
    /// @notice An account's balance leaves the city (closed or confiscated): its program money and
    /// expired general money go back to the city (`returned`, for the token to burn); the treasury
    /// takes the rest, its unexpired general money.
    function clear(address account, address origin, uint256 balance) external returns (uint256 returned);

    // The city's gifts contract only.

    /// @notice Moves `value` of `from`'s oldest unexpired general money to `to`, each part keeping
    /// its expiry (the giver's expired money swept first), records it with the treasury (the
    /// money was bought with KRW: the receiver's charged money now) and moves the balance in the
    /// token. Reverts with the refusal.
    function moveGeneral(address from, address to, uint256 value) external;

    // Anyone.

    /// @notice What of `account`'s money has expired and awaits the sweep (the token's `sweep`,
    /// which anyone may call, or the account's next payment).
    function expiredOf(address account) external view returns (uint256);

    // Program lifecycle.

    function createProgram(ProgramTerms calldata terms) external returns (uint32 program);
    function fundProgram(uint32 program, uint256 amount, bytes32 bankReference) external;
    /// @notice Pays each recipient its amount of the program's money, once per recipient and
    /// program whatever the number of tries; a refused entry is evented and the rest goes on.
    function payOut(uint32 program, Payout[] calldata payouts) external returns (uint256 paid);
    function closeProgram(uint32 program) external;

    // Views.

    function program(uint32 program) external view returns (Program memory);
    function programCount() external view returns (uint256);
    function programOfCode(bytes32 code) external view returns (uint32);
    function isEligible(uint32 program, uint16 category, uint32 region, uint64 revenue) external view returns (bool);
    function paidTo(uint32 program, address recipient) external view returns (bool);
    function holdingOf(address account, uint32 program) external view returns (uint256);
    function programMoneyOf(address account) external view returns (uint256);
    /// @notice What of a payment (the token's payment key: PaymentKey) was program money and is
    /// not refunded yet: a refund gives program money back first, the rest of the payment is
    /// general money (what cashback is paid on).
    function programPartOf(bytes32 paymentKey) external view returns (uint256);
    /// @notice Unexpired general money: what a resident's refund and a gift may draw on.
    function generalBalanceOf(address account) external view returns (uint256);
    /// @notice What `account`'s balance is made of, unexpired general money by expiry (oldest
    /// first), then each program's money; `expired` what has expired and awaits the sweep. The
    /// amounts and `expired` add up to the balance.
    function breakdownOf(address account) external view returns (Holding[] memory holdings, uint256 expired);
    /// @notice Empty when `value` from `payer` to `merchant` would be drawn from eligible money,
    /// else the revert data of the refusal (the classes' part only: the token checks the rest).
    function drawRefusal(address payer, address merchant, bool generalAccepted, uint256 value)
        external
        view
        returns (bytes memory);
    function generalValidity() external view returns (uint64);
    /// @notice The city's gifts contract (zero until linked).
    function gifts() external view returns (address);
    /// @notice The city's admin, once: links the gifts contract.
    function linkGifts(address gifts) external;
}
