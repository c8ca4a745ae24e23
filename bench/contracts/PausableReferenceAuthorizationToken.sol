// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Pausable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";
import {ReferenceAuthorizationToken} from "./ReferenceAuthorizationToken.sol";

/// @title Benchmark variant: the reference with a pause check on every transfer
/// @notice ReferenceAuthorizationToken plus OpenZeppelin's ERC20Pausable, as Circle's FiatTokenV2
/// checks `whenNotPaused`. Not a goal: it measures how much of the gap between our
/// `transferWithAuthorization` and the reference is the pause flag's cold read.
contract PausableReferenceAuthorizationToken is ReferenceAuthorizationToken, ERC20Pausable {
    constructor(address holder, uint256 supply) ReferenceAuthorizationToken(holder, supply) {}

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Pausable) {
        super._update(from, to, value);
    }
}
