"""Keywords inside the photo: XMP ``dc:subject`` and IPTC IIM ``Keywords``.

Lightroom, digiKam and darktable read ``dc:subject`` (a bag of words); older JPEG tools and
digiKam read the IIM ``Keywords`` datasets. A photo's keywords are people's filing system, so
tags are only ever *added*: what is there stays, in its order, and a word already present in
any letter case is not added twice. This module works on a photo libexiv2 has opened;
`captioner.metadata` does the locking, copying, verifying and replacing.

IIM is written only into JPEG and TIFF, the formats it belongs to (Metadata Working Group);
libexiv2 writes IIM into PNG in a form it cannot read back itself, and WebP holds none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SUBJECT = "Xmp.dc.subject"
IPTC_KEYWORDS = "Iptc.Application2.Keywords"
IIM_TYPES = frozenset({"image/jpeg", "image/tiff"})
IIM_KEYWORD_BYTES = 64  # the IIM standard's limit for one keyword


@dataclass(frozen=True)
class Keywords:
    """The keywords a photo holds, per family, in the order they are stored."""

    subject: tuple[str, ...] = ()
    iim: tuple[str, ...] = ()
    iim_readable: bool = True  # False: an IIM keyword is not text; IIM is then left alone

    def all(self) -> tuple[str, ...]:
        """Both families as one list, XMP first, each word once (any letter case)."""
        return merged(self.subject, self.iim)


@dataclass(frozen=True)
class KeywordPlan:
    """What a write must leave in each family; None: that family is not touched."""

    subject: tuple[str, ...] | None
    iim: tuple[str, ...] | None
    added: tuple[str, ...]  # the words new to the photo (in either family)

    @property
    def changes(self) -> bool:
        return self.subject is not None or self.iim is not None


def merged(existing: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    """`existing` as it is, then each word of `new` that is not there yet (any letter case)."""
    out = list(existing)
    seen = {w.casefold() for w in out}
    for word in new:
        word = word.strip()
        if word and word.casefold() not in seen:
            out.append(word)
            seen.add(word.casefold())
    return tuple(out)


def storable(word: str) -> bool:
    """Whether XMP can hold the word: no control characters (tab, ESC...) and no lone surrogates."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in word)


def read_image_keywords(image: Any) -> Keywords:
    """The keywords of a photo libexiv2 has opened and read."""
    iim = _iim(image.iptcData())
    return Keywords(_subject(image.xmpData()), iim or (), iim is not None)


def plan_keywords(current: Keywords, words: Sequence[str], mime_type: str) -> KeywordPlan:
    """The families to rewrite so that each holds every keyword of the photo and `words`.

    Nothing is planned without words. With words, both families end up holding the union
    (a word keeps the spelling the photo already has), so a reader of either sees them all.
    A word with a control character is left out: XMP (XML) cannot hold it.
    """
    words = [w for w in words if w.strip() and storable(w)]
    if not words:
        return KeywordPlan(None, None, ())
    full = merged(current.all(), words)
    subject = merged(current.subject, full)
    iim = current.iim
    if mime_type in IIM_TYPES and current.iim_readable:
        iim = merged(current.iim, [w for w in full if len(w.encode("utf-8")) <= IIM_KEYWORD_BYTES])
    return KeywordPlan(subject if subject != current.subject else None,
                       iim if iim != current.iim else None, full[len(current.all()):])


def set_keywords(image: Any, plan: KeywordPlan) -> dict[str, tuple[str, ...]]:
    """Apply `plan` to an opened photo; returns each rewritten key and what it must read back."""
    import exiv2

    written: dict[str, tuple[str, ...]] = {}
    if plan.subject is not None:
        xmp = image.xmpData()
        bag = exiv2.XmpArrayValue(exiv2.TypeId.xmpBag)
        for word in plan.subject:
            bag.read(word)  # read() appends one item to an array value
        _erase_all(xmp, SUBJECT)
        xmp.add(exiv2.XmpKey(SUBJECT), bag)
        written[SUBJECT] = plan.subject
    if plan.iim is not None:
        iptc = image.iptcData()
        _erase_all(iptc, IPTC_KEYWORDS)
        for word in plan.iim:
            datum = exiv2.Iptcdatum(exiv2.IptcKey(IPTC_KEYWORDS))
            datum.setValue(word)
            iptc.add(datum)
        written[IPTC_KEYWORDS] = plan.iim
    return written


def needs_utf8_charset(plan: KeywordPlan) -> bool:
    """IIM text that is not ASCII needs the UTF-8 escape in 1:90, or readers take it as Latin-1."""
    return plan.iim is not None and not all(w.isascii() for w in plan.iim)


def read_back(image: Any, key: str) -> tuple[str, ...]:
    """One family's keywords, for checking a written copy."""
    return _subject(image.xmpData()) if key == SUBJECT else _iim(image.iptcData()) or ()


# -- internals ---------------------------------------------------------------------------------


def _subject(xmp: Any) -> tuple[str, ...]:
    import exiv2

    datum = xmp.findKey(exiv2.XmpKey(SUBJECT))
    if datum == xmp.end():
        return ()
    value = datum.value()
    try:
        if isinstance(value, exiv2.XmpArrayValue):
            return tuple(str(value.toString(i)) for i in range(value.count()))
        text = str(datum.toString()).strip()  # a plain text property where a bag belongs
    except (UnicodeDecodeError, ValueError, TypeError):
        return ()
    return (text,) if text else ()


def _iim(iptc: Any) -> tuple[str, ...] | None:
    """The IIM keywords; None when one of them is not text (rewriting would lose its bytes)."""
    words = []
    for datum in iptc:
        if datum.key() == IPTC_KEYWORDS:
            try:
                words.append(str(datum.toString()))
            except (UnicodeDecodeError, ValueError, TypeError):
                return None
    return tuple(words)


def _erase_all(data: Any, key: str) -> None:
    import exiv2

    make_key = exiv2.XmpKey if key.startswith("Xmp.") else exiv2.IptcKey
    while (datum := data.findKey(make_key(key))) != data.end():
        data.erase(datum)
