"""Redis: the live counters several brains share (the scaled mode, docs/scaling.md)."""

from tawasol.adapters.redis.live_counters import RedisLiveCounters, connect_live_counters

__all__ = ["RedisLiveCounters", "connect_live_counters"]
