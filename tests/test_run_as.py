"""Run-as (DESIGN §3): runs act as the job's owner or the submitter; a task whose acting user lacks a privilege when
it would start fails without running, exit status `missing privilege: NAME`, and runs once the user is granted it;
shell commands of a job that asks run as the acting user's OS account on a server running as root."""

import os
from collections.abc import Iterator

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import wait_for

JOB = {"name": "invoice-run", "privileges": ["invoice.view"], "tasks": [
    {"name": "prepare", "run": "tests.bodies:whoami"},
    {"name": "post", "run": "tests.bodies:whoami", "privileges": ["invoice.post"], "after": {"prepare": "succeeded"}},
]}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def admin(store: str) -> Iterator[actorbatch.Client]:
    with actorbatch.connect(store) as me:
        me.grant(me.user, ["admin"])
        yield me


def tasks(run: dict[str, object]) -> dict[str, dict[str, object]]:
    return {t["name"]: t for t in run["tasks"]}  # type: ignore[attr-defined, index]


@pytest.mark.slow
def test_a_missing_privilege_fails_the_task_unrun_until_it_is_granted(admin: actorbatch.Client, store: str) -> None:
    admin.grant("alice", ["job.manage", "job.run", "invoice.view"])
    with actorbatch.connect(store, user="alice") as alice, \
            actorbatch.Server(alice, name="run-as", threads=2, lease_timeout_s=5):
        alice.add_job(parse_job(JOB))
        first = alice.wait(alice.run_job("invoice-run"), timeout=60)
        assert first["status"] == "failed"
        assert tasks(first)["prepare"]["result"] == "alice"  # TaskContext.user: the acting user
        post = tasks(first)["post"]
        assert (post["status"], post["exit_status"], post["attempts"], post["history"]) == \
            ("failed", "missing privilege: invoice.post", 0, [])
        admin.grant("alice", ["invoice.post"])
        second = alice.wait(alice.run_job("invoice-run"), timeout=60)
        assert second["status"] == "succeeded" and tasks(second)["post"]["result"] == "alice"
        # The submitter acts, not the owner: bob may run alice's job, but holds no invoice.view.
        admin.grant("bob", ["job.run"])
        with actorbatch.connect(store, user="bob") as bob:
            third = bob.wait(bob.run_job("invoice-run"), timeout=60)
        assert tasks(third)["prepare"]["exit_status"] == "missing privilege: invoice.view"
        assert tasks(third)["post"]["status"] == "skipped"
        denied = [e for e in admin.audit() if e["action"] == "task.denied"]
        assert [e["user"] for e in denied] == []  # a server's decision, not a person's: not in the audit log


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another OS user needs a server running as root")
def test_shell_commands_run_as_the_acting_users_os_account(admin: actorbatch.Client, store: str) -> None:
    job = parse_job({"name": "as-owner", "run_as_os_user": True, "tasks": [
        {"name": "who", "command": ["sh", "-c", 'id -un; echo "db=${ACTORBATCH_DB:-hidden} home=$HOME"']}]})
    admin.grant("nobody", ["job.manage", "job.run"])
    admin.grant("no-such-account", ["job.run"])
    with actorbatch.connect(store, user="nobody") as nobody, \
            actorbatch.connect(store, user="no-such-account") as ghost, \
            actorbatch.Server(admin, name="run-as-os", threads=1, lease_timeout_s=5):
        nobody.add_job(job)
        run = nobody.wait(nobody.run_job("as-owner"), timeout=60)  # the submitter acts
        assert run["status"] == "succeeded"
        lines = [line.line for line in admin.logs(run["id"])]
        assert lines[0] == "nobody" and lines[1].startswith("db=hidden home=")
        ghost_run = ghost.wait(ghost.run_job("as-owner"), timeout=60)
        assert tasks(ghost_run)["who"]["exit_status"] == "cannot run as OS user no-such-account: no such user"


def test_privileges_in_a_job_file_are_checked_and_kept() -> None:
    job = parse_job(JOB)
    assert job.privileges == ("invoice.view",) and job.needs(job.tasks[1]) == ("invoice.view", "invoice.post")
    assert type(job).from_dict(job.to_dict()) == job
    for bad, message in (({"privileges": ["no spaces"]}, "privileges: expected a name"),
                         ({"privileges": "invoice.post"}, "privileges: expected a list"),
                         ({"run_as_os_user": "yes"}, "run_as_os_user")):
        with pytest.raises(actorbatch.InvalidJob, match=message):
            parse_job({**JOB, **bad})
    with pytest.raises(actorbatch.InvalidJob, match="task 'post': privileges"):
        parse_job({**JOB, "tasks": [{"name": "post", "run": "m:f", "privileges": [""]}]})


def test_the_lease_core_denies_a_task_whose_user_lacks_a_privilege_and_takes_no_thread_for_it() -> None:
    from uuid import UUID

    from actorbatch.behaviours.leasing import LeaseBehaviour
    from actorbatch.domain.runs import Run, TaskClaimed, TaskDenied
    from actorbatch.domain.users import ACCESS_ID, AccessClosed, PrivilegesGranted, user_id
    from tests.conftest import T0

    job = parse_job({"name": "j", "tasks": [{"name": "free", "run": "m:f"},
                                             {"name": "guarded", "run": "m:f", "privileges": ["invoice.post"]}]})
    behaviour = LeaseBehaviour("s1", ["default"], 30)
    behaviour.observe([AccessClosed(originator_id=ACCESS_ID, originator_version=1, timestamp=T0, user="root"),
                       Run.create(UUID(int=1), job, 1, {}, "alice", T0, T0)])
    assert [(type(e), e.task) for e in behaviour.claims(T0, free=1)] == [(TaskClaimed, "free")]
    [denial] = behaviour.claims(T0, free=1)  # denied, not claimed: it takes no thread
    assert isinstance(denial, TaskDenied) and (denial.task, denial.privilege) == ("guarded", "invoice.post")
    assert behaviour.runs[UUID(int=1)].tasks["guarded"].exit_status == "missing privilege: invoice.post"
    granted = PrivilegesGranted(originator_id=user_id("alice"), originator_version=1, timestamp=T0, name="alice",
                                user="root", privileges=("invoice.post",))
    behaviour.observe([granted, Run.create(UUID(int=2), job, 1, {}, "alice", T0, T0)])
    assert {e.task for e in behaviour.claims(T0, free=2)} == {"free", "guarded"}  # granted: both are claimed


@pytest.mark.slow
def test_scheduled_runs_act_as_the_jobs_owner(admin: actorbatch.Client, store: str) -> None:
    admin.grant("alice", ["job.manage", "invoice.view"])
    scheduled = {**JOB, "name": "nightly", "schedule": {"every": "1s"}}
    with actorbatch.connect(store, user="alice") as alice, \
            actorbatch.Server(admin, name="run-as-schedule", threads=2, lease_timeout_s=5):
        alice.add_job(parse_job(scheduled))  # alice owns it; she lacks invoice.post
        wait_for(lambda: any(r["status"] == "failed" for r in admin.runs(job="nightly")), 60, "a scheduled run")
        alice.unschedule("nightly")
        run = admin.run(next(r["id"] for r in admin.runs(job="nightly") if r["status"] == "failed"))
    assert run["user"] == "alice" and tasks(run)["prepare"]["result"] == "alice"
    assert tasks(run)["post"]["exit_status"] == "missing privilege: invoice.post"
