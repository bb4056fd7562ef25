"""Build the reviewed ImageNet class -> everyday caption word table (run once, by hand).

    python -m training.tag_table --text ../shared/data/text --flickr ../shared/data/flickr8k \
        --out training/tags/imagenet_words.tsv

ImageNet's 1,000 classes are WordNet 3.0 noun synsets, numbered in the order of their WordNet
offsets; torchvision carries only their names, so each name is matched to the synset with
that lemma whose offset keeps the order increasing. Each class then takes the first lemma,
walking up its hypernyms (closest first), that people actually write in captions (a word
counted often in the caption text), except words too general to help ("device", "animal").
`OVERRIDES` holds the fixes a reading of the automatic table asked for. WordNet is needed only
here (Debian's `wordnet-base`, read through nltk; see ../shared/docs/wordnet.md): the table is
committed as data, so neither training nor the app needs it.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from captioner.vocab import tokenize

MIN_COUNT = 10  # a tag word must occur this often in the caption text
MAX_HOPS = 5  # hypernym steps tried above a class
TOO_GENERAL = frozenset("""
entity object whole thing artifact artefact instrumentality device structure container equipment
organism being matter substance covering commodity implement system unit part animal creature
vertebrate mammal placental carnivore chordate invertebrate arthropod insect_ food foodstuff
produce solid fluid liquid material fabric cloth establishment facility construction
conveyance vehicle_ transport means way product merchandise consumer goods item article
line piece top set kind form shape body region area place point location group collection
person individual someone somebody mortal soul people
""".split())

# class index -> word, or "" for no everyday word; from reading the automatic table
OVERRIDES: dict[int, str] = {
    48: "lizard", 80: "bird", 81: "bird", 82: "bird", 83: "bird", 85: "bird", 86: "bird",
    137: "bird", 398: "", 405: "blimp", 407: "ambulance", 410: "", 426: "", 431: "crib", 432: "",
    437: "lighthouse", 442: "church", 448: "birdhouse", 449: "", 453: "shelf", 460: "pier",
    461: "", 464: "", 473: "", 476: "carousel", 477: "", 490: "", 493: "dresser", 494: "",
    496: "stocking", 500: "", 501: "", 507: "lock", 512: "", 516: "crib", 523: "", 524: "",
    532: "table", 540: "", 547: "train", 548: "television", 553: "cabinet", 557: "flag",
    561: "forklift", 573: "cart", 575: "cart", 577: "", 579: "piano", 583: "", 584: "",
    589: "dryer", 595: "tractor", 597: "", 604: "", 607: "pumpkin", 611: "puzzle", 612: "cart",
    613: "", 615: "", 616: "", 626: "lighter", 633: "", 634: "", 635: "", 638: "", 641: "",
    642: "", 645: "pole", 649: "", 655: "skirt", 657: "", 663: "building", 666: "",
    669: "bed", 678: "", 680: "", 682: "monument", 683: "", 684: "", 687: "organ", 695: "lock",
    697: "pajamas", 698: "building", 705: "train", 708: "", 723: "", 727: "building",
    731: "", 734: "van", 742: "printer", 744: "", 747: "bag", 756: "barrel", 766: "oven",
    767: "eraser", 769: "ruler", 771: "", 777: "", 780: "boat", 783: "", 787: "", 789: "door",
    798: "", 800: "", 802: "snowmobile", 803: "truck", 806: "sock", 812: "", 822: "drum",
    823: "", 826: "watch", 831: "couch", 832: "", 835: "", 836: "sunglasses", 838: "",
    840: "mop", 844: "", 845: "", 853: "roof", 855: "", 856: "tractor", 857: "chair",
    861: "toilet", 863: "pole", 867: "truck", 884: "", 887: "", 895: "airplane",
    900: "tower", 905: "window", 908: "airplane", 914: "boat", 915: "tent", 916: "",
    918: "newspaper", 925: "soup", 926: "soup", 927: "dessert", 928: "cream", 929: "",
    931: "bread", 933: "burger", 955: "fruit", 962: "meat", 964: "pie", 969: "", 973: "",
    974: "", 976: "cliff", 977: "beach", 980: "mountain", 984: "field", 986: "flower",
    988: "", 989: "", 990: "", 999: "toilet", 150: "seal",
    62: "snake", 147: "whale", 148: "whale", 286: "", 403: "ship", 416: "", 422: "", 444: "bicycle",
    451: "tie", 457: "tie", 906: "tie", 506: "", 527: "computer", 590: "computer", 533: "",
    543: "", 545: "fan", 549: "envelope", 567: "pan", 581: "car", 582: "store", 586: "",
    592: "", 640: "", 660: "trailer", 694: "", 699: "", 702: "", 704: "meter", 712: "",
    713: "", 719: "", 739: "", 765: "chair", 810: "keyboard", 816: "", 894: "closet",
    920: "traffic", 921: "book", 932: "bread", 981: "baseball", 608: "jeans",
}


def caption_counts(text_dir: Path, flickr: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    files = [*sorted(text_dir.glob("*.txt")), flickr / "captions.txt"]
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            counts.update(tokenize(line.partition("\t")[2]))
    return counts


def class_synsets(names: list[str]) -> list[Any]:
    """Match each class name to a noun synset, keeping WordNet offsets increasing."""
    from nltk.corpus import wordnet as wn

    chosen, last = [], 0
    for name in names:
        words = name.split()  # torchvision renames a few ("crane bird"): try shorter prefixes
        cands = []
        for n in range(len(words), 0, -1):
            cands = sorted((s for s in wn.synsets("_".join(words[:n]), "n") if s.offset() > last),
                           key=lambda s: s.offset())
            if cands:
                break
        if not cands:
            raise LookupError(f"no synset after offset {last} for {name!r}")
        chosen.append(cands[0])
        last = cands[0].offset()
    return chosen


def word_for(synset: Any, counts: Counter[str]) -> str:
    """Closest lemma (the class itself, then its hypernyms) that captions use."""
    frontier, seen = [synset], set()
    for _ in range(MAX_HOPS + 1):
        for s in frontier:
            for lemma in s.lemma_names():
                word = lemma.lower()
                if "_" in word or word in TOO_GENERAL:
                    continue
                if counts[word] >= MIN_COUNT:
                    return word
        seen.update(frontier)
        frontier = [h for s in frontier for h in s.hypernyms() if h not in seen]
    return ""


def build_table(counts: Counter[str]) -> list[tuple[int, str, str]]:
    from nltk.corpus import wordnet as wn

    from training.encoders import imagenet_categories

    names = imagenet_categories()
    dog, cat = wn.synset("dog.n.01"), wn.synset("domestic_cat.n.01")
    rows = []
    for index, (name, synset) in enumerate(zip(names, class_synsets(names))):
        above = set(synset.closure(lambda s: s.hypernyms())) | {synset}
        word = "dog" if dog in above else "cat" if cat in above else word_for(synset, counts)
        rows.append((index, name, OVERRIDES.get(index, word)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--text", type=Path, required=True)
    p.add_argument("--flickr", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rows = build_table(caption_counts(args.text, args.flickr))
    lines = ["index\timagenet_class\tword"] + [f"{i}\t{n}\t{w}" for i, n, w in rows]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words = [w for *_, w in rows if w]
    print(f"wrote {args.out}: {len(words)} of {len(rows)} classes mapped to {len(set(words))} words")


if __name__ == "__main__":
    main()
