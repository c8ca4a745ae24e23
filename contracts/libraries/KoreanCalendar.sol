// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Calendar months in Korea Standard Time (UTC+9, no daylight saving), for monthly purchase
/// limits and fiscal years that turn at local midnight, not at UTC midnight.
library KoreanCalendar {
    uint256 internal constant KST_OFFSET = 9 hours;

    /// @notice Months since year 0: year * 12 + (month - 1), in KST.
    function monthIndex(uint256 timestamp) internal pure returns (uint256) {
        (uint256 year, uint256 month) = yearMonth(timestamp);
        return year * 12 + month - 1;
    }

    /// @notice The fiscal year a timestamp falls in, named by the calendar year it starts in.
    function fiscalYear(uint256 timestamp, uint8 startMonth) internal pure returns (uint256) {
        return (monthIndex(timestamp) - (startMonth - 1)) / 12;
    }

    /// @dev Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    function yearMonth(uint256 timestamp) internal pure returns (uint256 year, uint256 month) {
        uint256 z = (timestamp + KST_OFFSET) / 1 days + 719468;
        uint256 era = z / 146097;
        uint256 dayOfEra = z - era * 146097;
        uint256 yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
        uint256 dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
        uint256 shiftedMonth = (5 * dayOfYear + 2) / 153;
        month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
    }
}
