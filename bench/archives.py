"""Large runs side by side (issue 18): what a rerun over a finished folder costs, and photos/s
of the plain CLI beside Ray Data with 1 and 2 actors.

    python -m bench.archives --photos 200 --data ../shared/data/flickr8k/images

Copies N real photos to a temporary folder (never into the repo), then in one run:

1. `captioner caption DIR --sidecar --jsonl F` (first run), the same again (rerun: every
   photo is finished, so none is read), and `--jsonl F` alone again: wall seconds of each
   command (a fresh process: import, and model load when needed) and the rerun/first ratio;
2. with `--ray`: photos/s of `captioner caption DIR --jsonl F` in this process, plain and on
   a local Ray instance (`ray.init(num_cpus=2)`, started once beforehand) with 1 and 2
   actors (each actor loads its own model, which is counted), and each against the plain run.

Every timing is the best of --repeats. Prints a Markdown table; the CPU is named on top.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best_of(repeats: int, before: Callable[[], None], run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def cli(*args: str) -> None:
    """One `captioner caption` in a fresh process, as a person runs it."""
    subprocess.run([sys.executable, "-m", "captioner", "caption", "--quiet", "--provider", "cpu", *args],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)


def rerun_rows(photos: Path, work: Path, repeats: int) -> list[tuple[str, float]]:
    jsonl = work / "run.jsonl"

    def clean() -> None:
        jsonl.unlink(missing_ok=True)
        for txt in photos.glob("*.txt"):
            txt.unlink()

    first = best_of(repeats, clean, lambda: cli(str(photos), "--sidecar", "--jsonl", str(jsonl)))
    cli(str(photos), "--sidecar", "--jsonl", str(jsonl))  # leave it finished
    nothing = lambda: None
    rerun = best_of(repeats, nothing, lambda: cli(str(photos), "--sidecar", "--jsonl", str(jsonl)))
    resume = best_of(repeats, nothing, lambda: cli(str(photos), "--jsonl", str(jsonl)))
    return [("first run: --sidecar --jsonl", first), ("rerun, all finished: --sidecar --jsonl", rerun),
            ("rerun, all finished: --jsonl", resume)]


def ray_rows(photos: Path, work: Path, repeats: int, count: int) -> list[tuple[str, float]]:
    import ray

    from captioner.cli import main

    jsonl = work / "ray.jsonl"
    clean = lambda: jsonl.unlink(missing_ok=True)

    def caption(*extra: str) -> Callable[[], None]:
        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):  # the TSV lines beside the JSONL
                main(["caption", str(photos), "--quiet", "--provider", "cpu", "--jsonl", str(jsonl),
                      *extra])
        return run

    rows = [("plain CLI, in-process", best_of(repeats, clean, caption()))]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for actors in (1, 2):
            rows.append((f"--ray, {actors} actor{'s' * (actors > 1)}",
                         best_of(repeats, clean, caption("--ray", "--actors", str(actors)))))
    finally:
        ray.shutdown()
    return [(name, count / seconds) for name, seconds in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/flickr8k/images")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    sources = sorted(args.data.glob("*.jpg"))[: args.photos]
    with tempfile.TemporaryDirectory(prefix="bench-archives-") as tmp:
        work = Path(tmp)
        photos = work / "photos"
        photos.mkdir()
        for src in sources:
            shutil.copy2(src, photos / src.name)
        print(f"{len(sources)} photos from {args.data}; {cpu_name()}, {os.cpu_count()} CPUs; "
              f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f} at the start\n")
        rows = rerun_rows(photos, work, args.repeats)
        first = rows[0][1]
        print("| command | seconds | / first run |\n|---|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} | {seconds / first:.3f} ({first / seconds:.1f}x faster) |"
                  if seconds != first else f"| {name} | {seconds:.2f} | 1 |")
        if not args.no_ray:
            speeds = ray_rows(photos, work, args.repeats, len(sources))
            plain = speeds[0][1]
            print(f"\nload average {os.getloadavg()[0]:.1f}\n")
            print("| caption DIR --jsonl F | photos/s | / plain CLI |\n|---|---|---|")
            for name, rate in speeds:
                print(f"| {name} | {rate:.1f} | {rate / plain:.2f} |")


if __name__ == "__main__":
    main()
