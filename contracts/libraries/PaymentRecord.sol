// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice What a used EIP-3009 nonce or invoice id remembers. Marking a nonce used costs a fresh
/// storage write whatever the value written, so the word also records the payee and what it may
/// still refund: refunds are bounded by the payment at no extra cost on the payment path.
/// Layout: bits 0-159 payee, bits 160-247 refundable amount, bits 248-255 state.
library PaymentRecord {
    uint256 internal constant USED = 1 << 248;
    uint256 internal constant CANCELED = 2 << 248;
    /// @dev Refused in a relayer's batch after its signature was verified: the backend told the
    /// till it failed, so nobody may settle it later.
    uint256 internal constant VOIDED = 3 << 248;
    uint256 internal constant STATE_MASK = 0xFF << 248;
    uint256 internal constant AMOUNT_SHIFT = 160;
    uint256 internal constant AMOUNT_MASK = type(uint88).max;

    /// @dev Amounts are below the token's supply cap (type(uint88).max), so they fit their bits.
    function used(address merchant, uint256 amount) internal pure returns (uint256) {
        return USED | (amount << AMOUNT_SHIFT) | uint256(uint160(merchant));
    }

    function isUsed(uint256 record) internal pure returns (bool) {
        return record & STATE_MASK == USED;
    }

    function state(uint256 record) internal pure returns (uint256) {
        return record & STATE_MASK;
    }

    function payee(uint256 record) internal pure returns (address) {
        return address(uint160(record));
    }

    function refundable(uint256 record) internal pure returns (uint256) {
        return (record >> AMOUNT_SHIFT) & AMOUNT_MASK;
    }

    /// @dev The caller checked `amount <= refundable(record)`.
    function lessRefunded(uint256 record, uint256 amount) internal pure returns (uint256) {
        return record - (amount << AMOUNT_SHIFT);
    }
}
