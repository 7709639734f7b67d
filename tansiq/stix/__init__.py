"""STIX 2.1 helpers: timestamps, validation, identifiers."""
