"""A conversation kept in the language model's prompt, with the training data's turn markers.

The prompt is ``[START] user: ... assistant: ... user: <message> assistant:`` and
the model's continuation is the reply, cut where it starts a new turn (either
marker) or at ``[END]``. When the conversation no longer fits the model's length
with room for a reply, the oldest turns are dropped first.

The markers are found in the reply's text, not its ids: a byte-level BPE tokenizer
(a preset's) spells " user:" inside a sentence with other ids than "user:" alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from .seq_text import START_ID


@dataclass
class Conversation:
    """Turns so far, and the prompt ids for the next one.

    ``tokenizer`` has ``encode(text) -> ids`` (WordPiece or a preset's); ``decode`` turns
    generated ids back into text.
    """

    tokenizer: Any
    decode: Callable[[Sequence[int]], str]
    length: int
    _: KW_ONLY
    user: str
    assistant: str
    reply_budget: int
    turns: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0  # turns no longer in the prompt

    def __post_init__(self) -> None:
        # each marker as the tokenizer gives it back (a lowercasing WordPiece lowercases it)
        self.markers = [text for text in (self.decode(self.tokenizer.encode(marker)).strip()
                                          for marker in (self.user, self.assistant)) if text]

    def prompt(self, message: str) -> list[int]:
        """``[START]`` + the turns that fit + the new message and the assistant marker."""
        room = max(1, self.length - self.reply_budget - 1)
        current = f"{self.user} {message} {self.assistant}"
        history = [f"{self.user} {u} {self.assistant} {a}" for u, a in self.turns[self.dropped:]]
        ids = self.tokenizer.encode(" ".join([*history, current]))
        while history and len(ids) > room:
            history.pop(0)  # the oldest turn goes first
            self.dropped += 1
            ids = self.tokenizer.encode(" ".join([*history, current]))
        return [START_ID, *ids[-room:]]

    def _cut(self, new: Sequence[int]) -> tuple[str, bool]:
        """The reply's text before any turn marker, and whether there was one."""
        text = self.decode(new)
        found = [index for index in (text.find(marker) for marker in self.markers)
                 if index >= 0]
        return (text[:min(found)], True) if found else (text, False)

    def ends_reply(self, new: list[int]) -> bool:
        """Whether the sampled ids have started a new turn (either marker)."""
        return self._cut(new)[1]

    def add(self, message: str, new: list[int]) -> str:
        """Record the turn; return the reply text (without a trailing turn marker), on one
        line: a byte-level tokenizer can spell a newline, and the transcript keeps one turn
        a line, as the training documents do."""
        reply = " ".join(self._cut(new)[0].split())
        self.turns.append((message, reply))
        return reply

    def transcript(self) -> str:
        """The whole conversation, one marked turn per line."""
        return "".join(f"{self.user} {u}\n{self.assistant} {a}\n" for u, a in self.turns)
