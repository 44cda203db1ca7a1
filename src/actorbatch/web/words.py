"""Values put into words for the pages: schedules, durations, times."""

from collections.abc import Mapping
from typing import Any

DAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
        "sat": "Saturday", "sun": "Sunday"}


def schedule(table: Mapping[str, Any] | None) -> str:
    """A job's `[schedule]` as a sentence: "daily at 02:00 (Europe/Berlin)"."""
    if not table:
        return "on demand"
    zone = f" ({table.get('timezone', 'UTC')})"
    if "at" in table and isinstance(table["at"], str):
        return f"once, at {short_time(table['at'])} UTC"
    if "every" in table:
        rule = f"every {interval(float(table['every']))}"
    elif "hourly" in table:
        rule = f"hourly at {table['hourly'][1:]} past the hour"
    elif "daily" in table:
        rule = f"daily at {table['daily']}"
    elif "weekly" in table:
        days = ", ".join(DAYS.get(d, d) for d in table["weekly"]["days"])
        rule = f"every {days} at {table['weekly']['at']}"
    elif "monthly" in table:
        day = table["monthly"]["day"]
        which = "the last day" if day == "last" else f"day {day}"
        rule = f"monthly on {which} at {table['monthly']['at']}"
    else:
        rule = f"cron {table.get('cron', '?')}"
    bounds = "".join(f", {word} {short_time(table[key])} UTC" for key, word in (("start", "from"), ("end", "until"))
                     if table.get(key))
    return rule + zone + bounds


def interval(seconds: float) -> str:
    """900 -> "15 minutes", 3600 -> "hour", 5400 -> "90 minutes": the largest unit that divides it."""
    for unit_s, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= unit_s and seconds % unit_s == 0:
            count = int(seconds // unit_s)
            return name if count == 1 else f"{count} {name}s"
    return f"{seconds:g} seconds"


def short_time(value: str | None) -> str:
    """`2026-11-22T20:46:19.914439Z` -> `2026-11-22 20:46:19`: pages show seconds, the API keeps it all."""
    return value[:19].replace("T", " ") if value else "-"
