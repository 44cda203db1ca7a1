"""The lease manager's behaviour, driven directly: no threads, no store, time as a value."""

import ast
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from actorbatch.behaviours.leasing import YIELD_S, LeaseBehaviour
from actorbatch.domain.events import Event
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import AttemptLost, Run, RunCreated, TaskSucceeded
from actorbatch.domain.servers import DrainRequested, Server, ServerStarted
from tests.conftest import T0

SRC = Path(__file__).parent.parent / "src" / "actorbatch"


def created(n: int, *, priority: str = "normal", group: str = "default", width: int = 1,
            due_in_s: float = 0, created_at_s: float = 0) -> RunCreated:
    job = parse_job({"name": f"j-{priority}-{group}", "priority": priority, "group": group,
                     "tasks": [{"name": f"t{i}", "run": "m:f"} for i in range(width)]})
    return Run.create(UUID(int=n), job, 1, {}, "u", T0 + timedelta(seconds=due_in_s),
                      T0 + timedelta(seconds=created_at_s))


def test_claims_go_to_the_highest_priority_then_the_earliest_due() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1, priority="low", due_in_s=-30), created(2, priority="high", due_in_s=-10),
                created(3, priority="high", due_in_s=-20), created(4, priority="critical", due_in_s=-5)])
    claims = lm.claims(T0, free=3)
    assert [c.originator_id.int for c in claims] == [4, 3, 2]
    assert [c.originator_id.int for c in lm.claims(T0, free=3)] == [1]


def test_several_claims_on_one_run_take_consecutive_versions() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1, width=3)])
    claims = lm.claims(T0, free=5)
    assert [c.originator_version for c in claims] == [2, 3, 4]
    assert {c.task for c in claims} == {"t0", "t1", "t2"}


def test_a_server_claims_only_its_groups() -> None:
    lm = LeaseBehaviour("s1", ["reports"], 30)
    lm.observe([created(1, group="default"), created(2, group="reports")])
    assert [c.originator_id.int for c in lm.claims(T0, free=5)] == [2]


def test_a_run_due_later_is_claimed_once_due() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1, due_in_s=60)])
    assert lm.claims(T0, free=1) == []
    assert lm.next_wake() == T0 + timedelta(seconds=60)
    lm.wake_due(T0 + timedelta(seconds=59))
    assert lm.claims(T0 + timedelta(seconds=59), free=1) == []
    lm.wake_due(T0 + timedelta(seconds=60))
    assert len(lm.claims(T0 + timedelta(seconds=60), free=1)) == 1


def test_draining_claims_nothing() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1)])
    lm.draining = True
    assert lm.claims(T0, free=4) == []


def test_after_losing_a_race_the_reloaded_run_is_decided_again() -> None:
    mine, theirs = LeaseBehaviour("s1", ["default"], 30), LeaseBehaviour("s2", ["default"], 30)
    for lm in (mine, theirs):
        lm.observe([created(1, width=1)])
    my_claim, their_claim = mine.claims(T0, 1)[0], theirs.claims(T0, 1)[0]
    assert my_claim.originator_version == their_claim.originator_version  # the store accepts only one
    fresh = Run()
    fresh.apply(created(1, width=1))
    fresh.apply(their_claim)
    assert mine.replace(fresh) == []
    assert mine.claims(T0, 1) == []  # nothing left to claim: the task is theirs
    assert mine.leased[(UUID(int=1), "t0")] == "s2"


def test_an_echo_of_our_own_event_is_not_applied_twice() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    create = created(1)
    lm.observe([create])
    claim = lm.claims(T0, 1)[0]
    lm.claimed([claim])
    assert lm.observe([create, claim]) == []
    assert lm.runs[UUID(int=1)].version == 2


def server(name: str, started_s: float, lease_timeout_s: float = 30) -> Server:
    s = Server()
    s.apply(s.start(name, ["default"], 2, lease_timeout_s, "host", 1, T0 + timedelta(seconds=started_s)))
    return s


def test_heartbeats_keep_a_lease_and_silence_loses_it() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    other = server("s2", 0)
    lm.servers[other.id] = other  # type: ignore[index]
    create = created(1)
    lm.observe([create])
    run = Run()
    run.apply(create)
    lm.observe([run.claim("t0", "s2", T0, 30)])
    beat = other.heartbeat(1, T0 + timedelta(seconds=20))
    lm.observe([beat])
    assert lm.expirations(T0 + timedelta(seconds=45)) == []  # the heartbeat extended the lease to T0+50
    lost = lm.expirations(T0 + timedelta(seconds=51))
    assert [type(e) for e in lost] == [AttemptLost]
    assert lost[0].server == "s2"
    assert [c.attempt for c in lm.claims(T0 + timedelta(seconds=51), 1)] == [2]


def test_attempts_of_a_restarted_server_are_lost_at_once() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    create = created(1)
    lm.observe([create])
    run = Run()
    run.apply(create)
    lm.observe([run.claim("t0", "s2", T0, 30)])
    restarted = server("s2", 5)
    lm.servers[restarted.id] = restarted  # type: ignore[index]
    assert [e.attempt for e in lm.expirations(T0 + timedelta(seconds=6))] == [1]


def test_our_own_running_attempts_are_not_reaped_by_us() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1)])
    lm.claimed(lm.claims(T0, 1))
    assert lm.expirations(T0 + timedelta(hours=1)) == []


def test_losing_our_lease_aborts_our_attempt_and_a_late_result_is_fenced() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    create = created(1)
    lm.observe([create])
    claim = lm.claims(T0, 1)[0]
    (attempt,) = lm.claimed([claim])
    run = Run()
    run.apply(create)
    run.apply(claim)
    lost = run.expire("t0", T0 + timedelta(seconds=40), T0 + timedelta(seconds=30))
    assert lost is not None
    assert lm.observe([lost]) == [attempt]  # the shell stops it
    late = lm.finish(attempt, T0 + timedelta(seconds=41), exit_status=None)
    assert late is not None
    assert type(late).__name__ == "ResultIgnored"


def test_an_outcome_completes_the_run_and_drops_it_from_the_book() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([created(1)])
    (attempt,) = lm.claimed(lm.claims(T0, 1))
    event = lm.finish(attempt, T0, exit_status=None)
    assert isinstance(event, TaskSucceeded)
    assert lm.runs == {} and lm.leased == {}


@pytest.mark.parametrize("module", [*sorted(p.name for p in (SRC / "domain").glob("*.py")), "../behaviours/leasing.py"])
def test_the_core_does_no_io_reads_no_clock_and_starts_no_threads(module: str) -> None:
    tree = ast.parse((SRC / "domain" / module).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"os", "time", "threading", "socket", "subprocess", "sqlite3", "pykka", "random",
                           "eventsourcing", "psycopg", "pathlib", "io", "asyncio"}
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not calls & {"datetime.now", "datetime.utcnow", "date.today", "uuid4", "open", "print"}


# ---- load bias: a busier server leaves new tasks to a less busy peer for a while ----

def peer(name: str, threads: int, *, groups: tuple[str, ...] = ("default",), at_s: float = 0) -> ServerStarted:
    return Server().start(name, groups, threads, 30, "host", 1, T0 + timedelta(seconds=at_s))


def busy_with(lm: LeaseBehaviour, holder: str, n: int, run: int) -> None:
    """`holder` runs `n` attempts of a fresh run (as the lease index hears of them)."""
    create = created(run, width=n)
    lm.observe([create])
    book = Run()
    book.apply(create)
    claims = []
    for i in range(n):
        claims.append(book.claim(f"t{i}", holder, T0, 30))
        book.apply(claims[-1])
    lm.observe(claims)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_busier_server_holds_a_new_task_back_for_bias_x_load_difference_then_claims_it() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30, load_bias=1.0)
    lm.observe([peer("s1", 4), peer("s2", 4)])
    lm.observe([created(1)])
    # s1 runs 2 of 4 (load 0.5), s2 is idle (0): hold for 1 x 0.5 x YIELD_S
    assert lm.claims(T0, free=2, load=0.5) == []
    assert lm.next_wake() == at(0.5 * YIELD_S)
    lm.wake_due(at(0.5 * YIELD_S - 0.001))
    assert lm.claims(at(0.5 * YIELD_S - 0.001), free=2, load=0.5) == []
    lm.wake_due(at(0.5 * YIELD_S))
    # the window is over: claimed whatever the loads (a slow or dead peer delays work, never starves it)
    assert [c.task for c in lm.claims(at(0.5 * YIELD_S), free=2, load=0.5)] == ["t0"]


def test_a_held_task_won_by_the_idle_peer_is_never_claimed() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([peer("s1", 4), peer("s2", 4)])
    create = created(1)
    lm.observe([create])
    assert lm.claims(T0, free=4, load=0.25) == []
    run = Run()
    run.apply(create)
    lm.observe([run.claim("t0", "s2", at(0.01), 30)])
    lm.wake_due(at(1))
    assert lm.claims(at(1), free=4, load=0.25) == []
    assert lm.holding == {"s2": 1} and lm._held == {}


def test_the_hold_scales_with_the_bias_and_the_difference_capped_at_one() -> None:
    for bias, load, wait_s in ((2.0, 0.5, 1.0 * YIELD_S), (2.0, 3.0, 2.0 * YIELD_S), (0.5, 1.0, 0.5 * YIELD_S)):
        lm = LeaseBehaviour("s1", ["default"], 30, load_bias=bias)
        lm.observe([peer("s2", 4), created(1)])
        assert lm.claims(T0, free=1, load=load) == []
        assert lm.next_wake() == at(wait_s)


def test_the_hold_compares_with_the_least_busy_peer_from_the_lease_index() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([peer("s2", 2), peer("s3", 4)])
    busy_with(lm, "s2", 2, run=10)  # s2: 2 of 2 = 1.0
    busy_with(lm, "s3", 1, run=11)  # s3: 1 of 4 = 0.25, the least busy
    lm.observe([created(1)])
    assert lm.claims(T0, free=1, load=0.75) == []
    assert lm.next_wake() == at(0.5 * YIELD_S)
    assert [c.task for c in lm.claims(T0, free=1, load=0.25)] == ["t0"]  # as busy as the least busy: at once


def test_a_whole_batch_is_claimed_when_this_server_is_the_least_busy() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([peer("s2", 4), created(1, width=6)])
    assert len(lm.claims(T0, free=6, load=0.0)) == 6  # the load is not raised claim by claim: one commit


@pytest.mark.parametrize("case", ["bias 0", "no peer", "other group", "stopped", "silent", "draining", "busier"])
def test_no_hold_without_a_less_busy_live_peer_of_the_group_or_without_bias(case: str) -> None:
    lm = LeaseBehaviour("s1", ["default"], 30, load_bias=0.0 if case == "bias 0" else 1.0)
    s2 = Server()
    events: dict[str, list[Event]] = {
        "bias 0": [peer("s2", 4)], "no peer": [], "other group": [peer("s2", 4, groups=("reports",))],
        "stopped": [peer("s2", 4)], "silent": [peer("s2", 4, at_s=-31)], "draining": [peer("s2", 4)],
        "busier": [peer("s2", 1)]}
    lm.observe(events[case])
    if case in ("stopped", "draining"):
        s2.apply(peer("s2", 4))
        lm.observe([s2.stop("stopped", T0) if case == "stopped"
                    else DrainRequested(originator_id=UUID(int=99), originator_version=1, timestamp=T0,
                                        server="s2", user="u")])
    if case == "busier":
        busy_with(lm, "s2", 1, run=10)  # 1 of 1
    lm.observe([created(1)])
    assert [c.task for c in lm.claims(T0, free=1, load=0.5)] == ["t0"]


def test_the_running_count_per_server_follows_claims_outcomes_and_losses() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30)
    busy_with(lm, "s2", 3, run=10)
    assert lm.holding == {"s2": 3}
    lm.observe([created(1, width=2)])
    (attempt, _) = lm.claimed(lm.claims(T0, free=2))
    assert lm.holding == {"s2": 3, "s1": 2}
    lm.finish(attempt, T0, exit_status=None)
    assert lm.holding == {"s2": 3, "s1": 1}
    assert len(lm.expirations(at(31))) == 3  # s2 never beat: its leases ran out
    assert lm.holding == {"s1": 1}
    lm.forget(UUID(int=1))
    assert lm.holding == {} and lm.leased == {}


def test_once_the_peer_is_busier_held_tasks_it_has_not_won_are_claimed_at_once() -> None:
    lm = LeaseBehaviour("s1", ["default"], 30, load_bias=100)
    lm.observe([peer("s2", 2)])
    create = created(1, width=4)
    lm.observe([create])
    assert lm.claims(T0, free=2, load=0.5) == []  # s2 idle: hold all four (for up to 50 s at bias 100)
    run = Run()
    run.apply(create)
    won = [run.claim("t0", "s2", at(0.01), 30)]
    run.apply(won[0])
    won.append(run.claim("t1", "s2", at(0.01), 30))
    lm.observe(won)  # s2 now runs 2 of 2: s1 (0.5) is the least busy, and the first held entries are stale
    assert [c.task for c in lm.claims(at(0.02), free=2, load=0.5)] == ["t2", "t3"]
