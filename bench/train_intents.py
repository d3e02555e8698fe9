"""Train the offline intent classifier and write ``nlq/data/intent_model.npz``.

Run after editing ``nlq/data/utterances.yaml``: ``python bench/train_intents.py``.
Prints the number of examples and features and the 5-fold accuracy over utterances.
"""

from __future__ import annotations

import time

from vigil.nlq.training import train


def main() -> None:
    began = time.perf_counter()
    report = train()
    took = time.perf_counter() - began
    print(
        f"intents={len(report.classes)} examples={report.examples} features={report.features} "
        f"cv_accuracy={report.cv_accuracy:.3f} took={took:.1f}s -> {report.path}"
    )


if __name__ == "__main__":
    main()
