// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ICityGifts} from "../../interfaces/ICityGifts.sol";
import {ICityPrograms} from "../../interfaces/ICityPrograms.sol";
import {ICityRegistry} from "../../interfaces/ICityRegistry.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";
import {ICityTreasury} from "../../interfaces/ICityTreasury.sol";

/// @title A city's money classes: general money by expiry, and policy programs (정책발행)
/// @notice The token keeps every balance; this contract keeps what a resident's balance is made
/// of, and the token asks it only when a payment needs it (the payer holds policy money, the
/// merchant refuses general money, or some general money may have expired): an account holding
/// only general money pays at today's cost.
///
/// General money is kept as lots by expiry: the cumulative amount credited up to each lot. It is
/// spent oldest first, so what an account still holds is always its newest lots: its general
/// balance (balance minus program money) says how far back its money reaches, and paying needs no
/// write here. Policy money is kept per program.
///
/// Roles: the program manager creates and closes programs and cannot issue; the program funder
/// records a program's funding from the city's budget and cannot choose recipients; the program
/// payer pays funded money to residents, at most the program's amount per recipient, once per
/// recipient. Expiry is anyone's to trigger: it only ever sends expired money back to the city.
contract CityPrograms is ICityPrograms, AccessControl {
    using SafeCast for uint256;

    bytes32 public constant PROGRAM_MANAGER_ROLE = keccak256("PROGRAM_MANAGER_ROLE");
    bytes32 public constant PROGRAM_FUNDER_ROLE = keccak256("PROGRAM_FUNDER_ROLE");
    bytes32 public constant PROGRAM_PAYER_ROLE = keccak256("PROGRAM_PAYER_ROLE");

    /// @notice Programs a resident may hold at once: a payment looks at each.
    uint256 public constant MAX_HELD = 8;
    /// @notice At about 110,000 gas a recipient, a batch stays under 25 million gas (a Besu
    /// network's block gas limit is commonly 30 million or more).
    uint256 public constant MAX_PAYOUT_BATCH = 200;
    uint256 public constant MAX_PLACES = 64;
    /// @notice General money expires at the end of the week (UTC days since 1970, in sevens) in
    /// which its validity ends: never before the date the city's rule gives, at most 7 days
    /// after, and at most one lot a week to look at.
    uint256 public constant LOT_DAYS = 7;

    uint256 public constant NOT_GENERAL = 1;
    uint256 public constant CATEGORY = 2;
    uint256 public constant REGION = 4;
    uint256 public constant NOT_YET = 8;
    uint256 public constant REVENUE = 16;

    uint256 private constant CUMULATIVE_MASK = type(uint128).max;
    uint256 private constant CLASSED_STATE = 1 << 22;

    ICityToken public immutable token;
    ICityRegistry public immutable registry;
    /// @inheritdoc ICityPrograms
    uint64 public immutable generalValidity;
    /// @inheritdoc ICityPrograms
    address public gifts;

    Program[] private _programs;
    mapping(bytes32 code => uint32 program) private _programOfCode;
    mapping(uint32 program => mapping(uint16 category => bool)) private _categories;
    mapping(uint32 program => mapping(uint32 region => bool)) private _regions;
    /// @dev By the recipient's identity (the registry's identity hash): a person is paid once per
    /// program whatever wallet it holds, a recovered or a newly registered one.
    mapping(uint32 program => mapping(bytes32 person => bool)) private _paid;
    mapping(bytes32 bankReference => bool) private _fundingReferenceUsed;

    /// @dev By the holder's first wallet (the token's originOf), so a recovery moves nothing here.
    /// Up to MAX_HELD program ids, 32 bits each, soonest expiry first, zero-terminated.
    mapping(address origin => uint256 ids) private _held;
    mapping(address origin => mapping(uint32 program => uint256)) private _holding;
    mapping(address origin => uint256) private _programMoney;
    /// @dev Each lot: its expiry day << 128 | general money credited up to and including it.
    mapping(address origin => uint256[]) private _lots;
    /// @dev Every lot before it is spent or swept: where the look for money starts.
    mapping(address origin => uint256) private _lotHead;
    /// @dev The program money a payment drew on, by program, for its refunds.
    mapping(bytes32 paymentKey => uint256 ids) private _spentIds;
    mapping(bytes32 paymentKey => mapping(uint32 program => uint256)) private _spent;
    /// @dev Program money a payment key drew on whose program has expired since and gave its
    /// place up in the key's list: a refund of it goes back to the city.
    mapping(bytes32 paymentKey => uint256) private _spentExpired;

    /// @dev What a draw takes: worked out by `_plan` (a view, also behind `drawRefusal`), done by
    /// `_apply`.
    struct Plan {
        uint256 today;
        uint256 held;
        uint256 keptIds;
        uint256 expiredGeneral;
        uint256 expiredPrograms;
        uint256 general;
        uint256 programs;
        uint256 generalTake;
        uint256 eligible;
        uint256 reasons;
        uint256[MAX_HELD] expired;
        uint256[MAX_HELD] take;
    }

    /// @param validity How long general money is valid from purchase (5 years by law unless the
    /// city's ordinance says otherwise), in seconds.
    constructor(ICityToken token_, ICityRegistry registry_, address cityAdmin, uint64 validity) {
        if (address(token_) == address(0) || address(registry_) == address(0) || cityAdmin == address(0)) {
            revert CityProgramsZeroAddress();
        }
        if (validity < 1 days || validity > 50 * 365 days) revert CityProgramsInvalidTerms("generalValidity");
        token = token_;
        registry = registry_;
        generalValidity = validity;
        _grantRole(DEFAULT_ADMIN_ROLE, cityAdmin);
    }

    modifier onlyToken() {
        if (msg.sender != address(token)) revert CityProgramsUnauthorized(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                        THE TOKEN'S BALANCE CHANGES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityPrograms
    function creditGeneral(address origin, uint256 value, uint256 balance) external onlyToken returns (uint256) {
        _creditGeneral(origin, value);
        uint256 general = balance - _programMoney[origin];
        // Payments of general money alone never come here: the look for money starts past what
        // they spent, so it stays short whatever the account's history.
        _advanceLotHead(origin, general);
        return _state(origin, general);
    }

    /// @inheritdoc ICityPrograms
    function draw(
        address payer,
        address origin,
        address merchant,
        bool generalAccepted,
        uint256 balance,
        uint256 value,
        bytes32 paymentKey
    ) external onlyToken returns (uint256 expired, uint256 state) {
        Plan memory plan = _plan(origin, merchant, generalAccepted, balance, value);
        if (plan.eligible < value) {
            if (merchant == address(0)) revert CityProgramsGeneralShort(payer, plan.general, value);
            revert CityProgramsNotEligible(
                payer, merchant, value, plan.general + plan.programs, plan.eligible, plan.reasons
            );
        }
        _apply(payer, origin, merchant, paymentKey, plan);
        if (plan.expiredGeneral != 0) {
            ICityTreasury(token.treasury()).recordExpired(
                payer, plan.general + plan.expiredGeneral, plan.expiredGeneral
            );
        }
        expired = plan.expiredGeneral + plan.expiredPrograms;
        state = _state(origin, plan.general - plan.generalTake);
    }

    /// @inheritdoc ICityPrograms
    function creditRefund(address payer, address origin, bytes32 paymentKey, uint256 value, uint256 balance)
        external
        onlyToken
        returns (uint256 expired, uint256 state, uint256 general)
    {
        (general, expired) = _refundPrograms(payer, origin, paymentKey, value);
        uint256 gone = _spentExpired[paymentKey];
        if (general != 0 && gone != 0) {
            // Program money of programs that expired and left the key's list: back to the city,
            // as general money's Expired (its program is no longer named).
            uint256 back = gone < general ? gone : general;
            _spentExpired[paymentKey] = gone - back;
            general -= back;
            expired += back;
            emit Expired(payer, 0, back);
        }
        if (general != 0) _creditGeneral(origin, general);
        uint256 held = balance - expired - _programMoney[origin];
        _advanceLotHead(origin, held);
        state = _state(origin, held);
    }

    /// @dev A refund's program money, back to the programs the payment drew on (to the city for
    /// those expired since): what is left of `value`, and what went to the city.
    function _refundPrograms(address payer, address origin, bytes32 paymentKey, uint256 value)
        private
        returns (uint256 left, uint256 expired)
    {
        uint256 ids = _spentIds[paymentKey];
        left = value;
        for (uint256 i; i < MAX_HELD && left != 0; ++i) {
            uint32 id = uint32(ids >> (32 * i));
            if (id == 0) break;
            uint256 spent = _spent[paymentKey][id];
            uint256 back = spent < left ? spent : left;
            if (back == 0) continue;
            _spent[paymentKey][id] = spent - back;
            left -= back;
            Program storage p = _programs[id - 1];
            p.refunded += uint88(back);
            emit ProgramRefunded(id, payer, back);
            if (block.timestamp >= p.expiry) {
                p.expired += uint88(back);
                expired += back;
                emit Expired(payer, id, back);
            } else {
                _addHolding(origin, payer, id, back);
            }
        }
    }

    /// @inheritdoc ICityPrograms
    function clear(address account, address origin, uint256 balance) external onlyToken returns (uint256 returned) {
        uint256 ids = _held[origin];
        uint256 programs = _programMoney[origin];
        uint256 expiredGeneral = _expiredGeneral(origin, balance - programs, block.timestamp / 1 days);
        if (expiredGeneral != 0) emit Expired(account, 0, expiredGeneral);
        returned = programs + expiredGeneral;
        for (uint256 i; i < MAX_HELD; ++i) {
            uint32 id = uint32(ids >> (32 * i));
            if (id == 0) break;
            uint256 amount = _holding[origin][id];
            delete _holding[origin][id];
            _programs[id - 1].expired += uint88(amount);
            emit Expired(account, id, amount);
        }
        delete _held[origin];
        delete _programMoney[origin];
        // The treasury takes the unexpired general money (generalBalanceOf): the lots are done with.
        uint256 length = _lots[origin].length;
        if (length != 0) _lotHead[origin] = length;
    }

    /*//////////////////////////////////////////////////////////////
                                 GIFTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityPrograms
    function linkGifts(address gifts_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Once: whoever is linked may move residents' general money between them.
        if (gifts != address(0)) revert CityProgramsGiftsAlreadyLinked(gifts);
        // The city's own gifts contract: a contract, of this token.
        if (gifts_.code.length == 0 || ICityGifts(gifts_).token() != token) revert CityProgramsNotGifts(gifts_);
        gifts = gifts_;
        emit GiftsLinked(gifts_);
    }

    /// @inheritdoc ICityPrograms
    function moveGeneral(address from, address to, uint256 value) external {
        if (msg.sender != gifts || gifts == address(0)) revert CityProgramsUnauthorized(msg.sender);
        address fromOrigin = token.originOf(from);
        address toOrigin = token.originOf(to);
        if (fromOrigin == toOrigin) revert CityProgramsUnauthorized(from);
        // Expired money is never gifted: the giver's goes back to the city first. The receiver's
        // stays before the gift's parts, in order of expiry, until its next payment or sweep.
        uint256 general = token.balanceOf(from) - _programMoney[fromOrigin];
        if (_expiredGeneral(fromOrigin, general, block.timestamp / 1 days) != 0) {
            token.sweep(from);
            general = token.balanceOf(from) - _programMoney[fromOrigin];
        }
        if (general < value || value == 0) revert CityProgramsGeneralShort(from, general, value);
        uint256 received = token.balanceOf(to) - _programMoney[toOrigin];
        uint256[] memory parts = _takeOldest(fromOrigin, general, value);
        _advanceLotHead(fromOrigin, general - value);
        _advanceLotHead(toOrigin, received);
        _insertLots(toOrigin, received, parts);
        ICityTreasury(token.treasury()).recordGift(from, general, value);
        token.gift(from, to, value, _state(toOrigin, received + value));
    }

    /// @dev The oldest `value` of the `general` money held, as lots (expiry day << 128 | amount).
    function _takeOldest(address origin, uint256 general, uint256 value) private view returns (uint256[] memory parts) {
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        uint256 spentUpTo = _cumulative(lots[length - 1]) - general;
        uint256 i = _lotHead[origin];
        while (_cumulative(lots[i]) <= spentUpTo) ++i;
        parts = new uint256[](length - i);
        uint256 count;
        for (uint256 left = value; left != 0; ++i) {
            uint256 start = i == 0 ? 0 : _cumulative(lots[i - 1]);
            uint256 amount = _cumulative(lots[i]) - (start > spentUpTo ? start : spentUpTo);
            if (amount > left) amount = left;
            parts[count++] = ((lots[i] >> 128) << 128) | amount;
            left -= amount;
        }
        assembly ("memory-safe") {
            mstore(parts, count)
        }
    }

    /// @dev Adds `parts` (oldest first) to the lots of an account holding `received` general
    /// money, keeping its held lots in order of expiry: the held lots expiring after the oldest
    /// part are laid again, merged with the parts. The head must be past every spent lot.
    function _insertLots(address origin, uint256 received, uint256[] memory parts) private {
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        uint256 head = _lotHead[origin];
        uint256 spentUpTo = length == 0 ? 0 : _cumulative(lots[length - 1]) - received;
        uint256 oldest = parts[0] >> 128;
        uint256 k = length;
        while (k > head && lots[k - 1] >> 128 > oldest) --k;
        uint256 cumulative = k == head ? spentUpTo : _cumulative(lots[k - 1]);
        // The relaid lots, as parts: what each still holds (the head's may be partly spent).
        uint256[] memory kept = new uint256[](length - k);
        for (uint256 j = k; j < length; ++j) {
            uint256 start = j == 0 ? 0 : _cumulative(lots[j - 1]);
            kept[j - k] = ((lots[j] >> 128) << 128) | (_cumulative(lots[j]) - (start > spentUpTo ? start : spentUpTo));
        }
        uint256 position = k;
        uint256 a;
        uint256 b;
        while (a < parts.length || b < kept.length) {
            uint256 day;
            uint256 amount;
            if (b == kept.length || (a < parts.length && parts[a] >> 128 <= kept[b] >> 128)) {
                day = parts[a] >> 128;
                amount = _cumulative(parts[a++]);
            } else {
                day = kept[b] >> 128;
                amount = _cumulative(kept[b++]);
            }
            // One lot a day: a part joins a held lot of the same expiry.
            if (position > head && lots[position - 1] >> 128 == day) {
                lots[position - 1] += amount;
                cumulative += amount;
                continue;
            }
            cumulative += amount;
            if (position < length) lots[position] = (day << 128) | cumulative;
            else lots.push((day << 128) | cumulative);
            ++position;
        }
        // Relaid lots of one expiry joined: fewer than before.
        while (lots.length > position) lots.pop();
    }

    /*//////////////////////////////////////////////////////////////
                                PROGRAMS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityPrograms
    function createProgram(ProgramTerms calldata terms) external onlyRole(PROGRAM_MANAGER_ROLE) returns (uint32 id) {
        if (terms.code == bytes32(0)) revert CityProgramsInvalidTerms("code");
        uint32 existing = _programOfCode[terms.code];
        if (existing != 0) revert CityProgramsCodeInUse(terms.code, existing);
        if (terms.budget == 0 || terms.budget > type(uint64).max) revert CityProgramsInvalidTerms("budget");
        if (terms.maxPerRecipient == 0 || terms.maxPerRecipient > terms.budget) {
            revert CityProgramsInvalidTerms("maxPerRecipient");
        }
        if (terms.expiry <= block.timestamp || terms.expiry > block.timestamp + 10 * 365 days) {
            revert CityProgramsInvalidTerms("expiry");
        }
        if (terms.spendFrom >= terms.expiry) revert CityProgramsInvalidTerms("spendFrom");
        if (terms.revenueCap == 0) revert CityProgramsInvalidTerms("revenueCap");
        if (terms.categories.length > MAX_PLACES) revert CityProgramsInvalidTerms("categories");
        if (terms.regions.length > MAX_PLACES) revert CityProgramsInvalidTerms("regions");
        id = (_programs.length + 1).toUint32();
        _programs.push(
            Program({
                code: terms.code,
                budget: uint88(terms.budget),
                funded: 0,
                spendFrom: uint40(terms.spendFrom),
                expiry: uint40(terms.expiry),
                paidOut: 0,
                spent: 0,
                revenueCap: terms.revenueCap,
                anyCategory: terms.categories.length == 0,
                anyRegion: terms.regions.length == 0,
                closed: false,
                refunded: 0,
                expired: 0,
                maxPerRecipient: uint88(terms.maxPerRecipient)
            })
        );
        _programOfCode[terms.code] = id;
        for (uint256 i; i < terms.categories.length; ++i) {
            _categories[id][terms.categories[i]] = true;
        }
        for (uint256 i; i < terms.regions.length; ++i) {
            _regions[id][terms.regions[i]] = true;
        }
        emit ProgramCreated(id, terms.code, terms);
    }

    /// @inheritdoc ICityPrograms
    function fundProgram(uint32 id, uint256 amount, bytes32 bankReference) external onlyRole(PROGRAM_FUNDER_ROLE) {
        Program storage p = _program(id);
        if (p.closed) revert CityProgramsClosed(id);
        if (block.timestamp >= p.expiry) revert CityProgramsExpired(id, p.expiry);
        if (bankReference == bytes32(0) || _fundingReferenceUsed[bankReference]) {
            revert CityProgramsInvalidTerms("bankReference");
        }
        _fundingReferenceUsed[bankReference] = true;
        uint256 left = p.budget - p.funded;
        if (amount == 0 || amount > left) revert CityProgramsOverBudget(id, left, amount);
        p.funded += uint88(amount);
        emit ProgramFunded(id, amount, bankReference, msg.sender);
    }

    /// @inheritdoc ICityPrograms
    function payOut(uint32 id, Payout[] calldata payouts) external onlyRole(PROGRAM_PAYER_ROLE) returns (uint256 paid) {
        if (payouts.length > MAX_PAYOUT_BATCH) revert CityProgramsBatchTooLarge(payouts.length, MAX_PAYOUT_BATCH);
        Program storage p = _program(id);
        if (p.closed) revert CityProgramsClosed(id);
        if (block.timestamp >= p.expiry) revert CityProgramsExpired(id, p.expiry);
        for (uint256 i; i < payouts.length; ++i) {
            Payout calldata payout = payouts[i];
            bytes memory refusal = _payOne(id, p, payout.recipient, payout.amount);
            if (refusal.length == 0) {
                ++paid;
                emit ProgramPaid(id, payout.recipient, payout.amount);
            } else {
                emit ProgramPayoutRefused(id, payout.recipient, payout.amount, refusal);
            }
        }
    }

    /// @inheritdoc ICityPrograms
    function closeProgram(uint32 id) external onlyRole(PROGRAM_MANAGER_ROLE) {
        Program storage p = _program(id);
        if (p.closed) revert CityProgramsClosed(id);
        p.closed = true;
        // What was funded and not paid out goes back to the city's budget; what recipients hold
        // stays theirs until the program's expiry.
        emit ProgramClosed(id, p.funded - p.paidOut);
    }

    /// @dev One payout entry: its refusal, or empty once paid.
    function _payOne(uint32 id, Program storage p, address recipient, uint256 amount) private returns (bytes memory) {
        if (amount == 0 || amount > p.maxPerRecipient) {
            return abi.encodeWithSelector(CityProgramsAmountOutOfRange.selector, id, amount, p.maxPerRecipient);
        }
        uint256 left = p.funded - p.paidOut;
        if (amount > left) return abi.encodeWithSelector(CityProgramsOverFunds.selector, id, left, amount);
        address origin = token.originOf(recipient);
        bytes32 person = _person(recipient, origin);
        if (_paid[id][person]) return abi.encodeWithSelector(CityProgramsAlreadyPaid.selector, id, recipient);
        if (_holding[origin][id] == 0 && _heldCount(_held[origin]) == MAX_HELD) {
            // Expired programs free their places at the holder's next sweep.
            return abi.encodeWithSelector(CityProgramsTooManyHeld.selector, recipient, MAX_HELD);
        }
        bytes memory refusal = token.issueProgram(recipient, amount);
        if (refusal.length != 0) return refusal;
        _paid[id][person] = true;
        p.paidOut += uint88(amount);
        _addHolding(origin, recipient, id, amount);
        return "";
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICityPrograms
    function program(uint32 id) external view returns (Program memory) {
        return _program(id);
    }

    /// @inheritdoc ICityPrograms
    function programCount() external view returns (uint256) {
        return _programs.length;
    }

    /// @inheritdoc ICityPrograms
    function programOfCode(bytes32 code) external view returns (uint32) {
        return _programOfCode[code];
    }

    /// @inheritdoc ICityPrograms
    function isEligible(uint32 id, uint16 category, uint32 region, uint64 revenue) public view returns (bool) {
        Program storage p = _program(id);
        return _ineligibility(id, p, category, region, revenue) == 0 && block.timestamp >= p.spendFrom
            && block.timestamp < p.expiry;
    }

    /// @inheritdoc ICityPrograms
    function paidTo(uint32 id, address recipient) external view returns (bool) {
        return _paid[id][_person(recipient, token.originOf(recipient))];
    }

    /// @dev Who a recipient is: its identity hash, or for a wallet that is no resident (refused
    /// by the token anyway) its first wallet.
    function _person(address recipient, address origin) private view returns (bytes32) {
        bytes32 identity = registry.residentOf(recipient).identityHash;
        return identity != bytes32(0) ? identity : bytes32(uint256(uint160(origin)));
    }

    /// @inheritdoc ICityPrograms
    function holdingOf(address account, uint32 id) external view returns (uint256) {
        return _holding[token.originOf(account)][id];
    }

    /// @inheritdoc ICityPrograms
    function programMoneyOf(address account) external view returns (uint256) {
        return _programMoney[token.originOf(account)];
    }

    /// @inheritdoc ICityPrograms
    function programPartOf(bytes32 paymentKey) external view returns (uint256 part) {
        uint256 ids = _spentIds[paymentKey];
        for (uint256 i; i < MAX_HELD; ++i) {
            uint32 id = uint32(ids >> (32 * i));
            if (id == 0) break;
            part += _spent[paymentKey][id];
        }
        part += _spentExpired[paymentKey];
    }

    /// @inheritdoc ICityPrograms
    function generalBalanceOf(address account) external view returns (uint256) {
        Plan memory plan = _plan(token.originOf(account), address(0), false, token.balanceOf(account), 0);
        return plan.general;
    }

    /// @inheritdoc ICityPrograms
    function expiredOf(address account) external view returns (uint256) {
        Plan memory plan = _plan(token.originOf(account), address(0), false, token.balanceOf(account), 0);
        return plan.expiredGeneral + plan.expiredPrograms;
    }

    /// @inheritdoc ICityPrograms
    function breakdownOf(address account) external view returns (Holding[] memory holdings, uint256 expired) {
        address origin = token.originOf(account);
        Plan memory plan = _plan(origin, address(0), false, token.balanceOf(account), 0);
        expired = plan.expiredGeneral + plan.expiredPrograms;
        uint256[] storage lots = _lots[origin];
        // The unexpired general money is the newest lots': walk back from the newest.
        uint256 count;
        uint256 left = plan.general;
        for (uint256 i = lots.length; i > 0 && left != 0; --i) {
            uint256 amount = _lotAmount(lots, i - 1);
            left -= amount < left ? amount : left;
            ++count;
        }
        // General money without lots: a merchant's (merchants' money has no classes).
        bool unclassed = count == 0 && plan.general != 0;
        holdings = new Holding[](count + _heldCount(plan.keptIds) + (unclassed ? 1 : 0));
        if (unclassed) holdings[holdings.length - 1] = Holding(0, 0, plan.general);
        left = plan.general;
        for (uint256 i; i < count; ++i) {
            uint256 index = lots.length - count + i;
            uint256 amount = _lotAmount(lots, index);
            // The oldest lot shown may be partly spent: it holds what the newer ones do not.
            uint256 newer = _cumulative(lots[lots.length - 1]) - _cumulative(lots[index]);
            uint256 held = left - newer;
            holdings[i] = Holding(0, uint64((lots[index] >> 128) * 1 days), held < amount ? held : amount);
        }
        for (uint256 i; i < _heldCount(plan.keptIds); ++i) {
            uint32 id = uint32(plan.keptIds >> (32 * i));
            holdings[count + i] = Holding(id, _programs[id - 1].expiry, _holding[origin][id]);
        }
    }

    /// @inheritdoc ICityPrograms
    function drawRefusal(address payer, address merchant, bool generalAccepted, uint256 value)
        external
        view
        returns (bytes memory)
    {
        Plan memory plan = _plan(token.originOf(payer), merchant, generalAccepted, token.balanceOf(payer), value);
        if (plan.eligible >= value) return "";
        return abi.encodeWithSelector(
            CityProgramsNotEligible.selector,
            payer,
            merchant,
            value,
            plan.general + plan.programs,
            plan.eligible,
            plan.reasons
        );
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ICityPrograms).interfaceId || super.supportsInterface(interfaceId);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _program(uint32 id) private view returns (Program storage) {
        if (id == 0 || id > _programs.length) revert CityProgramsUnknownProgram(id);
        return _programs[id - 1];
    }

    /// @dev Why a program's money may not be spent at a merchant of this category, region and
    /// revenue (the window aside): the reason bits, zero when it may.
    function _ineligibility(uint32 id, Program storage p, uint16 category, uint32 region, uint64 revenue)
        private
        view
        returns (uint256 reasons)
    {
        if (!p.anyCategory && !_categories[id][category]) reasons |= CATEGORY;
        if (!p.anyRegion && !_regions[id][region]) reasons |= REGION;
        if (revenue > p.revenueCap) reasons |= REVENUE;
    }

    /// @dev What a draw of `value` at `merchant` takes, after sweeping what has expired (`merchant`
    /// zero: general money only, as a redemption or a view of the account asks).
    function _plan(address origin, address merchant, bool generalAccepted, uint256 balance, uint256 value)
        private
        view
        returns (Plan memory plan)
    {
        plan.today = block.timestamp / 1 days;
        plan.held = _held[origin];
        uint256 programs = _programMoney[origin];
        plan.general = balance - programs;
        plan.expiredGeneral = _expiredGeneral(origin, plan.general, plan.today);
        plan.general -= plan.expiredGeneral;
        ICityRegistry.Merchant memory m;
        if (merchant != address(0) && programs != 0) m = registry.merchantOf(merchant);
        uint256 left = value;
        uint256 kept;
        for (uint256 i; i < MAX_HELD; ++i) {
            uint32 id = uint32(plan.held >> (32 * i));
            if (id == 0) break;
            Program storage p = _programs[id - 1];
            uint256 amount = _holding[origin][id];
            if (block.timestamp >= p.expiry) {
                plan.expired[i] = amount;
                plan.expiredPrograms += amount;
                continue;
            }
            plan.programs += amount;
            if (merchant != address(0) && left != 0) {
                uint256 reasons = _ineligibility(id, p, m.category, m.region, m.annualRevenue);
                if (block.timestamp < p.spendFrom) reasons |= NOT_YET;
                if (reasons != 0) {
                    plan.reasons |= reasons;
                } else {
                    uint256 take = amount < left ? amount : left;
                    plan.take[i] = take;
                    plan.eligible += take;
                    left -= take;
                }
            }
            if (plan.take[i] != amount) kept |= uint256(id) << (32 * _heldCount(kept));
        }
        plan.keptIds = kept;
        if (merchant != address(0) && !generalAccepted) {
            if (plan.general != 0) plan.reasons |= NOT_GENERAL;
        } else {
            plan.generalTake = plan.general < left ? plan.general : left;
            plan.eligible += plan.generalTake;
        }
    }

    /// @dev Does what `_plan` worked out: sweeps expired program money and takes program money.
    /// General money needs no write: the token's balance says what is left of it.
    function _apply(address payer, address origin, address merchant, bytes32 paymentKey, Plan memory plan) private {
        uint256 taken;
        uint256 spentIds;
        for (uint256 i; i < MAX_HELD; ++i) {
            uint32 id = uint32(plan.held >> (32 * i));
            if (id == 0) break;
            if (plan.expired[i] != 0) {
                _programs[id - 1].expired += uint88(plan.expired[i]);
                delete _holding[origin][id];
                emit Expired(payer, id, plan.expired[i]);
            } else if (plan.take[i] != 0) {
                uint256 take = plan.take[i];
                if (taken == 0) spentIds = _spentIds[paymentKey];
                _holding[origin][id] -= take;
                _programs[id - 1].spent += uint88(take);
                taken += take;
                spentIds = _withSpentId(paymentKey, spentIds, id, payer, plan.today);
                _spent[paymentKey][id] += take;
                emit ProgramSpent(id, payer, merchant, take);
            }
        }
        if (plan.expiredGeneral != 0) emit Expired(payer, 0, plan.expiredGeneral);
        if (taken != 0) _spentIds[paymentKey] = spentIds;
        if (taken != 0 || plan.expiredPrograms != 0) {
            _programMoney[origin] -= taken + plan.expiredPrograms;
            _held[origin] = plan.keptIds;
        }
        _advanceLotHead(origin, plan.general - plan.generalTake);
    }

    /// @dev Adds a program's money to a holder's, keeping its programs by soonest expiry.
    function _addHolding(address origin, address holder, uint32 id, uint256 amount) private {
        uint256 current = _holding[origin][id];
        _holding[origin][id] = current + amount;
        _programMoney[origin] += amount;
        if (current != 0) return;
        uint256 ids = _held[origin];
        uint256 count = _heldCount(ids);
        if (_hasId(ids, id)) return;
        if (count == MAX_HELD) revert CityProgramsTooManyHeld(holder, MAX_HELD);
        uint64 expiry = _programs[id - 1].expiry;
        uint256 position = count;
        while (position > 0 && _programs[uint32(ids >> (32 * (position - 1))) - 1].expiry > expiry) {
            --position;
        }
        uint256 low = ids & ((1 << (32 * position)) - 1);
        uint256 high = (ids >> (32 * position)) << (32 * (position + 1));
        _held[origin] = low | (uint256(id) << (32 * position)) | high;
    }

    /// @dev `ids` with `id` among the programs a payment key drew on. The running total of plain
    /// transfers between two holders can name more programs over time than a word holds: those
    /// whose money was all refunded give their places up, and so do those that have expired
    /// (what they drew is kept as one amount a refund sends back to the city). Nine programs
    /// alive at once, all drawn on at one merchant by plain transfers, are refused.
    function _withSpentId(bytes32 paymentKey, uint256 ids, uint32 id, address payer, uint256 today)
        private
        returns (uint256)
    {
        if (_hasId(ids, id)) return ids;
        uint256 count = _heldCount(ids);
        if (count == MAX_HELD) {
            uint256 kept;
            for (uint256 i; i < MAX_HELD; ++i) {
                uint32 spent = uint32(ids >> (32 * i));
                uint256 amount = _spent[paymentKey][spent];
                if (amount == 0) continue;
                if (today * 1 days >= _programs[spent - 1].expiry) {
                    _spentExpired[paymentKey] += amount;
                    delete _spent[paymentKey][spent];
                } else {
                    kept |= uint256(spent) << (32 * _heldCount(kept));
                }
            }
            ids = kept;
            count = _heldCount(ids);
            if (count == MAX_HELD) revert CityProgramsTooManyHeld(payer, MAX_HELD);
        }
        return ids | (uint256(id) << (32 * count));
    }

    function _heldCount(uint256 ids) private pure returns (uint256 count) {
        while (count < MAX_HELD && uint32(ids >> (32 * count)) != 0) ++count;
    }

    function _hasId(uint256 ids, uint32 id) private pure returns (bool) {
        for (uint256 i; i < MAX_HELD; ++i) {
            uint32 held = uint32(ids >> (32 * i));
            if (held == id) return true;
            if (held == 0) return false;
        }
        return false;
    }

    /// @dev A general credit: the newest lot grows if it expires the same week, else a new one.
    function _creditGeneral(address origin, uint256 value) private {
        uint256 day = _lotDay(block.timestamp + generalValidity);
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        uint256 cumulative = length == 0 ? 0 : _cumulative(lots[length - 1]);
        uint256 lot = (day << 128) | (cumulative + value);
        if (length != 0 && lots[length - 1] >> 128 == day) {
            lots[length - 1] = lot;
            // The newest lot holds money again: the look for money must not start past it.
            if (_lotHead[origin] == length) _lotHead[origin] = length - 1;
        } else {
            lots.push(lot);
        }
    }

    /// @dev The first day of the week after the one in which `time` falls.
    function _lotDay(uint256 time) private pure returns (uint256) {
        return (time / 1 days / LOT_DAYS + 1) * LOT_DAYS;
    }

    /// @dev Of `general` held, the part in lots expired by `today`: what the newest lots that have
    /// not expired cannot account for.
    function _expiredGeneral(address origin, uint256 general, uint256 today) private view returns (uint256) {
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        if (general == 0 || length == 0) return 0;
        uint256 i = _lotHead[origin];
        while (i < length && lots[i] >> 128 <= today) ++i;
        uint256 unexpired = _cumulative(lots[length - 1]) - (i == 0 ? 0 : _cumulative(lots[i - 1]));
        return general > unexpired ? general - unexpired : 0;
    }

    /// @dev Moves the head past the lots `general` no longer reaches into.
    function _advanceLotHead(address origin, uint256 general) private {
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        if (length == 0) return;
        uint256 head = _lotHead[origin];
        uint256 spentUpTo = _cumulative(lots[length - 1]) - general;
        uint256 i = head;
        while (i < length && _cumulative(lots[i]) <= spentUpTo) ++i;
        if (i != head) _lotHead[origin] = i;
    }

    /// @dev What the token keeps in the holder's word: the expiry day of its oldest general money
    /// still held (0: none) and whether it holds policy money.
    function _state(address origin, uint256 general) private view returns (uint256 state) {
        uint256[] storage lots = _lots[origin];
        uint256 length = lots.length;
        if (general != 0 && length != 0) {
            uint256 spentUpTo = _cumulative(lots[length - 1]) - general;
            uint256 i = _lotHead[origin];
            while (i < length && _cumulative(lots[i]) <= spentUpTo) ++i;
            state = i < length ? lots[i] >> 128 : 0;
        }
        if (_programMoney[origin] != 0) state |= CLASSED_STATE;
    }

    function _cumulative(uint256 lot) private pure returns (uint256) {
        return lot & CUMULATIVE_MASK;
    }

    function _lotAmount(uint256[] storage lots, uint256 index) private view returns (uint256) {
        return _cumulative(lots[index]) - (index == 0 ? 0 : _cumulative(lots[index - 1]));
    }
}
