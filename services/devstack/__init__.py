"""The local dev stack: a real broker and PostgreSQL, the sandboxes, the workers, a demo stream."""
