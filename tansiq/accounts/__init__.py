"""Accounts, roles, API tokens and the principal every request acts as."""
