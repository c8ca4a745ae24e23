// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ICityDirectory} from "../../interfaces/ICityDirectory.sol";
import {ICityToken} from "../../interfaces/ICityToken.sol";

/// @title The platform's directory of cities
/// @notice A wallet, the backend or an auditor that knows this address finds every city's token,
/// registry and treasury. Cities are independent: each has its own suite and EIP-712 domain.
contract CityDirectory is ICityDirectory, AccessControl {
    bytes32 public constant DIRECTORY_ADMIN_ROLE = keccak256("DIRECTORY_ADMIN_ROLE");

    City[] private _cities;
    /// @dev Index into `_cities` plus one; zero for an unknown code.
    mapping(bytes32 codeHash => uint256 position) private _positionOf;

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
    function city(string calldata code) external view returns (City memory) {
        uint256 position = _positionOf[keccak256(bytes(code))];
        if (position == 0) revert CityDirectoryUnknownCity(code);
        return _cities[position - 1];
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
}
