"""The city's admin dashboard (관리자모드): figures kept from the chain's events per block, JSON and
CSV for a city's operators, a live stream, and the page itself (static/)."""
