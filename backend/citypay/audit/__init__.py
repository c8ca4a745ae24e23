"""The auditor: every city's books from a node and the directory's address alone."""
