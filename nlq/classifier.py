"""The offline intent classifier: TF-IDF over word and character n-grams, a linear model.

``features`` is the one featuriser, used by ``vigil.nlq.training`` (which fits the model
with scikit-learn at build time) and here at run time, so both see the same numbers.
``IntentModel`` loads the shipped weights (``nlq/data/intent_model.npz``) and scores with
numpy only: importing scikit-learn costs ~2 s, more than ``vigil ask`` may take in all.
Called by ``vigil.nlq.engine``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["MODEL_PATH", "SAMPLE_NAMES", "IntentModel", "Prediction", "features", "normalise"]

MODEL_PATH = Path(__file__).resolve().parent / "data" / "intent_model.npz"

# Names the training placeholders expand to (``vigil.nlq.training``): words of the model's
# vocabulary that are not English, so entity extraction must not treat them as such.
SAMPLE_NAMES = {
    "{svc}": ["checkout", "cart", "billing", "frontend", "api", "auth", "payments-api", "orders",
              "search", "gateway"],
    "{ns}": ["shop", "prod", "payments", "platform", "data", "staging", "default"],
    "{pod}": ["checkout-6f7c9-x1", "api-6c8-p1", "web-0", "redis-0", "worker-5c6b-xyz12"],
}  # fmt: skip

_TOKEN = re.compile(r"[a-z0-9_]+|[?!]")


def normalise(text: str) -> str:
    """Lowercase, digits folded to ``0`` (so "top 7" reads as "top 5"), spaces squeezed."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"\d+", "0", text)
    return re.sub(r"\s+", " ", text).strip()


def features(text: str) -> Counter[str]:
    """Term counts: word 1-2 grams (``w:``) and 3-5 character grams inside words (``c:``)."""
    words = _TOKEN.findall(normalise(text))
    counts: Counter[str] = Counter()
    for i, word in enumerate(words):
        counts["w:" + word] += 1
        if i + 1 < len(words):
            counts["b:" + word + " " + words[i + 1]] += 1
        padded = f" {word} "
        for n in (3, 4, 5):
            for j in range(len(padded) - n + 1):
                counts["c:" + padded[j : j + n]] += 1
    return counts


@dataclass(frozen=True)
class Prediction:
    """The best intent, its probability, and the runner-up (for "did you mean")."""

    intent: str
    confidence: float
    ranked: tuple[tuple[str, float], ...]


class IntentModel:
    """Multinomial logistic regression over sublinear, L2-normalised TF-IDF features."""

    def __init__(
        self,
        classes: list[str],
        vocabulary: dict[str, int],
        idf: npt.NDArray[np.float64],
        coef: npt.NDArray[np.float64],
        intercept: npt.NDArray[np.float64],
    ) -> None:
        if coef.shape != (len(classes), len(vocabulary)) or idf.shape != (len(vocabulary),):
            raise ValueError(
                f"intent model is inconsistent: {len(classes)} classes, {len(vocabulary)} "
                f"features, coef {coef.shape}, idf {idf.shape}; retrain with "
                "`python bench/train_intents.py`"
            )
        self.classes = classes
        self.vocabulary = vocabulary
        self.idf = idf
        self.coef = coef
        self.intercept = intercept

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> IntentModel:
        """Read the weights written by ``vigil.nlq.training.train``."""
        if not path.is_file():
            raise FileNotFoundError(
                f"intent model {path} is missing: run `python bench/train_intents.py`"
            )
        with np.load(path, allow_pickle=False) as data:
            vocab = [str(v) for v in data["vocabulary"]]
            return cls(
                [str(c) for c in data["classes"]],
                {term: i for i, term in enumerate(vocab)},
                data["idf"].astype(np.float64),
                data["coef"].astype(np.float64),
                data["intercept"].astype(np.float64),
            )

    def vector(self, text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Sparse TF-IDF vector of ``text``: feature indices and L2-normalised weights."""
        idx: list[int] = []
        vals: list[float] = []
        for term, count in features(text).items():
            j = self.vocabulary.get(term)
            if j is not None:
                idx.append(j)
                vals.append((1.0 + math.log(count)) * float(self.idf[j]))
        arr = np.array(vals, dtype=np.float64)
        norm = float(np.sqrt(np.dot(arr, arr))) if arr.size else 0.0
        if norm > 0:
            arr /= norm
        return np.array(idx, dtype=np.intp), arr

    def predict(self, text: str) -> Prediction:
        idx, vals = self.vector(text)
        logits = self.intercept + (self.coef[:, idx] @ vals if idx.size else 0.0)
        logits = logits - logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        order = np.argsort(-probs)
        ranked = tuple((self.classes[i], float(probs[i])) for i in order[:3])
        return Prediction(ranked[0][0], ranked[0][1], ranked)


@lru_cache(maxsize=1)
def shipped_model() -> IntentModel:
    """The model shipped in the package, loaded once per process."""
    return IntentModel.load()
