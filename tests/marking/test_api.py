"""The marking workload through the API: guides, printing, reading filled
and degraded sheets in a real worker, overrides and reviews, reports,
batches with statistics and CSV, typed answers, isolation."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import docx
import httpx
import pytest
from fpdf import FPDF
from PIL import Image

from backend.kit.db import system_scope
from backend.kit.events import event_bus
from backend.marking.service import purge_marking
from bench import marking_synth as synth
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import make_document, raise_job_cap, running_worker, wait_for_job

GUIDE: dict[str, Any] = {
    "title": "Biology mid-term",
    "subject": "Biology",
    "pass_percentage": 60,
    "student_id_digits": 6,
    "questions": [
        {"id": "1", "type": "mcq", "max_marks": 1, "options": 4, "answer": "B"},
        {"id": "2", "type": "mcq", "max_marks": 1, "options": 4, "answer": "C"},
        {"id": "3", "type": "mcq", "max_marks": 1, "options": 5, "answer": "E"},
        {"id": "4", "type": "mcq", "max_marks": 1, "options": 4, "answer": "A"},
        {
            "id": "5",
            "type": "multi",
            "max_marks": 2,
            "options": 5,
            "answer": ["A", "C"],
            "partial": True,
        },
        {"id": "6", "type": "true_false", "max_marks": 1, "answer": True},
        {"id": "7", "type": "numeric", "max_marks": 2, "answer": 9.81, "tolerance": 0.05},
        {
            "id": "8",
            "type": "keywords",
            "max_marks": 2,
            "keywords": [
                {"terms": ["light", "sunlight"], "marks": 1},
                {"terms": ["chlorophyll"], "marks": 1},
            ],
        },
    ],
}


@pytest.fixture
async def owner(app: Any) -> Any:
    tenant = await make_tenant(app, "Marking", roles=("owner", "viewer"))
    await raise_job_cap(app.state.db.engine, tenant.id)
    tenant.headers = bearer_headers(app, tenant.owner)  # type: ignore[attr-defined]
    return tenant


async def create_guide(client: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> Any:
    response = await client.post(
        "/api/v1/marking/guides", json={**GUIDE, **changes}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def filled_scan(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    guide_id: str,
    marks: dict[str, dict[str, float]],
    student: str | None,
    how: synth.Degradation,
    seed: int,
) -> list[Image.Image]:
    pdf = await client.get(f"/api/v1/marking/guides/{guide_id}/sheet.pdf", headers=headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    sheet = await client.get(f"/api/v1/marking/guides/{guide_id}/sheet.json", headers=headers)
    assert sheet.status_code == 200
    pages = synth.render_pages(pdf.content)
    filled = synth.fill(
        pages,
        synth.JsonLayout.of(sheet.json()),
        synth.Filled(marks, student),
        rng=random.Random(seed),
    )
    return [synth.degrade(page, how, seed=seed) for page in filled]


async def mark(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.post("/api/v1/marking/sheets", json=body, headers=headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued"
    job = await wait_for_job(client, headers, queued["job_id"], timeout=60)
    answer = await client.get(f"/api/v1/marking/sheets/{queued['id']}", headers=headers)
    return job, answer.json()


async def marking_events(tenant_id: UUID, until: str) -> list[dict[str, Any]]:
    """The tenant's buffered marking events, once `until` has been published."""
    bus = event_bus()
    assert bus is not None
    for _ in range(100):
        events = [e for e in await bus.recent(tenant_id, None) if e["type"].startswith("marking.")]
        if any(e["type"] == until for e in events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {until} event")


async def test_guide_lifecycle_validation_and_listing(
    client: httpx.AsyncClient, owner: Any
) -> None:
    headers = owner.headers
    guide = await create_guide(client, headers)
    assert (guide["total_marks"], guide["question_count"]) == (11, 8)
    assert guide["validation"] == {"warnings": []}
    assert guide["questions"][0]["options"] == ["A", "B", "C", "D"]
    bad = {
        **GUIDE,
        "questions": [
            *GUIDE["questions"],
            {"id": "9", "type": "mcq", "max_marks": 1, "options": 3, "answer": "D"},
        ],
    }
    refused = await client.post("/api/v1/marking/guides", json=bad, headers=headers)
    assert refused.status_code == 422
    assert "question 9" in refused.text
    duplicate = {**GUIDE, "questions": [GUIDE["questions"][0], GUIDE["questions"][0]]}
    refused = await client.post("/api/v1/marking/guides", json=duplicate, headers=headers)
    assert refused.status_code == 422
    assert "question ids repeat: 1" in refused.text
    await create_guide(client, headers, title="Chemistry quiz", subject="Chemistry")
    listed = await client.get(
        "/api/v1/marking/guides", params={"subject": "Biology"}, headers=headers
    )
    assert [g["title"] for g in listed.json()["items"]] == ["Biology mid-term"]
    searched = await client.get(
        "/api/v1/marking/guides", params={"q": "chem", "limit": 5}, headers=headers
    )
    assert [g["title"] for g in searched.json()["items"]] == ["Chemistry quiz"]
    patched = await client.patch(
        f"/api/v1/marking/guides/{guide['id']}",
        json={"title": "Renamed", "pass_percentage": 0},
        headers=headers,
    )
    assert patched.json()["title"] == "Renamed"
    assert patched.json()["validation"]["warnings"] == ["pass_percentage 0: every sheet passes"]
    assert (
        await client.delete(f"/api/v1/marking/guides/{guide['id']}", headers=headers)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/marking/guides/{guide['id']}", headers=headers)
    ).status_code == 404
    restored = await client.post(f"/api/v1/marking/guides/{guide['id']}/restore", headers=headers)
    assert restored.status_code == 200


async def test_import_text_docx_and_line_errors(client: httpx.AsyncClient, owner: Any) -> None:
    text = (
        "# Title: Physics\n# Pass: 40\n1 [1] mcq A-D: B\n2 [2] numeric: 120 ± 5%\n"
        "3 [1] true_false: false\n"
    )
    made = await client.post(
        "/api/v1/marking/guides/import",
        headers=owner.headers,
        files={"file": ("guide.md", text.encode(), "text/markdown")},
    )
    assert made.status_code == 201, made.text
    assert (made.json()["title"], made.json()["pass_percentage"]) == ("Physics", 40)
    assert made.json()["questions"][1]["tolerance_percent"] == 5
    document = docx.Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    from_docx = await client.post(
        "/api/v1/marking/guides/import",
        headers=owner.headers,
        data={"title": "From Word"},
        files={"file": ("guide.docx", buffer.getvalue(), "application/octet-stream")},
    )
    assert from_docx.status_code == 201, from_docx.text
    assert from_docx.json()["title"] == "From Word"
    broken = "1 [1] mcq A-D: F\n\n// fine\n2 [1] essay: x\n3 [1] mcq A-C: A\n"
    refused = await client.post(
        "/api/v1/marking/guides/import",
        headers=owner.headers,
        files={"file": ("g.txt", broken.encode(), "text/plain")},
    )
    assert refused.status_code == 422
    assert [error["line"] for error in refused.json()["errors"]] == [1, 4]
    image = await client.post(
        "/api/v1/marking/guides/import",
        headers=owner.headers,
        files={"file": ("g.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
    )
    assert image.status_code == 415


async def test_a_degraded_photo_is_read_scored_reviewed_and_reported(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    headers = owner.headers
    guide = await create_guide(client, headers)
    marks = {
        "1": {"B": synth.DARK},  # right
        "2": {"A": synth.DARK, "C": synth.DARK},  # double mark
        "3": {},  # blank
        "4": {"A": synth.FAINT},  # faint
        "5": {"A": synth.DARK, "B": synth.DARK},  # multi: 1 right, 1 wrong -> 0 (partial floor)
        "6": {"T": synth.DARK},
    }
    how = synth.Degradation(
        rotation=-4, scale=0.93, perspective=0.02, gradient=0.35, noise=0.04, jpeg_quality=60
    )
    (image,) = await filled_scan(client, headers, guide["id"], marks, "204817", how, seed=3)
    document_id = await make_document(
        app,
        owner.id,
        synth.to_bytes(image.convert("RGB"), "JPEG", quality=70),
        filename="photo.jpg",
        mime_type="image/jpeg",
    )
    async with running_worker(app):
        job, sheet = await mark(
            client, headers, {"guide_id": guide["id"], "document_id": str(document_id)}
        )
        assert job["status"] == "succeeded", job
        assert sheet["source"] == "omr"
        assert sheet["student_id"] == "204817"
        by_id = {q["id"]: q for q in sheet["questions"]}
        assert (by_id["1"]["answer"], by_id["1"]["awarded"], by_id["1"]["flags"]) == ("B", 1, [])
        assert (by_id["2"]["answer"], by_id["2"]["flags"], by_id["2"]["awarded"]) == (
            ["A", "C"],
            ["multiple_marks"],
            0,
        )
        assert (by_id["3"]["answer"], by_id["3"]["flags"]) == (None, ["blank"])
        assert (by_id["4"]["answer"], by_id["4"]["flags"]) == ("A", ["ambiguous"])
        assert by_id["4"]["confidence"] < 0.8
        assert (by_id["5"]["answer"], by_id["5"]["awarded"], by_id["5"]["correct"]) == (
            ["A", "B"],
            0,
            False,
        )
        assert (by_id["6"]["answer"], by_id["6"]["awarded"]) == (True, 1)
        assert by_id["7"]["flags"] == ["blank"]  # an empty written box
        assert sheet["qa"] == {"blank": 3, "multiple_marks": 1, "ambiguous": 1, "low_confidence": 1}
        assert sheet["requires_review"] is True
        assert sheet["status"] == "needs_review"
        assert sheet["score"] == {"awarded": 3, "max": 11, "percentage": 27.27, "passed": False}

        # A person marks question 2 and reviews the sheet; a re-mark keeps it.
        override = await client.patch(
            f"/api/v1/marking/sheets/{sheet['id']}/questions/2",
            json={"awarded": 1, "feedback": "C was meant; A erased"},
            headers=headers,
        )
        assert override.status_code == 200, override.text
        overridden = override.json()
        assert overridden["score"]["awarded"] == 4
        assert {q["id"]: q for q in overridden["questions"]}["2"]["overridden"] is True
        too_much = await client.patch(
            f"/api/v1/marking/sheets/{sheet['id']}/questions/2",
            json={"awarded": 2},
            headers=headers,
        )
        assert too_much.status_code == 422
        reviewed = await client.post(
            f"/api/v1/marking/sheets/{sheet['id']}/review", headers=headers
        )
        assert (reviewed.json()["status"], reviewed.json()["requires_review"]) == ("marked", False)
        remark = await client.post(f"/api/v1/marking/sheets/{sheet['id']}/remark", headers=headers)
        assert remark.status_code == 202
        await wait_for_job(client, headers, remark.json()["job_id"], timeout=60)
    again = (await client.get(f"/api/v1/marking/sheets/{sheet['id']}", headers=headers)).json()
    again_2 = {q["id"]: q for q in again["questions"]}["2"]
    assert (again_2["awarded"], again_2["overridden"], again["score"]["awarded"]) == (1, True, 4)

    report = await client.get(f"/api/v1/marking/sheets/{sheet['id']}/report", headers=headers)
    assert report.json()["score"]["awarded"] == 4
    html = await client.get(
        f"/api/v1/marking/sheets/{sheet['id']}/report", params={"format": "html"}, headers=headers
    )
    assert html.headers["content-type"].startswith("text/html")
    assert "C was meant; A erased" in html.text
    pdf = await client.get(
        f"/api/v1/marking/sheets/{sheet['id']}/report", params={"format": "pdf"}, headers=headers
    )
    assert pdf.content.startswith(b"%PDF-")
    in_use = await client.patch(
        f"/api/v1/marking/guides/{guide['id']}",
        json={"questions": GUIDE["questions"][:2]},
        headers=headers,
    )
    assert (in_use.status_code, in_use.json()["code"]) == (409, "guide_in_use")
    listed = await client.get(
        "/api/v1/marking/sheets",
        params={"guide_id": guide["id"], "student_id": "204817"},
        headers=headers,
    )
    assert [s["id"] for s in listed.json()["items"]] == [sheet["id"]]


async def test_typed_answers_from_a_text_document(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    guide = await create_guide(client, owner.headers)
    text = (
        "Name: Ada\nStudent number: 555\n1. B\n2) C\nQ3: E\n4 - A\n5: A, C\n6. true\n"
        "7: 9.8\n8 - Plants need sunlight\nand chlorophyll.\n"
    )
    document_id = await make_document(app, owner.id, text.encode())
    async with running_worker(app):
        job, sheet = await mark(
            client,
            owner.headers,
            {"guide_id": guide["id"], "document_id": str(document_id), "student_name": "Ada L."},
        )
    assert job["status"] == "succeeded", job
    assert (sheet["source"], sheet["student_id"], sheet["student_name"]) == (
        "text",
        "555",
        "Ada L.",
    )
    assert sheet["score"] == {"awarded": 11, "max": 11, "percentage": 100, "passed": True}
    assert (sheet["status"], sheet["requires_review"]) == ("marked", False)


async def test_a_batch_from_one_multi_page_scan(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    headers = owner.headers
    guide = await create_guide(client, headers)
    rng = random.Random(8)
    students, pages = [], []
    for index in range(4):
        marks = {
            q["id"]: {rng.choice(["A", "B", "C", "D"]): synth.DARK} for q in GUIDE["questions"][:4]
        }
        marks["5"] = {"A": synth.DARK, "C": synth.DARK}
        marks["6"] = {rng.choice(["T", "F"]): synth.DARK}
        student = f"{100000 + index}"
        students.append((student, marks))
        how = synth.Degradation(rotation=rng.uniform(-3, 3), noise=0.03, jpeg_quality=80)
        pages.extend(await filled_scan(client, headers, guide["id"], marks, student, how, index))
    scan = io.BytesIO()
    pages[0].convert("RGB").save(
        scan,
        "PDF",
        save_all=True,
        resolution=200,
        append_images=[p.convert("RGB") for p in pages[1:]],
    )
    document_id = await make_document(
        app, owner.id, scan.getvalue(), filename="scan.pdf", mime_type="application/pdf"
    )
    created = await client.post(
        "/api/v1/marking/batches",
        headers=headers,
        json={"guide_id": guide["id"], "document_id": str(document_id), "pages_per_sheet": 1},
    )
    assert created.status_code == 202, created.text
    batch = created.json()
    assert batch["total"] == 4
    async with running_worker(app):
        for sheet_id in batch["sheet_ids"]:
            sheet = (await client.get(f"/api/v1/marking/sheets/{sheet_id}", headers=headers)).json()
            await wait_for_job(client, headers, sheet["job_id"], timeout=60)
    summary = (await client.get(f"/api/v1/marking/batches/{batch['id']}", headers=headers)).json()
    assert summary["done"] is True
    assert summary["by_status"]["failed"] == 0
    answers = {q["id"]: q for q in GUIDE["questions"]}
    expected = []
    for _, marks in students:
        awarded = sum(answers[i]["max_marks"] for i in "1234" if answers[i]["answer"] in marks[i])
        awarded += 2 + (1 if "T" in marks["6"] else 0)
        expected.append(round(100 * awarded / 11, 2))
    stats = summary["statistics"]
    assert stats["count"] == 4
    assert stats["mean"] == pytest.approx(statistics.fmean(expected), abs=1e-3)
    assert stats["median"] == pytest.approx(statistics.median(expected), abs=1e-3)
    assert stats["stdev"] == pytest.approx(statistics.stdev(expected), abs=1e-3)
    assert stats["pass_rate"] == sum(p >= 60 for p in expected) / 4
    assert sum(b["count"] for b in stats["histogram"]) == 4
    assert {q["id"]: q["facility"] for q in stats["questions"]}["5"] == 1.0
    results = await client.get(
        f"/api/v1/marking/batches/{batch['id']}/results.csv", headers=headers
    )
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert sorted(row["student_id"] for row in rows) == [s for s, _ in students]
    assert {row["q_5"] for row in rows} == {"2.0"}
    listed = await client.get("/api/v1/marking/batches", headers=headers)
    assert [b["id"] for b in listed.json()["items"]] == [batch["id"]]
    events = await marking_events(owner.id, "marking.batch_completed")
    done = [e for e in events if e["type"] == "marking.batch_completed"]
    assert [e["data"]["batch_id"] for e in done] == [batch["id"]]  # once, for the last sheet
    assert done[0]["data"]["by_status"] == {"needs_review": 4}  # the written boxes are blank
    completed = [e["data"] for e in events if e["type"] == "marking.completed"]
    assert sorted(e["sheet_id"] for e in completed) == sorted(batch["sheet_ids"])
    assert {e["student_id"] for e in completed} == {s for s, _ in students}
    assert all(set(e) >= {"guide_id", "score", "requires_review"} for e in completed)


async def test_isolation_and_viewer(app: Any, client: httpx.AsyncClient, owner: Any) -> None:
    guide = await create_guide(client, owner.headers)
    other = await make_tenant(app, "Other")
    other_headers = bearer_headers(app, other.owner)
    for path in (
        f"/api/v1/marking/guides/{guide['id']}",
        f"/api/v1/marking/guides/{guide['id']}/sheet.json",
    ):
        assert (await client.get(path, headers=other_headers)).status_code == 404
    assert (await client.get("/api/v1/marking/guides", headers=other_headers)).json()["total"] == 0
    document_id = await make_document(app, owner.id, b"1. A\n")
    refused = await client.post(
        "/api/v1/marking/sheets",
        headers=other_headers,
        json={"guide_id": guide["id"], "document_id": str(document_id)},
    )
    assert refused.status_code == 422
    viewer = bearer_headers(app, owner.users["viewer"])
    assert (
        await client.get(f"/api/v1/marking/guides/{guide['id']}", headers=viewer)
    ).status_code == 200
    assert (
        await client.post("/api/v1/marking/guides", json=GUIDE, headers=viewer)
    ).status_code == 403
    assert UUID(guide["id"])


async def test_admin_purge_removes_soft_deleted_guides_and_sheets(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    kept = await create_guide(client, owner.headers)
    gone = await create_guide(client, owner.headers)
    await client.delete(f"/api/v1/marking/guides/{gone['id']}", headers=owner.headers)
    with system_scope("tests.marking.purge"):
        async with app.state.db.transaction() as session:
            removed = await purge_marking(session, datetime.now(UTC) + timedelta(seconds=1), [])
    assert removed == 1
    restored = await client.post(
        f"/api/v1/marking/guides/{gone['id']}/restore", headers=owner.headers
    )
    assert restored.status_code == 404
    assert (
        await client.get(f"/api/v1/marking/guides/{kept['id']}", headers=owner.headers)
    ).status_code == 200


async def test_a_sheet_whose_document_went_fails_with_its_reason(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    guide = await create_guide(client, owner.headers)
    document_id = await make_document(app, owner.id, b"1. B\n")
    queued = await client.post(
        "/api/v1/marking/sheets",
        json={"guide_id": guide["id"], "document_id": str(document_id)},
        headers=owner.headers,
    )
    deleted = await client.delete(f"/api/v1/documents/{document_id}", headers=owner.headers)
    assert deleted.status_code == 204
    async with running_worker(app):
        job = await wait_for_job(client, owner.headers, queued.json()["job_id"], timeout=60)
    assert job["status"] == "failed"
    sheet = (
        await client.get(f"/api/v1/marking/sheets/{queued.json()['id']}", headers=owner.headers)
    ).json()
    assert (sheet["status"], sheet["error"]) == ("failed", "The sheet's document was deleted")
    events = await marking_events(owner.id, "marking.failed")
    assert [e["data"]["sheet_id"] for e in events if e["type"] == "marking.failed"] == [sheet["id"]]
    not_marked = await client.get(
        f"/api/v1/marking/sheets/{sheet['id']}/report", headers=owner.headers
    )
    assert not_marked.status_code == 409


async def test_typed_answers_in_a_photo_of_a_page_are_read_by_ocr(
    app: Any, client: httpx.AsyncClient, owner: Any
) -> None:
    guide = await create_guide(client, owner.headers)
    page = FPDF(unit="pt", format=(420, 595))
    page.add_page()
    page.set_font("Helvetica", size=14)
    for line in ("Student number: 777", "1. B", "2) C", "3: E", "4 - A", "6. true", "7: 9.8"):
        page.cell(0, 24, line, new_x="LMARGIN", new_y="NEXT")
    (image,) = synth.render_pages(bytes(page.output()), dpi=200)
    document_id = await make_document(
        app, owner.id, synth.to_bytes(image, "PNG"), filename="answers.png", mime_type="image/png"
    )
    async with running_worker(app):
        job, sheet = await mark(
            client, owner.headers, {"guide_id": guide["id"], "document_id": str(document_id)}
        )
    assert job["status"] == "succeeded", job
    assert (sheet["source"], sheet["student_id"]) == ("text", "777")
    by_id = {q["id"]: q for q in sheet["questions"]}
    assert [by_id[i]["awarded"] for i in ("1", "2", "3", "4", "6", "7")] == [1, 1, 1, 1, 1, 2]
    assert (by_id["5"]["flags"], by_id["8"]["flags"]) == (["blank"], ["blank"])
