"""The double's settings (``REGBRIDGE_DOUBLE_…``): where the register double answers."""

from __future__ import annotations

from pydantic import Field

from shared.settings import RegbridgeSettings, worker_config


class DoubleSettings(RegbridgeSettings):
    model_config = worker_config("double")

    health_port: int = 0  # tests run several: any free port
    input_topic: str = "test.double.v1"
    url: str = Field(default="http://127.0.0.1:8099", description="the register double")
    batch: bool = Field(default=False, description="batches of up to 100 per call")
