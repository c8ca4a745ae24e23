"""City token platform: chain access, signing and the backend services."""
