// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICityToken} from "./ICityToken.sol";

/// @title A city's cashback on payments (결제 캐시백)
/// @notice In cashback mode (the treasury's `incentiveMode`) the city pays its incentive when a
/// resident pays a merchant rather than as a discount at charge: a share of the general money the
/// payment drew on, by the merchant's annual revenue band and region, cut to the resident's
/// monthly incentive limit, the holding cap, the annual issuance cap and the cashback budget.
/// Cashback is incentive: never refunded in cash, never given as a gift. A refunded payment's
/// cashback is taken back.
interface ICityCashback {
    /// @notice Merchants with an annual revenue up to `revenueUpTo` KRW earn `bps` (the first
    /// band that holds the revenue; none: no cashback).
    struct Band {
        uint64 revenueUpTo;
        uint16 bps;
    }

    /// @notice A region's rate, in place of its band's where higher (a population-decline area's
    /// bonus), at merchants whose band earns cashback.
    struct RegionRate {
        uint32 region;
        uint16 bps;
    }

    /// @notice One payment to settle: a payer's payment id (an invoice id or an EIP-3009 nonce),
    /// or zero for its plain transfers to that merchant.
    struct Settlement {
        address payer;
        address merchant;
        bytes32 paymentId;
    }

    /// @notice What a payment has been settled on: the general money counted, and the cashback
    /// paid on it (minted, or set against a debt).
    struct Claim {
        uint128 base;
        uint128 paid;
    }

    /// @notice `base` more of the payment's general money earned `bps`: `minted` to the payer's
    /// wallet, `fromDebt` set against what it owed from a reversed cashback.
    event CashbackPaid(
        address indexed payer,
        address indexed merchant,
        bytes32 indexed paymentId,
        address resident,
        uint256 base,
        uint256 bps,
        uint256 minted,
        uint256 fromDebt
    );
    /// @notice A refund took `base` off the payment: `amount` of its cashback is taken back,
    /// `burned` from the resident's money and the rest owed (set against its next cashback).
    event CashbackReversed(
        address indexed payer,
        address indexed merchant,
        bytes32 indexed paymentId,
        address resident,
        uint256 base,
        uint256 amount,
        uint256 burned
    );
    /// @notice The cashback payer counted `base` of a payment's general money as settled without
    /// paying it: plain transfers made before the city went to cashback mode.
    event CashbackBaselined(address indexed payer, address indexed merchant, bytes32 indexed paymentId, uint256 base);
    /// @notice In a batch, a payment that earns nothing now, with the reason (an error's data).
    event CashbackRefused(address indexed payer, address indexed merchant, bytes32 indexed paymentId, bytes reason);
    event CashbackTermsChanged(Band[] bands, RegionRate[] regions);
    event CashbackBudgetChanged(uint256 oldBudget, uint256 newBudget);

    error CityCashbackZeroAddress();
    error CityCashbackNotCashbackMode();
    error CityCashbackNotResident(address payer);
    error CityCashbackNotMerchant(address merchant);
    /// @notice The resident's wallet is frozen, held for a recovery or not active: nothing is paid to it now.
    error CityCashbackAccountLocked(address resident);
    error CityCashbackRateTooHigh(uint256 bps, uint256 maxBps);
    error CityCashbackBandsNotAscending(uint256 index, uint256 revenueUpTo);
    error CityCashbackTooManyRates(uint256 count, uint256 max);

    function token() external view returns (ICityToken);
    /// @notice Settles what changed on a payment since it was last settled. More general money
    /// counted (a payment): cashback paid, the cashback payer only (the backend, on each payment
    /// it sees). Less (a merchant's refund): its share of the cashback taken back, by anyone.
    /// Nothing changed: nothing done. Returns the cashback paid (positive) or taken back.
    function settle(address payer, address merchant, bytes32 paymentId) external returns (int256 change);
    /// @notice The cashback payer's batch: a payment that earns nothing now is evented
    /// (`CashbackRefused`) and the rest goes on. Returns how many were not refused. A paused
    /// city refuses the whole batch (EnforcedPause), as it refuses every movement of money.
    function settleBatch(Settlement[] calldata settlements) external returns (uint256 settled);
    /// @notice The cashback payer only: counts what each payment's general money is now as
    /// settled, paying nothing (only ever up: a refund's take-back is untouched). For the running
    /// totals of plain transfers when a city goes to cashback mode: what was paid before earns
    /// nothing. Returns how many moved.
    function baseline(Settlement[] calldata settlements) external returns (uint256 moved);
    /// @notice Admin only: the rates (bands by ascending revenue, at most 8; regions at most 64;
    /// each rate at most MAX_RATE_BPS). Payments settled afterwards earn the new rates.
    function setTerms(Band[] calldata bands, RegionRate[] calldata regions) external;
    /// @notice Admin only: what may still be paid as cashback (KRW); a reversal gives it back.
    function setBudget(uint256 budget) external;

    function budget() external view returns (uint256);
    function bands() external view returns (Band[] memory);
    function regionRates() external view returns (RegionRate[] memory);
    /// @notice The rate (basis points) a payment at `merchant` earns now.
    function rateOf(address merchant) external view returns (uint256);
    /// @notice The general money of a payment as the chain counts it now (what it paid, less
    /// what was refunded, less its program money), and what has been settled on it.
    function settlementOf(address payer, address merchant, bytes32 paymentId)
        external
        view
        returns (uint256 base, Claim memory claim);
    /// @notice What a resident (by any of its wallets) owes from reversed cashback.
    function debtOf(address account) external view returns (uint256);
    /// @notice Why a payment would earn nothing now (an error's data), empty if it would.
    function settleRefusal(address payer, address merchant, bytes32 paymentId) external view returns (bytes memory);
}
