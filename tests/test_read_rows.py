"""A run's read-model row is made by an encoder of its fixed shape: the same bytes as the generic one, in every
state a run goes through."""

from datetime import timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from actorbatch.domain.runs import Run, RunCancelled, RunRetried
from actorbatch.projections.rows import codec, run_blob
from tests.conftest import T0
from tests.test_runs import drive, new_run, walkthrough


def same_bytes(run: Run) -> None:
    assert run_blob(run) == codec.encode(run.to_dict())
    assert codec.decode(run_blob(run)) == run.to_dict()


def test_the_row_of_a_run_is_the_generic_encoding_in_each_state() -> None:
    run = new_run(walkthrough(), {"when": T0, "amount": Decimal("1.5"), "of": UUID(int=7), "pair": (1, 2)})
    same_bytes(run)
    claim = run.claim("TASK1", "s1", T0, 30)
    run.apply(claim)
    same_bytes(run)
    run.apply(run.finish("TASK1", claim.attempt, T0, exit_status="boom"))  # retried or failed, by its spec
    same_bytes(run)
    drive(run, lambda task: None)
    run.apply(RunRetried(originator_id=run.id, originator_version=run.version + 1, timestamp=T0,
                         retry_id=UUID(int=9), user="tester"))
    same_bytes(run)


def test_the_row_of_a_cancelled_run_with_local_times_is_the_generic_encoding() -> None:
    zoned = (T0 + timedelta(hours=1)).astimezone(ZoneInfo("Europe/Oslo"))
    run = Run()
    run.apply(Run.create(UUID(int=3), walkthrough(), 2, {}, "tester", zoned, T0, fire_time=zoned))
    claim = run.claim("TASK1", "s1", zoned, 30)
    run.apply(claim)
    run.apply(RunCancelled(originator_id=run.id, originator_version=run.version + 1, timestamp=zoned, user="x"))
    same_bytes(run)
