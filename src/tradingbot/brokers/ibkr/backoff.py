"""Capped exponential backoff with jitter for reconnect attempts.

A gateway that restarts nightly comes back within a minute; hammering it every few
milliseconds wastes its accept queue, and several bots waking in lock-step after the same
outage would stampede it. So each failed attempt doubles the delay up to a cap, and the
delay is randomised ("equal jitter": half fixed, half random) so clients spread out while
the first retry still happens quickly. The random source is injectable so tests are exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for successive failed attempts: ``initial_s * factor**n``, capped, jittered."""

    initial_s: float = 0.1
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # fraction of each delay that is random, 0..1
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be within 0..1")

    def ceiling_s(self, attempt: int) -> float:
        """The un-jittered delay before attempt number ``attempt`` (0-based), capped."""
        # Compare in log space first so a long outage cannot overflow the float.
        if attempt > 64:
            return self.max_s
        return min(self.max_s, self.initial_s * self.factor**attempt)

    def next_delay_s(self, cap_s: float | None = None) -> float:
        """The delay before the next attempt (advances the counter); ``cap_s`` lowers the cap
        for this attempt only, still jittered, e.g. for refused connects that cost nothing."""
        ceiling = self.ceiling_s(self.attempts)
        if cap_s is not None:
            ceiling = min(ceiling, cap_s)
        self.attempts += 1
        fixed = ceiling * (1 - self.jitter)
        return fixed + self.rng.uniform(0, ceiling - fixed)

    def reset(self) -> None:
        """Call after a successful connect: the next outage starts from a quick retry."""
        self.attempts = 0
