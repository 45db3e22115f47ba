"""A conversation kept in the language model's prompt, with the training data's turn markers.

The prompt is ``[START] user: ... assistant: ... user: <message> assistant:`` and
the model's continuation is the reply, cut where it starts a new turn (either
marker) or at ``[END]``. When the conversation no longer fits the model's length
with room for a reply, the oldest turns are dropped first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field

from .seq_text import START_ID, detokenize
from .tokenizer import WordPiece


@dataclass
class Conversation:
    """Turns so far, and the prompt ids for the next one."""

    tokenizer: WordPiece
    vocabulary: Sequence[str]
    length: int
    _: KW_ONLY
    user: str
    assistant: str
    reply_budget: int
    turns: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0  # turns no longer in the prompt

    def __post_init__(self) -> None:
        self.user_ids = self.tokenizer.encode(self.user)
        self.assistant_ids = self.tokenizer.encode(self.assistant)

    def prompt(self, message: str) -> list[int]:
        """``[START]`` + the turns that fit + the new message and the assistant marker."""
        room = max(1, self.length - self.reply_budget - 1)
        current = self.tokenizer.encode(f"{self.user} {message} {self.assistant}")
        kept = self.turns[self.dropped:]
        history = [self.tokenizer.encode(f"{self.user} {u} {self.assistant} {a}")
                   for u, a in kept]
        while history and sum(map(len, history)) + len(current) > room:
            history.pop(0)  # the oldest turn goes first
            self.dropped += 1
        ids = [token for turn in history for token in turn] + current
        return [START_ID, *ids[-room:]]

    def _marker_at_end(self, new: list[int]) -> list[int]:
        for marker in (self.user_ids, self.assistant_ids):
            if marker and new[-len(marker):] == marker:
                return marker
        return []

    def ends_reply(self, new: list[int]) -> bool:
        """Whether the sampled ids have started a new turn (either marker)."""
        return bool(self._marker_at_end(new))

    def add(self, message: str, new: list[int]) -> str:
        """Record the turn; return the reply text (without a trailing turn marker)."""
        marker = self._marker_at_end(new)
        if marker:
            new = new[:-len(marker)]
        reply = detokenize(self.vocabulary, new).strip()
        self.turns.append((message, reply))
        return reply

    def transcript(self) -> str:
        """The whole conversation, one marked turn per line."""
        return "".join(f"{self.user} {u}\n{self.assistant} {a}\n" for u, a in self.turns)
