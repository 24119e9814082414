"""Billing use cases: the billing run (renewals, deferrals, outage credits) and payments."""
