"""Dependencies of the routes, as `Annotated` aliases (full-stack-fastapi-template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from insights.config import Settings
from insights.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan."""
    return request.app.state.runtime


def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    """The process's settings."""
    return runtime.settings


def get_db(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """A session per request, closed afterwards; routes commit through the repository functions."""
    with runtime.session_factory() as session:
        yield session


def get_redis(runtime: Annotated[Runtime, Depends(get_runtime)]) -> redis.Redis:
    """The shared Redis client."""
    return runtime.redis


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_db)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
