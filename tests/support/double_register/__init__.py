"""A throwaway register in a folder of its own: the register double behind a `WorkerSpec`.

Tests use it as a third register would be added: `REGISTRY.with_spec(double_spec(name))` is the
one line outside this folder (`python -m tests.support.double_register …` runs the command line
with it).
"""
