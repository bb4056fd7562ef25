"""Captioning on a Ray cluster (`pip install 'captioner[cluster]'`), for archives one machine
cannot finish in time: `captioner caption ... --ray [ADDRESS]`, or `python -m captioner.cluster`.

The run's photo list (after --files-from, --shard and the skip of finished photos) becomes a
Ray Data dataset; `map_batches` hands batches to a pool of `CaptionActor`s, each of which loads
one `Captioner` when it starts and keeps it (`--actors` = how many at once, one CPU each). The
results stream back to this process, which writes every output as a plain run does (--jsonl
with resume, sidecars, JSON, CSV), so both give the same records. The workers read the photos
by absolute path: on a multi-machine cluster they must see the same files (a shared mount).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from captioner.bundle import load_bundle
from captioner.captioner import Captioner, CaptionOptions, CaptionResult
from captioner.default_model import default_bundle
from captioner.errors import CaptionerError, ImageLoadError, PathError
from captioner.session import Provider
from captioner.tags import Tag

INSTALL_HINT = "--ray needs Ray Data: pip install 'captioner[cluster]'"


@dataclass(frozen=True)
class ActorConfig:
    """What each actor needs to load its model and caption (sent to every worker, pickled)."""

    model: str  # absolute bundle folder, as the workers see it
    provider: Provider
    variant: str
    beam: int
    max_length: int | None
    batch_size: int
    threads: int  # onnxruntime threads per actor (its CPUs)


class CaptionActor:
    """One model per actor, loaded once; a batch in, one row per photo out."""

    def __init__(self, config: dict[str, object]) -> None:
        self.config = ActorConfig(**config)  # type: ignore[arg-type]
        c = self.config
        self.captioner = Captioner(c.model, provider=c.provider, variant=c.variant,
                                   encoder_threads=c.threads)
        self.options = CaptionOptions(beam_size=c.beam, max_length=c.max_length)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [Path(os.fsdecode(bytes(p))) for p in batch["path"]]
        rows: list[dict[str, object]] = []
        for _, result in self.captioner.caption_files(paths, self.options, self.config.batch_size):
            rows.append(to_row(result))
        columns = {name: np.array([r[name] for r in rows], dtype=object) for name in ROW_FIELDS}
        columns["key"] = np.asarray(batch["key"])
        return columns


ROW_FIELDS = ("caption", "score", "confidence", "tags", "alternatives", "error")


def to_row(result: CaptionResult | CaptionerError) -> dict[str, object]:
    """A result as flat columns (JSON text for the lists, so Arrow takes any batch)."""
    if isinstance(result, CaptionerError):
        reason = result.reason if isinstance(result, PathError) else str(result)
        return {"caption": "", "score": float("nan"), "confidence": float("nan"), "tags": "[]",
                "alternatives": "[]", "error": reason}
    return {"caption": result.text, "score": result.score,
            "confidence": float("nan") if result.confidence is None else result.confidence,
            "tags": json.dumps([[t.word, t.p] for t in result.tags]),
            "alternatives": json.dumps(result.alternatives), "error": ""}


def from_row(path: Path, row: dict[str, object]) -> CaptionResult | CaptionerError:
    """The inverse of to_row, for the writers of this process."""
    if row["error"]:
        return ImageLoadError(path, str(row["error"]))
    text = str(row["caption"])
    confidence = float(row["confidence"])  # type: ignore[arg-type]
    return CaptionResult(
        text, text.split(), float(row["score"]),  # type: ignore[arg-type]
        [(str(t), float(s)) for t, s in json.loads(str(row["alternatives"]))],
        np.zeros((0, 0, 0), np.float32),  # attention maps stay on the workers
        [Tag(str(w), float(p)) for w, p in json.loads(str(row["tags"]))],
        None if np.isnan(confidence) else confidence)


def actor_config(args: argparse.Namespace) -> ActorConfig:
    from captioner.cli.options import chosen_provider  # here: the workers never import the CLI

    provider = chosen_provider(args)
    model = os.path.abspath(args.model or default_bundle())
    return ActorConfig(model, provider, args.variant, args.beam, args.max_length,
                       args.batch_size, threads=1)


def connect(address: str, quiet: bool) -> None:
    """Join the cluster at `address` ("local": start one here), unless already connected."""
    import ray

    if quiet or not sys.stderr.isatty():  # Ray's own log lines would drown the run's
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not quiet and sys.stderr.isatty()
    context.execution_options.preserve_order = True


def caption_on_ray(args: argparse.Namespace, todo: Iterable[Path]
                   ) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
    """The photos' results, computed by a pool of actors on the cluster, in input order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise CaptionerError(INSTALL_HINT) from None
    config = actor_config(args)
    load_bundle(config.model)  # a bad bundle is one line here, not an actor's traceback
    paths = list(todo)
    if not paths:
        return
    connect(args.ray, args.quiet)
    actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    items = [{"key": i, "path": os.fsencode(os.path.abspath(p))} for i, p in enumerate(paths)]
    dataset = ray.data.from_items(items).map_batches(
        CaptionActor, fn_constructor_kwargs={"config": asdict(config)},
        batch_size=args.batch_size, batch_format="numpy", num_cpus=config.threads,
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(paths))))
    for row in dataset.iter_rows():
        path = paths[int(row["key"])]
        yield path, from_row(path, row)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m captioner.cluster ARGS`: `captioner caption ARGS --ray` (--ray=ADDRESS to join one)."""
    from captioner.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--ray" or a.startswith("--ray=") for a in args):
        args.append("--ray")
    return cli_main(["caption", *args])


if __name__ == "__main__":
    sys.exit(main())
