"""The `LiveCounters` port in Redis: calls in progress shared by every brain of a cluster.

Every operation is one Lua script run by Redis (scripts run one at a time, so each is atomic
on its own, like the in-process implementation's lock): a decision on one brain and an end
event on another can never leave a slot or a channel counted twice or not at all. A decision
opens its call with the subscription's version it read (`open(..., if_version=...)`): two
brains deciding the same subscriber's calls at once cannot both take its last slot.

Expiry: every call counted as open carries its expiry (the decision's longest ring time, then
its granted duration plus a margin once answered) in a sorted set; any brain's `expire` frees
what is past it, so a brain that died while holding calls heals on the others. Times come from
the brains' clock port (arguments), never from Redis' clock.

PostgreSQL stays the system of record: on start the authorizer replaces the period's use
(answered seconds, distinct numbers) with the call records' (`reset_usage`) and reopens the
calls the store has open that Redis does not hold (`open` is a no-op for those it has); carrier
states come back from the carrier events when the monitor restores. What Redis alone knew and
the store does not: which channel a ringing call holds (an unanswered call restored from the
store holds none until its next event) and the order channels were taken.

Keys: every key starts with `prefix` (default `tawasol:{live}`); the braces are a Redis
Cluster hash tag, so every key lands in one slot (one node) as multi-key scripts need.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import Usage
from tawasol.domain.errors import InvalidConfiguration, Unavailable
from tawasol.services.live_counters import merged_usage
from tawasol.services.ports.live_counters import OpenCall

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "tawasol:{live}"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# One script, one operation per call (ARGV[1] the key prefix, ARGV[2] the operation). Counters
# that fall to zero are deleted, so a hash holds only what is in use.
_SCRIPT = """
local P = ARGV[1]
local op = ARGV[2]
local function k(name) return P .. ':' .. name end

local function version(sub)
  local changed = tonumber(redis.call('HGET', k('version'), sub) or '0')
  local reset = tonumber(redis.call('GET', k('reset')) or '0')
  if reset > changed then return reset end
  return changed
end
local function touch(sub)
  redis.call('HSET', k('version'), sub, redis.call('INCR', k('stamp')))
end
local function decrease(key, field, by)
  if tonumber(redis.call('HINCRBY', key, field, -by)) <= 0 then
    redis.call('HDEL', key, field)
  end
end
local function hold(call, carrier)
  local previous = redis.call('HGET', k('held'), call)
  if previous == false then previous = nil end
  if carrier == '' then carrier = nil end
  if previous == carrier then return end
  if previous then
    redis.call('HDEL', k('held'), call)
    redis.call('ZREM', k('line:' .. previous), call)
    decrease(k('channels'), previous, 1)
  end
  if carrier then
    redis.call('HSET', k('held'), call, carrier)
    redis.call('ZADD', k('line:' .. carrier), redis.call('INCR', k('seq')), call)
    redis.call('HINCRBY', k('channels'), carrier, 1)
  end
end
local function release(call)
  local raw = redis.call('HGET', k('calls'), call)
  if raw then
    local open = cjson.decode(raw)
    local sub = open['subscription_id']
    redis.call('HDEL', k('calls'), call)
    redis.call('ZREM', k('expiry'), call)
    decrease(k('active'), sub, 1)
    decrease(k('reserved'), sub, tonumber(open['reserved_seconds']))
    touch(sub)
  end
  hold(call, nil)
end
local function period(sub)
  if redis.call('SISMEMBER', k('period'), sub) == 0 then return false end
  return {redis.call('HGET', k('answered'), sub) or '0',
          redis.call('SMEMBERS', k('numbers:' .. sub))}
end

if op == 'open' then
  local call, sub = ARGV[3], ARGV[5]
  if redis.call('HEXISTS', k('calls'), call) == 1 then return 0 end
  if ARGV[8] ~= '' and version(sub) ~= tonumber(ARGV[8]) then return 0 end
  redis.call('HSET', k('calls'), call, ARGV[4])
  redis.call('ZADD', k('expiry'), ARGV[7], call)
  redis.call('HINCRBY', k('active'), sub, 1)
  redis.call('HINCRBY', k('reserved'), sub, ARGV[6])
  touch(sub)
  return 1
elseif op == 'get' then
  return redis.call('HGET', k('calls'), ARGV[3])
elseif op == 'all' then
  return redis.call('HGETALL', k('calls'))
elseif op == 'answer' then
  local raw = redis.call('HGET', k('calls'), ARGV[3])
  if not raw then return 0 end
  local open = cjson.decode(raw)
  if open['answered'] then return 0 end
  open['answered'] = true
  open['expires_at'] = ARGV[4]
  redis.call('HSET', k('calls'), ARGV[3], cjson.encode(open))
  redis.call('ZADD', k('expiry'), ARGV[5], ARGV[3])
  return 1
elseif op == 'release' then
  release(ARGV[3])
  return 1
elseif op == 'expire' then
  local due = redis.call('ZRANGEBYSCORE', k('expiry'), '-inf', ARGV[3])
  for _, call in ipairs(due) do release(call) end
  return due
elseif op == 'count' then
  if ARGV[3] == '' then return redis.call('HLEN', k('calls')) end
  return tonumber(redis.call('HGET', k('active'), ARGV[3]) or '0')
elseif op == 'reserved' then
  return tonumber(redis.call('HGET', k('reserved'), ARGV[3]) or '0')
elseif op == 'hold' then
  hold(ARGV[3], ARGV[4])
  return 1
elseif op == 'held' then
  return redis.call('HGET', k('held'), ARGV[3])
elseif op == 'channels' then
  return redis.call('HGETALL', k('channels'))
elseif op == 'order' then
  local carrier = redis.call('HGET', k('held'), ARGV[3])
  if not carrier then return 0 end
  return tonumber(redis.call('ZSCORE', k('line:' .. carrier), ARGV[3]) or '0')
elseif op == 'before' then
  local carrier, call = ARGV[3], ARGV[4]
  if redis.call('HGET', k('held'), call) ~= carrier then
    return tonumber(redis.call('HGET', k('channels'), carrier) or '0')
  end
  return redis.call('ZRANK', k('line:' .. carrier), call)
elseif op == 'reset' then
  for _, sub in ipairs(redis.call('SMEMBERS', k('period'))) do
    redis.call('DEL', k('numbers:' .. sub))
  end
  redis.call('DEL', k('period'), k('answered'))
  for sub, used in pairs(cjson.decode(ARGV[3])) do
    redis.call('SADD', k('period'), sub)
    redis.call('HSET', k('answered'), sub, used[1])
    for _, number in ipairs(used[2]) do redis.call('SADD', k('numbers:' .. sub), number) end
  end
  redis.call('SET', k('reset'), redis.call('INCR', k('stamp')))
  return 1
elseif op == 'usage' then
  return period(ARGV[3])
elseif op == 'decision' then
  local sub = ARGV[3]
  return {period(sub), tonumber(redis.call('HGET', k('active'), sub) or '0'),
          tonumber(redis.call('HGET', k('reserved'), sub) or '0'), version(sub)}
elseif op == 'add' then
  local sub = ARGV[3]
  redis.call('SADD', k('period'), sub)
  redis.call('HINCRBY', k('answered'), sub, ARGV[4])
  if ARGV[5] ~= '' then redis.call('SADD', k('numbers:' .. sub), ARGV[5]) end
  touch(sub)
  return 1
elseif op == 'condition' then
  redis.call('HSET', k('conditions'), ARGV[3], ARGV[4])
  return 1
elseif op == 'conditions' then
  return redis.call('HGETALL', k('conditions'))
end
return redis.error_reply('unknown live counters operation ' .. op)
"""


class RedisLiveCounters:
    """`LiveCounters` in one Redis database, shared by every brain that uses the same prefix.

    Raises `Unavailable` when Redis cannot be reached or answers an error (a decision then
    fails closed: the edge refuses the call with 503)."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SCRIPT)

    def _run(self, operation: str, *args: str | int) -> Any:
        try:
            return self._script(keys=[], args=[self._prefix, operation, *args])
        except redis.RedisError as error:
            raise Unavailable(
                f"the live counters' Redis did not answer ({type(error).__name__}: {error})",
                operation=operation,
            ) from error

    def ping(self) -> None:
        """Raise `Unavailable` unless Redis answers and runs scripts (start-up check)."""
        self._run("count", "")

    def close(self) -> None:
        self._client.close()

    # -- calls in progress ------------------------------------------------------------------
    def open(self, call_id: str, call: OpenCall, *, if_version: int | None = None) -> bool:
        opened = self._run(
            "open",
            call_id,
            _encode_call(call),
            call.subscription_id,
            call.reserved_seconds,
            _micros(call.expires_at),
            "" if if_version is None else if_version,
        )
        return bool(opened)

    def get(self, call_id: str) -> OpenCall | None:
        raw = self._run("get", call_id)
        return _decode_call(raw) if raw else None

    def open_calls(self) -> Mapping[str, OpenCall]:
        flat = self._run("all")
        return {flat[i]: _decode_call(flat[i + 1]) for i in range(0, len(flat), 2)}

    def note_answer(self, call_id: str, *, expires_at: datetime) -> None:
        self._run("answer", call_id, expires_at.isoformat(), _micros(expires_at))

    def release(self, call_id: str) -> None:
        self._run("release", call_id)

    def expire(self, now: datetime) -> list[str]:
        return list(self._run("expire", _micros(now)))

    def calls_in_progress(self, subscription_id: int | None = None) -> int:
        return int(self._run("count", "" if subscription_id is None else subscription_id))

    def reserved_seconds(self, subscription_id: int) -> int:
        return int(self._run("reserved", subscription_id))

    # -- carriers' channels -----------------------------------------------------------------
    def hold_channel(self, call_id: str, carrier: str | None) -> None:
        self._run("hold", call_id, carrier or "")

    def held_carrier(self, call_id: str) -> str | None:
        held = self._run("held", call_id)
        return str(held) if held else None

    def channels_in_use(self) -> Mapping[str, int]:
        flat = self._run("channels")
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def routing_order(self, call_id: str) -> int:
        return int(self._run("order", call_id))

    def channels_held_before(self, carrier: str, call_id: str) -> int:
        return int(self._run("before", carrier, call_id))

    # -- the period's use -------------------------------------------------------------------
    def reset_usage(self, usage: Mapping[int, Usage]) -> None:
        document = {
            str(subscription_id): [used.answered_seconds, sorted(used.distinct_numbers)]
            for subscription_id, used in usage.items()
        }
        # cjson reads an empty JSON object as an empty table: `{}` is fine for no usage
        self._run("reset", json.dumps(document))

    def usage(self, subscription_id: int) -> Usage | None:
        return _period(self._run("usage", subscription_id))

    def current_usage(self, subscription_id: int) -> Usage | None:
        return self.decision_usage(subscription_id)[0]

    def decision_usage(self, subscription_id: int) -> tuple[Usage | None, int]:
        period, active, reserved, version = self._run("decision", subscription_id)
        return merged_usage(_period(period), int(active), int(reserved)), int(version)

    def add_usage(
        self, subscription_id: int, *, answered_seconds: int = 0, destination: str | None = None
    ) -> None:
        self._run("add", subscription_id, answered_seconds, destination or "")

    # -- carriers' states -------------------------------------------------------------------
    def set_carrier_condition(self, carrier: str, state: CarrierState) -> None:
        document = {
            "up": state.up,
            "effective_channels": state.effective_channels,
            "de_preferred": state.de_preferred,
        }
        self._run("condition", carrier, json.dumps(document))

    def carrier_conditions(self) -> Mapping[str, CarrierState]:
        flat = self._run("conditions")
        conditions = {}
        for i in range(0, len(flat), 2):
            document = json.loads(flat[i + 1])
            conditions[flat[i]] = CarrierState(
                up=bool(document["up"]),
                effective_channels=document["effective_channels"],
                de_preferred=bool(document["de_preferred"]),
            )
        return conditions


def connect_live_counters(
    url: str, *, prefix: str = DEFAULT_PREFIX, timeout_s: float = 0.5
) -> RedisLiveCounters:
    """Counters on the Redis at `url` (redis://host:port/db, rediss:// for TLS, unix://...),
    checked at once: raises `InvalidConfiguration` for a URL redis-py cannot read and
    `Unavailable` when nothing answers there. `timeout_s` bounds every command (a decision
    waits on it: keep it well under the edge's `brain_timeout_ms`)."""
    try:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
    except ValueError as error:
        raise InvalidConfiguration(f"redis_url {url!r} is not a Redis URL: {error}") from error
    counters = RedisLiveCounters(client, prefix=prefix)
    counters.ping()
    return counters


# -- translation ------------------------------------------------------------------------------
def _micros(moment: datetime) -> int:
    """A timezone-aware time as integer microseconds since 1970 (exact in a Redis score)."""
    return (moment - _EPOCH) // _MICROSECOND


def _encode_call(call: OpenCall) -> str:
    # subscription id and reserved seconds as text: the script uses them as hash fields and
    # cjson would write large numbers in exponent notation
    return json.dumps(
        {
            "subscription_id": str(call.subscription_id),
            "destination": call.destination,
            "expires_at": call.expires_at.isoformat(),
            "carriers": list(call.carriers),
            "max_duration_s": str(call.max_duration // timedelta(seconds=1)),
            "reserved_seconds": str(call.reserved_seconds),
            "answered": call.answered,
            "opened_at": call.opened_at.isoformat() if call.opened_at else None,
        }
    )


def _decode_call(raw: str) -> OpenCall:
    document = json.loads(raw)
    opened_at = document.get("opened_at")
    return OpenCall(
        subscription_id=int(document["subscription_id"]),
        destination=document["destination"],
        expires_at=datetime.fromisoformat(document["expires_at"]),
        # cjson writes an empty array back as an empty object
        carriers=tuple(document["carriers"] or ()),
        max_duration=timedelta(seconds=int(document["max_duration_s"])),
        reserved_seconds=int(document["reserved_seconds"]),
        answered=bool(document["answered"]),
        opened_at=datetime.fromisoformat(opened_at) if opened_at else None,
    )


def _period(raw: Any) -> Usage | None:
    if not raw:
        return None
    answered, numbers = raw
    return Usage(answered_seconds=int(answered), distinct_numbers=frozenset(numbers))
