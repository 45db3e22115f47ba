"""Templated shop-assistant conversations for the ``nlp`` template's causal_lm task.

- ``dialogues``: one conversation per line in ``train.txt`` / ``val.txt``, turns
  marked ``user:`` and ``assistant:``::

      user: hi there assistant: hello! how can i help you today? user: where is my
      order 4821? assistant: order 4821 was shipped on monday. user: thanks, bye
      assistant: you are welcome. goodbye!

  The assistant copies slot values from the user's turn (order numbers, items,
  colours, days), answers opening hours from a fixed timetable and closes the
  conversation politely, so a small language model has structure to learn: turn
  taking, copying, and facts that are the same in every conversation.

Only the standard library and numpy are used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .distinct import split_distinct
from .staging import staged_dir

USER, ASSISTANT = "user:", "assistant:"
ITEMS = ["shoes", "jackets", "scarves", "backpacks", "hats", "gloves", "umbrellas", "socks",
         "sweaters", "boots"]
COLOURS = ["red", "blue", "black", "green", "white", "grey", "yellow", "brown"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
HOURS = {"saturday": "from 10 to 4", "sunday": None}  # every other day: 9 to 6
GREETINGS = [("hi there", "hello! how can i help you today?"),
             ("hello", "hello! how can i help you today?"),
             ("good morning", "good morning! what can i do for you?")]
FAREWELLS = [("thanks, bye", "you are welcome. goodbye!"),
             ("thank you", "you are welcome. anything else?"),
             ("great, thanks", "glad to help. goodbye!")]


def write_dialogues(out: Path, *, size: int | None = None, seed: int = 0, **_: object) -> str:
    """Write ``out/train.txt`` and ``out/val.txt``: one conversation per line.

    ``size`` is the total number of conversations (default 3000); a tenth goes to val.txt.
    """
    total = 3000 if size is None else int(size)
    if total < 10:
        raise ValueError(f"size must be at least 10 conversations, got {total}")
    rng = np.random.default_rng(seed)
    val_count = max(2, total // 10)
    train, val = split_distinct(lambda: conversation(rng), total, val_count, str)
    with staged_dir(Path(out)) as staging:
        (staging / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
        (staging / "val.txt").write_text("\n".join(val) + "\n", encoding="utf-8")
    return (f"{total} templated shop-assistant conversations ({USER} / {ASSISTANT} turns, "
            f"one per line) in {out}/{{train,val}}.txt")


def conversation(rng: np.random.Generator) -> str:
    """A greeting, one to three requests, and a farewell, as one line."""
    turns = [GREETINGS[int(rng.integers(len(GREETINGS)))]]
    for _ in range(int(rng.integers(1, 4))):
        turns.append(request(rng))
    turns.append(FAREWELLS[int(rng.integers(len(FAREWELLS)))])
    return " ".join(f"{USER} {user} {ASSISTANT} {reply}" for user, reply in turns)


def request(rng: np.random.Generator) -> tuple[str, str]:
    """One (user, assistant) exchange with slot values the reply copies."""
    kind = int(rng.integers(4))
    if kind == 0:
        order = str(int(rng.integers(1000, 10000)))
        asked = _pick(rng, [f"where is my order {order}?", f"has order {order} shipped yet?",
                            f"what is the status of order {order}?"])
        status = _pick(rng, [f"was shipped on {_pick(rng, DAYS)}", "is being packed today",
                             f"will arrive on {_pick(rng, DAYS)}"])
        return asked, f"order {order} {status}."
    if kind == 1:
        item, colour = _pick(rng, ITEMS), _pick(rng, COLOURS)
        asked = _pick(rng, [f"do you have {item} in {colour}?",
                            f"are there any {colour} {item} left?"])
        if rng.random() < 0.7:
            return asked, f"yes, we have {colour} {item} in stock."
        return asked, f"sorry, the {colour} {item} are sold out."
    if kind == 2:
        day = _pick(rng, DAYS)
        asked = _pick(rng, [f"when are you open on {day}?", f"what are your hours on {day}?"])
        hours = HOURS.get(day, "from 9 to 6")
        if hours is None:
            return asked, f"we are closed on {day}."
        return asked, f"on {day} we are open {hours}."
    item = _pick(rng, ITEMS)
    asked = _pick(rng, [f"i want to return my {item}", f"can i send back the {item}?"])
    return asked, f"sure, you can return the {item} within 30 days."


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]
