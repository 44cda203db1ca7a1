"""The console's shutdown: a catch-up on its worker thread is waited for before the client is closed."""

import threading

import actorbatch
from actorbatch.web.console import Console


def test_closing_waits_for_the_catch_up_in_flight_and_starts_none_after(db_url: str) -> None:
    with actorbatch.connect(db_url) as client:
        console = Console(client)
        catch_up = client.catch_up
        inside, release, calls = threading.Event(), threading.Event(), []

        def slow_catch_up() -> None:
            calls.append(1)
            inside.set()
            release.wait(10)
            catch_up()

        client.catch_up = slow_catch_up  # type: ignore[method-assign]
        refreshing = threading.Thread(target=console.refresh)
        refreshing.start()
        assert inside.wait(10)
        closing = threading.Thread(target=console.close)
        closing.start()
        closing.join(0.3)
        assert closing.is_alive()  # the catch-up still reads the store: the client must not be closed yet
        release.set()
        closing.join(10)
        refreshing.join(10)
        assert not closing.is_alive() and not refreshing.is_alive()
        assert console.refresh() == console.position  # closed: no look at the store
        assert calls == [1]
