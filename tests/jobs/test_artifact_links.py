"""Signed, expiring links to job artifacts (`download-url`), signed like
documents' links: they work without credentials; tampered, expired, other
artifacts' or deleted ones do not."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import make_case, make_document, running_worker, wait_for_job


async def test_artifact_download_url_works_without_credentials(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id = await make_case(app, tenant.id, "Linked export")
    await make_document(app, tenant.id, b"in the export", filename="a.txt", case_id=case_id)
    created = await client.post(
        "/api/v1/jobs", json={"type": "case.export", "case_id": str(case_id)}, headers=headers
    )
    async with running_worker(app):
        job = await wait_for_job(client, headers, created.json()["id"])
    assert job["status"] == "succeeded", job
    base = f"/api/v1/jobs/{job['id']}/artifacts/export.zip"
    direct = await client.get(base, headers=headers)

    answer = await client.get(f"{base}/download-url", headers=headers)
    assert answer.status_code == 200, answer.text
    link = answer.json()
    assert link["expires_at"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    signed = await client.get(link["url"])  # no credentials
    assert signed.status_code == 200
    assert signed.content == direct.content
    assert signed.headers["etag"] == direct.headers["etag"]
    ranged = await client.get(link["url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206
    assert ranged.content == b"PK\x03\x04"

    parts = urlsplit(link["url"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for changed in (
        {**query, "sig": query["sig"][:-2] + "AA"},
        {**query, "expires": str(int(query["expires"]) + 60)},
        {**query, "expires": str(int(time.time()) - 10)},
    ):
        tampered = await client.get(f"{parts.path}?{urlencode(changed)}")
        assert tampered.status_code == 403
        assert tampered.json()["code"] == "permission_denied"
    other = parts.path.replace("export.zip", "other.zip")
    assert (await client.get(f"{other}?{parts.query}")).status_code == 403

    other_tenant = await make_tenant(app, "Other")
    assert (
        await client.get(f"{base}/download-url", headers=bearer_headers(app, other_tenant.owner))
    ).status_code == 404
    assert (await client.get(f"{base}/download-url")).status_code == 401
    assert (await client.delete(f"/api/v1/jobs/{job['id']}", headers=headers)).status_code == 204
    assert (await client.get(link["url"])).status_code == 404
