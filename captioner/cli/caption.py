"""`captioner caption PATH...`: prints `path<TAB>caption` for each image.

Errors go to stderr as one line per file, the batch goes on, and a summary closes the run.
Exit code: 0 all captioned, 1 some files failed, 2 nothing could run (bad bundle, bad usage).
Paths and captions are printed on one line each whatever they hold (see output.shown);
--json keeps the exact names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

from captioner.captioner import CaptionOptions, CaptionResult
from captioner.cli.alt_text import MetadataReport
from captioner.cli.archive import (
    Skipper,
    Sources,
    add_archive_options,
    check_archive_options,
    output_files,
    photos,
    sidecar_target,
    write_mirrored,
)
from captioner.cli.jsonl import JsonlOutput, path_key
from captioner.cli.listing import as_available, chunks, open_list
from captioner.cli.options import add_model_options, load_captioner
from captioner.cli.output import PHOTOS, Progress, Tally, emit, message, shown, stderr_is_terminal
from captioner.cli.tag_options import LowConfidence, add_tag_options, tag_fields, tag_words
from captioner.cli.targets import Inputs, check_output_file, same_file
from captioner.errors import CaptionerError
from captioner.files import find_images
from captioner.writers import (
    CaptionRecord,
    Outcome,
    shared_sidecar_reason,
    sidecar_path,
    write_csv,
    write_json,
    write_sidecar,
)


def add_caption_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("caption", help="caption image files and folders")
    p.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    add_model_options(p, batch_default=16)
    p.add_argument("--sidecar", action="store_true", help="write NAME.txt next to each image")
    p.add_argument("--json", type=Path, help="write all captions to one JSON file")
    p.add_argument("--csv", type=Path, help="write all captions to one CSV file")
    p.add_argument("--write-metadata", action="store_true",
                   help="write the caption into each photo as its alt text (IPTC alt text, XMP "
                        "description, EXIF ImageDescription) and its tags as keywords (XMP "
                        "dc:subject, IPTC Keywords; never removes any); JPEG, PNG, WebP, TIFF")
    p.add_argument("--overwrite", action="store_true",
                   help="replace caption files that exist, and alt text already in photos "
                        "(never a photo, a video or any file this tool does not write)")
    p.add_argument("--alternatives", action="store_true", help="print the n-best list too")
    add_tag_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_archive_options(p)
    p.set_defaults(func=run_caption)


def run_caption(args: argparse.Namespace) -> int:
    check_archive_options(args)
    tally = Tally()
    found = find_images(args.paths, recursive=args.recursive)
    inputs = Inputs([*found.images, *args.paths])
    check_outputs(args, inputs, found.images)
    listed = open_list(args.files_from) if args.files_from else None
    jsonl = JsonlOutput.open(args.jsonl, inputs, args.overwrite) if args.jsonl else None
    for path, reason in found.problems:
        tally.fail(path, reason)
    skipper = Skipper(args, jsonl, inputs, tally)
    todo: Iterable[Path] = skipper.todo(photos(args, Sources(found.images, listed, inputs,
                                                             output_files(args)), tally))
    if listed is None:
        todo = list(todo)  # a known total for the progress bar
    total = len(todo) if isinstance(todo, list) else None
    batch = Batch(args, inputs, tally, jsonl)
    progress = Progress("", PHOTOS, not args.quiet and total != 1 and stderr_is_terminal())
    for done, (path, result) in enumerate(caption_source(args, todo), 1):
        progress.update(done, total)
        if isinstance(result, CaptionerError):
            tally.fail_with(result, path)
        else:
            batch.take(path, result)
        if batch.reader_left():
            break
    progress.clear()
    if jsonl is not None and skipper.in_jsonl:
        message(f"{skipper.in_jsonl} photos already in --jsonl {shown(jsonl.name)}: not captioned again")
    return batch.finish()


def caption_source(args: argparse.Namespace, todo: Iterable[Path]
                   ) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
    """Results in order, from this process or from a Ray cluster (--ray). The model is loaded
    first either way: a bad bundle ends the run (exit 2) before any work."""
    if args.ray:
        from captioner.cluster import caption_on_ray
        yield from caption_on_ray(args, todo)
        return
    options = CaptionOptions(beam_size=args.beam, max_length=args.max_length)
    captioner = load_captioner(args)
    most = args.batch_size * 8  # a list of any length; one from --files-from as it arrives
    for chunk in chunks(todo, most) if isinstance(todo, list) else as_available(todo, most):
        yield from captioner.caption_files(chunk, options, args.batch_size)


def check_outputs(args: argparse.Namespace, inputs: Inputs, images: list[Path]) -> None:
    """Bad output arguments end the run before any work (exit 2), in one line."""
    targets = [(option, path) for option, path in (("--json", args.json), ("--csv", args.csv)) if path]
    for option, path in targets:
        check_output_file(option, path, inputs)
    if len(targets) == 2 and same_file(targets[0][1], targets[1][1]):
        raise CaptionerError(f"--json and --csv name the same file ({targets[0][1]})")
    if args.sidecar:
        sidecars = {sidecar_path(p): p for p in images}
        for option, path in targets:
            if path in sidecars:
                raise CaptionerError(f"{option} {path}: is the caption file of {sidecars[path]}")


class Batch:
    """One caption run's outputs: stdout lines, sidecars, alt text, then JSON and CSV."""

    def __init__(self, args: argparse.Namespace, inputs: Inputs, tally: Tally,
                 jsonl: JsonlOutput | None = None) -> None:
        self.args, self.inputs, self.tally, self.jsonl = args, inputs, tally, jsonl
        self.records: list[CaptionRecord] = []  # kept only for --json and --csv
        self.captioned = 0
        self.claimed: dict[Path, Path] = {}  # sidecar -> the image whose caption it got
        self.alt_text = MetadataReport(tally, alt_text=not args.keywords_only)
        self.low_confidence = LowConfidence(args.min_confidence)

    def take(self, path: Path, result: CaptionResult) -> None:
        if self.low_confidence.holds_back(path, result):
            return  # left for a person: written nowhere
        self.captioned += 1
        if self.jsonl is None or self.jsonl.fd is not None:  # stdout is the JSONL's alone
            emit(path, result.text, *tag_fields(self.args, result))
            if self.args.alternatives:
                for text, score in result.alternatives:
                    emit("", f"{score:8.3f}  {text}")
        record = CaptionRecord(path, result.text, result.score, result.alternatives,
                               result.confidence, result.tags)
        if self.args.json or self.args.csv:
            self.records.append(record)
        if self.jsonl is not None and path_key(path) not in self.jsonl.done:  # n-best when asked
            self.write_line(record if self.args.alternatives else replace(record, alternatives=()))
        if self.args.sidecar:
            self.sidecar(path, result.text)
        if self.args.write_metadata:
            self.alt_text.write(path, result.text, tag_words(result), self.args.overwrite)

    def sidecar(self, path: Path, text: str) -> None:
        target = sidecar_target(self.args, path)
        if target in self.claimed:  # photo.jpg and photo.png share photo.txt: the first keeps it
            self.tally.fail(path, shared_sidecar_reason(path, self.claimed[target]))
            return
        self.claimed[target] = path
        if target != path and self.inputs.holds(target):
            self.tally.fail(target, "is one of the files being captioned; not replaced")
            return
        if self.args.out_dir is None:
            self.write(partial(write_sidecar, path, text, self.args.overwrite), target)
        else:
            self.write(partial(write_mirrored, target, self.args.out_dir, text, self.args.overwrite),
                       target)

    def write_line(self, record: CaptionRecord) -> None:
        assert self.jsonl is not None
        try:
            self.jsonl.write(record)
        except CaptionerError as exc:  # a full disk: every later line would fail too
            self.jsonl.close()
            raise exc

    def reader_left(self) -> bool:
        """--jsonl - was the run's only output and its reader closed the pipe (`| head`):
        say so and stop, rather than caption on for nobody."""
        a, j = self.args, self.jsonl
        if j is None or not j.reader_left or a.sidecar or a.write_metadata or a.json or a.csv:
            return False
        message(f"stopped: stdout was closed after {j.written} lines (the reader left); "
                "the rest were not captioned")
        return True

    def write(self, write: Callable[[], Outcome], target: Path) -> None:
        try:
            if write() is Outcome.SKIPPED_EXISTS:
                self.tally.skipped.append(target)
        except CaptionerError as exc:
            self.tally.fail_with(exc, target)

    def finish(self) -> int:
        if self.args.write_metadata:
            self.alt_text.report()
        for target, writer in ((self.args.json, write_json), (self.args.csv, write_csv)):
            if target:
                self.write(partial(writer, target, self.records, self.args.overwrite), target)
        if self.jsonl is not None:
            self.jsonl.close()
        return self.tally.close(f"{self.captioned} captioned{self.low_confidence.summary()}")
