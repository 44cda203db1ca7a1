"""The web console: the status screen, process monitor, run pages, jobs, servers, audit log and messages, as pages
and as a JSON API with the CLI's `--json` shapes, read from the same read models as the CLI."""
