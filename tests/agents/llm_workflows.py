"""Workflows for the llm crash test: three model calls, one after the other."""

from __future__ import annotations

import legato
from legato.agents._builtin import llm_chat

MODELS = ("first", "second", "third")


@legato.workflow(name="three_questions")
async def three_questions() -> list[str]:
    """Ask three models in turn; each answer is a recorded tool call."""
    answers = []
    for model in MODELS:
        answers.append(await llm_chat(f"question for {model}", model=model))
    return answers
