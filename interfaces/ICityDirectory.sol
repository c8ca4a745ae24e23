// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The platform's directory of cities: knowing its address finds every city's contracts
interface ICityDirectory {
    struct City {
        string code;
        string name;
        address token;
        address registry;
        address treasury;
        uint64 registeredAt;
    }

    event CityRegistered(string code, bytes32 indexed codeHash, address token, address registry, address treasury);

    error CityDirectoryCodeTaken(string code);
    error CityDirectoryUnknownCity(string code);
    error CityDirectoryInvalidCity(string code);

    function registerCity(string calldata code, string calldata name, address token, address registry, address treasury)
        external;
    function city(string calldata code) external view returns (City memory);
    function cityCount() external view returns (uint256);
    function cityAt(uint256 index) external view returns (City memory);
    function cities() external view returns (City[] memory);
}
