"""A seeded, reproducible request mix of the kind LLM fleets see.

- a few long shared system prompts (1-2k tokens of dummy words), popular by a Zipf law, each
  opening many users' multi-turn conversations that resend their growing history;
- a share of one-off requests with a unique context (nothing shared with anything else).

Prompts are plain text for `/v1/completions`, rendered by the client from the conversation as a
chat template would be (`render_prompt`): the TokenCache warmup Job sends its prefixes to
`/v1/completions`, so a shared system prompt warmed that way is a real token prefix of every
request that starts with it. Words are dummy words: the simulator's dummy tokenizer makes one
token of each word (and of each punctuation mark), so word counts are token counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    seed: int = 20260601
    requests: int = 600
    """Requests in all (conversation turns + unique requests)."""
    system_prompts: int = 6
    system_words: tuple[int, int] = (1000, 2000)
    zipf_s: float = 1.0
    """Popularity of system prompt i is proportional to 1 / (i + 1) ** zipf_s."""
    turns: tuple[int, int] = (2, 8)
    user_words: tuple[int, int] = (20, 80)
    unique_share: float = 0.2
    """Share of all requests that are one-off requests with a unique context."""
    unique_words: tuple[int, int] = (200, 1000)
    reply_tokens: int = 32
    """Tokens every request generates (`max_tokens` with `ignore_eos`)."""


@dataclass(frozen=True)
class Session:
    """One user's requests, sent one after the other: a conversation (system prompt index and
    its user turns) or a one-off request (unique context, one turn)."""

    index: int
    system: int | None
    context: str
    turns: tuple[str, ...]

    @property
    def unique(self) -> bool:
        return self.system is None


@dataclass(frozen=True)
class Workload:
    spec: Spec
    system_prompts: tuple[str, ...]
    sessions: tuple[Session, ...]

    @property
    def requests(self) -> int:
        return sum(len(s.turns) for s in self.sessions)

    @property
    def unique_requests(self) -> int:
        return sum(len(s.turns) for s in self.sessions if s.unique)


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """Pronounceable dummy words of 2-4 syllables (5-10 characters)."""
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        words.add(
            "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        )
    return sorted(words)


def text(rng: random.Random, vocab: list[str], words: int) -> str:
    """`words` dummy words as sentences of 8-20 words (a period is one more token)."""
    out: list[str] = []
    left = words
    while left > 0:
        n = min(left, rng.randint(8, 20))
        sentence = [rng.choice(vocab) for _ in range(n)]
        out.append(" ".join(sentence).capitalize() + ".")
        left -= n
    return " ".join(out)


def build(spec: Spec) -> Workload:
    rng = random.Random(spec.seed)
    vocab = vocabulary(rng)
    prompts = tuple(
        f"System prompt {i}. " + text(rng, vocab, rng.randint(*spec.system_words))
        for i in range(spec.system_prompts)
    )
    weights = [1 / (i + 1) ** spec.zipf_s for i in range(spec.system_prompts)]
    unique_total = round(spec.requests * spec.unique_share)
    sessions: list[tuple[int | None, str, tuple[str, ...]]] = []
    conversation_turns = 0
    while conversation_turns < spec.requests - unique_total:
        n = min(rng.randint(*spec.turns), spec.requests - unique_total - conversation_turns)
        system = rng.choices(range(spec.system_prompts), weights)[0]
        turns = tuple(text(rng, vocab, rng.randint(*spec.user_words)) for _ in range(n))
        sessions.append((system, prompts[system], turns))
        conversation_turns += n
    for _ in range(unique_total):
        context = text(rng, vocab, rng.randint(*spec.unique_words))
        sessions.append((None, context, (text(rng, vocab, rng.randint(*spec.user_words)),)))
    rng.shuffle(sessions)
    return Workload(
        spec,
        prompts,
        tuple(Session(i, system, ctx, turns) for i, (system, ctx, turns) in enumerate(sessions)),
    )


def render_prompt(context: str, history: list[tuple[str, str]], user: str) -> str:
    """The completion prompt of one turn: the context (system prompt or unique document), the
    earlier turns with the replies the engine gave, and the new user message."""
    parts = [context, ""]
    for question, answer in history:
        parts += [f"User: {question}", f"Assistant: {answer}"]
    parts += [f"User: {user}", "Assistant:"]
    return "\n".join(parts)
