// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC3009} from "./IERC3009.sol";
import {ICityPrograms} from "./ICityPrograms.sol";

/// @title A city's token: 1 token = 1 KRW, held only by registered residents and merchants
interface ICityToken is IERC20, IERC3009 {
    /// @notice What a wallet is to the city. Set by the registry, kept beside the balance.
    enum AccountKind {
        None,
        Resident,
        Merchant
    }

    /// @notice One signed EIP-3009 transfer authorization, as a relayer submits it in a batch.
    struct TransferAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice A resident paid a merchant with `pay` and an invoice id. A gasless payment is
    /// announced by AuthorizationUsed(payer, nonce) beside its Transfer instead: the nonce is its
    /// payment id, and a third event would cost the hot path about 2,000 gas.
    event Paid(address indexed payer, address indexed merchant, bytes32 indexed paymentId, uint256 value);
    /// @notice A merchant refunded (part of) a payment to the customer who made it.
    event Refunded(address indexed merchant, address indexed payer, bytes32 indexed paymentId, uint256 value);
    /// @notice An authorization in a batch was skipped; `reason` is the revert data
    /// transferWithAuthorization would raise for it (its custom error, ABI-encoded).
    event AuthorizationFailed(address indexed authorizer, bytes32 indexed nonce, bytes reason);
    event AccountFrozen(address indexed account, address indexed by);
    event AccountUnfrozen(address indexed account, address indexed by);
    /// @notice The registry changed what an account is (kind) or whether it may transact (active).
    event AccountStatusSet(address indexed account, AccountKind kind, bool active);
    /// @notice A lost wallet's balance and status moved to its replacement; the lost wallet is
    /// retired for good.
    event AccountRecovered(address indexed lost, address indexed replacement, uint256 balance);
    /// @notice A recovery of the account was proposed (held: no money moves in or out) or ended.
    event RecoveryHoldSet(address indexed account, bool held);
    event SuiteLinked(address indexed registry, address indexed treasury, address indexed programs);
    /// @notice The registry marked a merchant as above (or back under) the city's revenue cap for
    /// general money: it is paid with policy money its programs allow there, and nothing else.
    event GeneralMoneyExcluded(address indexed merchant, bool excluded);

    /// @notice The movement breaks the city's transfer rules (see CityToken._move).
    error CityTokenTransferNotAllowed(address from, address to);
    error CityTokenAccountFrozen(address account);
    /// @notice The wallet was recovered to a replacement: it takes part in nothing again.
    error CityTokenAccountRetired(address account);
    /// @notice A recovery of the account is pending: its money stays where it is until it ends.
    error CityTokenAccountInRecovery(address account);
    /// @notice A closing or confiscation applies only to an account the registry revoked.
    error CityTokenAccountNotRevoked(address account);
    /// @notice Payments and refunds move a value above zero.
    error CityTokenZeroValue();
    error CityTokenMerchantNotActive(address merchant);
    error CityTokenResidentNotActive(address resident);
    error CityTokenNotRegistered(address account);
    /// @notice Only the city's registry or treasury contract may call this.
    error CityTokenUnauthorizedSuiteCall(address caller);
    error CityTokenSuiteAlreadyLinked(address registry, address treasury);
    error CityTokenZeroAddress();
    /// @notice Zero is the id refunds use for plain transfers: no invoice or authorization has it.
    error CityTokenZeroPaymentId();
    /// @notice The payer already used this invoice id.
    error CityTokenPaymentIdUsed(address payer, bytes32 paymentId);
    /// @notice No payment from `payer` to `merchant` carries this id.
    error CityTokenPaymentNotFound(address payer, address merchant, bytes32 paymentId);
    error CityTokenRefundExceedsPayment(address payer, bytes32 paymentId, uint256 refundable, uint256 requested);
    /// @notice A refund authorization's nonce is zero: EIP-3009 nonces are random, and zero is
    /// what a wallet that forgot to draw one sends.
    error CityTokenZeroNonce();
    error CityTokenSupplyCapExceeded(uint256 supply, uint256 value, uint256 cap);
    error CityTokenReplacementInUse(address replacement);
    /// @notice The money classes ran out of gas deciding a payment: send it with more gas.
    error CityTokenClassesOutOfGas();

    /// @notice Pays `merchant` with an invoice id. An EIP-681 URI names this function with its
    /// three parameters (address, uint256, bytes32), so any EIP-681 wallet can pay an invoice QR.
    function pay(address merchant, uint256 value, bytes32 invoiceId) external;

    /// @notice Refunds `value` of the payment `paymentId` to the payer who made it (to its current
    /// wallet after a recovery). `paymentId` is the invoice id or authorization nonce; zero refers
    /// to the payer's plain ERC-20 transfers to the calling merchant.
    function refund(address payer, bytes32 paymentId, uint256 value) external;

    /// @notice `refund` relayed: the merchant signed the EIP-712 message
    /// RefundWithAuthorization(merchant, payer, paymentId, nonce, value, validAfter, validBefore)
    /// in the token's domain, and anyone may send it. EIP-3009's rules apply (valid after
    /// `validAfter` and before `validBefore`, each nonce of the merchant once, cancellable with
    /// cancelAuthorization), then refund's; emits AuthorizationUsed(merchant, nonce) and Refunded.
    /// The parameters, like the type's fields: who, which payment and which authorization, how
    /// much, when. (This order's selector also leaves solc's selector search, and so the gas, of
    /// the payment functions where it was; EIP-3009's order moved transfer by 22 gas.)
    function refundWithAuthorization(
        address merchant,
        address payer,
        bytes32 paymentId,
        bytes32 nonce,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice The EIP-712 type hash of RefundWithAuthorization (see refundWithAuthorization).
    function REFUND_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);

    /// @notice The wallet an account lives in now: itself, or its replacement after recoveries.
    /// Refunds of payments made before a recovery go to, and are made by, the current wallets.
    function currentWallet(address account) external view returns (address);

    /// @notice The first wallet of the account's holder: itself unless it took part in a recovery.
    function originOf(address account) external view returns (address);

    /// @notice What the merchant may still refund of a payment.
    function refundableAmount(address payer, address merchant, bytes32 paymentId) external view returns (uint256);

    /// @notice Relayer only (RELAYER_ROLE): settles many authorizations in one transaction: an
    /// invalid one is skipped with an AuthorizationFailed event while the others go through, and
    /// one its payer signed is voided (AuthorizationVoided), so it stays failed. Returns how many
    /// went through.
    function transferWithAuthorizationBatch(TransferAuthorization[] calldata authorizations)
        external
        returns (uint256 settled);

    function accountKind(address account) external view returns (AccountKind);
    function isActive(address account) external view returns (bool);
    function isFrozen(address account) external view returns (bool);
    /// @notice A wallet recovered to a replacement: never registered or named as a replacement again.
    function isRetired(address account) external view returns (bool);
    /// @notice A recovery of the account is pending (see CityRegistry.proposeRecovery).
    function isHeld(address account) external view returns (bool);

    /// @notice EIP-712 domain version (the domain's other fields: name, chainId, verifyingContract).
    function version() external pure returns (string memory);

    function registry() external view returns (address);
    function treasury() external view returns (address);
    /// @notice The city's money classes: what each resident's balance is made of.
    function programs() external view returns (ICityPrograms);
    function linkSuite(address registry, address treasury, ICityPrograms programs) external;

    /// @notice Sends `account`'s expired money back to the city (burned, with the classes' Expired
    /// events). Anyone may call it; a payment does it first when it needs to. Nothing for a merchant,
    /// or a frozen or held resident (its expired money waits until it is unlocked).
    function sweep(address account) external;
    /// @notice A resident's unexpired general money: what its refund may draw on.
    function generalBalanceOf(address account) external view returns (uint256);
    /// @notice Empty when a payment of `value` from `from` to `to` would go through now, else the
    /// revert data of the error that would refuse it (ask before signing, tell at the till).
    function paymentRefusal(address from, address to, uint256 value) external view returns (bytes memory);
    /// @notice ERC-7943's question: would `value` from `from` to `to` go through now.
    function canTransfer(address from, address to, uint256 value) external view returns (bool);

    function pause() external;
    function unpause() external;
    function freeze(address account) external;
    function unfreeze(address account) external;

    /// @notice Registry only: sets what an account is and whether it may transact.
    function setAccountStatus(address account, AccountKind kind, bool active) external;
    /// @notice Registry only: moves a lost wallet's balance and status to an unused replacement, and
    /// retires the lost wallet.
    function recoverAccount(address lost, address replacement) external;
    /// @notice Registry only: holds an account while a recovery of it is pending, or ends the hold.
    function setRecoveryHold(address account, bool held) external;
    /// @notice Registry only: a merchant above the city's revenue cap for general money, or not.
    function setGeneralExcluded(address merchant, bool excluded) external;
    /// @notice The city's CityPrograms only: mints a program's payout to a resident, or returns
    /// the refusal (revert data) and mints nothing.
    function issueProgram(address resident, uint256 value) external returns (bytes memory refusal);
    /// @notice The city's CityPrograms only: a gift of general money between two active residents,
    /// whose lots CityPrograms has moved; `toState` is the receiver's class state after it.
    function gift(address from, address to, uint256 value, uint256 toState) external;

    /// @notice Treasury only: mints a charge (충전) to a resident.
    function issue(address resident, uint256 value) external;
    /// @notice Treasury only: burns a cash-out (환전) or resident refund (환불).
    function redeem(address account, uint256 value) external;
    /// @notice Treasury only: mints back the tokens of a redemption whose bank transfer failed.
    function restore(address account, uint256 value) external;
    /// @notice Treasury only: burns the balance of a revoked account, for its closing cash-out or
    /// refund, or (`confiscation`) because it was revoked for illegal exchange.
    function close(address account, uint256 value, bool confiscation) external;
}
