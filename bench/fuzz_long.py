"""Run the fuzz targets of tests/test_fuzz.py for a long time, by hand.

    python bench/fuzz_long.py --minutes 30             # image loader, then video reader
    python bench/fuzz_long.py --minutes 60 --only image

Each target gets its share of the time, in rounds of fresh random examples (CI runs one fixed,
derandomized round). Known failures marked xfail in the suite are run as plain tests here
(--runxfail), so anything that escapes shows. A failure prints the falsifying input and the
`@reproduce_failure` line to paste onto the test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"image": "test_fuzz_image_loader", "video": "test_fuzz_video_reader"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="total time (default 10)")
    parser.add_argument("--only", choices=sorted(TARGETS), help="fuzz one target only")
    args = parser.parse_args()
    chosen = [args.only] if args.only else list(TARGETS)
    seconds = args.minutes * 60 / len(chosen)
    worst = 0
    for name in chosen:
        print(f"fuzzing the {name} target for {seconds / 60:.1f} min", flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CAPTIONER_FUZZ_SECONDS": str(seconds)}
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--runxfail",
                                f"tests/test_fuzz.py::{TARGETS[name]}"], cwd=ROOT, env=env)
        print(f"{name}: {'no escape found' if code == 0 else 'FAILED, see above'}", flush=True)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
