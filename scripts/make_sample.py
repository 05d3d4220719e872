#!/usr/bin/env python3
"""Regenerate ivr/sample/accounts.csv and payments.csv (deterministic; see ivr.sample.generate).

    .venv/bin/python scripts/make_sample.py                 # the committed copies
    .venv/bin/python scripts/make_sample.py --today 2027-03-01 --out /tmp/sample
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.sample.generate import SAMPLE_DIR, SAMPLE_TODAY, write_sample  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=SAMPLE_TODAY,
                        help=f"the day the export is made, YYYY-MM-DD (default {SAMPLE_TODAY})")
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="directory (default ivr/sample)")
    args = parser.parse_args(argv)
    for path in write_sample(args.out, args.today):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
