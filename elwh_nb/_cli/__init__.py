"""The command line: `elwh-nb` and `make demo`."""
