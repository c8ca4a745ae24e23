// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Test fixture: the smallest smart-contract wallet a city account can be (ERC-1271)
/// @notice One owner key. The wallet accepts as its own signature the owner's ECDSA signature of
/// the hash (what a wallet app signs for it), and sends the owner's calls, so it can pay, cash out
/// or object to its recovery itself. Not the product: it lives beside the tests that use it.
contract OwnedWallet is IERC1271 {
    address public immutable owner;

    error OwnedWalletNotOwner(address caller);

    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error_,) = ECDSA.tryRecover(hash, signature);
        bool valid = error_ == ECDSA.RecoverError.NoError && signer == owner;
        return valid ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    /// @notice Calls `target` with `data` as this wallet; a refused call reverts with its own error.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert OwnedWalletNotOwner(msg.sender);
        bool success;
        (success, result) = target.call(data);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}
