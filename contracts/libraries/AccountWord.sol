// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice One storage word per account: the balance and the flags a payment checks, so the payment
/// path reads and writes one slot per party (USDC v2.2 packs its blacklist bit the same way), and
/// the account's origin, so a refund finds what was paid to or by an earlier wallet of the same
/// person or business at no cost to the payment path.
/// Layout: bits 0-63 balance (the token's supply cap is type(uint64).max), bits 64-85 for a resident
/// the day (UTC days since 1970) from which some of its general money may have expired, 0 when it
/// holds none (a lower bound: payments before that day skip the expiry check at no storage cost),
/// bit 86 classed (a resident holding policy money: its payments go through the money classes),
/// bit 87 general excluded (a merchant above the city's revenue cap for general money), bits 88-89 kind
/// (1 resident, 2 merchant), bit 90 active, bit 91 frozen, bit 92 retired (a wallet recovered to a
/// replacement: never registered or named as a replacement again), bit 93 held (a recovery of it
/// is pending), bits 96-255 origin (the first wallet of the account's holder once it took part in a
/// recovery; zero for a wallet that never did, whose origin is itself).
library AccountWord {
    uint256 internal constant BALANCE_MASK = type(uint64).max;
    uint256 internal constant EXPIRY_SHIFT = 64;
    uint256 internal constant EXPIRY_MASK = ((1 << 22) - 1) << 64;
    uint256 internal constant CLASSED = 1 << 86;
    uint256 internal constant GENERAL_EXCLUDED = 1 << 87;
    /// @dev What a resident's word says of its money classes; moves with it on a recovery.
    uint256 internal constant CLASS_BITS = EXPIRY_MASK | CLASSED;
    /// @dev Everything of the word about classes, a merchant's exclusion too: what a recovery moves.
    uint256 internal constant CLASS_BITS_ALL = CLASS_BITS | GENERAL_EXCLUDED;
    uint256 internal constant FLAGS_MASK = 0xFF << 88;
    uint256 internal constant KIND_MASK = 0x3 << 88;
    uint256 internal constant KIND_SHIFT = 88;
    uint256 internal constant RESIDENT = 1 << 88;
    uint256 internal constant MERCHANT = 2 << 88;
    uint256 internal constant ACTIVE = 1 << 90;
    uint256 internal constant FROZEN = 1 << 91;
    uint256 internal constant RETIRED = 1 << 92;
    uint256 internal constant HELD = 1 << 93;
    uint256 internal constant ORIGIN_SHIFT = 96;

    /// @dev An account that may pay: an active resident, not frozen, retired or held.
    uint256 internal constant PAYER = RESIDENT | ACTIVE;
    /// @dev An account that may be paid: an active merchant, not frozen, retired or held.
    uint256 internal constant PAYEE = MERCHANT | ACTIVE;

    function balance(uint256 word) internal pure returns (uint256) {
        return word & BALANCE_MASK;
    }

    /// @dev Whether a payment from `payer` to `payee` goes through the money classes: the payer
    /// holds policy money, the payee refuses general money, or some of the payer's general money
    /// may have expired by `today`.
    function needsClasses(uint256 payer, uint256 payee, uint256 today) internal pure returns (bool) {
        return (payer & CLASSED) | (payee & GENERAL_EXCLUDED) != 0 || today >= (payer & EXPIRY_MASK) >> EXPIRY_SHIFT;
    }

    /// @dev `word` with its class bits as the money classes report them: the expiry day in bits
    /// 0-21 of `state`, bit 22 classed.
    function withClasses(uint256 word, uint256 state) internal pure returns (uint256) {
        return (word & ~CLASS_BITS) | ((state << EXPIRY_SHIFT) & CLASS_BITS);
    }

    function flags(uint256 word) internal pure returns (uint256) {
        return word & FLAGS_MASK;
    }

    function kind(uint256 word) internal pure returns (uint8) {
        return uint8((word & KIND_MASK) >> KIND_SHIFT);
    }

    function isFrozen(uint256 word) internal pure returns (bool) {
        return word & FROZEN != 0;
    }

    function isActive(uint256 word) internal pure returns (bool) {
        return word & ACTIVE != 0;
    }

    function isRetired(uint256 word) internal pure returns (bool) {
        return word & RETIRED != 0;
    }

    function isHeld(uint256 word) internal pure returns (bool) {
        return word & HELD != 0;
    }

    /// @dev Frozen by compliance or held for a pending recovery: no money moves in or out.
    function isLocked(uint256 word) internal pure returns (bool) {
        return word & (FROZEN | HELD) != 0;
    }

    /// @dev The first wallet of the account's holder: `account` itself unless it took part in a
    /// recovery.
    function origin(uint256 word, address account) internal pure returns (address) {
        address first = address(uint160(word >> ORIGIN_SHIFT));
        return first == address(0) ? account : first;
    }

    function withOrigin(uint256 word, address first) internal pure returns (uint256) {
        return (word & ((1 << ORIGIN_SHIFT) - 1)) | (uint256(uint160(first)) << ORIGIN_SHIFT);
    }
}
