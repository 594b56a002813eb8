"""Print the fleet benchmark's JSON (same as ``hyperion bench fleet --json``).

python bench/fleet.py [--quick] [--seed S] [--plot FILE.png]
"""

from __future__ import annotations

import sys

from hyperion.cli.fleet import bench_app

if __name__ == "__main__":
    bench_app(["fleet", "--json", *sys.argv[1:]])
