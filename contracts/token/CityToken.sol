// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {IERC3009} from "../../interfaces/IERC3009.sol";
import {EIP3009} from "./EIP3009.sol";
import {AccountWord} from "../libraries/AccountWord.sol";
import {PaymentKey} from "../libraries/PaymentKey.sol";
import {PaymentRecord} from "../libraries/PaymentRecord.sol";
import {Refusal} from "../libraries/Refusal.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";
import {ICityPrograms} from "../../interfaces/ICityPrograms.sol";

/// @title City token: a city's local currency (지역화폐), 1 token = 1 KRW
/// @notice Only registered residents and merchants hold it. A resident pays an active merchant
/// (plain ERC-20 transfer, invoice payment or EIP-3009 authorization); a merchant refunds the payer
/// of a payment; the treasury alone mints charges and burns cash-outs, refunds, closing balances of
/// revoked accounts and confiscations. Every balance change goes through `_tryMove`, which is where
/// these rules live. What a resident's balance is made of (general money by expiry, policy
/// programs' money) is kept by the city's CityPrograms, asked only when a payment needs it.
contract CityToken is ICityToken, ERC20, ERC20Permit, EIP3009, AccessControl, Pausable {
    using AccountWord for uint256;

    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant COMPLIANCE_ROLE = keccak256("COMPLIANCE_ROLE");
    /// @notice Sends relayer batches, which void the authorizations they refuse.
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");
    /// @dev keccak256("RefundWithAuthorization(address merchant,address payer,bytes32 paymentId,bytes32 nonce,uint256 value,uint256 validAfter,uint256 validBefore)")
    bytes32 public constant REFUND_WITH_AUTHORIZATION_TYPEHASH =
        0xc1e907f725bb0c01c48b610694c0a12e6cfcc5007a3dd030f311c68fd051ae19;

    /// @dev Keeps every balance and every payment record within their packed bit fields.
    uint256 public constant MAX_SUPPLY = type(uint64).max;

    /// @dev What a balance change is; decides which rules apply in `_move`.
    enum Movement {
        Payment,
        Refund,
        Issue,
        Redeem,
        Restore,
        Recovery,
        Close,
        Confiscate,
        Program
    }

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @dev Balance and status flags in one word (see AccountWord). Replaces ERC20's `_balances`.
    mapping(address account => uint256 word) private _accounts;
    uint256 private _supply;

    /// @dev Plain ERC-20 payments carry no id: refunds of them draw on this running total, kept
    /// by the first wallets (AccountWord.origin) of payer and merchant, so either may have been
    /// recovered since.
    mapping(address payerOrigin => mapping(address merchantOrigin => uint256 amount)) private _plainPayments;

    /// @dev The wallet a holder lives in now, by its first wallet: refunds of payments made before
    /// a recovery reach the payer's new wallet and can be made by the merchant's new wallet. One
    /// look-up whatever the number of recoveries: the walk is bounded by construction.
    mapping(address origin => address current) private _currentOf;

    /// @inheritdoc ICityToken
    address public registry;
    /// @inheritdoc ICityToken
    address public treasury;
    /// @inheritdoc ICityToken
    ICityPrograms public programs;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param name_ The token's name and EIP-712 domain name, e.g. "Gimpo Pay".
    /// @param symbol_ e.g. "GIMPO".
    /// @param cityAdmin Holds DEFAULT_ADMIN_ROLE: links the suite and manages the other roles.
    constructor(string memory name_, string memory symbol_, address cityAdmin)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        if (cityAdmin == address(0)) revert CityTokenZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
    }

    modifier onlyRegistry() {
        if (msg.sender != registry) revert CityTokenUnauthorizedSuiteCall(msg.sender);
        _;
    }

    modifier onlyPrograms() {
        if (msg.sender != address(programs)) revert CityTokenUnauthorizedSuiteCall(msg.sender);
        _;
    }

    modifier onlyTreasury() {
        if (msg.sender != treasury) revert CityTokenUnauthorizedSuiteCall(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                             ERC-20 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice 0 decimals: 1 token is 1 won.
    function decimals() public pure override returns (uint8) {
        return 0;
    }

    function totalSupply() public view override(ERC20, IERC20) returns (uint256) {
        return _supply;
    }

    function balanceOf(address account) public view override(ERC20, IERC20) returns (uint256) {
        return _accounts[account].balance();
    }

    /// @inheritdoc ICityToken
    function version() external pure returns (string memory) {
        return "1";
    }

    /// @inheritdoc ICityToken
    function accountKind(address account) external view returns (AccountKind) {
        return AccountKind(_accounts[account].kind());
    }

    /// @inheritdoc ICityToken
    function isActive(address account) external view returns (bool) {
        return _accounts[account].isActive();
    }

    /// @inheritdoc ICityToken
    function isFrozen(address account) external view returns (bool) {
        return _accounts[account].isFrozen();
    }

    /// @inheritdoc ICityToken
    function isRetired(address account) external view returns (bool) {
        return _accounts[account].isRetired();
    }

    /// @inheritdoc ICityToken
    function isHeld(address account) external view returns (bool) {
        return _accounts[account].isHeld();
    }

    /// @inheritdoc ICityToken
    function originOf(address account) public view returns (address) {
        return _accounts[account].origin(account);
    }

    /*//////////////////////////////////////////////////////////////
                               PAYMENTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityToken
    function pay(address merchant, uint256 value, bytes32 invoiceId) external {
        // Zero is the id refunds use for plain transfers.
        if (invoiceId == bytes32(0)) revert CityTokenZeroPaymentId();
        if (_authorizations[msg.sender][invoiceId] != 0) revert CityTokenPaymentIdUsed(msg.sender, invoiceId);
        _authorizations[msg.sender][invoiceId] = PaymentRecord.used(merchant, value);
        Refusal.revertIfAny(_tryMove(msg.sender, merchant, value, Movement.Payment, bytes32(0), invoiceId));
        emit Paid(msg.sender, merchant, invoiceId, value);
    }

    /// @inheritdoc ICityToken
    function refund(address payer, bytes32 paymentId, uint256 value) external {
        _refund(msg.sender, payer, paymentId, value);
    }

    /// @inheritdoc ICityToken
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
    ) external {
        // Anyone may relay it, as transferWithAuthorization. The merchant's signature fixes every
        // term (payer, payment, amount, window, nonce), and the money can only go from that
        // merchant to that payment's payer, so the sender chooses nothing but the moment within
        // the window: a relayer role would add a key whose loss stops refunds and protect nothing.
        // An auditor reads the authority from the events, not from the sender: AuthorizationUsed
        // (merchant, nonce) proves the merchant's signature, Refunded says what was refunded. The
        // merchant withdraws an unused one with cancelAuthorization (the same nonces).
        _checkAuthorization(
            keccak256(
                abi.encode(REFUND_WITH_AUTHORIZATION_TYPEHASH, merchant, payer, paymentId, nonce, value, validAfter, validBefore)
            ),
            merchant,
            validAfter,
            validBefore,
            nonce,
            abi.encodePacked(r, s, v)
        );
        // A wallet that left the nonce unset, not a random one (EIP-3009): refused as payments are.
        if (nonce == bytes32(0)) revert CityTokenZeroNonce();
        // The record names the payer and leaves nothing refundable: it is not a payment.
        _markUsed(merchant, payer, 0, nonce);
        _refund(merchant, payer, paymentId, value);
    }

    /// @dev The refund rules, for the merchant's own call and its signed authorization alike:
    /// `merchant` refunds at most what is left of that payer's payment `paymentId` to it.
    function _refund(address merchant, address payer, bytes32 paymentId, uint256 value) private {
        uint256 refundable;
        if (paymentId == bytes32(0)) {
            address payerOrigin = originOf(payer);
            address merchantOrigin = originOf(merchant);
            refundable = _plainPayments[payerOrigin][merchantOrigin];
            if (value > refundable) revert CityTokenRefundExceedsPayment(payer, paymentId, refundable, value);
            _plainPayments[payerOrigin][merchantOrigin] = refundable - value;
        } else {
            uint256 record = _authorizations[payer][paymentId];
            if (!PaymentRecord.isUsed(record) || currentWallet(PaymentRecord.payee(record)) != merchant) {
                revert CityTokenPaymentNotFound(payer, merchant, paymentId);
            }
            refundable = PaymentRecord.refundable(record);
            if (value > refundable) revert CityTokenRefundExceedsPayment(payer, paymentId, refundable, value);
            _authorizations[payer][paymentId] = PaymentRecord.lessRefunded(record, value);
        }
        address resident = currentWallet(payer);
        _move(merchant, resident, value, Movement.Refund);
        uint256 general = _creditRefund(resident, _paymentKey(payer, resident, merchant, paymentId), value);
        // The refunded payment no longer counts as the resident's use of its charge: its general
        // money only (program money goes back to its program, never to a charge).
        if (general != 0) ICityTreasury(treasury).recordMerchantRefund(resident, general);
        emit Refunded(merchant, payer, paymentId, value);
    }

    /// @inheritdoc ICityToken
    function refundableAmount(address payer, address merchant, bytes32 paymentId) external view returns (uint256) {
        if (paymentId == bytes32(0)) return _plainPayments[originOf(payer)][originOf(merchant)];
        uint256 record = _authorizations[payer][paymentId];
        if (!PaymentRecord.isUsed(record) || currentWallet(PaymentRecord.payee(record)) != merchant) return 0;
        return PaymentRecord.refundable(record);
    }

    /// @inheritdoc ICityToken
    function currentWallet(address account) public view returns (address) {
        address current = _currentOf[originOf(account)];
        return current == address(0) ? account : current;
    }

    /*//////////////////////////////////////////////////////////////
                        EIP-3009 GASLESS PAYMENTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IERC3009
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        (bytes memory refusal,) = _tryUseAuthorization(
            _domainSeparatorV4(), TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, v, r, s
        );
        Refusal.revertIfAny(refusal);
    }

    /// @inheritdoc IERC3009
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        _useAuthorization(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature);
    }

    /// @inheritdoc IERC3009
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (msg.sender != to) revert EIP3009CallerMustBePayee(msg.sender, to);
        (bytes memory refusal,) = _tryUseAuthorization(
            _domainSeparatorV4(), RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, v, r, s
        );
        Refusal.revertIfAny(refusal);
    }

    /// @inheritdoc IERC3009
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        if (msg.sender != to) revert EIP3009CallerMustBePayee(msg.sender, to);
        _useAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature);
    }

    /// @inheritdoc IERC3009
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v));
    }

    /// @inheritdoc IERC3009
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external {
        _cancelAuthorization(authorizer, nonce, signature);
    }

    /// @inheritdoc ICityToken
    function transferWithAuthorizationBatch(TransferAuthorization[] calldata authorizations)
        external
        onlyRole(RELAYER_ROLE)
        returns (uint256 settled)
    {
        // A role, because a batch voids what it refuses: anyone else could void a payer's
        // published authorization while a rule refuses it, or before it is valid. Single
        // authorizations stay open to anyone, as EIP-3009 has them.
        // The same for every entry: nothing in a batch can change it.
        bytes32 domainSeparator = _domainSeparatorV4();
        for (uint256 i; i < authorizations.length; ++i) {
            // What transferWithAuthorization runs, reverting for nothing: a refused authorization
            // moves nothing and is reported with the revert data that call would give for it,
            // and the rest of the batch goes on.
            (bytes memory refusal, bool signed) = _tryUseBatchEntry(domainSeparator, authorizations[i]);
            if (refusal.length == 0) {
                ++settled;
            } else {
                TransferAuthorization calldata a = authorizations[i];
                // Signed by its payer and refused anyway (a rule of the token, or not yet valid):
                // the relayer reports it failed, so it must stay failed.
                if (signed || (bytes4(refusal) == EIP3009AuthorizationNotYetValid.selector && _signedEntry(domainSeparator, a))) {
                    _voidAuthorization(a.from, a.nonce);
                }
                emit AuthorizationFailed(a.from, a.nonce, refusal);
            }
        }
    }

    /// @dev `_tryUseAuthorization` for one entry of a batch, its fields read from calldata once
    /// (reading them member by member through Solidity's calldata accessors cost about 330 gas an
    /// entry more).
    function _tryUseBatchEntry(bytes32 domainSeparator, TransferAuthorization calldata a)
        private
        returns (bytes memory, bool)
    {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        uint8 v;
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            from := calldataload(a)
            to := calldataload(add(a, 0x20))
            value := calldataload(add(a, 0x40))
            validAfter := calldataload(add(a, 0x60))
            validBefore := calldataload(add(a, 0x80))
            nonce := calldataload(add(a, 0xa0))
            v := calldataload(add(a, 0xc0))
            r := calldataload(add(a, 0xe0))
            s := calldataload(add(a, 0x100))
            // The ABI decoder's checks: a value past its type reverts the call.
            if or(or(shr(160, from), shr(160, to)), shr(8, v)) { revert(0, 0) }
        }
        return _tryUseAuthorization(
            domainSeparator, TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, v, r, s
        );
    }

    /// @dev Whether a batch entry refused before its signature was looked at carries its payer's
    /// signature (off the hot path: only for a refused entry).
    function _signedEntry(bytes32 domainSeparator, TransferAuthorization calldata a) private view returns (bool) {
        bytes32 digest = _authorizationDigest(
            domainSeparator, TRANSFER_WITH_AUTHORIZATION_TYPEHASH, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce
        );
        return _signedBy(a.from, digest, a.v, a.r, a.s);
    }

    /// @dev An authorization's payment, once EIP-3009's checks passed: refused under a zero nonce,
    /// else a payment like any other (`_tryMove`), which marks the nonce used.
    function _tryAuthorizedTransfer(address from, address to, uint256 value, bytes32 nonce)
        internal
        override
        returns (bytes memory)
    {
        // The nonce is the payment id refunds name, and zero names the plain-transfer total: a
        // payment under a zero nonce could never be refunded (pay() refuses a zero id alike).
        if (nonce == bytes32(0)) return abi.encodeWithSelector(CityTokenZeroPaymentId.selector);
        return _tryMove(from, to, value, Movement.Payment, nonce, nonce);
    }

    /*//////////////////////////////////////////////////////////////
                         SUITE: REGISTRY, TREASURY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityToken
    function linkSuite(address registry_, address treasury_, ICityPrograms programs_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (registry != address(0)) revert CityTokenSuiteAlreadyLinked(registry, treasury);
        if (registry_ == address(0) || treasury_ == address(0) || address(programs_) == address(0)) {
            revert CityTokenZeroAddress();
        }
        registry = registry_;
        treasury = treasury_;
        programs = programs_;
        emit SuiteLinked(registry_, treasury_, address(programs_));
    }

    /// @inheritdoc ICityToken
    function setAccountStatus(address account, AccountKind kind, bool active) external onlyRegistry {
        uint256 word = _accounts[account];
        uint256 flags = (uint256(kind) << AccountWord.KIND_SHIFT) | (active ? AccountWord.ACTIVE : 0);
        _accounts[account] = (word & ~(AccountWord.KIND_MASK | AccountWord.ACTIVE)) | flags;
        emit AccountStatusSet(account, kind, active);
    }

    /// @inheritdoc ICityToken
    function setGeneralExcluded(address merchant, bool excluded) external onlyRegistry {
        uint256 word = _accounts[merchant];
        _accounts[merchant] = excluded ? word | AccountWord.GENERAL_EXCLUDED : word & ~AccountWord.GENERAL_EXCLUDED;
        emit GeneralMoneyExcluded(merchant, excluded);
    }

    /// @inheritdoc ICityToken
    function setRecoveryHold(address account, bool held) external onlyRegistry {
        uint256 word = _accounts[account];
        _accounts[account] = held ? word | AccountWord.HELD : word & ~AccountWord.HELD;
        emit RecoveryHoldSet(account, held);
    }

    /// @inheritdoc ICityToken
    function recoverAccount(address lost, address replacement) external onlyRegistry {
        // A retired wallet's word is never zero: it cannot be named again, so there is no cycle.
        if (_accounts[replacement] != 0) revert CityTokenReplacementInUse(replacement);
        uint256 word = _accounts[lost];
        if (word.isRetired()) revert CityTokenAccountRetired(lost);
        address first = word.origin(lost);
        _move(lost, replacement, word.balance(), Movement.Recovery);
        // The status moves too, frozen bit included (a recovery does not lift a freeze); the hold
        // of the pending recovery ends with it.
        _accounts[replacement] =
            (_accounts[replacement] | (word.flags() & ~AccountWord.HELD) | (word & AccountWord.CLASS_BITS_ALL))
                .withOrigin(first);
        _accounts[lost] = AccountWord.withOrigin(AccountWord.RETIRED, first);
        _currentOf[first] = replacement;
        emit AccountRecovered(lost, replacement, word.balance());
        if (word.isHeld()) emit RecoveryHoldSet(lost, false);
    }

    /// @inheritdoc ICityToken
    function issue(address resident, uint256 value) external onlyTreasury {
        _move(address(0), resident, value, Movement.Issue);
    }

    /// @inheritdoc ICityToken
    function issueProgram(address resident, uint256 value) external onlyPrograms returns (bytes memory refusal) {
        refusal = _tryMove(address(0), resident, value, Movement.Program, bytes32(0), bytes32(0));
        if (refusal.length == 0) _accounts[resident] |= AccountWord.CLASSED;
    }

    /// @inheritdoc ICityToken
    function gift(address from, address to, uint256 value, uint256 toState) external onlyPrograms {
        uint256 fromWord = _accounts[from];
        uint256 toWord = _accounts[to];
        // Between two active, unlocked residents: a recovery's movement (the money's lots are
        // moved in CityPrograms already, `toState` is the receiver's) with a gift's checks.
        if (from == to || (fromWord | toWord).flags() != AccountWord.PAYER || (fromWord & toWord).flags() != AccountWord.PAYER) {
            revert CityTokenTransferNotAllowed(from, to);
        }
        _move(from, to, value, Movement.Recovery);
        _accounts[to] = _accounts[to].withClasses(toState);
    }

    /// @inheritdoc ICityToken
    function redeem(address account, uint256 value) external onlyTreasury {
        _move(account, address(0), value, Movement.Redeem);
    }

    /// @inheritdoc ICityToken
    function restore(address account, uint256 value) external onlyTreasury {
        _move(address(0), account, value, Movement.Restore);
    }

    /// @inheritdoc ICityToken
    function close(address account, uint256 value, bool confiscation) external onlyTreasury {
        _move(account, address(0), value, confiscation ? Movement.Confiscate : Movement.Close);
    }

    /*//////////////////////////////////////////////////////////////
                               COMPLIANCE
    //////////////////////////////////////////////////////////////*/

    /*//////////////////////////////////////////////////////////////
                             MONEY CLASSES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityToken
    function sweep(address account) external whenNotPaused {
        uint256 word = _accounts[account];
        // A frozen or held account keeps its expired money until it is unlocked (or confiscated).
        if (word.kind() != 1 || word.isLocked()) return;
        (bytes memory refusal, uint256 swept) = _draw(account, address(0), 0, word, 0, bytes32(0));
        Refusal.revertIfAny(refusal);
        _accounts[account] = swept;
    }

    /// @inheritdoc ICityToken
    function generalBalanceOf(address account) external view returns (uint256) {
        return programs.generalBalanceOf(account);
    }

    /// @inheritdoc ICityToken
    function paymentRefusal(address from, address to, uint256 value) public view returns (bytes memory) {
        if (paused()) return abi.encodeWithSelector(EnforcedPause.selector);
        uint256 fromWord = _accounts[from];
        uint256 toWord = _accounts[to];
        bytes memory refusal = _paymentChecks(from, to, value, fromWord, toWord);
        if (refusal.length != 0 || !fromWord.needsClasses(toWord, block.timestamp / 1 days)) return refusal;
        return programs.drawRefusal(from, to, toWord & AccountWord.GENERAL_EXCLUDED == 0, value);
    }

    /// @inheritdoc ICityToken
    function canTransfer(address from, address to, uint256 value) external view returns (bool) {
        return paymentRefusal(from, to, value).length == 0;
    }

    /// @dev A resident's payment (to a merchant) or redemption (`to` zero) through the money
    /// classes: they sweep what expired, which is burned here, and take `value` from eligible
    /// money, or refuse. Returns the refusal, or the resident's word once swept, with its classes.
    function _draw(address from, address to, uint256 value, uint256 fromWord, uint256 toWord, bytes32 paymentId)
        private
        returns (bytes memory, uint256)
    {
        address origin = fromWord.origin(from);
        bytes32 key = to == address(0) ? bytes32(0) : _paymentKey(from, from, to, paymentId);
        try programs.draw(
            from, origin, to, toWord & AccountWord.GENERAL_EXCLUDED == 0, fromWord.balance(), value, key
        ) returns (uint256 expired, uint256 state) {
            return ("", _burnExpired(from, fromWord, expired).withClasses(state));
        } catch (bytes memory refusal) {
            // Every refusal of the classes is an error with its data: none means the call ran out
            // of gas, and the payment must not go on as if its classes had agreed.
            if (refusal.length == 0) revert CityTokenClassesOutOfGas();
            return (refusal, fromWord);
        }
    }

    /// @dev Refunded money goes back to the classes it was paid from; returns the general part.
    function _creditRefund(address resident, bytes32 key, uint256 value) private returns (uint256 general) {
        uint256 word = _accounts[resident];
        uint256 expired;
        uint256 state;
        (expired, state, general) = programs.creditRefund(resident, word.origin(resident), key, value, word.balance());
        _accounts[resident] = _burnExpired(resident, word, expired).withClasses(state);
    }

    /// @dev What a refund names a payment by in the money classes: the payer and its id, or for
    /// plain transfers the running total between payer and merchant.
    function _paymentKey(address payer, address resident, address merchant, bytes32 paymentId)
        private
        view
        returns (bytes32)
    {
        if (paymentId != bytes32(0)) return PaymentKey.ofPayment(payer, paymentId);
        return PaymentKey.ofPair(_accounts[resident].origin(resident), _accounts[merchant].origin(merchant));
    }

    /// @dev Burns money that went back to the city (expired, or returned on a closing) from a
    /// word read before: returns the word less it.
    function _burnExpired(address account, uint256 word, uint256 expired) private returns (uint256) {
        if (expired == 0) return word;
        // Part of the balance: below it and the supply.
        unchecked {
            _supply -= expired;
        }
        emit Transfer(account, address(0), expired);
        return word - expired;
    }

    /// @inheritdoc ICityToken
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc ICityToken
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc ICityToken
    function freeze(address account) external onlyRole(COMPLIANCE_ROLE) {
        _accounts[account] |= AccountWord.FROZEN;
        emit AccountFrozen(account, msg.sender);
    }

    /// @inheritdoc ICityToken
    function unfreeze(address account) external onlyRole(COMPLIANCE_ROLE) {
        _accounts[account] &= ~AccountWord.FROZEN;
        emit AccountUnfrozen(account, msg.sender);
    }

    /*//////////////////////////////////////////////////////////////
                            TRANSFER POLICY
    //////////////////////////////////////////////////////////////*/

    /// @dev Every ERC-20 movement (transfer, transferFrom) is a payment. OpenZeppelin's `_mint` and
    /// `_burn` also land here and are refused: minting and burning go through the treasury only.
    function _update(address from, address to, uint256 value) internal override {
        Refusal.revertIfAny(_tryMove(from, to, value, Movement.Payment, bytes32(0), bytes32(0)));
        // Both words were just read by _move: two warm reads find the holders' first wallets.
        address payerOrigin = _accounts[from].origin(from);
        address merchantOrigin = _accounts[to].origin(to);
        // Bounded by the supply cap, far below overflow.
        unchecked {
            _plainPayments[payerOrigin][merchantOrigin] += value;
        }
    }

    /// @dev Every balance change but an authorization's: reverts with `_tryMove`'s refusal.
    function _move(address from, address to, uint256 value, Movement movement) private {
        Refusal.revertIfAny(_tryMove(from, to, value, movement, bytes32(0), bytes32(0)));
    }

    /// @dev The one place where balances change and the city's rules are applied:
    /// - Payment: an active resident to an active merchant, of a value above zero;
    /// - Refund: an active merchant to an active resident, above zero (the caller bounded it by the
    ///   payment);
    /// - Issue: mint to an active resident; Restore: mint back to a registered account;
    /// - Redeem: burn from an active resident or merchant;
    /// - Close: burn the balance of a revoked account (its closing cash-out or refund);
    /// - Confiscate: burn the balance of an account revoked for illegal exchange, frozen or not;
    /// - Recovery: the registry moves a lost wallet to its replacement.
    /// Frozen accounts and accounts held for a pending recovery take part in none of these but
    /// Recovery and Confiscate; retired wallets in none; a paused city in none at all.
    /// It reverts for nothing: a refused movement changes nothing and returns its refusal (the
    /// revert data of the most specific error), an allowed one returns empty bytes. `authorization`
    /// is the nonce of the EIP-3009 authorization a payment uses, or zero: it is marked used once
    /// the payment is allowed, before the money moves (USDC's order of events). `paymentId` is
    /// what refunds name a payment by (zero for a plain transfer).
    /// A resident's money has classes (CityPrograms): a payment goes through them only when the
    /// payer holds policy money, the merchant refuses general money or the payer's oldest general
    /// money may have expired (AccountWord.needsClasses); credits of general money are recorded
    /// there; a redemption, closing or confiscation of a resident always goes through them.
    function _tryMove(
        address from,
        address to,
        uint256 value,
        Movement movement,
        bytes32 authorization,
        bytes32 paymentId
    ) private returns (bytes memory refusal) {
        if (paused()) return abi.encodeWithSelector(EnforcedPause.selector);
        if (from == address(0)) {
            uint256 toWord = _accounts[to];
            if (movement == Movement.Issue || movement == Movement.Program) {
                if (toWord.flags() != AccountWord.PAYER) return _refusal(from, to, 0, toWord);
            } else if (movement != Movement.Restore || toWord.kind() == 0 || toWord.isLocked()) {
                return _refusal(from, to, 0, toWord);
            }
            uint256 supply = _supply;
            if (value > MAX_SUPPLY - supply) {
                return abi.encodeWithSelector(CityTokenSupplyCapExceeded.selector, supply, value, MAX_SUPPLY);
            }
            // The supply cap bounds every balance below the class and flag bits.
            unchecked {
                _supply = supply + value;
                toWord += value;
            }
            if (movement != Movement.Program && toWord.kind() == 1) {
                toWord = toWord.withClasses(programs.creditGeneral(toWord.origin(to), value, toWord.balance()));
            }
            _accounts[to] = toWord;
        } else {
            uint256 fromWord = _accounts[from];
            uint256 balance = fromWord.balance();
            if (to == address(0)) {
                if (fromWord.kind() == 0) return _refusal(from, to, fromWord, 0);
                if (movement == Movement.Redeem) {
                    if (!fromWord.isActive() || fromWord.isLocked()) return _refusal(from, to, fromWord, 0);
                } else if (movement == Movement.Close) {
                    if (fromWord.isActive()) return _stillActive(from);
                    if (fromWord.isLocked()) return _refusal(from, to, fromWord, 0);
                } else if (movement != Movement.Confiscate || fromWord.isActive()) {
                    return fromWord.isActive() ? _stillActive(from) : _refusal(from, to, fromWord, 0);
                }
                if (fromWord.kind() == 1) {
                    if (movement == Movement.Redeem) {
                        // A resident's refund: general money only, what has expired swept first.
                        (refusal, fromWord) = _draw(from, address(0), value, fromWord, 0, bytes32(0));
                        if (refusal.length != 0) return refusal;
                    } else {
                        // Its registration is over: policy and expired money go back to the city.
                        uint256 returned = programs.clear(from, fromWord.origin(from), balance);
                        fromWord = _burnExpired(from, fromWord, returned).withClasses(0);
                    }
                    balance = fromWord.balance();
                }
                if (balance < value) return _insufficientBalance(from, balance, value);
                unchecked {
                    _accounts[from] = fromWord - value;
                    _supply -= value;
                }
            } else {
                uint256 toWord = _accounts[to];
                if (movement == Movement.Payment) {
                    refusal = _paymentChecks(from, to, value, fromWord, toWord);
                    if (refusal.length != 0) return refusal;
                    if (fromWord.needsClasses(toWord, block.timestamp / 1 days)) {
                        (refusal, fromWord) = _draw(from, to, value, fromWord, toWord, paymentId);
                        if (refusal.length != 0) return refusal;
                    }
                } else if (movement == Movement.Refund) {
                    if (fromWord.flags() != AccountWord.PAYEE || toWord.flags() != AccountWord.PAYER) {
                        return _refusal(from, to, fromWord, toWord);
                    }
                    if (value == 0) return abi.encodeWithSelector(CityTokenZeroValue.selector);
                } else if (movement != Movement.Recovery) {
                    return _refusal(from, to, fromWord, toWord);
                }
                if (movement != Movement.Payment && balance < value) return _insufficientBalance(from, balance, value);
                if (authorization != bytes32(0)) _markUsed(from, to, value, authorization);
                // balance >= value; the supply cap keeps the sum of balances below the flag bits. from != to:
                // payments and refunds join different kinds, a recovery an empty replacement.
                unchecked {
                    _accounts[from] = fromWord - value;
                    _accounts[to] = toWord + value;
                }
            }
        }
        emit Transfer(from, to, value);
    }

    /// @dev A payment's checks before its money classes: an active resident to an active
    /// merchant, of a value above zero that its balance covers.
    function _paymentChecks(address from, address to, uint256 value, uint256 fromWord, uint256 toWord)
        private
        pure
        returns (bytes memory)
    {
        if (fromWord.flags() != AccountWord.PAYER || toWord.flags() != AccountWord.PAYEE) {
            return _refusal(from, to, fromWord, toWord);
        }
        if (value == 0) return abi.encodeWithSelector(CityTokenZeroValue.selector);
        uint256 balance = fromWord.balance();
        if (balance < value) return _insufficientBalance(from, balance, value);
        return "";
    }

    function _stillActive(address account) private pure returns (bytes memory) {
        return abi.encodeWithSelector(CityTokenAccountNotRevoked.selector, account);
    }

    function _insufficientBalance(address from, uint256 balance, uint256 value) private pure returns (bytes memory) {
        return abi.encodeWithSelector(ERC20InsufficientBalance.selector, from, balance, value);
    }

    /// @dev The most specific reason a movement is refused, as revert data.
    function _refusal(address from, address to, uint256 fromWord, uint256 toWord) private pure returns (bytes memory) {
        if (fromWord.isRetired()) return abi.encodeWithSelector(CityTokenAccountRetired.selector, from);
        if (toWord.isRetired()) return abi.encodeWithSelector(CityTokenAccountRetired.selector, to);
        if (fromWord.isHeld()) return abi.encodeWithSelector(CityTokenAccountInRecovery.selector, from);
        if (toWord.isHeld()) return abi.encodeWithSelector(CityTokenAccountInRecovery.selector, to);
        if (fromWord.isFrozen()) return abi.encodeWithSelector(CityTokenAccountFrozen.selector, from);
        if (toWord.isFrozen()) return abi.encodeWithSelector(CityTokenAccountFrozen.selector, to);
        if (from != address(0) && fromWord.kind() == 0) return abi.encodeWithSelector(CityTokenNotRegistered.selector, from);
        if (to != address(0) && toWord.kind() == 0) return abi.encodeWithSelector(CityTokenNotRegistered.selector, to);
        if (toWord.kind() == 2 && !toWord.isActive()) return abi.encodeWithSelector(CityTokenMerchantNotActive.selector, to);
        if (fromWord.kind() == 2 && !fromWord.isActive()) {
            return abi.encodeWithSelector(CityTokenMerchantNotActive.selector, from);
        }
        if (fromWord.kind() == 1 && !fromWord.isActive()) {
            return abi.encodeWithSelector(CityTokenResidentNotActive.selector, from);
        }
        if (toWord.kind() == 1 && !toWord.isActive()) return abi.encodeWithSelector(CityTokenResidentNotActive.selector, to);
        return abi.encodeWithSelector(CityTokenTransferNotAllowed.selector, from, to);
    }

    /// @dev AccessControl and the interfaces both declare supportsInterface.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ICityToken).interfaceId || super.supportsInterface(interfaceId);
    }
}
