// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A city's registry of residents and merchants
/// @notice No personal data on chain: identities, business ids and bank accounts are hashes.
interface ICityRegistry {
    enum Status {
        None,
        Active,
        Suspended,
        Revoked
    }

    struct Resident {
        bytes32 identityHash;
        uint32 region;
        Status status;
    }

    struct Merchant {
        bytes32 businessIdHash;
        bytes32 payoutAccountHash;
        uint64 annualRevenue;
        uint16 category;
        uint32 region;
        Status status;
    }

    /// @notice A pending two-step recovery of a lost wallet.
    struct Recovery {
        address replacement;
        /// The compliance account that proposed it: it cannot also execute it.
        address proposer;
        uint64 proposedAt;
        uint64 executableAt;
    }

    /// @notice What a merchant applies with.
    struct MerchantApplication {
        bytes32 businessIdHash;
        bytes32 payoutAccountHash;
        uint64 annualRevenue;
        uint16 category;
        uint32 region;
    }

    event ResidentRegistered(address indexed wallet, bytes32 indexed identityHash, uint32 region);
    event MerchantRegistered(
        address indexed wallet,
        bytes32 indexed businessIdHash,
        uint16 category,
        uint32 region,
        uint64 annualRevenue,
        bytes32 payoutAccountHash
    );
    event MerchantUpdated(address indexed wallet, uint16 category, uint32 region, uint64 annualRevenue);
    /// @notice The merchant's signed change of its payout account.
    event PayoutAccountChanged(address indexed wallet, bytes32 oldPayoutAccountHash, bytes32 newPayoutAccountHash);
    event StatusChanged(address indexed wallet, Status oldStatus, Status newStatus, bool illegalExchange);
    event BusinessBanned(bytes32 indexed businessIdHash, uint64 until);
    /// @notice Compliance proposed moving a lost wallet to `replacement`; the lost wallet is held
    /// (nothing moves in or out) until the registrar executes it, at `executableAt` or later, or it
    /// is withdrawn or objected to.
    event RecoveryProposed(
        address indexed lost, address indexed replacement, address indexed proposer, uint64 executableAt
    );
    event RecoveryCanceled(address indexed lost, address indexed replacement, address indexed by);
    /// @notice The holder of the wallet showed it still has its key and refused the recovery.
    event RecoveryObjected(address indexed lost, address indexed replacement);
    event WalletRecovered(address indexed lost, address indexed replacement);
    event RecoveryDelayChanged(uint64 oldDelay, uint64 newDelay);
    /// @notice Compliance confiscated the balance of an account revoked for illegal exchange
    /// (treasury redemption `redemptionId`, of kind Confiscation).
    event AccountConfiscated(address indexed wallet, uint256 indexed redemptionId, uint256 amount, bytes32 reason);
    event MerchantRevenueCapChanged(uint256 oldCap, uint256 newCap);
    /// @notice Merchants above this annual revenue are not paid with general money (the 2023
    /// guideline; 3 billion KRW nationally); existing merchants follow at refreshGeneralExclusion.
    event GeneralRevenueCapChanged(uint256 oldCap, uint256 newCap);
    event CategoryExclusionChanged(uint16 indexed category, bool excluded);
    event BanPeriodChanged(uint64 oldPeriod, uint64 newPeriod);

    error CityRegistryAlreadyRegistered(address wallet);
    error CityRegistryNotRegistered(address wallet);
    error CityRegistryNotMerchant(address wallet);
    error CityRegistryIdentityInUse(bytes32 identityHash, address wallet);
    error CityRegistryBusinessInUse(bytes32 businessIdHash, address wallet);
    error CityRegistryRevenueOverCap(uint256 annualRevenue, uint256 cap);
    error CityRegistryCategoryExcluded(uint16 category);
    error CityRegistryBusinessBanned(bytes32 businessIdHash, uint64 until);
    error CityRegistryInvalidStatusChange(address wallet, Status current, Status requested);
    error CityRegistryEmptyHash(string field);
    error CityRegistryZeroAddress();
    /// @notice The wallet was recovered to a replacement: it is never registered or named again.
    error CityRegistryWalletRetired(address wallet);
    /// @notice The signature is not the wallet's (EOA or ERC-1271 contract wallet).
    error CityRegistryInvalidSignature(address wallet);
    error CityRegistrySignatureExpired(address wallet, uint256 deadline, uint256 blockTimestamp);
    error CityRegistryNoRecoveryPending(address lost);
    error CityRegistryRecoveryPending(address lost);
    error CityRegistryRecoveryNotDue(address lost, uint64 executableAt, uint256 blockTimestamp);
    /// @notice The account that proposed a recovery cannot execute it.
    error CityRegistryRecoveryNeedsSecondRole(address account);
    /// @notice A frozen wallet's key does not object to its recovery (see objectToRecovery).
    error CityRegistryFrozenWalletCannotObject(address lost);
    error CityRegistryRecoveryDelayOutOfRange(uint64 delay, uint64 min, uint64 max);
    error CityRegistryNotRevokedForIllegalExchange(address wallet);
    /// @notice The account's money waits for confiscation: it is not recovered elsewhere.
    error CityRegistryRevokedForIllegalExchange(address wallet);

    function registerResident(address wallet, bytes32 identityHash, uint32 region) external;
    /// @notice Registers a merchant whose application is eligible; `signature` is the merchant's
    /// EIP-712 PayoutAccount(merchant, payoutAccountHash, nonce 0, deadline) in the domain
    /// "<token name> Registry", version "1": the merchant itself names where its cash-outs go.
    function registerMerchant(
        address wallet,
        MerchantApplication calldata application,
        uint256 deadline,
        bytes calldata signature
    ) external;
    /// @notice Applies a merchant's yearly re-check (revenue, category, region).
    function updateMerchant(address wallet, uint16 category, uint32 region, uint64 annualRevenue) external;
    /// @notice The registrar relays the merchant's signed PayoutAccount(merchant, payoutAccountHash,
    /// payoutAccountNonce(merchant), deadline): the registrar checks the bank account belongs to the
    /// business, the merchant's signature decides it. Cash-outs signed for the old account fail.
    function changePayoutAccount(address wallet, bytes32 payoutAccountHash, uint256 deadline, bytes calldata signature)
        external;
    /// @notice Re-activates a suspended resident or merchant.
    function activate(address wallet) external;
    function suspend(address wallet) external;
    /// @notice Ends a registration for good. The balance stays for the account's closing cash-out or
    /// refund (CityTreasury). An account revoked for illegal exchange (상품권깡) has none: compliance
    /// may confiscate its balance, and a merchant's business id is banned for the ban period.
    function revoke(address wallet, bool illegalExchange) external;
    /// @notice Compliance only: burns the balance of an account revoked for illegal exchange.
    function confiscate(address wallet, bytes32 reason) external;
    /// @notice Compliance only, step one of recovering a lost wallet (ERC-3643 recovery): names the
    /// replacement and holds the lost wallet until the recovery delay has passed.
    function proposeRecovery(address lost, address replacement) external;
    /// @notice Registrar only, step two, by an account other than the proposer: moves the lost
    /// wallet's registration, balance and charge history to the replacement and retires it.
    function executeRecovery(address lost) external;
    /// @notice Compliance only: withdraws a pending recovery; the lost wallet is released.
    function cancelRecovery(address lost) external;
    /// @notice The holder of the "lost" wallet refuses a pending recovery: sent by the wallet itself
    /// (`signature` unused), or relayed by anyone with its EIP-712 RecoveryObjection(wallet,
    /// replacement, proposedAt) signature. Not for a wallet compliance froze: a stolen key is
    /// frozen first, so the thief cannot block the owner's recovery.
    function objectToRecovery(address lost, bytes calldata signature) external;

    function setMerchantRevenueCap(uint256 cap) external;
    function setCategoryExcluded(uint16 category, bool excluded) external;
    function setBanPeriod(uint64 period) external;
    /// @notice How long a proposed recovery waits before it can be executed (MIN to MAX_RECOVERY_DELAY).
    function setRecoveryDelay(uint64 delay) external;

    function residentOf(address wallet) external view returns (Resident memory);
    function merchantOf(address wallet) external view returns (Merchant memory);
    function walletOfIdentity(bytes32 identityHash) external view returns (address);
    function walletOfBusiness(bytes32 businessIdHash) external view returns (address);
    function isActiveMerchant(address wallet) external view returns (bool);
    function bannedUntil(bytes32 businessIdHash) external view returns (uint64);
    function isCategoryExcluded(uint16 category) external view returns (bool);
    function merchantRevenueCap() external view returns (uint256);
    /// @notice Merchants above this annual revenue may register (up to merchantRevenueCap) and be
    /// paid with the policy money whose programs allow it, but not with general money. It starts
    /// at merchantRevenueCap: nobody excluded.
    function generalRevenueCap() external view returns (uint256);
    function setGeneralRevenueCap(uint256 cap) external;
    /// @notice Anyone: marks a merchant in the token by the current general revenue cap (after a
    /// change of the cap; registration and updates mark it themselves).
    function refreshGeneralExclusion(address wallet) external;
    function banPeriod() external view returns (uint64);
    function residentCount() external view returns (uint256);
    function merchantCount() external view returns (uint256);
    function recoveryDelay() external view returns (uint64);
    /// @notice The nonce the merchant's next PayoutAccount signature must carry.
    function payoutAccountNonce(address wallet) external view returns (uint256);
    function revokedForIllegalExchange(address wallet) external view returns (bool);
    function pendingRecovery(address lost) external view returns (Recovery memory);
}
