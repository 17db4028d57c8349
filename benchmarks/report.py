"""The printed table and the JSON file: the same figures in both."""

from __future__ import annotations

import json
import math
import typing as t

from scenarios import Section, Target


def _number(value: float) -> str:
    if math.isinf(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _target_line(target: Target, with_result: bool) -> str:
    if target.unit == "x":
        value = f"{target.value:.3f}"
        spread = f"{target.low:.3f}-{target.high:.3f}"
    else:
        value = f"{target.value:.2f} {target.unit}"
        spread = ""
    goal = f"{target.comparison}{target.limit:g}{'' if target.unit == 'x' else ' ' + target.unit}"
    result = ("PASS" if target.passed else "MISS") if with_result else "(info)"
    if not with_result:
        goal = ""
    return f"  {target.label:<66} {value:>10} {spread:>13} {goal:>9}  {result}"


def table(meta: t.Mapping[str, t.Any], sections: t.Sequence[Section]) -> str:
    """The human-readable report."""
    lines = [
        f"flask-smtp-accounts benchmark ({meta['code']}) — sink: {meta['sink']} at {meta['sink_address']}",
        f"site database: {meta['database']}; relay: {meta['relay_delay_ms_each_way']:g} ms each way",
        f"python {meta['python']}, {meta['cpus']} CPUs; {meta['rounds']} rounds after {meta['warmup']} warm-up"
        f" round(s); variants interleaved (order rotates every round), ratios taken within each round",
        "",
        "Figures (median, IQR q1-q3, min-max):",
    ]
    for section in sections:
        lines.append(f" {section.title}")
        for name, stats in section.figures.items():
            lines.append(
                f"  {name:<40} {_number(stats.median):>10} {stats.unit:<10}"
                f" IQR {_number(stats.q1)}-{_number(stats.q3)}  min-max {_number(stats.min)}-{_number(stats.max)}"
            )
        for note in section.notes:
            lines.append(f"  note: {note}")
        for key, value in section.extra.items():
            lines.append(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")
    lines += [
        "",
        "Ratios and targets (median of the per-round ratios, min-max):",
        f"  {'figure':<66} {'value':>10} {'spread':>13} {'target':>9}  result",
    ]
    for section in sections:
        for target in section.targets:
            lines.append(_target_line(target, True))
    info = [target for section in sections for target in section.info]
    if info:
        lines.append("  for reading, no target:")
        lines += [_target_line(target, False) for target in info]
    missed = [target.label for section in sections for target in section.targets if not target.passed]
    lines += ["", f"{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else "")]
    return "\n".join(lines)


def as_json(meta: t.Mapping[str, t.Any], sections: t.Sequence[Section]) -> dict[str, t.Any]:
    """The same report as plain data."""

    def target(item: Target) -> dict[str, t.Any]:
        return {
            "figure": item.label,
            "value": item.value,
            "min": item.low,
            "max": item.high,
            "unit": item.unit,
            "target": None if math.isinf(item.limit) else f"{item.comparison} {item.limit:g}",
            "limit": None if math.isinf(item.limit) else item.limit,
            "passed": item.passed if not math.isinf(item.limit) else None,
            "about": item.about,
        }

    return {
        "meta": dict(meta),
        "sections": [
            {
                "title": section.title,
                "figures": {name: stats.as_dict() for name, stats in section.figures.items()},
                "sender_cpu": {name: stats.as_dict() for name, stats in section.cpu.items()},
                "notes": section.notes,
                "extra": section.extra,
            }
            for section in sections
        ],
        "targets": [target(item) for section in sections for item in section.targets],
        "info": [target(item) for section in sections for item in section.info],
    }


def write_json(path: str, data: t.Mapping[str, t.Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
