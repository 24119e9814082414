"""Adapters: the outside world (store, HTTP API, SIP edge), each translating both ways."""
