"""The city office (지자체 담당자): registrations, lifecycle, freezes and recoveries."""
