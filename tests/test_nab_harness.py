"""The NAB harness on a small NAB-layout folder: results layout, probation, causality."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vigil.detectors.nab import (
    NabConfig,
    new_peaks,
    probationary_length,
    read_nab_file,
    run_nab,
    score_stream,
)

pytestmark = pytest.mark.timeout(90)


def write_nab_file(path: Path, values: np.ndarray) -> None:
    start = datetime(2014, 4, 1, tzinfo=UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            w.writerow([(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), v])


def series(n: int, seed: int, jump_at: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = 20 + 5 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, n)
    if jump_at is not None:
        v[jump_at:] += 15
    return np.round(v, 4)


def test_probationary_length_is_nabs() -> None:
    assert probationary_length(4032) == 604
    assert probationary_length(22695) == 750


def test_run_nab_writes_nabs_results_layout(tmp_path: Path) -> None:
    data = tmp_path / "nab" / "data"
    write_nab_file(data / "catA" / "one.csv", series(900, 0, jump_at=700))
    write_nab_file(data / "catA" / "two.csv", series(600, 1))
    write_nab_file(data / "catB" / "three.csv", series(700, 2))
    seen: list[tuple[str, int, int]] = []
    out = tmp_path / "results"
    results = run_nab(
        tmp_path / "nab",
        out,
        name="vigil",
        workers=1,
        progress=lambda f, d, n: seen.append((f, d, n)),
    )
    assert len(results) == 3 and [s[1:] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    one = out / "vigil" / "catA" / "vigil_one.csv"
    with one.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == 901
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (scores[: probationary_length(900)] == 0).all()
    # The level jump at row 700 is the strongest evidence in the file.
    assert 700 <= int(np.argmax(scores)) <= 705
    assert (out / "vigil" / "catB" / "vigil_three.csv").is_file()


def test_scores_are_causal(tmp_path: Path) -> None:
    # Past 5000 rows NAB's probation is fixed (750 rows), so a file and its prefix
    # share it: scores of the prefix must equal the first rows of the whole.
    full = series(5300, 3, jump_at=5100)
    write_nab_file(tmp_path / "full.csv", full)
    _, ts, vals = read_nab_file(tmp_path / "full.csv")
    # The seasonal member alone keeps the test fast; it refits at row 2190 and 3630.
    cfg = NabConfig(members="seasonal")
    whole = score_stream(ts, vals, cfg)
    prefix = score_stream(ts[:5050], vals[:5050], cfg)
    np.testing.assert_array_equal(prefix, whole[:5050])


def test_new_peak_filter_fires_once_per_rising_event() -> None:
    score = np.zeros(40)
    score[5:8] = [0.3, 0.4, 0.5]  # one event whose evidence keeps rising
    score[12] = 0.7  # within 10 rows of the kept 0.3, but more than twice it
    score[30] = 0.8  # beyond the echo rows: beating the faded peak by 10 % is enough
    out = new_peaks(score, start=2)
    assert np.flatnonzero(out).tolist() == [5, 12, 30]
    assert out[5] == pytest.approx(0.3) and out[12] == pytest.approx(0.7)
    # Without the echo rule every step of the ramp would fire (three false positives).
    ramp = new_peaks(score, start=2, config=NabConfig(echo_rows=0))
    assert np.flatnonzero(ramp).tolist() == [5, 6, 7, 12, 30]


def test_new_peak_filter_lets_an_old_alarm_fade() -> None:
    score = np.zeros(600)
    score[10] = 1.0
    score[410] = 0.8  # 400 rows later: the old peak counts 1.0 × 2^(-400/700) = 0.67
    assert np.flatnonzero(new_peaks(score, start=0)).tolist() == [10, 410]
    never_fades = NabConfig(peak_half_life=float("inf"))
    assert np.flatnonzero(new_peaks(score, start=0, config=never_fades)).tolist() == [10]
    # Rows before the probation's end score 0 whatever their evidence.
    assert new_peaks(score, start=11)[10] == 0.0


def test_bad_layout_and_names_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        run_nab(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no <category>/\*\.csv"):
        run_nab(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match="unknown detector"):
        run_nab(tmp_path / "empty", tmp_path / "out", detector="magic")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,val\n1,2\n")
    with pytest.raises(ValueError, match="expected a header"):
        read_nab_file(bad)
