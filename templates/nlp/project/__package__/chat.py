"""A conversation kept in the language model's prompt, with the training data's turn markers.

The prompt is ``[START] user: ... assistant: ... user: <message> assistant:`` and
the model's continuation is the reply, cut where it starts the next ``user:`` turn
(or at ``[END]``). When the conversation no longer fits the model's length with
room for a reply, the oldest turns are dropped first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .seq_text import START_ID, detokenize
from .tokenizer import WordPiece


class Conversation:
    """Turns so far, and the prompt ids for the next one."""

    def __init__(self, tokenizer: WordPiece, vocabulary: Sequence[str], length: int, *,
                 user: str, assistant: str, reply_budget: int) -> None:
        self.tokenizer = tokenizer
        self.vocabulary = vocabulary
        self.length = length
        self.user = user
        self.assistant = assistant
        self.reply_budget = reply_budget
        self.user_ids = tokenizer.encode(user)
        self.turns: list[tuple[str, str]] = []
        self.dropped = 0  # turns no longer in the prompt

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

    def ends_reply(self, new: list[int]) -> bool:
        """Whether the sampled ids have started the user's next turn."""
        return bool(self.user_ids) and new[-len(self.user_ids):] == self.user_ids

    def add(self, message: str, new: list[int]) -> str:
        """Record the turn; return the reply text (without a trailing user marker)."""
        if self.ends_reply(new):
            new = new[:-len(self.user_ids)]
        reply = detokenize(self.vocabulary, new).strip()
        self.turns.append((message, reply))
        return reply

    def transcript(self) -> str:
        """The whole conversation, one marked turn per line."""
        return "".join(f"{self.user} {u}\n{self.assistant} {a}\n" for u, a in self.turns)
