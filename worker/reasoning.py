"""Keeping the reasoning trace apart from the spoken reply (Step-Audio convention:
`<think>…</think>` before the answer). Only the reply is voiced and shown as the candidate."""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_reasoning(text: str, server_reasoning: str | None = None) -> tuple[str, str]:
    """Return (reasoning, reply). Every `<think>` block is reasoning; a `<think>` that is never
    closed (generation stopped mid-thought) makes the rest reasoning too. A lone `</think>` (the
    template opened the block in the prompt) ends reasoning that started at the beginning.
    Reasoning the server returned separately comes first."""
    parts = [server_reasoning.strip()] if server_reasoning and server_reasoning.strip() else []
    if "<think>" not in text and "</think>" in text:
        head, _, text = text.partition("</think>")
        parts.append(head.strip())
    parts += [m.strip() for m in _THINK.findall(text)]
    reply = _THINK.sub("", text)
    if "<think>" in reply:
        reply, _, unfinished = reply.partition("<think>")
        parts.append(unfinished.strip())
    return "\n\n".join(p for p in parts if p), reply.strip()
