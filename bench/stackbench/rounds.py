"""Rounds in alternating order, and the spread of their samples."""

import statistics


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def rounds_in_turn(items: list, rounds: int) -> list[list]:
    """Every round runs every item, in reverse order every other round to spread the drift."""
    return [items if n % 2 == 0 else items[::-1] for n in range(rounds)]


def spreads(samples: dict[str, dict[str, list[float]]]) -> dict:
    """The spread of every sample list of {name: {where: samples}}."""
    return {
        name: {where: spread(values) for where, values in by.items()}
        for name, by in samples.items()
    }
