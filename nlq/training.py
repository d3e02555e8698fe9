"""Build-time training of the intent classifier (scikit-learn), writing weights as data.

Run by ``bench/train_intents.py`` (``python bench/train_intents.py``) whenever
``nlq/data/utterances.yaml`` changes; the result, ``nlq/data/intent_model.npz``, is
shipped and scored by ``vigil.nlq.classifier`` with numpy alone. scikit-learn is imported
inside ``train`` only, never on the ``vigil ask`` path.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vigil.nlq.classifier import MODEL_PATH, SAMPLE_NAMES, features

__all__ = ["UTTERANCES_PATH", "TrainReport", "load_utterances", "train"]

UTTERANCES_PATH = Path(__file__).resolve().parent / "data" / "utterances.yaml"

# Names the placeholders expand to: the runtime masks resolved names with the same
# tokens (``SERVICE_TOKEN``…), and real-looking names teach the model that unresolved
# words (a typo, an unknown service) carry no intent by themselves.
MASKS = {"{svc}": "svcname", "{ns}": "nsname", "{pod}": "podname"}
_SAMPLES = SAMPLE_NAMES
_SAMPLES = {
    "{svc}": [
        "checkout",
        "cart",
        "billing",
        "frontend",
        "api",
        "auth",
        "payments-api",
        "orders",
        "search",
        "gateway",
    ],
    "{ns}": ["shop", "prod", "payments", "platform", "data", "staging", "default"],
    "{pod}": ["checkout-6f7c9-x1", "api-6c8-p1", "web-0", "redis-0", "worker-5c6b-xyz12"],
}


@dataclass(frozen=True)
class TrainReport:
    classes: list[str]
    examples: int
    features: int
    cv_accuracy: float
    path: Path


def load_utterances(path: Path = UTTERANCES_PATH) -> dict[str, list[str]]:
    """``intent -> utterances`` from the shipped YAML file (validated)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
        raise ValueError(f"{path}: expected a mapping with an `intents` mapping")
    out: dict[str, list[str]] = {}
    for intent, items in data["intents"].items():
        if not isinstance(items, list) or len(items) < 10:
            raise ValueError(f"{path}: intent {intent} needs a list of at least 10 utterances")
        out[str(intent)] = [str(u) for u in items]
    return out


def _expand(utterance: str, rng: random.Random) -> list[str]:
    masked = utterance
    real = utterance
    for key, token in MASKS.items():
        masked = masked.replace(key, token)
        while key in real:
            real = real.replace(key, rng.choice(_SAMPLES[key]), 1)
    return [masked] if masked == real else [masked, real]


def _matrix(docs: list[Counter[str]], vocab: dict[str, int], idf: np.ndarray) -> Any:
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        entries = [
            (vocab[t], (1.0 + math.log(c)) * idf[vocab[t]]) for t, c in doc.items() if t in vocab
        ]
        norm = math.sqrt(sum(v * v for _, v in entries)) or 1.0
        for j, v in entries:
            rows.append(i)
            cols.append(j)
            vals.append(v / norm)
    return csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)))


def _fit(texts: list[str], labels: list[str], c: float) -> tuple[Any, dict[str, int], np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    docs = [features(t) for t in texts]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    terms = sorted(t for t, n in df.items() if n >= 2)
    vocab = {t: i for i, t in enumerate(terms)}
    n = len(docs)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms])
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(_matrix(docs, vocab, idf), labels)
    return model, vocab, idf


def train(
    utterances: Path = UTTERANCES_PATH, out: Path = MODEL_PATH, *, c: float = 20.0, seed: int = 7
) -> TrainReport:
    """Fit on every utterance, report 5-fold accuracy, write ``out`` (npz)."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    origin: list[int] = []
    count = 0
    for intent, items in load_utterances(utterances).items():
        for utterance in items:
            for variant in _expand(utterance, rng):
                texts.append(variant)
                labels.append(intent)
                origin.append(count)
            count += 1
    # Cross-validated accuracy over whole utterances (both expansions in one fold).
    order = list(range(count))
    rng.shuffle(order)
    folds = 5
    correct = 0
    for k in range(folds):
        held = set(order[k::folds])
        tr = [i for i in range(len(texts)) if origin[i] not in held]
        te = [i for i in range(len(texts)) if origin[i] in held]
        model, vocab, idf = _fit([texts[i] for i in tr], [labels[i] for i in tr], c)
        pred = model.predict(_matrix([features(texts[i]) for i in te], vocab, idf))
        correct += sum(int(p == labels[i]) for p, i in zip(pred, te, strict=True))
    model, vocab, idf = _fit(texts, labels, c)
    classes = [str(x) for x in model.classes_]
    terms = sorted(vocab, key=vocab.__getitem__)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        np.savez_compressed(
            fh,
            classes=np.array(classes),
            vocabulary=np.array(terms),
            idf=idf.astype(np.float32),
            coef=model.coef_.astype(np.float32),
            intercept=model.intercept_.astype(np.float32),
        )
    return TrainReport(classes, len(texts), len(terms), correct / len(texts), out)
