"""`python -m tests.support.double_register …`: the command line with the double registered
(named by REGBRIDGE_DOUBLE_NAME, default "double") beside the installation's workers."""

from __future__ import annotations

import os

from services.cli.app import main
from services.registry import REGISTRY
from tests.support.double_register.spec import double_spec

main(REGISTRY.with_spec(double_spec(os.environ.get("REGBRIDGE_DOUBLE_NAME", "double"))))
