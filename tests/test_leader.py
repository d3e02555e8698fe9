"""Leader election on a real kube-apiserver's Lease, expiry driven by injected clocks."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apiserver
import pytest

from vigil.agent.leader import KubeLease, LeaderElector, LeaseConflict
from vigil.core import ManualClock, PermanentError

pytestmark = [pytest.mark.kube, pytest.mark.timeout(120)]

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NS = "vigil-leader-test"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def kubeconfig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    yield from apiserver.kubeconfig(request, tmp_path_factory)


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> Any:
    client = apiserver.admin_client(kubeconfig)
    apiserver.create_namespace(client, NS)
    return client


@pytest.fixture
def lease_name() -> str:
    return f"vigil-{next(_names)}"


def elector(api: Any, name: str, who: str, clock: ManualClock) -> LeaderElector:
    return LeaderElector(KubeLease(api, NS, name), who, clock, lease_duration=15, renew_every=5)


def test_two_electors_one_leader_and_takeover_after_expiry(api: Any, lease_name: str) -> None:
    clock_a, clock_b = ManualClock(T0), ManualClock(T0)
    a, b = elector(api, lease_name, "pod-a", clock_a), elector(api, lease_name, "pod-b", clock_b)
    assert a.step() is True
    assert b.step() is False
    for _ in range(3):  # a renews, b keeps watching: never both
        clock_a.advance(5)
        clock_b.advance(5)
        assert (a.step(), b.step()) == (True, False)
        assert a.is_leader() and not b.is_leader()
    record = KubeLease(api, NS, lease_name).get()
    assert record is not None and record.holder == "pod-a" and record.transitions == 0
    # a stops renewing (hung or partitioned); b sees no change for lease_duration
    clock_b.advance(14)
    assert b.step() is False  # 14 s since b last saw the record change
    clock_a.advance(14)
    assert not a.is_leader()  # a stepped down by itself after its renew deadline (10 s)
    clock_b.advance(1)
    assert b.step() is True
    record = KubeLease(api, NS, lease_name).get()
    assert record is not None and record.holder == "pod-b" and record.transitions == 1
    # a comes back: it sees b's fresh lease and follows
    assert a.step() is False and not a.is_leader()
    clock_b.advance(5)
    assert b.step() is True


def test_stale_write_is_refused_with_a_conflict(api: Any, lease_name: str) -> None:
    lease = KubeLease(api, NS, lease_name)
    a = elector(api, lease_name, "pod-a", ManualClock(T0))
    assert a.step()
    first, second = lease.get(), lease.get()
    assert first is not None and second is not None
    lease.update(first.__class__(**{**first.__dict__, "renewed": T0 + timedelta(seconds=1)}))
    with pytest.raises(LeaseConflict, match="changed by another replica"):
        lease.update(second.__class__(**{**second.__dict__, "holder": "pod-b"}))


def test_racing_electors_on_an_expired_lease_elect_exactly_one(api: Any, lease_name: str) -> None:
    old = elector(api, lease_name, "pod-old", ManualClock(T0))
    assert old.step()
    clocks = [ManualClock(T0) for _ in range(4)]
    electors = [elector(api, lease_name, f"pod-{i}", c) for i, c in enumerate(clocks)]
    assert not any(e.step() for e in electors)  # they see pod-old's record
    for c in clocks:
        c.advance(16)
    barrier = threading.Barrier(len(electors))
    results: list[bool] = [False] * len(electors)

    def race(i: int) -> None:
        barrier.wait()
        results[i] = electors[i].step()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(electors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(results) == 1
    record = KubeLease(api, NS, lease_name).get()
    assert record is not None and record.holder == f"pod-{results.index(True)}"


def test_release_lets_the_next_replica_lead_at_once(api: Any, lease_name: str) -> None:
    a = elector(api, lease_name, "pod-a", ManualClock(T0))
    b = elector(api, lease_name, "pod-b", ManualClock(T0))
    assert a.step() and not b.step()
    assert a.release() is True and not a.is_leader()
    assert b.step() is True  # no wait for expiry


def test_run_loop_reports_changes_and_releases_on_stop(api: Any, lease_name: str) -> None:
    a = LeaderElector(KubeLease(api, NS, lease_name), "pod-a", ManualClock(T0),
                      lease_duration=15, renew_every=0.05)  # fmt: skip
    changes: list[bool] = []
    stop = threading.Event()
    got = threading.Event()

    def on_change(leading: bool) -> None:
        changes.append(leading)
        got.set()

    thread = a.start(stop, on_change=on_change)
    assert got.wait(20)
    stop.set()
    thread.join(20)
    assert changes == [True, False]
    record = KubeLease(api, NS, lease_name).get()
    assert record is not None and record.holder == ""


def test_missing_namespace_is_a_clear_error(api: Any) -> None:
    lease = KubeLease(api, "no-such-namespace", "x")
    assert lease.get() is None
    from vigil.agent.leader import LeaseRecord

    with pytest.raises(PermanentError, match="no-such-namespace"):
        lease.create(LeaseRecord("pod-a", 15, T0, T0))
    failing = elector(api, "x", "pod-a", ManualClock(T0))
    failing.lease = lease
    assert failing.step() is False and not failing.is_leader()
