"""The `regbridge` command line: run, topics, status, dlq, dev, sandbox, and each worker's own."""
