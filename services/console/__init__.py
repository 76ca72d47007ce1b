"""The operator console: dead letters, replay, record traces and the workers' state, on the web."""
