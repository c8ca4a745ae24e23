// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC3009} from "../../interfaces/IERC3009.sol";
import {PaymentRecord} from "../libraries/PaymentRecord.sol";

/// @notice EIP-3009 as internal steps that the token wraps with its own guards, in USDC's order:
/// time window, nonce unused, signature, mark used, then move money.
abstract contract EIP3009 is IERC3009, EIP712 {
    /// @dev keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH =
        0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;
    /// @dev keccak256("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH =
        0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;
    /// @dev keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;

    /// @dev Zero while unused; otherwise a PaymentRecord (used, with payee and refundable amount,
    /// or cancelled).
    mapping(address authorizer => mapping(bytes32 nonce => uint256 record)) internal _authorizations;

    /// @inheritdoc IERC3009
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizations[authorizer][nonce] != 0;
    }

    /// @dev Moves the money of a used authorization; the token applies its transfer rules here
    /// (and may refuse a nonce it gives another meaning).
    function _executeAuthorizedTransfer(address from, address to, uint256 value, bytes32 nonce) internal virtual;

    function _useAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) internal {
        bytes32 digest = _checkUnusedAuthorization(typeHash, from, to, value, validAfter, validBefore, nonce);
        // No ERC-1271 look-up on this path: it would cost a cold EXTCODESIZE on every payment.
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, v, r, s);
        if (error != ECDSA.RecoverError.NoError || signer != from) revert EIP3009InvalidSignature(from);
        _markUsedAndTransfer(from, to, value, nonce);
    }

    function _useAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) internal {
        bytes32 digest = _checkUnusedAuthorization(typeHash, from, to, value, validAfter, validBefore, nonce);
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert EIP3009InvalidSignature(from);
        _markUsedAndTransfer(from, to, value, nonce);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) internal {
        _requireUnused(authorizer, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        if (!SignatureChecker.isValidSignatureNow(authorizer, digest, signature)) {
            revert EIP3009InvalidSignature(authorizer);
        }
        _authorizations[authorizer][nonce] = PaymentRecord.CANCELED;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// @dev Checks the window and the nonce and returns the EIP-712 digest to verify.
    function _checkUnusedAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        if (block.timestamp <= validAfter) revert EIP3009AuthorizationNotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert EIP3009AuthorizationExpired(validBefore, block.timestamp);
        _requireUnused(from, nonce);
        return _hashTypedDataV4(keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)));
    }

    function _requireUnused(address authorizer, bytes32 nonce) internal view {
        if (_authorizations[authorizer][nonce] != 0) revert EIP3009AuthorizationUsedOrCanceled(authorizer, nonce);
    }

    function _markUsedAndTransfer(address from, address to, uint256 value, bytes32 nonce) private {
        _authorizations[from][nonce] = PaymentRecord.used(to, value);
        emit AuthorizationUsed(from, nonce);
        _executeAuthorizedTransfer(from, to, value, nonce);
    }
}
