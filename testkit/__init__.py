"""Helpers the tests and the benchmarks share: free ports, stopping processes, waiting on a
condition with a deadline, a real `jupyter server` subprocess, a process's resident memory.
Neither tests/ nor bench/ imports the other; both import this."""
