"""Interleaved repetitions, their statistics, and memory readings.

The machine is shared and has few cores, so background load comes and goes.
Each round runs every variant once, back to back, in an order that rotates
from round to round (A B C, B C A, C A B...), so that load hits every side
alike; ratios are taken within a round and then summarised.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import typing as t
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Stats:
    """Median and spread of the repetitions of one figure."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int
    unit: str

    @classmethod
    def of(cls, samples: t.Sequence[float], unit: str) -> Stats:
        ordered = sorted(samples)
        if len(ordered) >= 2:
            q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = q3 = ordered[0]
        return cls(statistics.median(ordered), q1, q3, ordered[0], ordered[-1], len(ordered), unit)

    def as_dict(self) -> dict[str, t.Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """One repetition: wall-clock time, and the CPU time of this process (all its threads)."""

    wall: float
    cpu: float
    #: Wall-clock time spent afterwards, untimed, waiting for the extension's background writes.
    after: float = 0.0


class Clock:
    """Times a block in wall-clock and in process CPU time::

    with Clock() as clock:
        ...
    clock.timing(per=letters, scale=1000)  # ms per letter
    """

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu

    def timing(self, *, per: int = 1, scale: float = 1.0, after: float = 0.0) -> Timing:
        return Timing(self.wall / per * scale, self.cpu / per * scale, after)


def interleaved(
    variants: t.Mapping[str, t.Callable[[], Timing]], *, rounds: int, warmup: int = 1
) -> dict[str, list[Timing]]:
    """Run every variant once per round, rotating the order; drop the warm-up rounds.

    Each callable runs one repetition and returns its own timing (of only
    the part that is measured, not its setup).
    """
    names = list(variants)
    samples: dict[str, list[Timing]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            value = variants[name]()
            if index >= warmup:
                samples[name].append(value)
    return samples


def walls(samples: t.Mapping[str, list[Timing]]) -> dict[str, list[float]]:
    return {name: [s.wall for s in values] for name, values in samples.items()}


def cpus(samples: t.Mapping[str, list[Timing]]) -> dict[str, list[float]]:
    return {name: [s.cpu for s in values] for name, values in samples.items()}


def paired_ratios(samples: t.Mapping[str, list[float]], numerator: str, denominator: str) -> list[float]:
    """``numerator / denominator`` within each round."""
    return [a / b for a, b in zip(samples[numerator], samples[denominator], strict=True)]


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")
