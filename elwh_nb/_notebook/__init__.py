"""The notebook side: the dashboard and the timing plots."""
