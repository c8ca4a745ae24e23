// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC3009} from "../../interfaces/IERC3009.sol";
import {PaymentRecord} from "../libraries/PaymentRecord.sol";
import {Refusal} from "../libraries/Refusal.sol";

/// @notice EIP-3009 as internal steps that the token completes with its own rules, in USDC's order:
/// time window, nonce unused, signature, then the token's rules, mark used, move money. The
/// (v, r, s) form, every gasless payment's path, reverts for nothing: it returns the refusal (see
/// Refusal) of the first check that fails, which the token's single calls revert with and its batch
/// reports. A nonce is unused, used, cancelled or voided (refused in a batch), each with its own
/// error, so a relayer tells a payment that went through elsewhere from one that failed.
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

    /// @dev secp256k1n / 2: a larger `s` is the malleable twin of a valid signature (ECDSA.sol).
    uint256 private constant MAX_SIGNATURE_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev The token's part of an authorization that passed EIP-3009's checks: if the token's rules
    /// allow the transfer, marks the nonce used (`_markUsed`) and moves the money; otherwise changes
    /// nothing and returns the refusal.
    function _tryAuthorizedTransfer(address from, address to, uint256 value, bytes32 nonce)
        internal
        virtual
        returns (bytes memory refusal);

    /// @dev An authorization signed with (v, r, s), from end to end, reverting for nothing: empty
    /// if it was used and the money moved, else the refusal of the first check it failed.
    /// `signed` tells whether the signature was found to be the authorizer's (a refusal by the
    /// token's rules) or not checked or not the authorizer's (a refusal before them).
    function _tryUseAuthorization(
        bytes32 domainSeparator,
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
    ) internal returns (bytes memory refusal, bool signed) {
        if (block.timestamp <= validAfter) {
            return (abi.encodeWithSelector(EIP3009AuthorizationNotYetValid.selector, validAfter, block.timestamp), false);
        }
        if (block.timestamp >= validBefore) {
            return (abi.encodeWithSelector(EIP3009AuthorizationExpired.selector, validBefore, block.timestamp), false);
        }
        refusal = _usedRefusal(from, nonce);
        if (refusal.length != 0) return (refusal, false);
        if (!_signedBy(
            from, _authorizationDigest(domainSeparator, typeHash, from, to, value, validAfter, validBefore, nonce), v, r, s
        )) {
            return (abi.encodeWithSelector(EIP3009InvalidSignature.selector, from), false);
        }
        return (_tryAuthorizedTransfer(from, to, value, nonce), true);
    }

    /// @dev Whether (v, r, s) is `signer`'s ECDSA signature of `digest`: ECDSA.tryRecover's checks
    /// (s in the lower half order, a signer recovered), written out on this hot path. No ERC-1271
    /// look-up: it would cost a cold EXTCODESIZE every payment (contract wallets sign the `bytes`
    /// variants).
    function _signedBy(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) internal view returns (bool) {
        if (uint256(s) > MAX_SIGNATURE_S) return false;
        address recovered;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, digest)
            mstore(add(m, 0x20), and(v, 0xff))
            mstore(add(m, 0x40), r)
            mstore(add(m, 0x60), s)
            mstore(0x00, 0) // the precompile returns nothing when no key recovers
            if iszero(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20)) { revert(0, 0) }
            recovered := mload(0x00)
        }
        return recovered != address(0) && recovered == signer;
    }

    /// @dev Marks an unused authorization whose signature is the authorizer's as never usable: a
    /// relayer batch refused it, and the backend told the till so. A nonce already used or
    /// cancelled keeps its record (a used one is a payment's: what it may still refund).
    function _voidAuthorization(address authorizer, bytes32 nonce) internal {
        if (_authorizations[authorizer][nonce] != 0) return;
        _authorizations[authorizer][nonce] = PaymentRecord.VOIDED;
        emit AuthorizationVoided(authorizer, nonce);
    }

    /// @dev An authorization with its signature as bytes (ECDSA, or ERC-1271 for a contract
    /// wallet): the same checks, reverting with the first that fails.
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
        _checkWindow(validAfter, validBefore);
        Refusal.revertIfAny(_usedRefusal(from, nonce));
        bytes32 digest = _authorizationDigest(_domainSeparatorV4(), typeHash, from, to, value, validAfter, validBefore, nonce);
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert EIP3009InvalidSignature(from);
        Refusal.revertIfAny(_tryAuthorizedTransfer(from, to, value, nonce));
    }

    /// @dev EIP-3009's checks, in its order, for an authorization of a type the token defines
    /// itself (a merchant's refund), given its EIP-712 struct hash: reverts with the first that
    /// fails. The signature is checked as `_useAuthorization` checks it (ECDSA, or ERC-1271 for a
    /// contract wallet). The caller applies its own rules and marks the nonce used (`_markUsed`).
    function _checkAuthorization(
        bytes32 structHash,
        address authorizer,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) internal view {
        _checkWindow(validAfter, validBefore);
        Refusal.revertIfAny(_usedRefusal(authorizer, nonce));
        if (!SignatureChecker.isValidSignatureNow(authorizer, _hashTypedDataV4(structHash), signature)) {
            revert EIP3009InvalidSignature(authorizer);
        }
    }

    function _checkWindow(uint256 validAfter, uint256 validBefore) private view {
        if (block.timestamp <= validAfter) revert EIP3009AuthorizationNotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert EIP3009AuthorizationExpired(validBefore, block.timestamp);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) internal {
        Refusal.revertIfAny(_usedRefusal(authorizer, nonce));
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        if (!SignatureChecker.isValidSignatureNow(authorizer, digest, signature)) {
            revert EIP3009InvalidSignature(authorizer);
        }
        _authorizations[authorizer][nonce] = PaymentRecord.CANCELED;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// @dev _hashTypedDataV4(keccak256(abi.encode(typeHash, from, to, value, validAfter,
    /// validBefore, nonce))), hashed where it is written, past the free memory pointer: nothing is
    /// allocated.
    function _authorizationDigest(
        bytes32 domainSeparator,
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            mstore(add(m, 0x20), and(from, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(to, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), value)
            mstore(add(m, 0x80), validAfter)
            mstore(add(m, 0xa0), validBefore)
            mstore(add(m, 0xc0), nonce)
            let structHash := keccak256(m, 0xe0)
            mstore(m, 0x1901)
            mstore(add(m, 0x20), domainSeparator)
            mstore(add(m, 0x40), structHash)
            digest := keccak256(add(m, 0x1e), 0x42)
        }
    }

    /// @dev Empty while the nonce is unused; else the error naming what became of it.
    function _usedRefusal(address authorizer, bytes32 nonce) internal view returns (bytes memory refusal) {
        uint256 state = PaymentRecord.state(_authorizations[authorizer][nonce]);
        if (state == 0) return refusal;
        bytes4 selector = state == PaymentRecord.USED
            ? EIP3009AuthorizationUsed.selector
            : state == PaymentRecord.CANCELED ? EIP3009AuthorizationCanceled.selector : EIP3009AuthorizationVoided.selector;
        return abi.encodeWithSelector(selector, authorizer, nonce);
    }

    /// @dev Marks the nonce used; the record keeps the payee and the refundable amount.
    function _markUsed(address from, address to, uint256 value, bytes32 nonce) internal {
        _authorizations[from][nonce] = PaymentRecord.used(to, value);
        emit AuthorizationUsed(from, nonce);
    }
}
