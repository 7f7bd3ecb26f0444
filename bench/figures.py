"""The bench's figures and its round plan (pure functions, unit-tested)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

MiB = 1 << 20


def ratio(product: float, peers: Mapping[str, float]) -> tuple[float, str]:
    """Product seconds / the best (fastest) peer's seconds, and that peer's name."""
    if not peers:
        raise ValueError("no peer timing to compare with")
    best = min(peers, key=lambda name: peers[name])
    if peers[best] <= 0:
        raise ValueError(f"peer {best} took {peers[best]} s: not a timing")
    return product / peers[best], best


def mb_per_s(raw_bytes: int, seconds: float) -> float:
    """MiB of the raw (uncompressed) stream per second."""
    return raw_bytes / MiB / seconds if seconds > 0 else 0.0


def medians(runs: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of every measure."""
    return {name: statistics.median(values) for name, values in runs.items() if values}


def round_order(round_no: int, names: Sequence[str]) -> list[str]:
    """The order of the tools in round `round_no`: who runs first, and after whom, varies.

    A plain rotation keeps the cycle: every tool but the round's first always runs right
    after the same other tool, so whatever one tool leaves behind (the product's restore
    restarts the server on rewritten files) always lands on the same next one. The rounds
    follow a Williams design instead: with an even number of tools, in every `len(names)`
    rounds each tool runs first once and right after each other tool once; with an odd
    number, the rotated rows alternate with their mirror images, which balances the same
    over `2 * len(names)` rounds.
    """
    count = len(names)
    first: list[int] = [0]
    low, high = 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    shift = round_no % count if count % 2 == 0 else (round_no // 2) % count
    row = [(index + shift) % count for index in first]
    if count % 2 and round_no % 2:
        row.reverse()
    return [names[index] for index in row]


#: the fewest rounds per size when `--rounds` is not given: more where a run is short and
#: noisy; `rounds_for` rounds them up to whole cycles of `round_order`
SMALL_ROUNDS, LARGE_ROUNDS, LARGE_MIB = 7, 3, 1024


def cycle_length(tools: int) -> int:
    """Rounds after which `round_order` has balanced who runs first and after whom."""
    if tools < 1:
        raise ValueError("a round needs at least one tool")
    return tools if tools % 2 == 0 else 2 * tools


def rounds_for(size_mib: float, rounds: int | None, tools: int) -> int:
    """Rounds at `size_mib` for `tools` tools: `rounds` when given, else whole cycles.

    At least 7 rounds below 1 GiB and 3 from there, rounded up to a whole number of
    `round_order` cycles: a cut cycle leaves some tool first, or right after a given
    other, more often than the rest.
    """
    if rounds is not None:
        return rounds
    least = SMALL_ROUNDS if size_mib < LARGE_MIB else LARGE_ROUNDS
    cycle = cycle_length(tools)
    return -(-least // cycle) * cycle


def per_round(product: Sequence[float], peer: Sequence[float]) -> list[float]:
    """Product seconds / the peer's in the same round, round by round.

    Runs of one round are minutes apart at most, so their ratio leaves out what changes
    between rounds (other guests on the host, the gateway's memory).
    """
    if len(product) != len(peer):
        raise ValueError(f"{len(product)} product runs against {len(peer)} peer runs")
    if any(secs <= 0 for secs in peer):
        raise ValueError("a peer run of 0 s or less is not a timing")
    return [mine / theirs for mine, theirs in zip(product, peer, strict=True)]
