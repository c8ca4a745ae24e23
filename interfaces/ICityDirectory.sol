// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The platform's directory of cities: knowing its address finds every city's contracts,
/// and the record of the bank statements that show the KRW behind each city's tokens
interface ICityDirectory {
    struct City {
        string code;
        string name;
        address token;
        address registry;
        address treasury;
        uint64 registeredAt;
    }

    /// @notice The account at the bank that holds a city's KRW (its keccak256, as the bank names
    /// it), the key that signs that bank's statements, and the latest statement's time.
    struct Custody {
        bytes32 account;
        address signer;
        uint64 lastAsOf;
    }

    event CityRegistered(string code, bytes32 indexed codeHash, address token, address registry, address treasury);
    event CustodyConfigured(string code, bytes32 indexed codeHash, bytes32 account, address signer);
    /// @notice A bank statement: `balance` KRW in the custody account at `asOf` (the bank's
    /// time), against `outstanding` tokens (the total supply in the block that records it).
    event ReserveAttested(
        string code,
        bytes32 indexed codeHash,
        bytes32 account,
        uint256 balance,
        uint64 asOf,
        uint256 outstanding,
        bytes32 statementHash,
        address signer,
        bytes signature
    );

    error CityDirectoryCodeTaken(string code);
    error CityDirectoryUnknownCity(string code);
    error CityDirectoryInvalidCity(string code);
    error CityDirectoryNotCityAdmin(string code, address caller);
    error CityDirectoryInvalidCustody(string code, bytes32 account, address signer);
    error CityDirectoryCustodyTaken(string code, bytes32 account);
    error CityDirectoryNoCustody(string code);
    error CityDirectoryStaleStatement(string code, uint64 asOf, uint64 lastAsOf);
    error CityDirectoryFutureStatement(string code, uint64 asOf, uint256 blockTime);
    error CityDirectoryInvalidStatement(string code, bytes32 statementHash);

    function registerCity(string calldata code, string calldata name, address token, address registry, address treasury)
        external;
    function city(string calldata code) external view returns (City memory);
    function cityCount() external view returns (uint256);
    function cityAt(uint256 index) external view returns (City memory);
    function cities() external view returns (City[] memory);

    /// @notice Names a city's custody account and its bank's statement key; the city's admin
    /// (its token's DEFAULT_ADMIN_ROLE) only.
    function setCustody(string calldata code, bytes32 account, address signer) external;
    /// @notice Records a statement the city's bank signed (EIP-712, see statementHash); anyone
    /// may send it: the bank's signature is the authority, and each statement is newer than the
    /// last.
    function attestReserve(string calldata code, uint256 balance, uint64 asOf, bytes calldata signature) external;
    function custody(string calldata code) external view returns (Custody memory);
    /// @notice The EIP-712 digest the bank signs: CustodyStatement(bytes32 account,uint256
    /// balance,uint64 asOf) in the domain {name: "Custody Statement", version: "1"}, which names
    /// no chain or contract, so a bank signs without knowing either; the account ties it to one
    /// city.
    function statementHash(bytes32 account, uint256 balance, uint64 asOf) external pure returns (bytes32);
}
