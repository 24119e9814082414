"""Use cases: load state through ports, call the domain, persist results."""
