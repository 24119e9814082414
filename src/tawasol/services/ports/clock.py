"""The clock port: the one way services (and stores) learn the time.

A clock returns now as a timezone-aware UTC datetime. Production wires
`adapters.clock.system_clock`; tests pass a fixed or hand-moved clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
