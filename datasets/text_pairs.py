"""A rule-based toy language pair for the ``nlp`` template's translation task.

- ``phrase_pairs``: English sentences and their translation into "Tovan", a made-up
  language with a fixed lexicon and its own grammar, written as ``train.tsv`` /
  ``val.tsv`` (columns ``source``, ``target``). A model has to learn:

  * word order: subject - object - verb, and a place phrase moved to the front
    ("the dog saw a ball in the park" -> "parko en voro un palon vidis");
  * adjectives after their noun ("the red ball" -> "palon roso");
  * inflection: plural ``-j``, object case ``-n`` ("the red balls" -> "palojn roso"),
    the verb's tense and number (present ``-a``, plural ``-an``, past ``-is``) and
    negation ``ne`` before the verb, while English spells these differently
    ("does not see", "do not see", "did not see", "saw", "children", "boxes").

The mapping is deterministic, so a perfect translator exists and BLEU measures how
much of it a model learned. Only the standard library and numpy are used.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .staging import staged_dir

# English singular, English plural, Tovan stem.
SUBJECTS = [("dog", "dogs", "voro"), ("cat", "cats", "misu"), ("bird", "birds", "pila"),
            ("child", "children", "keno"), ("farmer", "farmers", "tarik"),
            ("teacher", "teachers", "sotum"), ("horse", "horses", "hapa"),
            ("fox", "foxes", "rudi"), ("girl", "girls", "lina"), ("boy", "boys", "kobo")]
OBJECTS = [("ball", "balls", "palo"), ("apple", "apples", "mela"), ("book", "books", "lekta"),
           ("box", "boxes", "kasu"), ("stone", "stones", "petra"), ("hat", "hats", "sapo"),
           ("cup", "cups", "tasi"), ("loaf", "loaves", "pani"), ("letter", "letters", "karta"),
           ("flower", "flowers", "fiora")]
ADJECTIVES = [("big", "gran"), ("small", "piti"), ("red", "roso"), ("old", "vek"),
              ("young", "nuva"), ("happy", "felu"), ("green", "virda"), ("quick", "rapi"),
              ("lazy", "lenta"), ("tall", "alto")]
# English base, third person singular, past; Tovan stem.
VERBS = [("see", "sees", "saw", "vid"), ("eat", "eats", "ate", "manj"),
         ("like", "likes", "liked", "am"), ("find", "finds", "found", "trov"),
         ("carry", "carries", "carried", "port"), ("want", "wants", "wanted", "vol"),
         ("follow", "follows", "followed", "sek"), ("watch", "watches", "watched", "gard"),
         ("hold", "holds", "held", "ten"), ("push", "pushes", "pushed", "puz")]
PLACES = [("in the park", "parko en"), ("near the river", "rivo apud"),
          ("on the hill", "kolo sur"), ("in the garden", "horto en"), ("at home", "dome")]
DETERMINERS = [("the", ""), ("a", "un"), ("my", "mia")]  # "a" only with singular nouns


def write_phrase_pairs(out: Path, *, size: int | None = None, seed: int = 0,
                       **_: object) -> str:
    """Write ``out/train.tsv`` and ``out/val.tsv`` (columns ``source``, ``target``).

    ``size`` is the total number of distinct pairs (default 5000); a tenth goes to val.tsv.
    """
    total = 5000 if size is None else int(size)
    if total < 10:
        raise ValueError(f"size must be at least 10 pairs, got {total}")
    rng = np.random.default_rng(seed)
    pairs: dict[str, str] = {}
    while len(pairs) < total:  # distinct sources, so val sentences are never seen in training
        source, target = phrase_pair(rng)
        pairs.setdefault(source, target)
    rows = list(pairs.items())
    val_count = max(2, total // 10)
    with staged_dir(Path(out)) as staging:
        for name, part in (("train.tsv", rows[val_count:]), ("val.tsv", rows[:val_count])):
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
            writer.writerow(["source", "target"])
            writer.writerows(part)
            (staging / name).write_text(buffer.getvalue(), encoding="utf-8")
    return (f"{total} English -> Tovan sentence pairs (a made-up language: verb last, "
            f"adjective after noun, case and tense endings) in {out}/{{train,val}}.tsv")


def phrase_pair(rng: np.random.Generator) -> tuple[str, str]:
    """One English sentence and its Tovan translation."""
    subject, subject_plural = _noun_phrase(rng, SUBJECTS, case="")
    obj, _ = _noun_phrase(rng, OBJECTS, case="n")
    base, third, past, stem = VERBS[int(rng.integers(len(VERBS)))]
    tense = ("present", "past")[int(rng.integers(2))]
    negated = bool(rng.random() < 0.3)
    if tense == "past":
        english_verb = f"did not {base}" if negated else past
        tovan_verb = stem + "is"
    else:
        english_verb = base if subject_plural else third
        if negated:
            english_verb = f"{'do' if subject_plural else 'does'} not {base}"
        tovan_verb = stem + ("an" if subject_plural else "a")
    if negated:
        tovan_verb = "ne " + tovan_verb
    english = f"{subject[0]} {english_verb} {obj[0]}"
    tovan = f"{subject[1]} {obj[1]} {tovan_verb}"
    if rng.random() < 0.35:
        place, tovan_place = PLACES[int(rng.integers(len(PLACES)))]
        english, tovan = f"{english} {place}", f"{tovan_place} {tovan}"
    return english, tovan


def _noun_phrase(rng: np.random.Generator, nouns: list[tuple[str, str, str]], *, case: str
                 ) -> tuple[tuple[str, str], bool]:
    """(English, Tovan) of 'det [adjective] noun' and whether the noun is plural."""
    singular, plural, stem = nouns[int(rng.integers(len(nouns)))]
    is_plural = bool(rng.random() < 0.4)
    determiners = DETERMINERS[::2] if is_plural else DETERMINERS  # no "a" with a plural
    det, tovan_det = determiners[int(rng.integers(len(determiners)))]
    english_noun = plural if is_plural else singular
    tovan_noun = stem + ("j" if is_plural else "") + case
    english = [det]
    tovan = [tovan_det] if tovan_det else []
    tovan.append(tovan_noun)
    if rng.random() < 0.5:
        adjective, tovan_adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
        english.append(adjective)
        tovan.append(tovan_adjective)
    english.append(english_noun)
    if det == "a" and english[1][0] in "aeiou":
        english[0] = "an"
    return (" ".join(english), " ".join(tovan)), is_plural
