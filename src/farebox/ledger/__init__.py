"""The ledger: the only package that writes to the database."""
