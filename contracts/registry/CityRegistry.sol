// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ICityRegistry} from "../../interfaces/ICityRegistry.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";

/// @title A city's registry of residents and merchants (ERC-3643-style identity allowlist)
/// @notice Holds the rich records; pushes to the token only what a payment checks (kind, active).
/// One wallet per identity and per business, so a person cannot multiply the purchase limit and a
/// banned business cannot come back under a new wallet. A merchant's payout account is set only
/// with the merchant's own signature (EIP-712 PayoutAccount, domain "<token name> Registry"), so
/// the registrar alone cannot redirect its cash-outs. A lost wallet is recovered in two steps by
/// two roles (compliance proposes, the registrar executes after the recovery delay) while the
/// holder can object, and a recovered wallet is retired for good.
contract CityRegistry is ICityRegistry, AccessControl, EIP712 {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant COMPLIANCE_ROLE = keccak256("COMPLIANCE_ROLE");
    bytes32 public constant PAYOUT_ACCOUNT_TYPEHASH =
        keccak256("PayoutAccount(address merchant,bytes32 payoutAccountHash,uint256 nonce,uint256 deadline)");
    bytes32 public constant RECOVERY_OBJECTION_TYPEHASH =
        keccak256("RecoveryObjection(address wallet,address replacement,uint256 proposedAt)");
    /// @notice Bounds of the recovery delay: long enough for a holder to notice, short enough
    /// that a person who really lost a wallet is not kept from its money for long.
    uint64 public constant MIN_RECOVERY_DELAY = 1 hours;
    uint64 public constant MAX_RECOVERY_DELAY = 30 days;

    ICityToken public immutable token;
    ICityTreasury public immutable treasury;

    /// @inheritdoc ICityRegistry
    uint256 public merchantRevenueCap;
    /// @inheritdoc ICityRegistry
    uint256 public generalRevenueCap;
    /// @inheritdoc ICityRegistry
    uint64 public banPeriod;
    /// @inheritdoc ICityRegistry
    uint256 public residentCount;
    /// @inheritdoc ICityRegistry
    uint256 public merchantCount;
    /// @inheritdoc ICityRegistry
    uint64 public recoveryDelay = 3 days;

    mapping(address wallet => Resident) private _residents;
    mapping(address wallet => Merchant) private _merchants;
    mapping(bytes32 identityHash => address wallet) private _walletOfIdentity;
    mapping(bytes32 businessIdHash => address wallet) private _walletOfBusiness;
    mapping(bytes32 businessIdHash => uint64 until) private _bannedUntil;
    mapping(uint16 category => bool) private _excludedCategory;
    mapping(address wallet => uint256) private _payoutAccountNonces;
    mapping(address wallet => bool) private _revokedForIllegalExchange;
    mapping(address lost => Recovery) private _recoveries;

    /// @param excludedCategories Business categories that cannot register (large marts,
    /// department stores, entertainment, gambling, ...).
    constructor(
        ICityToken token_,
        ICityTreasury treasury_,
        address cityAdmin,
        uint256 merchantRevenueCap_,
        uint64 banPeriod_,
        uint16[] memory excludedCategories
    ) EIP712(string.concat(IERC20Metadata(address(token_)).name(), " Registry"), "1") {
        if (address(token_) == address(0) || address(treasury_) == address(0) || cityAdmin == address(0)) {
            revert CityRegistryZeroAddress();
        }
        token = token_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
        _setMerchantRevenueCap(merchantRevenueCap_);
        _setGeneralRevenueCap(merchantRevenueCap_);
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
    function registerMerchant(
        address wallet,
        MerchantApplication calldata application,
        uint256 deadline,
        bytes calldata signature
    ) external onlyRole(REGISTRAR_ROLE) {
        _requireNew(wallet);
        bytes32 business = application.businessIdHash;
        if (business == bytes32(0)) revert CityRegistryEmptyHash("businessIdHash");
        uint64 until = _bannedUntil[business];
        if (until > block.timestamp) revert CityRegistryBusinessBanned(business, until);
        address holder = _walletOfBusiness[business];
        if (holder != address(0)) revert CityRegistryBusinessInUse(business, holder);
        _requireEligible(application.category, application.annualRevenue);
        _usePayoutAccountSignature(wallet, application.payoutAccountHash, deadline, signature);
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
        if (application.annualRevenue > generalRevenueCap) token.setGeneralExcluded(wallet, true);
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
    function updateMerchant(address wallet, uint16 category, uint32 region, uint64 annualRevenue)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        Merchant storage merchant = _merchants[wallet];
        if (merchant.status == Status.None) revert CityRegistryNotMerchant(wallet);
        _requireEligible(category, annualRevenue);
        merchant.category = category;
        merchant.region = region;
        merchant.annualRevenue = annualRevenue;
        emit MerchantUpdated(wallet, category, region, annualRevenue);
        token.setGeneralExcluded(wallet, annualRevenue > generalRevenueCap);
    }

    /// @inheritdoc ICityRegistry
    function refreshGeneralExclusion(address wallet) external {
        Merchant storage merchant = _merchants[wallet];
        if (merchant.status == Status.None) revert CityRegistryNotMerchant(wallet);
        token.setGeneralExcluded(wallet, merchant.annualRevenue > generalRevenueCap);
    }

    /// @inheritdoc ICityRegistry
    function changePayoutAccount(address wallet, bytes32 payoutAccountHash, uint256 deadline, bytes calldata signature)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        Merchant storage merchant = _merchants[wallet];
        if (merchant.status == Status.None) revert CityRegistryNotMerchant(wallet);
        _usePayoutAccountSignature(wallet, payoutAccountHash, deadline, signature);
        emit PayoutAccountChanged(wallet, merchant.payoutAccountHash, payoutAccountHash);
        merchant.payoutAccountHash = payoutAccountHash;
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
        if (_recoveries[wallet].replacement != address(0)) revert CityRegistryRecoveryPending(wallet);
        _changeStatus(wallet, current, Status.Revoked, illegalExchange);
        // The money stays in the wallet, for its closing cash-out or refund (CityTreasury), or,
        // after illegal exchange, for confiscation by compliance.
        if (illegalExchange) _revokedForIllegalExchange[wallet] = true;
        if (_merchants[wallet].status != Status.None) {
            bytes32 business = _merchants[wallet].businessIdHash;
            delete _walletOfBusiness[business];
            if (illegalExchange) {
                // A ban period past the end of time bans for good rather than overflowing.
                uint256 end = block.timestamp + banPeriod;
                uint64 until = end > type(uint64).max ? type(uint64).max : uint64(end);
                _bannedUntil[business] = until;
                emit BusinessBanned(business, until);
            }
        } else {
            delete _walletOfIdentity[_residents[wallet].identityHash];
        }
    }

    /// @inheritdoc ICityRegistry
    function confiscate(address wallet, bytes32 reason) external onlyRole(COMPLIANCE_ROLE) {
        if (!_revokedForIllegalExchange[wallet]) revert CityRegistryNotRevokedForIllegalExchange(wallet);
        (uint256 id, uint256 amount) = treasury.confiscate(wallet, reason);
        emit AccountConfiscated(wallet, id, amount, reason);
    }

    /*//////////////////////////////////////////////////////////////
                            WALLET RECOVERY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function proposeRecovery(address lost, address replacement) external onlyRole(COMPLIANCE_ROLE) {
        if (_statusOf(lost) == Status.None) revert CityRegistryNotRegistered(lost);
        // An account revoked for illegal exchange keeps its money where confiscation finds it.
        if (_revokedForIllegalExchange[lost]) revert CityRegistryRevokedForIllegalExchange(lost);
        if (_recoveries[lost].replacement != address(0)) revert CityRegistryRecoveryPending(lost);
        _requireNew(replacement);
        uint64 executableAt = uint64(block.timestamp) + recoveryDelay;
        _recoveries[lost] = Recovery(replacement, msg.sender, uint64(block.timestamp), executableAt);
        // Nothing moves in or out of the wallet until the recovery is executed or withdrawn.
        token.setRecoveryHold(lost, true);
        emit RecoveryProposed(lost, replacement, msg.sender, executableAt);
    }

    /// @inheritdoc ICityRegistry
    function executeRecovery(address lost) external onlyRole(REGISTRAR_ROLE) {
        Recovery memory recovery = _pendingRecovery(lost);
        if (block.timestamp < recovery.executableAt) {
            revert CityRegistryRecoveryNotDue(lost, recovery.executableAt, block.timestamp);
        }
        // Two people: the one who proposed cannot also execute, whatever roles it holds.
        if (msg.sender == recovery.proposer) revert CityRegistryRecoveryNeedsSecondRole(msg.sender);
        address replacement = recovery.replacement;
        _requireNew(replacement);
        delete _recoveries[lost];
        if (_merchants[lost].status != Status.None) {
            bytes32 business = _merchants[lost].businessIdHash;
            _merchants[replacement] = _merchants[lost];
            // A revoked merchant's business id is free already: it stays with whoever holds it.
            if (_walletOfBusiness[business] == lost) _walletOfBusiness[business] = replacement;
            delete _merchants[lost];
        } else {
            bytes32 identity = _residents[lost].identityHash;
            _residents[replacement] = _residents[lost];
            if (_walletOfIdentity[identity] == lost) _walletOfIdentity[identity] = replacement;
            delete _residents[lost];
            treasury.moveResidentTally(lost, replacement);
        }
        token.recoverAccount(lost, replacement);
        emit WalletRecovered(lost, replacement);
    }

    /// @inheritdoc ICityRegistry
    function cancelRecovery(address lost) external onlyRole(COMPLIANCE_ROLE) {
        Recovery memory recovery = _pendingRecovery(lost);
        _endRecovery(lost);
        emit RecoveryCanceled(lost, recovery.replacement, msg.sender);
    }

    /// @inheritdoc ICityRegistry
    function objectToRecovery(address lost, bytes calldata signature) external {
        Recovery memory recovery = _pendingRecovery(lost);
        // Compliance froze the wallet: its key is taken to be in the wrong hands, which must not
        // be able to keep the holder from its money by objecting to every recovery.
        if (token.isFrozen(lost)) revert CityRegistryFrozenWalletCannotObject(lost);
        if (msg.sender != lost) {
            bytes32 digest = _hashTypedDataV4(
                keccak256(abi.encode(RECOVERY_OBJECTION_TYPEHASH, lost, recovery.replacement, recovery.proposedAt))
            );
            if (!SignatureChecker.isValidSignatureNow(lost, digest, signature)) {
                revert CityRegistryInvalidSignature(lost);
            }
        }
        _endRecovery(lost);
        emit RecoveryObjected(lost, recovery.replacement);
    }

    /*//////////////////////////////////////////////////////////////
                                 POLICY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityRegistry
    function setGeneralRevenueCap(uint256 cap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setGeneralRevenueCap(cap);
    }

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

    /// @inheritdoc ICityRegistry
    function setRecoveryDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (delay < MIN_RECOVERY_DELAY || delay > MAX_RECOVERY_DELAY) {
            revert CityRegistryRecoveryDelayOutOfRange(delay, MIN_RECOVERY_DELAY, MAX_RECOVERY_DELAY);
        }
        emit RecoveryDelayChanged(recoveryDelay, delay);
        recoveryDelay = delay;
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

    /// @inheritdoc ICityRegistry
    function payoutAccountNonce(address wallet) external view returns (uint256) {
        return _payoutAccountNonces[wallet];
    }

    /// @inheritdoc ICityRegistry
    function revokedForIllegalExchange(address wallet) external view returns (bool) {
        return _revokedForIllegalExchange[wallet];
    }

    /// @inheritdoc ICityRegistry
    function pendingRecovery(address lost) external view returns (Recovery memory) {
        return _recoveries[lost];
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _requireNew(address wallet) private view {
        if (wallet == address(0)) revert CityRegistryZeroAddress();
        if (_statusOf(wallet) != Status.None) revert CityRegistryAlreadyRegistered(wallet);
        // A recovered wallet is retired: whoever holds its key, it never holds money again.
        if (token.isRetired(wallet)) revert CityRegistryWalletRetired(wallet);
        // A wallet the token already knows is not new either.
        if (token.accountKind(wallet) != ICityToken.AccountKind.None) revert CityRegistryAlreadyRegistered(wallet);
    }

    function _requireEligible(uint16 category, uint64 annualRevenue) private view {
        if (_excludedCategory[category]) revert CityRegistryCategoryExcluded(category);
        if (annualRevenue > merchantRevenueCap) revert CityRegistryRevenueOverCap(annualRevenue, merchantRevenueCap);
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

    function _setGeneralRevenueCap(uint256 cap) private {
        emit GeneralRevenueCapChanged(generalRevenueCap, cap);
        generalRevenueCap = cap;
    }

    function _setCategoryExcluded(uint16 category, bool excluded) private {
        _excludedCategory[category] = excluded;
        emit CategoryExclusionChanged(category, excluded);
    }

    function _setBanPeriod(uint64 period) private {
        emit BanPeriodChanged(banPeriod, period);
        banPeriod = period;
    }

    /// @dev The merchant's EIP-712 PayoutAccount signature over the account and its next nonce, so
    /// a signature sets the account once and an older one cannot set it back.
    function _usePayoutAccountSignature(address wallet, bytes32 payoutAccountHash, uint256 deadline, bytes calldata signature)
        private
    {
        if (payoutAccountHash == bytes32(0)) revert CityRegistryEmptyHash("payoutAccountHash");
        if (block.timestamp > deadline) revert CityRegistrySignatureExpired(wallet, deadline, block.timestamp);
        uint256 nonce = _payoutAccountNonces[wallet]++;
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(PAYOUT_ACCOUNT_TYPEHASH, wallet, payoutAccountHash, nonce, deadline)));
        if (!SignatureChecker.isValidSignatureNow(wallet, digest, signature)) revert CityRegistryInvalidSignature(wallet);
    }

    function _pendingRecovery(address lost) private view returns (Recovery memory recovery) {
        recovery = _recoveries[lost];
        if (recovery.replacement == address(0)) revert CityRegistryNoRecoveryPending(lost);
    }

    function _endRecovery(address lost) private {
        delete _recoveries[lost];
        token.setRecoveryHold(lost, false);
    }
}
