// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice A refusal is the revert data of the custom error that refuses an operation (selector and
/// ABI-encoded arguments), or empty bytes when the operation is allowed. Rule checks return one
/// instead of reverting, so a single call reverts with it and a batch reports it and goes on: both
/// name a refused operation with the same error.
library Refusal {
    /// @dev Reverts with `refusal` as the revert data, exactly as `revert TheError(...)` would.
    function revertIfAny(bytes memory refusal) internal pure {
        if (refusal.length != 0) {
            assembly ("memory-safe") {
                revert(add(refusal, 0x20), mload(refusal))
            }
        }
    }
}
