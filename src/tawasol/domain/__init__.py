"""The pure business rules of an operator of unlimited international calling plans.

Nothing in this package does I/O, reads a clock or imports a framework: callers pass `now`
and the state the rules need, and get values back.
"""
