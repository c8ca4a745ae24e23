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
    event MerchantUpdated(
        address indexed wallet, uint16 category, uint32 region, uint64 annualRevenue, bytes32 payoutAccountHash
    );
    event StatusChanged(address indexed wallet, Status oldStatus, Status newStatus, bool illegalExchange);
    event BusinessBanned(bytes32 indexed businessIdHash, uint64 until);
    event WalletRecovered(address indexed lost, address indexed replacement);
    event MerchantRevenueCapChanged(uint256 oldCap, uint256 newCap);
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

    function registerResident(address wallet, bytes32 identityHash, uint32 region) external;
    function registerMerchant(address wallet, MerchantApplication calldata application) external;
    /// @notice Applies a merchant's yearly re-check (revenue, category, region, payout account).
    function updateMerchant(address wallet, uint16 category, uint32 region, uint64 annualRevenue, bytes32 payoutAccountHash)
        external;
    /// @notice Re-activates a suspended resident or merchant.
    function activate(address wallet) external;
    function suspend(address wallet) external;
    /// @notice Ends a registration for good. A merchant revoked for illegal exchange (상품권깡)
    /// bans its business id for the ban period.
    function revoke(address wallet, bool illegalExchange) external;
    /// @notice Moves a lost wallet's registration, balance and charge history to a new wallet.
    function recoverWallet(address lost, address replacement) external;

    function setMerchantRevenueCap(uint256 cap) external;
    function setCategoryExcluded(uint16 category, bool excluded) external;
    function setBanPeriod(uint64 period) external;

    function residentOf(address wallet) external view returns (Resident memory);
    function merchantOf(address wallet) external view returns (Merchant memory);
    function walletOfIdentity(bytes32 identityHash) external view returns (address);
    function walletOfBusiness(bytes32 businessIdHash) external view returns (address);
    function isActiveMerchant(address wallet) external view returns (bool);
    function bannedUntil(bytes32 businessIdHash) external view returns (uint64);
    function isCategoryExcluded(uint16 category) external view returns (bool);
    function merchantRevenueCap() external view returns (uint256);
    function banPeriod() external view returns (uint64);
    function residentCount() external view returns (uint256);
    function merchantCount() external view returns (uint256);
}
