"""`server start --metrics-port P`: a real server serves Prometheus text, and its counters move with the work."""

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import actorbatch
from actorbatch.domain.jobfile import parse_job
from actorbatch.errors import InvalidJob


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
def test_a_scrape_during_a_run_shows_the_counters_moving(db_url: str, client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "work", "tasks": [
        {"name": "first", "run": "actorbatch.examples:noop"},
        {"name": "then", "run": "actorbatch.examples:sleep", "params": {"seconds": 1.0}, "after": {"first": "ended"}},
        {"name": "boom", "run": "actorbatch.examples:fail", "retries": 1, "retry_delay": "0s"}]}))
    client.add_job(parse_job({"name": "waits", "group": "nightly",
                              "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
    config = actorbatch.ServerConfig(name="m", threads=2, lease_timeout_s=3, projector="thread", metrics_port=0)
    with actorbatch.BatchServer(db_url, config) as server:
        assert server.metrics is not None
        port = server.metrics.port
        idle = scrape(port)
        assert idle[("actorbatch_claims_total", (("server", "m"),))] == 0
        client.run_job("waits")
        run = client.run_job("work")
        while client.run(run)["tasks"][1]["status"] != "running":  # mid-run: `then` sleeps a second
            pass
        during = scrape(port)
        assert during[("actorbatch_claims_total", (("server", "m"),))] >= 3
        assert during[("actorbatch_tasks", (("state", "running"),))] >= 1
        client.wait(run, timeout=60)
        after = scrape(port)
    labels = (("server", "m"),)
    assert after[("actorbatch_claims_total", labels)] == 4  # first, then, boom twice
    assert after[("actorbatch_retries_total", labels)] == 1
    assert after[("actorbatch_tasks_finished_total", (("outcome", "failed"), ("server", "m")))] == 2
    assert after[("actorbatch_tasks_finished_total", (("outcome", "succeeded"), ("server", "m")))] == 2
    assert after[("actorbatch_commits_total", labels)] > idle[("actorbatch_commits_total", labels)]
    assert after[("actorbatch_claim_latency_seconds_count", ())] == 1  # the run's first claim
    assert after[("actorbatch_commits_per_task", labels)] > 0
    assert after[("actorbatch_tasks", (("state", "running"),))] == 0
    assert after[("actorbatch_queue_depth", (("group", "nightly"),))] == 1  # no server serves it
    assert after.get(("actorbatch_queue_depth", (("group", "default"),)), 0) == 0


def test_a_bad_metrics_port_is_refused() -> None:
    with pytest.raises(InvalidJob, match="--metrics-port"):
        actorbatch.ServerConfig(name="m", metrics_port=70000)
