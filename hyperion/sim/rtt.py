"""The measured inter-region RTT matrix (Skyplane, 2022) as a dense table for the simulator.

Regions are ``cloud:region`` (GCP zones are folded into their region). The source has
no GCP-GCP and no Azure-Azure pairs; those are filled with the triangle-inequality lower
bound ``max_k |rtt(a,k) - rtt(b,k)|`` over measured third regions, which is tight for
nearby regions and never above the truth. Same-region RTT is ``INTRA_REGION_RTT_MS``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from hyperion.datafiles import DataError, find

RTT_FILE = "skyplane_interregion_rtt_2022.csv"
PACKAGED_RTT = "rtt_regions.csv"
INTRA_REGION_RTT_MS = 1.0  # typical same-region, cross-AZ round trip
_ZONE = re.compile(r"^(gcp:.+\d)-[a-z]$")


def region_of(name: str) -> str:
    m = _ZONE.match(name)
    return m.group(1) if m else name


@dataclass(frozen=True)
class RttMatrix:
    regions: tuple[str, ...]
    avg_ms: tuple[tuple[float, ...], ...]
    mdev_ms: tuple[tuple[float, ...], ...]
    measured: tuple[tuple[bool, ...], ...]

    def index(self, region: str) -> int:
        try:
            return self.regions.index(region)
        except ValueError:
            raise DataError(f"unknown region {region!r}") from None

    def rtt_ms(self, a: str, b: str) -> float:
        return self.avg_ms[self.index(a)][self.index(b)]


def load(path: Path | None = None) -> RttMatrix:
    """Load the matrix from the shared CSV (or the packaged derived copy)."""
    path = path or find(RTT_FILE, packaged=PACKAGED_RTT)
    samples: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                a, b = region_of(row["src_region"]), region_of(row["dst_region"])
                premium = row.get("src_tier", "PREMIUM") == row.get("dst_tier", "PREMIUM")
                avg, mdev = float(row["avg_rtt_ms"]), float(row["mdev_rtt_ms"])
                for key in ((a, b), (b, a)):
                    samples.setdefault(key, []).append((0 if premium else 1, avg, mdev))
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"cannot read RTT matrix {path}: {e}") from e
    regions = tuple(sorted({a for a, _ in samples}))
    if not regions:
        raise DataError(f"RTT matrix {path} is empty")
    idx = {r: i for i, r in enumerate(regions)}
    n = len(regions)
    avg = [[-1.0] * n for _ in range(n)]
    mdev = [[0.0] * n for _ in range(n)]
    for (a, b), vals in samples.items():
        tier = min(v[0] for v in vals)  # prefer premium-tier measurements
        chosen = [v for v in vals if v[0] == tier]
        avg[idx[a]][idx[b]] = sum(v[1] for v in chosen) / len(chosen)
        mdev[idx[a]][idx[b]] = sum(v[2] for v in chosen) / len(chosen)
    measured = [[avg[i][j] >= 0 for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                avg[i][j] = INTRA_REGION_RTT_MS
            elif not measured[i][j]:
                bound = [
                    abs(avg[i][k] - avg[j][k])
                    for k in range(n)
                    if measured[i][k] and measured[j][k]
                ]
                avg[i][j] = max(max(bound, default=INTRA_REGION_RTT_MS), INTRA_REGION_RTT_MS)
    return RttMatrix(
        regions,
        tuple(tuple(r) for r in avg),
        tuple(tuple(r) for r in mdev),
        tuple(tuple(r) for r in measured),
    )


def write_packaged(matrix: RttMatrix, path: Path) -> None:
    """Write the measured pairs in the source's column layout (for the packaged copy)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["src_region", "src_tier", "dst_region", "dst_tier", "avg_rtt_ms", "mdev_rtt_ms"]
        )
        for i, a in enumerate(matrix.regions):
            for j, b in enumerate(matrix.regions):
                if j > i and matrix.measured[i][j]:
                    w.writerow(
                        [
                            a,
                            "PREMIUM",
                            b,
                            "PREMIUM",
                            f"{matrix.avg_ms[i][j]:.3f}",
                            f"{matrix.mdev_ms[i][j]:.3f}",
                        ]
                    )
