from actorbatch.cli.app import entry

entry()
