"""The web console's pure helpers: the task graph's layout and schedules put into words."""

from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.servers import parse_window, window_fields, window_spec
from actorbatch.web import words
from actorbatch.web.graph import BOX_W, layout
from tests.web_screens import MONTH_END


def test_parents_stand_left_of_their_children_and_edges_carry_their_conditions() -> None:
    job = parse_job(MONTH_END)
    graph = layout(job.tasks, {"extract-gl": "succeeded", "build-report": "failed"})
    x = {n.name: n.x for n in graph.nodes}
    assert x["extract-gl"] == x["extract-ar"] < x["build-report"] < x["archive"] == x["on-failure"] < x["notify"]
    assert {n.name: n.status for n in graph.nodes}["build-report"] == "failed"
    assert {n.name: n.status for n in graph.nodes}["archive"] == ""  # no state given: drawn without one
    edges = {(e.parent, e.child): e for e in graph.edges}
    assert len(edges) == 6
    assert edges["build-report", "on-failure"].condition == "failed"
    assert edges["build-report", "notify"].any_of and edges["archive", "notify"].any_of  # when = "any"
    assert not edges["extract-gl", "build-report"].any_of
    assert graph.width >= x["notify"] + BOX_W and graph.height > max(n.y for n in graph.nodes)


def test_an_edge_that_skips_a_column_runs_below_the_boxes_between() -> None:
    graph = layout(parse_job(MONTH_END).tasks, {})
    long = next(e for e in graph.edges if (e.parent, e.child) == ("build-report", "notify"))
    archive = next(n for n in graph.nodes if n.name == "archive")
    assert long.label_y > archive.y + 44  # its label sits in the gap under the archive box


def test_schedules_in_words() -> None:
    assert words.schedule(None) == "on demand"
    assert words.schedule({"daily": "02:00", "timezone": "Europe/Berlin"}) == "daily at 02:00 (Europe/Berlin)"
    assert words.schedule({"every": 900.0, "timezone": "UTC"}) == "every 15 minutes (UTC)"
    assert words.schedule({"every": 3600.0, "timezone": "UTC"}) == "every hour (UTC)"
    assert words.schedule({"every": 90.0, "timezone": "UTC"}) == "every 90 seconds (UTC)"
    assert words.schedule({"hourly": ":05", "timezone": "UTC"}) == "hourly at 05 past the hour (UTC)"
    assert words.schedule({"weekly": {"days": ["mon", "fri"], "at": "06:30"}, "timezone": "UTC"}) == \
        "every Monday, Friday at 06:30 (UTC)"
    assert words.schedule({"monthly": {"day": "last", "at": "23:00"}, "timezone": "UTC",
                           "end": "2027-01-01T00:00:00Z"}) == \
        "monthly on the last day at 23:00 (UTC), until 2027-01-01 00:00:00 UTC"
    assert words.schedule({"cron": "0 2 * * mon-fri", "timezone": "UTC"}) == "cron 0 2 * * mon-fri (UTC)"
    assert words.schedule({"at": "2026-12-01T02:00:00Z", "timezone": "UTC"}) == "once, at 2026-12-01 02:00:00 UTC"


def test_a_window_is_shown_as_the_option_that_makes_it() -> None:
    window = parse_window("mon-fri 08:00-18:00=2")
    spec = window_spec(window_fields(window))
    assert spec == "mon,tue,wed,thu,fri 08:00-18:00=2"
    assert parse_window(spec) == window
