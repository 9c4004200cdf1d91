"""`POST /ai/listings`: rent observations sent through the API, handed to the next nightly run's ingest."""

from __future__ import annotations

import csv
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter

from insights.api.deps import AuthFirstRoute, RuntimeDep, requires
from insights.api.schemas import ERROR_RESPONSES, ListingIn, ListingsIn
from insights.services.keys import Principal

#: Up to 10,000 listings of a few hundred bytes each.
MAX_BODY_BYTES = 16 * 1024 * 1024

router = APIRouter(prefix="/ai/listings", tags=["listings"], route_class=AuthFirstRoute)
Writer = Annotated[Principal, requires("properties:write")]
COLUMNS = list(ListingIn.model_fields)


@router.post("", status_code=202, responses=ERROR_RESPONSES, summary="Send rent observations for the next training run")
def post_listings(body: ListingsIn, caller: Writer, runtime: RuntimeDep) -> dict[str, Any]:
    """Validated rows are written, whole or not at all, as one CSV file into `var/inbox`; the nightly run
    ingests it like any dropped file (duplicates skipped, rejects reported in its run record)."""
    inbox = runtime.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"listings_api_{caller.account_id}_{stamp}_{uuid.uuid4().hex[:8]}.csv"
    # ".part": not a name the nightly ingest picks up, until the rename below.
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=inbox)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=COLUMNS)
            writer.writeheader()
            for row in body.listings:
                writer.writerow({k: ("" if v is None else v) for k, v in row.model_dump().items()})
        os.replace(tmp, inbox / name)  # the nightly ingest only ever sees complete files
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"success": True, "accepted": len(body.listings), "file": name, "ingested_by": "the next nightly run"}
