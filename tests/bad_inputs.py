"""A corpus of bad and unusual inputs, built at test time (nothing binary is committed).

    from tests.bad_inputs import make_bad_corpus, CAPTIONED, FAILED, IGNORED

    cases = make_bad_corpus(tmp_path)                       # images and videos
    cases = make_bad_corpus(tmp_path, bundle=tiny_bundle)   # and broken copies of a bundle

Layout under `root`:

    images/    every image case; some sit in sub-folders (loops/, readonly/, .thumbnails/),
               so open it recursively. Pre-existing sidecars (NAME.txt) are there too.
    videos/    video cases
    bundles/   one folder per bundle case (only with `bundle=`)

Each `BadCase` has `name`, `path`, `expectation` and `kind` ("image", "video", "bundle").
`expectation.outcome` says what a run must give:

    CAPTIONED    loaded and captioned (`caption` is set where the words are certain)
    FAILED       not captioned; `reason` is a fragment of the one-line reason shown
    IGNORED      never opened and not counted: a folder listing skips it
    INCOMPLETE   (video) captioned as far as it decodes, with a warning saying where it stopped
    REFUSED      (bundle) nothing runs; `reason` is a fragment of the message

More fields, each with a safe default:

    sidecar        text of a caption file that exists before the run (a person's work: it must
                   be unchanged unless the run was told to overwrite, and never touched when the
                   image fails)
    write_error    with sidecars on, writing this image's caption fails with this reason
                   (the image itself is captioned)
    vanishes       delete `path` after the folder has been listed and before captioning starts:
                   "a file deleted while the batch runs" (see `vanish()`)
    needs_permissions
                   the expectation holds only where file permissions are enforced; a root
                   process ignores them (see `honours_permissions()` and
                   `drop_permission_override()`, which makes a root child process honour them)
    upright        a lossless PNG of how the image must look once loaded (EXIF rotation
                   applied, modes converted), for pixel checks

`summary_counts(cases, sidecar=..., overwrite=...)` gives the numbers a CLI run over
images/ must report.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import shutil
import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.synthetic import draw_shape

CAPTIONED = "captioned"
FAILED = "failed"
IGNORED = "ignored"
INCOMPLETE = "incomplete"
REFUSED = "refused"

HAND_WRITTEN = "a caption a person wrote by hand"  # the text of every pre-existing sidecar


@dataclass(frozen=True)
class Expectation:
    outcome: str
    reason: str = ""  # a fragment of the one-line reason (FAILED, REFUSED, INCOMPLETE)
    caption: str | None = None  # the exact caption, where the model's words are certain
    write_error: str | None = None  # with sidecars on: writing the caption fails with this


@dataclass(frozen=True)
class BadCase:
    name: str
    path: Path
    expectation: Expectation
    kind: str = "image"
    sidecar: str | None = None
    vanishes: bool = False
    needs_permissions: bool = False
    upright: Path | None = None

    @property
    def sidecar_path(self) -> Path:
        return self.path.with_suffix(".txt")


def honours_permissions() -> bool:
    """False for root (CAP_DAC_OVERRIDE): read-only folders and mode-000 files do not stop it."""
    return not (hasattr(os, "geteuid") and os.geteuid() == 0)


def drop_permission_override() -> None:
    """preexec_fn for a root child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so that after exec the child obeys file permissions like any user.
    Does nothing for a normal user (who obeys them already)."""
    if honours_permissions():
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def permissions_can_be_enforced() -> bool:
    """Whether a child process can be made to honour permissions (see drop_permission_override)."""
    return honours_permissions() or sys.platform.startswith("linux")


def vanish(cases: Iterable[BadCase]) -> None:
    """Delete the files of the cases that vanish during a run; call it after listing."""
    for case in cases:
        if case.vanishes:
            case.path.unlink(missing_ok=True)


def summary_counts(cases: Iterable[BadCase], sidecar: bool, overwrite: bool) -> tuple[int, int, int]:
    """(captioned, skipped, failed) that `captioner caption -r images/` reports for these cases,
    with --sidecar and --overwrite as given (image cases only)."""
    captioned = skipped = failed = 0
    for case in cases:
        if case.kind != "image":
            continue
        exp = case.expectation
        if exp.outcome == FAILED:
            failed += 1
        elif exp.outcome == CAPTIONED:
            captioned += 1
            if sidecar:
                if case.sidecar is not None and not overwrite:
                    skipped += 1
                elif exp.write_error is not None:
                    failed += 1
    return captioned, skipped, failed


# -- building blocks ------------------------------------------------------------------------


def shape(colour: str, kind: str, seed: int, size: int = 224) -> Image.Image:
    return draw_shape(colour, kind, np.random.default_rng(seed), size=size)


def jpeg_bytes(img: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=options.pop("quality", 92), **options)
    return buf.getvalue()


def png_bytes(img: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **options)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes],
            extra: bytes = b"") -> bytes:
    """A PNG written by hand: IHDR as given (any size at all), filter-0 rows, compressed as
    they come (so a 400-megapixel bomb never exists in memory), `extra` chunks before IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for row in rows) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _zero_rows(row_bytes: int, height: int, per_block: int = 512) -> Iterable[bytes]:
    block = (b"\x00" + bytes(row_bytes)) * per_block
    for start in range(0, height, per_block):
        yield block if start + per_block <= height else block[: (height - start) * (row_bytes + 1)]


def rgb16_png(img: Image.Image) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG of an 8-bit image, which Pillow cannot write."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint16) * 257
    rows = (b"\x00" + row.astype(">u2").tobytes() for row in arr)
    return raw_png(img.width, img.height, 16, 2, rows)


def exif_oriented(upright: Image.Image, orientation: int) -> tuple[Image.Image, Image.Exif]:
    """The pixels a camera stores for `upright` with this EXIF Orientation, and that EXIF."""
    undo = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270}
    stored = upright.transpose(undo[orientation]) if orientation in undo else upright.copy()
    exif = Image.Exif()
    exif[0x0112] = orientation
    return stored, exif


# -- the corpus -----------------------------------------------------------------------------


class _Builder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.refs = root / "reference"
        self.images.mkdir(parents=True, exist_ok=True)
        self.refs.mkdir(parents=True, exist_ok=True)
        self.cases: list[BadCase] = []

    def add(self, name: str, path: Path, expectation: Expectation, *, data: bytes | None = None,
            sidecar: str | None = None, reference: Image.Image | None = None, **flags: object
            ) -> BadCase:
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        if sidecar is not None:
            path.with_suffix(".txt").write_text(sidecar + "\n", encoding="utf-8")
        upright = None
        if reference is not None:
            upright = self.refs / f"{name}.png"
            reference.convert("RGB").save(upright)
        case = BadCase(name, path, expectation, sidecar=sidecar, upright=upright, **flags)  # type: ignore[arg-type]
        self.cases.append(case)
        return case


def make_bad_corpus(root: str | Path, bundle: Path | None = None, videos: bool = True) -> list[BadCase]:
    """Build every case under root (see the module docstring) and return them."""
    b = _Builder(Path(root))
    _unreadable_inputs(b)
    _unusual_formats(b)
    _names_and_folders(b)
    if videos:
        _videos(b)
    if bundle is not None:
        _bundles(b, Path(bundle))
    return b.cases


def _unreadable_inputs(b: _Builder) -> None:
    img = b.images
    circle = jpeg_bytes(shape("blue", "circle", 1))
    b.add("zero_byte", img / "zero_byte.jpg", Expectation(FAILED, "empty file (0 bytes)"), data=b"",
          sidecar=HAND_WRITTEN)
    b.add("random_bytes", img / "random_bytes.jpg", Expectation(FAILED, "not an image file"),
          data=np.random.default_rng(8).bytes(4096), sidecar=HAND_WRITTEN)
    b.add("truncated_jpeg", img / "truncated.jpg", Expectation(FAILED, "truncated"),
          data=circle[: len(circle) // 2], sidecar=HAND_WRITTEN)
    # 20000 x 20000 one-bit pixels: 50 kB on disk, 400 megapixels (1.2 GB as RGB) decoded
    b.add("png_decompression_bomb", img / "bomb.png",
          Expectation(FAILED, "image too large (possible decompression bomb)"),
          data=raw_png(20000, 20000, 1, 0, _zero_rows(2500, 20000)))
    # 110 megapixels: past the loader's limit, under Pillow's own bomb threshold
    b.add("too_many_pixels", img / "too_many_pixels.png",
          Expectation(FAILED, "image too large (11000x10000 pixels"),
          data=raw_png(11000, 10000, 1, 0, _zero_rows(1375, 10000)))
    gif = bytearray(_save(Image.new("P", (1, 1)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # the header claims 65535 x 65535
    b.add("absurd_dimensions_header", img / "absurd_header.gif",
          Expectation(FAILED, "image too large"), data=bytes(gif))
    b.add("zero_width_png", img / "zero_width.png", Expectation(FAILED, ""),
          data=raw_png(0, 16, 8, 0, []))
    text_bomb = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(8 << 20), 9))
    b.add("png_text_chunk_bomb", img / "text_bomb.png", Expectation(FAILED, "too large"),
          data=raw_png(8, 8, 8, 0, [b"\x00" + bytes(8)] * 8, extra=text_bomb))
    b.add("text_named_png", img / "notes.png", Expectation(FAILED, "not an image file"),
          data=b"shopping list: milk, eggs\n")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _unusual_formats(b: _Builder) -> None:
    img = b.images
    red_square = shape("red", "square", 2)
    b.add("cmyk_jpeg", img / "cmyk.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(red_square.convert("CMYK"), quality=95), reference=red_square,
          sidecar=HAND_WRITTEN)
    green = shape("green", "circle", 3)
    b.add("grayscale_jpeg", img / "grayscale.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(green.convert("L"), quality=95), reference=green.convert("L"))
    b.add("progressive_jpeg", img / "progressive.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(green, quality=95, progressive=True), reference=green)
    gray16 = Image.fromarray(np.asarray(green.convert("L"), dtype=np.uint16) * 257)
    b.add("png_16bit_gray", img / "gray16.png", Expectation(CAPTIONED), data=png_bytes(gray16),
          reference=green.convert("L"))
    yellow = shape("yellow", "triangle", 4)
    b.add("png_16bit_rgb", img / "rgb16.png", Expectation(CAPTIONED), data=rgb16_png(yellow),
          reference=yellow)
    palette = yellow.quantize(64)
    b.add("png_palette", img / "palette.png", Expectation(CAPTIONED), data=png_bytes(palette),
          reference=palette)
    rgba = Image.new("RGBA", (224, 224), (0, 0, 0, 0))
    blue = shape("blue", "square", 5)
    mask = Image.fromarray(((np.asarray(blue)[:, :, 2] > 150) * 255).astype(np.uint8))
    rgba.paste(blue, (0, 0), mask)
    on_white = Image.new("RGB", (224, 224), (255, 255, 255))
    on_white.paste(blue, (0, 0), mask)
    b.add("png_alpha", img / "alpha.png", Expectation(CAPTIONED), data=png_bytes(rgba),
          reference=on_white)
    trans = on_white.quantize(16)
    trans.info["transparency"] = 0
    b.add("png_palette_transparency", img / "palette_alpha.png", Expectation(CAPTIONED),
          data=png_bytes(trans, transparency=0))
    frames = [shape(c, s, 6 + i) for i, (c, s) in enumerate([("red", "circle"), ("blue", "square"),
                                                            ("green", "triangle")])]
    b.add("animated_gif", img / "animated.gif", Expectation(CAPTIONED),
          data=_save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0),
          reference=frames[0])
    pages = [shape("yellow", "circle", 9), shape("red", "square", 10)]
    b.add("multipage_tiff", img / "pages.tif", Expectation(CAPTIONED),
          data=_save(pages[0], "TIFF", save_all=True, append_images=pages[1:],
                     compression="tiff_deflate"), reference=pages[0])
    webp = shape("red", "triangle", 11)
    b.add("webp", img / "photo.webp", Expectation(CAPTIONED), data=_save(webp, "WEBP", lossless=True),
          reference=webp)
    b.add("bmp", img / "bitmap.bmp", Expectation(CAPTIONED), data=_save(webp, "BMP"), reference=webp)
    # a camera held sideways: pixels stored turned, EXIF Orientation 6 says how to show them
    upright = shape("red", "triangle", 12)
    stored, exif = exif_oriented(upright, 6)
    b.add("exif_rotated_jpeg", img / "exif_rotated.jpg", Expectation(CAPTIONED, caption="a red triangle"),
          data=jpeg_bytes(stored, quality=97, exif=exif), reference=upright)
    stored, exif = exif_oriented(upright, 7)
    b.add("exif_transverse_png", img / "exif_transverse.png", Expectation(CAPTIONED),
          data=png_bytes(stored, exif=exif), reference=upright)
    app1 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x01" * 40  # 65535 tags promised
    jpg = jpeg_bytes(shape("blue", "triangle", 13))
    broken_exif = jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:]
    b.add("corrupt_exif", img / "corrupt_exif.jpg", Expectation(CAPTIONED), data=broken_exif)
    b.add("one_pixel", img / "one_pixel.png", Expectation(CAPTIONED),
          data=png_bytes(Image.new("RGB", (1, 1), (200, 30, 30))))
    strip = Image.new("RGB", (4000, 1), (30, 60, 220))
    b.add("extreme_aspect_4000x1", img / "strip.png", Expectation(CAPTIONED), data=png_bytes(strip))
    # 100.8 megapixels: more than the limit, but JPEG draft mode decodes it at 1/8 scale
    huge = Image.new("L", (12000, 8400), 40)
    huge.paste(230, (3000, 2000, 9000, 6400))
    b.add("jpeg_100_megapixels", img / "huge.jpg", Expectation(CAPTIONED), data=jpeg_bytes(huge, quality=80))
    del huge


def _names_and_folders(b: _Builder) -> None:
    img = b.images
    b.add("png_named_jpg", img / "really_a_png.jpg", Expectation(CAPTIONED),
          data=png_bytes(shape("green", "square", 14)))
    b.add("jpeg_named_png", img / "really_a_jpeg.png", Expectation(CAPTIONED),
          data=jpeg_bytes(shape("yellow", "square", 15)))
    b.add("upper_case_extension", img / "SHOUTING.JPEG", Expectation(CAPTIONED),
          data=jpeg_bytes(shape("blue", "circle", 16)))
    latin1 = img / os.fsdecode(b"caf\xe9_latin1.jpg")  # not UTF-8: the byte \xe9 alone
    try:
        latin1.write_bytes(jpeg_bytes(shape("red", "circle", 17)))
    except (OSError, UnicodeError):  # a file system that only takes UTF-8 names (macOS)
        pass
    else:
        b.add("non_utf8_name", latin1, Expectation(CAPTIONED))
    b.add("newline_in_name", img / "two\nlines.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(shape("green", "triangle", 18)))
    b.add("long_name", img / ("long_" + "x" * 241 + ".jpg"), Expectation(CAPTIONED),
          data=jpeg_bytes(shape("yellow", "circle", 19)))
    b.add("same_stem_jpg", img / "pair.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(shape("red", "square", 20)))
    b.add("same_stem_png", img / "pair.png",
          Expectation(CAPTIONED, write_error="pair.txt already holds the caption of pair.jpg"),
          data=png_bytes(shape("blue", "square", 21)))
    locked = b.add("locked_sidecar", img / "locked.jpg",
                   Expectation(CAPTIONED, write_error="caption file is read-only"),
                   data=jpeg_bytes(shape("green", "circle", 22)), sidecar=HAND_WRITTEN)
    locked.sidecar_path.chmod(0o444)
    b.add("deleted_during_batch", img / "vanishes.jpg", Expectation(FAILED, "file not found"),
          data=jpeg_bytes(shape("red", "circle", 23)), sidecar=HAND_WRITTEN, vanishes=True)
    unreadable = b.add("unreadable_file", img / "unreadable.jpg", Expectation(FAILED, "permission denied"),
                       data=jpeg_bytes(shape("blue", "triangle", 24)), needs_permissions=True)
    unreadable.path.chmod(0)
    # never opened: hidden files and folders, and a pipe (reading it would block for ever)
    b.add("apple_double", img / "._IMG_0001.jpg", Expectation(IGNORED),
          data=b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    b.add("hidden_folder", img / ".thumbnails" / "thumb.jpg", Expectation(IGNORED),
          data=jpeg_bytes(shape("red", "square", 25)))
    if hasattr(os, "mkfifo"):
        os.mkfifo(img / "pipe.jpg")
        b.add("fifo_named_jpg", img / "pipe.jpg", Expectation(IGNORED))
    # symbolic links: a folder loop is walked once; links that lead nowhere are reported
    loops = img / "loops"
    b.add("inside_symlink_loop", loops / "inside.jpg", Expectation(CAPTIONED),
          data=jpeg_bytes(shape("yellow", "triangle", 26)))
    (loops / "again").symlink_to(".", target_is_directory=True)
    (loops / "up").symlink_to("..", target_is_directory=True)
    (loops / "a.jpg").symlink_to("b.jpg")
    (loops / "b.jpg").symlink_to("a.jpg")
    b.add("symlink_loop_a", loops / "a.jpg", Expectation(FAILED, "symbolic link loop"))
    b.add("symlink_loop_b", loops / "b.jpg", Expectation(FAILED, "symbolic link loop"))
    (loops / "dangling.jpg").symlink_to("gone.jpg")
    b.add("broken_symlink", loops / "dangling.jpg", Expectation(FAILED, "broken symbolic link"))
    # a read-only folder: the images are captioned, their captions cannot be saved there
    ro = img / "readonly"
    b.add("read_only_folder_kept", ro / "kept.jpg",
          Expectation(CAPTIONED, write_error="folder is read-only (permission denied)"),
          data=jpeg_bytes(shape("green", "square", 27)), sidecar=HAND_WRITTEN, needs_permissions=True)
    b.add("read_only_folder_new", ro / "new.jpg",
          Expectation(CAPTIONED, write_error="folder is read-only (permission denied)"),
          data=jpeg_bytes(shape("red", "triangle", 28)), needs_permissions=True)
    ro.chmod(0o555)


def _videos(b: _Builder) -> None:
    import av

    from tests.videos import shape_shots, write_audio_only, write_video

    vid = b.root / "videos"
    vid.mkdir(parents=True, exist_ok=True)
    shots = shape_shots([("red", "circle", 2.0), ("blue", "square", 2.0)])
    b.add("video_ok", vid / "ok.mp4", Expectation(CAPTIONED), kind="video")
    write_video(vid / "ok.mp4", shots, fps=10, size=(160, 160))
    full = vid / "full.mp4"
    write_video(full, shots, fps=10, size=(160, 160))
    data = full.read_bytes()
    full.unlink()
    b.add("truncated_mp4", vid / "truncated.mp4",
          Expectation(FAILED, "not a video file, or truncated before its index"),
          data=data[: len(data) * 6 // 10], kind="video")
    fast = vid / "fast.mp4"
    write_video(fast, shots, fps=10, size=(160, 160), gop=5, container_options={"movflags": "+faststart"})
    data = fast.read_bytes()
    fast.unlink()  # the index comes first, so the frames before the cut can still be read
    b.add("truncated_faststart_mp4", vid / "truncated_faststart.mp4",
          Expectation(INCOMPLETE, "decoding"), data=data[: len(data) * 7 // 10], kind="video")
    srt = vid / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000\nworld\n")
    with av.open(str(srt)) as inp, av.open(str(vid / "subtitles_only.mkv"), "w") as out:
        stream = out.add_stream_from_template(inp.streams[0])
        for packet in inp.demux(inp.streams[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    srt.unlink()
    b.add("no_video_stream", vid / "subtitles_only.mkv", Expectation(FAILED, "no video stream"),
          kind="video")
    write_audio_only(vid / "audio_only.m4a")
    b.add("audio_only", vid / "audio_only.m4a", Expectation(FAILED, "no video stream (audio only)"),
          kind="video")
    b.add("video_zero_byte", vid / "zero_byte.mp4", Expectation(FAILED, "cannot be opened"), data=b"",
          kind="video")
    b.add("video_random_bytes", vid / "random_bytes.mp4", Expectation(FAILED, "not a video file"),
          data=np.random.default_rng(9).bytes(20000), kind="video")


def _bundles(b: _Builder, source: Path) -> None:
    import json

    from captioner.bundle import MANIFEST, load_bundle, write_manifest

    root = b.root / "bundles"

    def copy(name: str) -> Path:
        target = root / name
        shutil.copytree(source, target)
        return target

    def manifest(path: Path) -> dict:
        return json.loads((path / MANIFEST).read_text())

    def refused(name: str, path: Path, reason: str) -> None:
        b.add(name, path, Expectation(REFUSED, reason), kind="bundle")

    decoder = load_bundle(source).graph_paths(load_bundle(source).manifest.default_variant)[1].name
    path = copy("missing_file")
    (path / decoder).unlink()
    refused("bundle_missing_file", path, f"is missing {decoder}")

    path = copy("wrong_checksum")
    encoder = path / load_bundle(source).graph_paths(load_bundle(source).manifest.default_variant)[0].name
    data = bytearray(encoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    encoder.write_bytes(bytes(data))
    refused("bundle_wrong_checksum", path, "does not match its checksum")

    path = copy("unknown_version")
    data_json = manifest(path)
    data_json["format_version"] = 99
    (path / MANIFEST).write_text(json.dumps(data_json))
    refused("bundle_unknown_format_version", path, "bundle format version 99 is not supported")

    path = copy("vocab_mismatch")  # a consistent bundle whose vocabulary is not the decoder's
    words = json.loads((path / "vocab.json").read_text()) + ["zebra", "umbrella"]
    (path / "vocab.json").write_text(json.dumps(words))
    checked = load_bundle(source)
    checked.manifest.vocab_size = len(words)
    write_manifest(path, checked.manifest)
    refused("bundle_vocab_mismatch", path, "the decoder writes")

    path = copy("vocab_not_a_list")
    (path / "vocab.json").write_text(json.dumps({"a": 1}))
    write_manifest(path, load_bundle(source).manifest)
    refused("bundle_vocab_not_a_list", path, "vocab.json is invalid")

    path = copy("damaged_graph_checksum_updated")  # the checksum fits, the graph is garbage
    (path / decoder).write_bytes(np.random.default_rng(10).bytes(5000))
    write_manifest(path, load_bundle(source).manifest)
    refused("bundle_damaged_graph", path, "decoder_step.onnx is not a readable ONNX graph")

    path = copy("manifest_not_json")
    (path / MANIFEST).write_text("{ not json")
    refused("bundle_manifest_not_json", path, "cannot be read")

    path = root / "empty_folder"
    path.mkdir(parents=True)
    refused("bundle_empty_folder", path, "has no manifest.json")

    refused("bundle_not_found", root / "no_such_bundle", "model bundle not found")


# -- hostile runs: commands a careless user or an attacker types ---------------------------


@dataclass(frozen=True)
class HostileRun:
    """One `captioner ARGS...` run in `cwd`, and what it must do besides never printing a
    traceback or a raw control character (ESC, a newline inside a line, ...):

    exit_code   the exit status (2: bad arguments, nothing ran)
    says        a fragment found in exactly one stderr line (the one naming the file)
    kept        files that must be byte for byte as they were (inputs, a person's files)
    made        files the run must leave, not empty; `absent`: files it must not leave
    holds       (file, fragment): what a made file must contain
    out_lines   how many lines stdout must have; `out_fields`: tab-separated fields per line
    one_line    stderr is exactly one line (a usage error)
    reader_gone stdout is a pipe whose reader has left before the first line (`| head -1`)
    deep_trees  folders to remove with `remove_tree` after the run (pytest's cleanup recurses)
    """

    argv: tuple[str, ...]
    cwd: Path  # root/NAME
    exit_code: int
    says: str = ""
    kept: tuple[Path, ...] = ()
    made: tuple[Path, ...] = ()
    absent: tuple[Path, ...] = ()
    holds: tuple[tuple[Path, str], ...] = ()
    out_lines: int | None = None
    out_fields: int | None = None
    prints: str = ""
    one_line: bool = False
    reader_gone: bool = False
    deep_trees: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.cwd.name


_RUNS: dict[str, Callable[[Path], HostileRun]] = {}


def _run_case(build: Callable[[Path], HostileRun]) -> Callable[[Path], HostileRun]:
    _RUNS[build.__name__.lstrip("_")] = build
    return build


def hostile_run_names() -> list[str]:
    return list(_RUNS)


def make_hostile_run(name: str, root: str | Path) -> HostileRun:
    """Build the files of one hostile run under root/name and return it."""
    cwd = Path(root) / name
    cwd.mkdir(parents=True, exist_ok=True)
    return _RUNS[name](cwd)


def _photos(folder: Path, *names: str) -> tuple[Path, ...]:
    shapes = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle")]
    paths = []
    for i, name in enumerate(names):
        colour, kind = shapes[i % len(shapes)]
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(shape(colour, kind, 40 + i)))
        paths.append(path)
    return tuple(paths)


def _clip(path: Path, *shots: tuple[str, str]) -> Path:
    from tests.videos import shape_shots, write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    made = path.with_name("made.mp4")  # the muxer goes by the extension: m.srt is an MP4 renamed
    write_video(made, shape_shots([(c, k, 2.0) for c, k in shots]), fps=10, size=(160, 160))
    made.rename(path)
    return path


VIDEO_ARGS = ("--every", "1", "--quiet", "--provider", "cpu")
PHOTO_ARGS = ("--quiet", "--provider", "cpu")


@_run_case
def _json_after_a_glob(cwd: Path) -> HostileRun:
    """`captioner caption --overwrite --json *.jpg`: the shell puts a.jpg after --json."""
    a, b = _photos(cwd, "a.jpg", "b.jpg")
    return HostileRun(("caption", "--overwrite", "--json", "a.jpg", "b.jpg", *PHOTO_ARGS),
                      cwd, 2, says="--json a.jpg: is a JPEG image", kept=(a, b), one_line=True)


@_run_case
def _json_names_an_input(cwd: Path) -> HostileRun:
    a, b = _photos(cwd, "a.jpg", "b.jpg")
    return HostileRun(("caption", "a.jpg", "b.jpg", "--json", "a.jpg", "--overwrite", *PHOTO_ARGS), cwd, 2,
                      says="is one of the files to caption", kept=(a, b), one_line=True)


@_run_case
def _csv_names_a_photo(cwd: Path) -> HostileRun:
    """A photo that is not captioned in this run is no more a CSV file to replace."""
    a, other = _photos(cwd, "a.jpg", "other.png")
    return HostileRun(("caption", "a.jpg", "--csv", "other.png", *PHOTO_ARGS),
                      cwd, 2, says="--csv other.png: is a JPEG image", kept=(a, other), one_line=True)


@_run_case
def _json_into_a_read_only_folder(cwd: Path) -> HostileRun:
    """Found before the batch, not after an hour of captioning."""
    _photos(cwd, "a.jpg")
    (cwd / "ro").mkdir(mode=0o555)
    return HostileRun(("caption", "a.jpg", "--json", "ro/all.json", *PHOTO_ARGS), cwd, 2,
                      says="--json ro/all.json: its folder is read-only", one_line=True, out_lines=0)


@_run_case
def _photo_named_txt(cwd: Path) -> HostileRun:
    """A photo called p.txt is its own sidecar name: --sidecar --overwrite must not replace it."""
    (p,) = _photos(cwd, "p.txt")
    return HostileRun(("caption", "p.txt", "--sidecar", "--overwrite", *PHOTO_ARGS),
                      cwd, 1, says="p.txt: is the photo itself", kept=(p,), out_lines=1)


@_run_case
def _photo_named_like_another_photos_sidecar(cwd: Path) -> HostileRun:
    """a.jpg's sidecar would be a.txt, which is a photo captioned in the same run."""
    a, a_txt = _photos(cwd, "a.jpg", "a.txt")
    return HostileRun(("caption", "a.jpg", "a.txt", "--sidecar", "--overwrite", *PHOTO_ARGS),
                      cwd, 1, says="a.txt: is one of the files being captioned", kept=(a, a_txt), out_lines=2)


@_run_case
def _video_named_srt(cwd: Path) -> HostileRun:
    video = _clip(cwd / "m.srt", ("red", "circle"))
    return HostileRun(("video", "m.srt", "--overwrite", *VIDEO_ARGS), cwd, 1,
                      says="m.srt: is one of the videos being captioned", kept=(video,))


def _same_name_videos(cwd: Path, overwrite: bool) -> HostileRun:
    """a/clip.mp4 and b/clip.mp4 into one folder: distinct files, thumbnails apart."""
    _clip(cwd / "a" / "clip.mp4", ("red", "circle"), ("blue", "square"))
    _clip(cwd / "b" / "clip.mp4", ("green", "triangle"))
    out = cwd / "out"
    flag = ("--overwrite",) if overwrite else ()
    return HostileRun(("video", "a/clip.mp4", "b/clip.mp4", "--out-dir", "out", "--thumbnails",
                       "--format", "srt,csv", "--scenes", *flag, *VIDEO_ARGS), cwd, 0,
                      made=(out / "a_clip.srt", out / "b_clip.srt", out / "a_clip_thumbs" / "0002.jpg",
                            out / "b_clip_thumbs" / "0001.jpg"),
                      absent=(out / "clip.srt", out / "b_clip_thumbs" / "0002.jpg"),
                      holds=((out / "a_clip.srt", "\n2\n00:00:02,000 --> "),  # a's two shots, b's one
                             (out / "a_clip.csv", "a_clip_thumbs/0002"),
                             (out / "b_clip.csv", "b_clip_thumbs/0001")))


@_run_case
def _same_name_videos_overwrite(cwd: Path) -> HostileRun:
    return _same_name_videos(cwd, overwrite=True)


@_run_case
def _same_name_videos_keep(cwd: Path) -> HostileRun:
    return _same_name_videos(cwd, overwrite=False)


@_run_case
def _alt_text_with_escape_sequences(cwd: Path) -> HostileRun:
    """Alt text already in the photo clears the screen and fakes an error line if printed raw."""
    exif = Image.Exif()
    exif[0x010E] = "\x1b[2J\nerror: everything failed"
    path = cwd / "hostile.jpg"
    path.write_bytes(jpeg_bytes(shape("red", "circle", 50), exif=exif))
    return HostileRun(("caption", "hostile.jpg", "--write-metadata", *PHOTO_ARGS), cwd, 0,
                      says="\\x1b[2J\\nerror: everything failed", out_lines=1, out_fields=2)


@_run_case
def _escape_sequence_in_a_file_name(cwd: Path) -> HostileRun:
    _photos(cwd, "\x1b]0;pwned\x07\x1b[31mred\tname.jpg")
    return HostileRun(("caption", ".", *PHOTO_ARGS), cwd, 0, out_lines=1, out_fields=2,
                      prints="\\x1b]0;pwned\\x07\\x1b[31mred\\tname.jpg")


@_run_case
def _video_name_splits_the_tsv(cwd: Path) -> HostileRun:
    _clip(cwd / "tab\tand\nnewline.mp4", ("red", "circle"), ("blue", "square"))
    return HostileRun(("video", "tab\tand\nnewline.mp4", "--every", "1", "--provider", "cpu",
                       "--format", "json"), cwd, 0,
                      out_lines=2, out_fields=4, prints="tab\\tand\\nnewline.mp4\t")


@_run_case
def _csv_formula_in_a_file_name(cwd: Path) -> HostileRun:
    _photos(cwd, "=HYPERLINK(1).jpg", "@SUM(1).jpg")
    csv = cwd / "out.csv"
    return HostileRun(("caption", "=HYPERLINK(1).jpg", "@SUM(1).jpg", "--csv", "out.csv", *PHOTO_ARGS),
                      cwd, 0,
                      holds=((csv, "\n'=HYPERLINK(1).jpg,"), (csv, "\n'@SUM(1).jpg,")))


@_run_case
def _csv_formula_in_a_video_thumbnail(cwd: Path) -> HostileRun:
    _clip(cwd / "-2+3.mp4", ("red", "circle"))
    return HostileRun(("video", "./-2+3.mp4", "--format", "csv", "--thumbnails", *VIDEO_ARGS), cwd, 0,
                      holds=((cwd / "-2+3.csv", ",'-2+3_thumbs/0001.jpg\n"),))


def _bad_number(option: str, value: str, command: str = "caption") -> Callable[[Path], HostileRun]:
    def build(cwd: Path) -> HostileRun:
        photo = _photos(cwd, "a.jpg")[0]
        target = ("a.jpg",) if command == "caption" else ("v.mp4",)
        return HostileRun((command, *target, option, value, "--provider", "cpu"), cwd, 2,
                          says=option, kept=(photo,), one_line=True, out_lines=0)
    build.__name__ = f"_{command}_{option.lstrip('-').replace('-', '_')}_{value.replace('-', 'minus_')}"
    return build


for _option, _value in (("--beam", "100000"), ("--beam", "0"), ("--max-length", "-1"),
                        ("--max-length", "0"), ("--batch-size", "0"), ("--batch-size", "-1")):
    _run_case(_bad_number(_option, _value))
_run_case(_bad_number("--batch-size", "0", command="video"))
_run_case(_bad_number("--every", "nan", command="video"))


@_run_case
def _thumbnails_folder_cannot_be_made(cwd: Path) -> HostileRun:
    _clip(cwd / "clip.mp4", ("red", "circle"))
    _clip(cwd / "good.mp4", ("blue", "square"))
    (cwd / "clip_thumbs").write_text("a file where the folder would go\n")
    return HostileRun(("video", "clip.mp4", "good.mp4", "--thumbnails", *VIDEO_ARGS), cwd, 1,
                      says="clip_thumbs: cannot make the thumbnails folder",
                      kept=(cwd / "clip_thumbs",), made=(cwd / "clip.srt", cwd / "good_thumbs" / "0001.jpg"))


@_run_case
def _thumbnails_folder_is_a_link(cwd: Path) -> HostileRun:
    """A `clip_thumbs` link planted in a shared folder must not send the JPEGs elsewhere."""
    _clip(cwd / "clip.mp4", ("red", "circle"))
    (cwd / "elsewhere").mkdir()
    (cwd / "clip_thumbs").symlink_to("elsewhere", target_is_directory=True)
    return HostileRun(("video", "clip.mp4", "--thumbnails", *VIDEO_ARGS), cwd, 1,
                      says="clip_thumbs: cannot make the thumbnails folder (it is a symbolic link",
                      made=(cwd / "clip.srt",), absent=(cwd / "elsewhere" / "0001.jpg",))


@_run_case
def _out_dir_is_a_file(cwd: Path) -> HostileRun:
    _clip(cwd / "clip.mp4", ("red", "circle"))
    (cwd / "out").write_text("not a folder\n")
    return HostileRun(("video", "clip.mp4", "--out-dir", "out", *VIDEO_ARGS), cwd, 2,
                      says="--out-dir out: is a file", kept=(cwd / "out",), one_line=True)


@_run_case
def _folders_1200_deep(cwd: Path) -> HostileRun:
    folder = cwd / "deep"
    for _ in range(1200):
        folder = folder / "d"
        folder.mkdir(parents=True)
    _photos(folder, "bottom.jpg")
    return HostileRun(("caption", "-r", "deep", *PHOTO_ARGS), cwd, 0, out_lines=1, deep_trees=(cwd / "deep",))


def remove_tree(root: Path) -> None:
    """shutil.rmtree without recursion (it recurses once per level: 1,200 levels are too many)."""
    stack, folders = [root], []
    while stack:
        folder = stack.pop()
        folders.append(folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    os.unlink(entry.path)
    for folder in reversed(folders):
        os.rmdir(folder)


@_run_case
def _skipped_names_the_caption_file(cwd: Path) -> HostileRun:
    _photos(cwd, "a.jpg")
    (cwd / "a.txt").write_text(HAND_WRITTEN + "\n")
    return HostileRun(("caption", "a.jpg", "--sidecar", *PHOTO_ARGS), cwd, 0,
                      says="skipped: a.txt exists", kept=(cwd / "a.txt",))


@_run_case
def _video_that_decodes_nothing(cwd: Path) -> HostileRun:
    """The index is there, the frames are not: no segment, so no (empty) subtitle file."""
    from tests.videos import shape_shots, write_video

    full = cwd / "full.mp4"
    write_video(full, shape_shots([("red", "circle", 2.0)]), fps=10, size=(160, 160),
                container_options={"movflags": "+faststart"})
    data = full.read_bytes()
    full.unlink()
    (cwd / "cut.mp4").write_bytes(data[: data.index(b"mdat") + 58])
    return HostileRun(("video", "cut.mp4", *VIDEO_ARGS), cwd, 1,
                      says="; nothing written", absent=(cwd / "cut.srt",))


@_run_case
def _avif_in_a_folder(cwd: Path) -> HostileRun:
    (cwd / "photos").mkdir()
    (cwd / "photos" / "photo.avif").write_bytes(_save(shape("red", "circle", 51), "AVIF"))
    return HostileRun(("caption", "photos", *PHOTO_ARGS), cwd, 0, out_lines=1)


@_run_case
def _reader_leaves_the_pipe(cwd: Path) -> HostileRun:
    """`captioner caption ... --json out.json | head -1`: the JSON is still written."""
    _photos(cwd, "a.jpg", "b.jpg", "c.jpg")
    return HostileRun(("caption", "a.jpg", "b.jpg", "c.jpg", "--json", "out.json", *PHOTO_ARGS), cwd, 0,
                      holds=((cwd / "out.json", "c.jpg"),), reader_gone=True)


@_run_case
def _fifo_named_like_a_video(cwd: Path) -> HostileRun:
    """Opening a pipe blocks until someone writes to it: it is refused unopened."""
    os.mkfifo(cwd / "v.mp4")
    _clip(cwd / "good.mp4", ("red", "circle"))
    return HostileRun(("video", "v.mp4", "good.mp4", *VIDEO_ARGS), cwd, 1,
                      says="v.mp4: not a regular file", made=(cwd / "good.srt",))


@_run_case
def _version(cwd: Path) -> HostileRun:
    return HostileRun(("--version",), cwd, 0, out_lines=1, prints="captioner ")


@_run_case
def _cuda_without_the_gpu_build(cwd: Path) -> HostileRun:
    photo = _photos(cwd, "a.jpg")[0]
    return HostileRun(("caption", "a.jpg", "--provider", "cuda", "--quiet"),
                      cwd, 2, says="onnxruntime-gpu", kept=(photo,), one_line=True)


# -- running the CLI with a file that vanishes mid-run --------------------------------------

VANISH_ENV = "BAD_CORPUS_VANISH"


def cli_main(argv: list[str] | None = None) -> int:
    """`python -m tests.bad_inputs ARGS...` runs `captioner ARGS...`, except that the files named
    in $BAD_CORPUS_VANISH (os.pathsep-separated) are deleted right after the folders have been
    listed and before the first image is read: a file deleted while the batch runs."""
    import captioner.cli as cli
    import captioner.cli.caption as command

    doomed = [Path(p) for p in os.environ.get(VANISH_ENV, "").split(os.pathsep) if p]
    real_find = command.find_images

    def find_then_delete(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        found = real_find(*args, **kwargs)  # type: ignore[arg-type]
        for path in doomed:
            path.unlink(missing_ok=True)
        return found

    command.find_images = find_then_delete  # type: ignore[assignment]
    return cli.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(cli_main())
