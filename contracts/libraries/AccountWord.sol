// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice One storage word per account: the balance and the flags a payment checks, so the payment
/// path reads and writes one slot per party (USDC v2.2 packs its blacklist bit the same way).
/// Layout: bits 0-127 balance, bits 128-129 kind (1 resident, 2 merchant), bit 130 active,
/// bit 131 frozen.
library AccountWord {
    uint256 internal constant BALANCE_MASK = type(uint128).max;
    uint256 internal constant FLAGS_MASK = 0xF << 128;
    uint256 internal constant KIND_MASK = 0x3 << 128;
    uint256 internal constant RESIDENT = 1 << 128;
    uint256 internal constant MERCHANT = 2 << 128;
    uint256 internal constant ACTIVE = 1 << 130;
    uint256 internal constant FROZEN = 1 << 131;

    /// @dev An account that may pay: an active, unfrozen resident.
    uint256 internal constant PAYER = RESIDENT | ACTIVE;
    /// @dev An account that may be paid: an active, unfrozen merchant.
    uint256 internal constant PAYEE = MERCHANT | ACTIVE;

    function balance(uint256 word) internal pure returns (uint256) {
        return word & BALANCE_MASK;
    }

    function flags(uint256 word) internal pure returns (uint256) {
        return word & FLAGS_MASK;
    }

    function kind(uint256 word) internal pure returns (uint8) {
        return uint8((word & KIND_MASK) >> 128);
    }

    function isFrozen(uint256 word) internal pure returns (bool) {
        return word & FROZEN != 0;
    }

    function isActive(uint256 word) internal pure returns (bool) {
        return word & ACTIVE != 0;
    }
}
