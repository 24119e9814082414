"""Payments' use cases: setting up payment methods, collecting what billing charges, refunds,
provider events and dunning, over the ports in `ports.py`."""
