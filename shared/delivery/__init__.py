"""The delivery runtime every worker runs on: retries, dead letters, ledger, ordering, results."""
