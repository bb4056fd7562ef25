"""Side-by-side speed and quality of one trained model as PyTorch eager and as ONNX variants.

    python -m bench.speed --bundle models/default --checkpoint runs/default/best.pt \\
        --data ../shared/data/flickr8k --threads 2

In one run, on the same real photos, for PyTorch eager (the training code's modules) and each
onnxruntime variant of the bundle (fp32, int8-decoder, int8-encoder, int8):

- encoder ms/image at batch 1 (the median photo of 32) and at batch 16
- greedy and beam-3 decoding ms/caption (encoder outputs of 32 photos, decoded 16 at a time)
- end to end, JPEG file -> caption, images/second over a folder of 200 photos (beam 3 and
  greedy; ORT through Captioner.caption_files, eager loading one batch after the other),
  measured in rounds over all rows
- quality on the test split at beam 3: BLEU-4 and CIDEr (points), so a faster variant is
  never a worse one by accident

and the ratio of every figure to PyTorch eager. Every timing is the best of --repeats (3)
after a warm-up: load elsewhere only ever adds time. The report says how much CPU other
processes took during the speed figures; above 5% it asks for a rerun. --sweep adds the
session-option sweep (decoder threads, spinning, pipelined encoding) for the fastest variant
that keeps quality. A bundle without quantized variants gets them in a temporary copy,
calibrated on training photos. Runs on the CPU alone; with onnxruntime-gpu and a GPU,
--provider cuda measures there (torch on cuda).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from captioner.bundle import load_bundle, write_manifest
from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import CaptionerError
from captioner.images import is_image_path, load_image, preprocess_batch
from captioner.session import choose_providers

BATCH = 16


@dataclass
class Row:
    name: str
    encoder_b1_ms: float = float("nan")  # per image
    encoder_b16_ms: float = float("nan")  # per image
    greedy_ms: float = float("nan")  # per caption, decoding only
    beam3_ms: float = float("nan")  # per caption, decoding only
    e2e_beam3_ips: float = float("nan")  # images per second, file -> caption
    e2e_greedy_ips: float = float("nan")
    bleu4: float = float("nan")  # points, test split, beam 3
    cider: float = float("nan")
    notes: dict[str, Any] = field(default_factory=dict)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info["cpu"] = " ".join(fields.get("Model name", "?").split())
        flags = fields.get("Flags", "").split()
        info["vnni"] = "avx512_vnni" in flags or "avx_vnni" in flags
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor() or "?"
    import onnxruntime as ort
    import torch

    info |= {"onnxruntime": ort.__version__, "torch": torch.__version__,
             "ort_providers": ort.get_available_providers()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` calls after one warm-up call (interference only ever adds time)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def e2e(runner: Any, paths: list[Path], beam: int, repeats: int) -> float:
    """Images per second, files -> captions (best of `repeats` passes: the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        n = sum(1 for _ in runner.caption_files(paths, CaptionOptions(beam_size=beam), batch_size=BATCH))
        best = min(best, time.perf_counter() - start)
    return n / best


def quality(runner: Any, split: Any) -> tuple[float, float, list[str]]:
    from training.metrics import coco_scores

    texts = ["" if isinstance(r, CaptionerError) else r.text
             for _, r in runner.caption_files(split.paths, CaptionOptions(beam_size=3), batch_size=BATCH)]
    scores = coco_scores(split.captions, texts, meteor=False)
    return 100 * scores["BLEU-4"], 100 * scores["CIDEr"], texts


def measure(name: str, runner: Any, photos: np.ndarray, args: argparse.Namespace) -> Row:
    """Encoder and decoder figures of one runner (end to end and quality come later)."""
    row = Row(name)
    runner.encode(photos[:1])
    passes = []
    for _ in range(args.repeats):  # batch 1: every photo once; the median photo, best pass
        singles = []
        for i in range(len(photos)):
            start = time.perf_counter()
            runner.encode(photos[i:i + 1])
            singles.append(time.perf_counter() - start)
        passes.append(statistics.median(singles))
    row.encoder_b1_ms = 1e3 * min(passes)
    row.encoder_b16_ms = 1e3 * timed(partial(runner.encode, photos[:BATCH]), args.repeats) / BATCH
    encoded = [runner.encode(photos[i:i + BATCH]) for i in range(0, len(photos), BATCH)]

    def decode_all(opts: CaptionOptions) -> None:
        for e in encoded:
            runner.decode(e, opts)

    for beam, attr in ((1, "greedy_ms"), (3, "beam3_ms")):
        seconds = timed(partial(decode_all, CaptionOptions(beam_size=beam)), args.repeats)
        setattr(row, attr, 1e3 * seconds / len(photos))
    return row


def measure_e2e(rows: list[Row], runners: list[tuple[str, Any]], paths: list[Path], rounds: int) -> None:
    """End-to-end images/s, in rounds over all runners (each round: every runner once, beam 3
    then greedy); a runner's figure is its best round, so a burst of load elsewhere costs
    one round, not one row."""
    for row in rows:
        row.e2e_beam3_ips = row.e2e_greedy_ips = 0.0
    for _ in range(rounds):
        for row, (_, runner) in zip(rows, runners, strict=True):
            row.e2e_beam3_ips = max(row.e2e_beam3_ips, e2e(runner, paths, 3, 1))
            row.e2e_greedy_ips = max(row.e2e_greedy_ips, e2e(runner, paths, 1, 1))


class OtherLoad:
    """How much CPU other processes took while a block ran, as a share of all cores (Linux).

    Timings are only comparable on an otherwise idle machine; this says whether it was."""

    def __enter__(self) -> OtherLoad:
        self.share = float("nan")
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        if self._start is not None and end is not None:
            (busy0, own0, wall0), (busy1, own1, wall1) = self._start, end
            cores = os.cpu_count() or 1
            self.share = max(0.0, (busy1 - busy0) - (own1 - own0)) / max((wall1 - wall0) * cores, 1e-9)

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return busy, usage.ru_utime + usage.ru_stime, time.monotonic()


def ensure_quantized(bundle_dir: Path, calibration: list[Path], work: Path) -> Path:
    """The bundle itself when it has int8 variants, else a temporary copy with them added."""
    bundle = load_bundle(bundle_dir)
    if "int8" in bundle.manifest.variants:
        return bundle_dir
    from export.quantize import add_quantized_variants

    copy = work / bundle_dir.name
    shutil.copytree(bundle_dir, copy)
    manifest = load_bundle(copy).manifest
    print(f"{bundle_dir} has no quantized variants: adding them to a temporary copy "
          f"(calibrated on {len(calibration)} training photos)", flush=True)
    add_quantized_variants(copy, manifest, calibration)
    write_manifest(copy, manifest)
    return copy


def fastest_keeping_quality(rows: list[Row]) -> str | None:
    """The variant training.select_variant would choose from these rows (None without fp32
    or quality figures)."""
    from training.select_variant import VariantScore, choose

    scores = [VariantScore(r.name[4:], "", 0, r.e2e_beam3_ips, r.bleu4, r.cider)
              for r in rows if r.name.startswith("ort-")]
    if not any(s.variant == "fp32" for s in scores) or any(np.isnan(s.bleu4) for s in scores):
        return None
    return choose(scores)


def table(rows: list[Row], ref: Row) -> str:
    """Markdown: figures, then the ratio to PyTorch eager (speed-up: higher is better)."""
    head = ("| variant | encoder b1 ms/img | encoder b16 ms/img | greedy ms/caption | "
            "beam-3 ms/caption | e2e beam-3 img/s | e2e greedy img/s | BLEU-4 | CIDEr |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r.name} | {r.encoder_b1_ms:.1f} | {r.encoder_b16_ms:.1f} | {r.greedy_ms:.2f} | "
                     f"{r.beam3_ms:.2f} | {r.e2e_beam3_ips:.1f} | {r.e2e_greedy_ips:.1f} | "
                     f"{r.bleu4:.2f} | {r.cider:.2f} |")
    lines += ["", "Speed-up against PyTorch eager (x; BLEU-4/CIDEr: difference in points):", "",
              head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r.name} | {ref.encoder_b1_ms / r.encoder_b1_ms:.2f} | "
            f"{ref.encoder_b16_ms / r.encoder_b16_ms:.2f} | {ref.greedy_ms / r.greedy_ms:.2f} | "
            f"{ref.beam3_ms / r.beam3_ms:.2f} | {r.e2e_beam3_ips / ref.e2e_beam3_ips:.2f} | "
            f"{r.e2e_greedy_ips / ref.e2e_greedy_ips:.2f} | {r.bleu4 - ref.bleu4:+.2f} | "
            f"{r.cider - ref.cider:+.2f} |")
    return "\n".join(lines)


def sweep(bundle_dir: Path, variant: str, provider: str, paths: list[Path], threads: int,
          repeats: int) -> list[dict[str, Any]]:
    """End-to-end beam-3 images/s of one variant under different session options."""
    from captioner.session import make_session

    configs = [  # (encoder threads, decoder threads, decoder spinning, pipelined encoding)
        (threads, 1, False, True),  # the defaults
        (threads, 1, False, False),
        (threads, threads, False, True),
        (threads, 1, True, True),
        (threads, threads, True, True),
        (threads, threads, True, False),
    ]
    if threads > 1:
        configs.append((threads - 1, 1, False, True))
    out = []
    for enc_threads, dec_threads, spinning, pipeline in configs:
        cap = Captioner(bundle_dir, provider=provider, variant=variant, encoder_threads=enc_threads,
                        decoder_threads=dec_threads, pipeline=pipeline)
        if spinning:  # same graph, a decoder session whose threads spin while waiting
            cap.decoder = make_session(cap.bundle.graph_paths(variant)[1], choose_providers(provider),
                                       dec_threads, spinning=True)
        entry = {"encoder_threads": enc_threads, "decoder_threads": dec_threads,
                 "spinning": spinning, "pipeline": pipeline,
                 "e2e_beam3_ips": round(e2e(cap, paths, 3, repeats), 1)}
        print("  sweep " + json.dumps(entry), flush=True)
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("models/default"))
    parser.add_argument("--checkpoint", type=Path, help="training checkpoint of the same model "
                        "(default runs/<bundle name>/best.pt); without one, no eager row")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/flickr8k"))
    parser.add_argument("--dataset", default="flickr8k", choices=["flickr8k", "coco", "sidecar"])
    parser.add_argument("--annotations", type=Path)
    parser.add_argument("--photos", type=int, default=200, help="end-to-end folder size")
    parser.add_argument("--photos-dir", type=Path, help="folder of photos for the end-to-end "
                        "figures (default: the first --photos test-split photos)")
    parser.add_argument("--quality-images", type=int, default=0, help="test images scored (0: all)")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--variants", nargs="*", help="ORT variants (default: all of the bundle)")
    parser.add_argument("--no-eager", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also sweep session options")
    parser.add_argument("--sweep-variant", help="variant to sweep (default: the fastest that keeps quality)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--markdown", type=Path, help="write the report (machine, command, tables) here")
    args = parser.parse_args(argv)

    import torch

    from training.data import CaptionSet, load_splits

    torch.set_num_threads(args.threads)
    splits = load_splits(args.dataset, args.data, args.annotations)
    test = splits["test"]
    if args.photos_dir:
        paths = sorted(p for p in args.photos_dir.iterdir() if is_image_path(p))[: args.photos]
    else:
        paths = test.paths[: args.photos]
    split = None
    if not args.no_quality:
        n = args.quality_images or len(test)
        split = CaptionSet(test.paths[:n], test.captions[:n])
    info = machine() | {"threads": args.threads, "photos": len(paths),
                        "quality_images": len(split) if split else 0}
    print(json.dumps(info), flush=True)

    providers = choose_providers(args.provider)
    provider = "cuda" if providers[0].startswith("CUDA") else "cpu"
    rows: list[Row] = []
    runners: list[tuple[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        calibration = splits["train"].paths[:: max(1, len(splits["train"]) // 200)][:200]
        bundle_dir = ensure_quantized(args.bundle, calibration, Path(tmp))
        bundle = load_bundle(bundle_dir)
        spec = bundle.manifest.input_spec
        photos = preprocess_batch([load_image(p, draft_size=spec.size) for p in paths[: 2 * BATCH]], spec)
        checkpoint = args.checkpoint or Path("runs") / args.bundle.name / "best.pt"
        if not args.no_eager and checkpoint.is_file():
            from bench.eager import TorchCaptioner

            device = "cuda" if provider == "cuda" else "cpu"
            runners.append(("torch-eager", TorchCaptioner(checkpoint, bundle, device=device)))
        elif not args.no_eager:
            print(f"no checkpoint at {checkpoint}: no PyTorch eager row", flush=True)
        auto = Captioner(bundle, provider=args.provider).variant
        for variant in args.variants or list(bundle.manifest.variants):
            runners.append((f"ort-{variant}", Captioner(bundle, provider=args.provider, variant=variant,
                                                        encoder_threads=args.threads)))
        print("speed (all rows first, back to back):", flush=True)
        with OtherLoad() as speed_load:
            rows = [measure(name, runner, photos, args) for name, runner in runners]
            measure_e2e(rows, runners, paths, args.repeats)
        for row in rows:
            print(f"  {row.name}: " + json.dumps({k: round(v, 2) for k, v in asdict(row).items()
                                                  if isinstance(v, float) and not np.isnan(v)}), flush=True)
        if split is not None:
            print("quality:", flush=True)
            for row, (_, runner) in zip(rows, runners, strict=True):
                row.bleu4, row.cider, texts = quality(runner, split)
                row.notes["distinct_captions"] = len(set(texts)) / max(len(texts), 1)
                print(f"  {row.name}: BLEU-4 {row.bleu4:.2f}  CIDEr {row.cider:.2f}", flush=True)
        del runners
        swept = args.sweep_variant or fastest_keeping_quality(rows) or auto
        sweep_rows: list[dict[str, Any]] = []
        with OtherLoad() as sweep_load:
            if args.sweep:
                sweep_rows = sweep(bundle_dir, swept, args.provider, paths, args.threads, args.repeats)
    info["other_load_during_speed"] = round(speed_load.share, 3)
    info["other_load_during_sweep"] = round(sweep_load.share, 3) if args.sweep else None
    ref = rows[0]
    report = [
        f"- machine: {info.get('cpu')}, {info['cores']} cores ({args.threads} threads used), "
        f"provider {provider}{', GPU ' + info['gpu'] if provider == 'cuda' and 'gpu' in info else ''}; "
        f"onnxruntime {info['onnxruntime']}, torch {info['torch']}, Python {info['python']}",
        "- command: `python -m bench.speed " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        f"- bundle {args.bundle} ('auto' on {provider} = {auto}); {len(paths)} photos end to end "
        f"(beam 3 and greedy, batches of {BATCH}); quality on {info['quality_images']} test images "
        "at beam 3",
        f"- other processes took {100 * speed_load.share:.1f}% of the CPU while the speed figures "
        "were measured" + (" (disturbed: rerun on an idle machine)" if speed_load.share > 0.05 else ""),
        "", table(rows, ref)]
    if sweep_rows:
        report += ["", f"Session options, ort-{swept}, end-to-end beam-3 images/s (other processes: "
                   f"{100 * sweep_load.share:.1f}% of the CPU):", "",
                   "| encoder threads | decoder threads | decoder spinning | pipelined encoding | img/s |",
                   "|---|---|---|---|---|"]
        report += [f"| {e['encoder_threads']} | {e['decoder_threads']} | {'on' if e['spinning'] else 'off'} "
                   f"| {'on' if e['pipeline'] else 'off'} | {e['e2e_beam3_ips']} |" for e in sweep_rows]
    text = "\n".join(report) + "\n"
    print()
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "provider": provider, "auto": auto,
                                         "rows": [asdict(r) for r in rows], "sweep": sweep_rows},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
