// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ICityRegistry} from "../../interfaces/ICityRegistry.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";

/// @title A city's registry of residents and merchants (ERC-3643-style identity allowlist)
/// @notice Holds the rich records; pushes to the token only what a payment checks (kind, active).
/// One wallet per identity and per business, so a person cannot multiply the purchase limit and a
/// banned business cannot come back under a new wallet.
contract CityRegistry is ICityRegistry, AccessControl {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant COMPLIANCE_ROLE = keccak256("COMPLIANCE_ROLE");

    ICityToken public immutable token;
    ICityTreasury public immutable treasury;

    /// @inheritdoc ICityRegistry
    uint256 public merchantRevenueCap;
    /// @inheritdoc ICityRegistry
    uint64 public banPeriod;
    /// @inheritdoc ICityRegistry
    uint256 public residentCount;
    /// @inheritdoc ICityRegistry
    uint256 public merchantCount;

    mapping(address wallet => Resident) private _residents;
    mapping(address wallet => Merchant) private _merchants;
    mapping(bytes32 identityHash => address wallet) private _walletOfIdentity;
    mapping(bytes32 businessIdHash => address wallet) private _walletOfBusiness;
    mapping(bytes32 businessIdHash => uint64 until) private _bannedUntil;
    mapping(uint16 category => bool) private _excludedCategory;

    /// @param excludedCategories Business categories that cannot register (large marts,
    /// department stores, entertainment, gambling, ...).
    constructor(
        ICityToken token_,
        ICityTreasury treasury_,
        address cityAdmin,
        uint256 merchantRevenueCap_,
        uint64 banPeriod_,
        uint16[] memory excludedCategories
    ) {
        if (address(token_) == address(0) || address(treasury_) == address(0) || cityAdmin == address(0)) {
            revert CityRegistryZeroAddress();
        }
        token = token_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
        _setMerchantRevenueCap(merchantRevenueCap_);
        _setBanPeriod(banPeriod_);
        for (uint256 i; i < excludedCategories.length; ++i) {
            _setCategoryExcluded(excludedCategories[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                              REGISTRATION
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function registerResident(address wallet, bytes32 identityHash, uint32 region) external onlyRole(REGISTRAR_ROLE) {
        _requireNew(wallet);
        if (identityHash == bytes32(0)) revert CityRegistryEmptyHash("identityHash");
        address holder = _walletOfIdentity[identityHash];
        if (holder != address(0)) revert CityRegistryIdentityInUse(identityHash, holder);
        _walletOfIdentity[identityHash] = wallet;
        _residents[wallet] = Resident(identityHash, region, Status.Active);
        ++residentCount;
        token.setAccountStatus(wallet, ICityToken.AccountKind.Resident, true);
        emit ResidentRegistered(wallet, identityHash, region);
    }

    /// @inheritdoc ICityRegistry
    function registerMerchant(address wallet, MerchantApplication calldata application)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        _requireNew(wallet);
        bytes32 business = application.businessIdHash;
        if (business == bytes32(0)) revert CityRegistryEmptyHash("businessIdHash");
        uint64 until = _bannedUntil[business];
        if (until > block.timestamp) revert CityRegistryBusinessBanned(business, until);
        address holder = _walletOfBusiness[business];
        if (holder != address(0)) revert CityRegistryBusinessInUse(business, holder);
        _requireEligible(application.category, application.annualRevenue, application.payoutAccountHash);
        _walletOfBusiness[business] = wallet;
        _merchants[wallet] = Merchant(
            business,
            application.payoutAccountHash,
            application.annualRevenue,
            application.category,
            application.region,
            Status.Active
        );
        ++merchantCount;
        token.setAccountStatus(wallet, ICityToken.AccountKind.Merchant, true);
        emit MerchantRegistered(
            wallet,
            business,
            application.category,
            application.region,
            application.annualRevenue,
            application.payoutAccountHash
        );
    }

    /// @inheritdoc ICityRegistry
    function updateMerchant(address wallet, uint16 category, uint32 region, uint64 annualRevenue, bytes32 payoutAccountHash)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        Merchant storage merchant = _merchants[wallet];
        if (merchant.status == Status.None) revert CityRegistryNotMerchant(wallet);
        _requireEligible(category, annualRevenue, payoutAccountHash);
        merchant.category = category;
        merchant.region = region;
        merchant.annualRevenue = annualRevenue;
        merchant.payoutAccountHash = payoutAccountHash;
        emit MerchantUpdated(wallet, category, region, annualRevenue, payoutAccountHash);
    }

    /*//////////////////////////////////////////////////////////////
                               LIFECYCLE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function activate(address wallet) external onlyRole(REGISTRAR_ROLE) {
        _changeStatus(wallet, Status.Suspended, Status.Active, false);
    }

    /// @inheritdoc ICityRegistry
    function suspend(address wallet) external onlyRole(REGISTRAR_ROLE) {
        _changeStatus(wallet, Status.Active, Status.Suspended, false);
    }

    /// @inheritdoc ICityRegistry
    function revoke(address wallet, bool illegalExchange) external onlyRole(REGISTRAR_ROLE) {
        Status current = _statusOf(wallet);
        if (current == Status.None || current == Status.Revoked) {
            revert CityRegistryInvalidStatusChange(wallet, current, Status.Revoked);
        }
        _changeStatus(wallet, current, Status.Revoked, illegalExchange);
        bool merchant = _merchants[wallet].status != Status.None;
        if (merchant) {
            bytes32 business = _merchants[wallet].businessIdHash;
            delete _walletOfBusiness[business];
            if (illegalExchange) {
                uint64 until = uint64(block.timestamp) + banPeriod;
                _bannedUntil[business] = until;
                emit BusinessBanned(business, until);
            }
        } else {
            delete _walletOfIdentity[_residents[wallet].identityHash];
        }
    }

    /// @inheritdoc ICityRegistry
    function recoverWallet(address lost, address replacement) external onlyRole(COMPLIANCE_ROLE) {
        Status current = _statusOf(lost);
        if (current == Status.None || current == Status.Revoked) revert CityRegistryNotRegistered(lost);
        _requireNew(replacement);
        if (_merchants[lost].status != Status.None) {
            _merchants[replacement] = _merchants[lost];
            _walletOfBusiness[_merchants[lost].businessIdHash] = replacement;
            delete _merchants[lost];
        } else {
            _residents[replacement] = _residents[lost];
            _walletOfIdentity[_residents[lost].identityHash] = replacement;
            delete _residents[lost];
            treasury.moveResidentTally(lost, replacement);
        }
        token.recoverAccount(lost, replacement);
        emit WalletRecovered(lost, replacement);
    }

    /*//////////////////////////////////////////////////////////////
                                 POLICY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function setMerchantRevenueCap(uint256 cap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMerchantRevenueCap(cap);
    }

    /// @inheritdoc ICityRegistry
    function setCategoryExcluded(uint16 category, bool excluded) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setCategoryExcluded(category, excluded);
    }

    /// @inheritdoc ICityRegistry
    function setBanPeriod(uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setBanPeriod(period);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function residentOf(address wallet) external view returns (Resident memory) {
        return _residents[wallet];
    }

    /// @inheritdoc ICityRegistry
    function merchantOf(address wallet) external view returns (Merchant memory) {
        return _merchants[wallet];
    }

    /// @inheritdoc ICityRegistry
    function walletOfIdentity(bytes32 identityHash) external view returns (address) {
        return _walletOfIdentity[identityHash];
    }

    /// @inheritdoc ICityRegistry
    function walletOfBusiness(bytes32 businessIdHash) external view returns (address) {
        return _walletOfBusiness[businessIdHash];
    }

    /// @inheritdoc ICityRegistry
    function isActiveMerchant(address wallet) external view returns (bool) {
        return _merchants[wallet].status == Status.Active;
    }

    /// @inheritdoc ICityRegistry
    function bannedUntil(bytes32 businessIdHash) external view returns (uint64) {
        return _bannedUntil[businessIdHash];
    }

    /// @inheritdoc ICityRegistry
    function isCategoryExcluded(uint16 category) external view returns (bool) {
        return _excludedCategory[category];
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _requireNew(address wallet) private view {
        if (wallet == address(0)) revert CityRegistryZeroAddress();
        if (_statusOf(wallet) != Status.None) revert CityRegistryAlreadyRegistered(wallet);
        // A wallet the token already knows (e.g. a recovered one) is not new either.
        if (token.accountKind(wallet) != ICityToken.AccountKind.None) revert CityRegistryAlreadyRegistered(wallet);
    }

    function _requireEligible(uint16 category, uint64 annualRevenue, bytes32 payoutAccountHash) private view {
        if (_excludedCategory[category]) revert CityRegistryCategoryExcluded(category);
        if (annualRevenue > merchantRevenueCap) revert CityRegistryRevenueOverCap(annualRevenue, merchantRevenueCap);
        if (payoutAccountHash == bytes32(0)) revert CityRegistryEmptyHash("payoutAccountHash");
    }

    /// @dev A wallet is a resident or a merchant, never both.
    function _statusOf(address wallet) private view returns (Status) {
        Status merchantStatus = _merchants[wallet].status;
        return merchantStatus != Status.None ? merchantStatus : _residents[wallet].status;
    }

    function _changeStatus(address wallet, Status expected, Status next, bool illegalExchange) private {
        Status current = _statusOf(wallet);
        if (current != expected) revert CityRegistryInvalidStatusChange(wallet, current, next);
        bool merchant = _merchants[wallet].status != Status.None;
        if (merchant) {
            _merchants[wallet].status = next;
        } else {
            _residents[wallet].status = next;
        }
        if (next == Status.Revoked) {
            if (merchant) --merchantCount;
            else --residentCount;
        }
        ICityToken.AccountKind kind = merchant ? ICityToken.AccountKind.Merchant : ICityToken.AccountKind.Resident;
        token.setAccountStatus(wallet, kind, next == Status.Active);
        emit StatusChanged(wallet, current, next, illegalExchange);
    }

    function _setMerchantRevenueCap(uint256 cap) private {
        emit MerchantRevenueCapChanged(merchantRevenueCap, cap);
        merchantRevenueCap = cap;
    }

    function _setCategoryExcluded(uint16 category, bool excluded) private {
        _excludedCategory[category] = excluded;
        emit CategoryExclusionChanged(category, excluded);
    }

    function _setBanPeriod(uint64 period) private {
        emit BanPeriodChanged(banPeriod, period);
        banPeriod = period;
    }
}
