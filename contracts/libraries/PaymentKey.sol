// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice What the money classes and cashback name a payment by: a payer's payment id (an
/// invoice id or an EIP-3009 nonce), or for plain transfers the running total between a payer
/// and a merchant, by their first wallets. Tagged: an id can never name a pair's running total.
library PaymentKey {
    function ofPayment(address payer, bytes32 paymentId) internal pure returns (bytes32) {
        return keccak256(abi.encode(1, payer, paymentId));
    }

    function ofPair(address payerOrigin, address merchantOrigin) internal pure returns (bytes32) {
        return keccak256(abi.encode(2, payerOrigin, merchantOrigin));
    }
}
