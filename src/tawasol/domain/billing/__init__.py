"""Billing rules: the ledger, billing periods and pro-rata, VAT, invoice numbering, outage credits.

Pure rules only (no I/O, no clock): the services load accounts, subscriptions and outage periods
through ports and hand them here with the moment they consider `now`. docs/billing.md states
each rule and its source.
"""
