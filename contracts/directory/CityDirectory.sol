// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ICityDirectory} from "../../interfaces/ICityDirectory.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";

/// @title The platform's directory of cities
/// @notice A wallet, the backend or an auditor that knows this address finds every city's token,
/// registry and treasury. Cities are independent: each has its own suite and EIP-712 domain.
/// It also keeps the proof of reserve: each city's bank statements of the custody account that
/// holds the KRW behind its tokens, recorded with the bank's signature beside the tokens
/// outstanding. Recording cannot change a balance; it holds no power over any city's token.
contract CityDirectory is ICityDirectory, AccessControl {
    bytes32 public constant DIRECTORY_ADMIN_ROLE = keccak256("DIRECTORY_ADMIN_ROLE");

    bytes32 private constant STATEMENT_TYPEHASH = keccak256("CustodyStatement(bytes32 account,uint256 balance,uint64 asOf)");
    /// @dev A domain of name and version alone: a bank signs its statements without knowing the
    /// chain or this contract; the custody account in the statement ties it to one city.
    bytes32 private constant STATEMENT_DOMAIN = keccak256(
        abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("Custody Statement"), keccak256("1"))
    );

    /// @notice How far a statement's time may be ahead of the block's: the bank's clock and the
    /// chain's differ by a little, and a call simulated against the last block sees its time.
    /// Bounded, as a statement from further ahead would shut out every later one until then.
    uint64 public constant STATEMENT_CLOCK_SKEW = 300;

    City[] private _cities;
    /// @dev Index into `_cities` plus one; zero for an unknown code.
    mapping(bytes32 codeHash => uint256 position) private _positionOf;
    mapping(bytes32 codeHash => Custody) private _custody;
    /// @dev One custody account per city: one city's statements never pass for another's.
    mapping(bytes32 account => bytes32 codeHash) private _custodyCity;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(DIRECTORY_ADMIN_ROLE, admin);
    }

    /// @inheritdoc ICityDirectory
    function registerCity(string calldata code, string calldata name, address token, address registry, address treasury)
        external
        onlyRole(DIRECTORY_ADMIN_ROLE)
    {
        bytes32 codeHash = keccak256(bytes(code));
        if (_positionOf[codeHash] != 0) revert CityDirectoryCodeTaken(code);
        // The three addresses must be one linked suite, so a typo cannot list a half city.
        if (
            bytes(code).length == 0 || token == address(0) || ICityToken(token).registry() != registry
                || ICityToken(token).treasury() != treasury || registry == address(0)
        ) revert CityDirectoryInvalidCity(code);
        _cities.push(City(code, name, token, registry, treasury, uint64(block.timestamp)));
        _positionOf[codeHash] = _cities.length;
        emit CityRegistered(code, codeHash, token, registry, treasury);
    }

    /// @inheritdoc ICityDirectory
    function setCustody(string calldata code, bytes32 account, address signer) external {
        bytes32 codeHash = keccak256(bytes(code));
        City storage listed = _city(code);
        if (!IAccessControl(listed.token).hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert CityDirectoryNotCityAdmin(code, msg.sender);
        }
        if (account == bytes32(0) || signer == address(0)) revert CityDirectoryInvalidCustody(code, account, signer);
        bytes32 holder = _custodyCity[account];
        if (holder != bytes32(0) && holder != codeHash) revert CityDirectoryCustodyTaken(code, account);
        Custody storage custody_ = _custody[codeHash];
        delete _custodyCity[custody_.account];
        _custodyCity[account] = codeHash;
        custody_.account = account;
        custody_.signer = signer;
        emit CustodyConfigured(code, codeHash, account, signer);
    }

    /// @inheritdoc ICityDirectory
    function attestReserve(string calldata code, uint256 balance, uint64 asOf, bytes calldata signature) external {
        bytes32 codeHash = keccak256(bytes(code));
        City storage listed = _city(code);
        Custody storage custody_ = _custody[codeHash];
        if (custody_.signer == address(0)) revert CityDirectoryNoCustody(code);
        // Newer than the last: an old statement, replayed, cannot hide a later shortfall.
        if (asOf <= custody_.lastAsOf) revert CityDirectoryStaleStatement(code, asOf, custody_.lastAsOf);
        if (asOf > block.timestamp + STATEMENT_CLOCK_SKEW) {
            revert CityDirectoryFutureStatement(code, asOf, block.timestamp);
        }
        bytes32 digest = statementHash(custody_.account, balance, asOf);
        if (!SignatureChecker.isValidSignatureNow(custody_.signer, digest, signature)) {
            revert CityDirectoryInvalidStatement(code, digest);
        }
        custody_.lastAsOf = asOf;
        emit ReserveAttested(
            code,
            codeHash,
            custody_.account,
            balance,
            asOf,
            IERC20(listed.token).totalSupply(),
            digest,
            custody_.signer,
            signature
        );
    }

    /// @inheritdoc ICityDirectory
    function city(string calldata code) external view returns (City memory) {
        return _city(code);
    }

    /// @inheritdoc ICityDirectory
    function custody(string calldata code) external view returns (Custody memory) {
        _city(code);
        return _custody[keccak256(bytes(code))];
    }

    /// @inheritdoc ICityDirectory
    function statementHash(bytes32 account, uint256 balance, uint64 asOf) public pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(
            STATEMENT_DOMAIN, keccak256(abi.encode(STATEMENT_TYPEHASH, account, balance, asOf))
        );
    }

    /// @inheritdoc ICityDirectory
    function cityCount() external view returns (uint256) {
        return _cities.length;
    }

    /// @inheritdoc ICityDirectory
    function cityAt(uint256 index) external view returns (City memory) {
        return _cities[index];
    }

    /// @inheritdoc ICityDirectory
    function cities() external view returns (City[] memory) {
        return _cities;
    }

    function _city(string calldata code) private view returns (City storage) {
        uint256 position = _positionOf[keccak256(bytes(code))];
        if (position == 0) revert CityDirectoryUnknownCity(code);
        return _cities[position - 1];
    }
}
