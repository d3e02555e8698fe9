"""Ordinary English words that are never names, read once from ``data/lexicon.json``.

Used by ``vigil.nlq.entities`` beside the classifier's own vocabulary, so that "see" in
"I'd like to see…" is not taken for an unknown service.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ENGLISH"]

_PATH = Path(__file__).resolve().parent / "data" / "lexicon.json"

ENGLISH = frozenset(json.loads(_PATH.read_text(encoding="utf-8"))["words"])
