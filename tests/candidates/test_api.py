"""The CV workload through the API: import (single, bulk, nested zip) with a
worker parsing, accuracy over the corpus, dedupe, edits surviving re-import,
merge, tenant skills, filters and sorts, matching, archive refusals,
permissions and isolation."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from tests.candidates.accuracy import Scores, score
from tests.candidates.corpus import REFERENCE, build_corpus, render
from tests.candidates.helpers import (
    all_candidates,
    import_files,
    make_world,
    wait_for_batch,
    zip_of,
)
from tests.factories import make_api_key, run_sql
from tests.jobs.helpers import running_worker


def simple_cv(
    name: str,
    email: str,
    skills: list[str],
    *,
    phone: str = "",
    city: str = "Berlin, Germany",
    years: tuple[int, int] = (2015, 2020),
    title: str = "Software Developer",
    extra: str = "",
) -> bytes:
    start, end = years
    return (
        f"{name}\n{title}\n{email} | {phone} | {city}\n\nSummary\n{extra}\n\n"
        f"Experience\n{title} — Acme GmbH\n01/{start} – 12/{end}\n"
        f"• Work with {skills[0] if skills else 'people'}.\n\n"
        f"Skills\n{', '.join(skills)}\n\nLanguages\nEnglish, German\n"
    ).encode()


async def _import_and_parse(
    app: Any, client: httpx.AsyncClient, headers: dict[str, str], files: list, **data: str
) -> dict[str, Any]:
    answer = await import_files(client, headers, files, **data)
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    if body["batch_id"]:
        async with running_worker(app, concurrency=2):
            batch = await wait_for_batch(client, headers, body["batch_id"])
        if batch["by_status"].get("succeeded", 0) != batch["total"]:
            failed = await run_sql(
                app, "SELECT type, error FROM jobs WHERE batch_id = :b", b=body["batch_id"]
            )
            raise AssertionError([tuple(row) for row in failed])
    return body


async def test_import_single_bulk_and_nested_zip_with_accuracy(
    app: Any, client: httpx.AsyncClient, owner_engine: Any
) -> None:
    world = await make_world(app, owner_engine)
    cvs = build_corpus(18)
    files = [render(cv) for cv in cvs]
    single, bulk, zipped = files[:2], files[2:8], files[8:]
    archive = zip_of(
        {
            f"applicants/{'2025' if i % 2 else '2026/late'}/{name}": data
            for i, (name, data) in enumerate(zipped)
        }
        | {"__MACOSX/applicants/._x.pdf": b"junk", "applicants/nested.zip": b"PK\x03\x04..."}
    )
    items: list[dict[str, Any]] = []
    for file in single:
        items += (await _import_and_parse(app, client, world.member, [file]))["items"]
    items += (await _import_and_parse(app, client, world.member, bulk, tags="fair-2026"))["items"]
    body = await _import_and_parse(app, client, world.member, [("cvs.zip", archive)])
    items += body["items"]
    errors = {item["filename"]: item["error"] for item in items if item.get("error")}
    assert errors == {
        "cvs.zip/applicants/nested.zip": "Archives inside an archive are not imported"
    }
    assert len([item for item in items if item.get("job_id")]) == len(cvs)
    assert any(item["filename"].startswith("cvs.zip/applicants/2026/late/") for item in items)

    candidates = await all_candidates(client, world.viewer)
    assert len(candidates) == len(cvs)
    by_email = {email: c for c in candidates for email in c["emails"]}
    scores = Scores()
    for cv in cvs:
        truth = cv.truth()
        found = by_email.get(truth["emails"][0])
        assert found is not None, truth["emails"]
        # Open-ended jobs count to the parse day, not the corpus's reference day.
        today_months = (found["parsed_at"][:7] > f"{REFERENCE:%Y-%m}") and any(
            e["current"] for e in truth["experience"]
        )
        if today_months:
            truth["total_experience_months"] = found["total_experience_months"]
        score(scores, cv.key, truth, found)
    print()
    print(scores.report(f"Through the API ({len(cvs)} CVs imported singly, in bulk, as a zip)"))
    for key in ("name", "emails", "phones", "experience dates", "education dates", "languages"):
        assert scores.rate(key) >= 0.9, (key, scores.misses)
    assert scores.skill_precision >= 0.95
    assert scores.skill_recall >= 0.95
    tagged = await all_candidates(client, world.viewer, tag="fair-2026")
    assert len(tagged) == len(bulk)

    # The same file again reuses its document and parses it again: no new candidate.
    again = await _import_and_parse(app, client, world.member, [single[0]])
    assert again["items"][0]["document_id"] == items[0]["document_id"]
    assert len(await all_candidates(client, world.viewer)) == len(cvs)


async def test_dedupe_newest_cv_drives_profile_and_edits_survive(
    app: Any, client: httpx.AsyncClient, owner_engine: Any
) -> None:
    world = await make_world(app, owner_engine)
    first = simple_cv(
        "Jane Doe", "Jane.Doe@example.com", ["Python"], phone="030 1234567", title="Developer"
    )
    await _import_and_parse(app, client, world.member, [("jane-2019.txt", first)])
    (jane,) = await all_candidates(client, world.viewer)
    assert jane["emails"] == ["jane.doe@example.com"]
    assert jane["phones"] == ["+49301234567"]  # the tenant's country: DE

    edited = await client.patch(
        f"/api/v1/candidates/{jane['id']}",
        headers=world.member,
        json={"name": "Jane A. Doe", "status": "screening"},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["edited_fields"] == ["name"]

    # A newer CV of the same person (shared phone, other e-mail): one candidate.
    second = simple_cv(
        "Jane Doe",
        "jane@other.example",
        ["Python", "Kubernetes"],
        phone="+49 30 1234567",
        title="Senior Developer",
        years=(2015, 2024),
    )
    await _import_and_parse(app, client, world.member, [("jane-2026.txt", second)])
    (jane,) = await all_candidates(client, world.viewer)
    assert len(jane["document_ids"]) == 2
    assert jane["name"] == "Jane A. Doe"  # edited, kept
    assert jane["headline"] == "Senior Developer"  # the newest CV
    assert set(jane["emails"]) == {"jane.doe@example.com", "jane@other.example"}
    assert "Kubernetes" in jane["skills"]
    assert jane["status"] == "screening"

    reparse = await client.post(f"/api/v1/candidates/{jane['id']}/reparse", headers=world.member)
    assert reparse.status_code == 202
    assert reparse.json()["type"] == "cv.parse"

    # Merge a separately imported duplicate.
    other = simple_cv("J. Doe", "jd@third.example", ["Go"], phone="+44 20 7946 0958")
    await _import_and_parse(app, client, world.member, [("jd.txt", other)])
    source = next(c for c in await all_candidates(client, world.viewer) if c["id"] != jane["id"])
    merged = await client.post(
        "/api/v1/candidates/merge",
        headers=world.member,
        json={"target_id": jane["id"], "source_id": source["id"]},
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert "jd@third.example" in body["emails"]
    assert "+442079460958" in body["phones"]
    assert {"Go", "Python"} <= set(body["skills"])
    assert len(body["document_ids"]) == 3
    assert (
        await client.get(f"/api/v1/candidates/{source['id']}", headers=world.viewer)
    ).status_code == 404
    events = await run_sql(
        app,
        "SELECT action FROM audit_events WHERE resource_id = :id ORDER BY created_at",
        id=str(jane["id"]),
    )
    actions = [row.action for row in events]
    assert actions[0] == "candidate.created"
    assert "candidate.merged" in actions


async def test_tenant_skills(app: Any, client: httpx.AsyncClient, owner_engine: Any) -> None:
    world = await make_world(app, owner_engine)
    created = await client.post(
        "/api/v1/candidates/skills",
        headers=world.member,
        json={"name": "Dossier Query Language", "aliases": ["DQL"]},
    )
    assert created.status_code == 201, created.text
    again = await client.post(
        "/api/v1/candidates/skills", headers=world.member, json={"name": "dossier query language"}
    )
    assert again.status_code == 409
    listed = await client.get("/api/v1/candidates/skills", headers=world.viewer)
    assert [s["name"] for s in listed.json()["items"]] == ["Dossier Query Language"]
    cv = simple_cv("Ada Lovelace", "ada@example.com", ["DQL", "Python"])
    await _import_and_parse(app, client, world.member, [("ada.txt", cv)])
    (ada,) = await all_candidates(client, world.viewer, skill="dql")
    assert "Dossier Query Language" in ada["skills"]
    deleted = await client.delete("/api/v1/candidates/skills/DQL", headers=world.member)
    assert deleted.status_code == 404  # by name, not alias
    deleted = await client.delete(
        "/api/v1/candidates/skills/dossier query language", headers=world.member
    )
    assert deleted.status_code == 204
    assert (await client.get("/api/v1/candidates/skills", headers=world.viewer)).json()[
        "total"
    ] == 0
    restored = await client.post(
        "/api/v1/candidates/skills/Dossier Query Language/restore", headers=world.member
    )
    assert restored.status_code == 200


async def test_filters_sorts_and_matching(
    app: Any, client: httpx.AsyncClient, owner_engine: Any
) -> None:
    world = await make_world(app, owner_engine)
    requisition = await client.post(
        "/api/v1/requisitions",
        headers=world.member,
        json={
            "title": "Platform engineer",
            "description": "We run payment services on Kubernetes and want observability.",
            "required_skills": ["python", "k8s"],
            "preferred_skills": ["Terraform", "Go"],
            "min_experience_years": 5,
        },
    )
    assert requisition.status_code == 201, requisition.text
    req = requisition.json()
    assert req["required_skills"] == ["Python", "Kubernetes"]
    people = [
        # complete, junior, nothing preferred
        ("Ann Alpha", "ann@example.com", ["Python", "Kubernetes"], (2023, 2024), "Munich", ""),
        # complete, senior, all preferred, relevant text
        ("Bob Bravo", "bob@example.com", ["Python", "k8s", "Terraform", "Golang"], (2012, 2024),
         "Hamburg, Germany", "Payment services with observability on Kubernetes."),
        # missing Kubernetes but strong otherwise
        ("Cat Charlie", "cat@example.com", ["Python", "Terraform", "Go"], (2005, 2024),
         "Berlin, Germany", "Payment services, observability."),
        # nothing
        ("Dan Delta", "dan@example.com", ["Excel"], (2021, 2021), "London, UK", ""),
    ]  # fmt: skip
    files = [
        (
            f"{name.split()[0].lower()}.txt",
            simple_cv(name, email, skills, years=years, city=city, extra=extra),
        )
        for name, email, skills, years, city, extra in people
    ]
    await _import_and_parse(app, client, world.member, files, requisition_id=req["id"])

    async def names(**params: Any) -> list[str]:
        return [c["name"] for c in await all_candidates(client, world.viewer, **params)]

    assert sorted(await names(skill=["Python", "Kubernetes"])) == ["Ann Alpha", "Bob Bravo"]
    assert sorted(await names(any_skill=["Excel", "Go"])) == [
        "Bob Bravo",
        "Cat Charlie",
        "Dan Delta",
    ]
    assert await names(min_experience_years=10, sort="name") == ["Bob Bravo", "Cat Charlie"]
    assert await names(location="hamburg") == ["Bob Bravo"]
    assert await names(q="observability", sort="name") == ["Bob Bravo", "Cat Charlie"]
    assert len(await names(requisition_id=req["id"])) == 4
    assert await names(sort="-total_experience_months") == [
        "Cat Charlie", "Bob Bravo", "Ann Alpha", "Dan Delta",
    ]  # fmt: skip
    assert await names(sort="name") == ["Ann Alpha", "Bob Bravo", "Cat Charlie", "Dan Delta"]
    assert len(await names(sort="created_at")) == 4
    dan = (await all_candidates(client, world.viewer, location="London"))[0]
    await client.patch(
        f"/api/v1/candidates/{dan['id']}", headers=world.member, json={"status": "rejected"}
    )
    assert await names(status="rejected") == ["Dan Delta"]
    bad = await client.get("/api/v1/candidates", headers=world.viewer, params={"sort": "email"})
    assert bad.status_code == 422

    matches = await client.get(f"/api/v1/requisitions/{req['id']}/matches", headers=world.viewer)
    assert matches.status_code == 200, matches.text
    ranked = matches.json()["items"]
    print()
    for match in ranked:
        print(f"  {match['candidate']['name']:<12} {match['score']:6.2f} {match['breakdown']}")
    assert [m["candidate"]["name"] for m in ranked] == [
        "Bob Bravo", "Ann Alpha", "Cat Charlie", "Dan Delta",
    ]  # fmt: skip
    bob, ann, cat, dan_match = ranked
    assert bob["score"] > ann["score"] >= 50 > cat["score"] > dan_match["score"]
    assert cat["breakdown"]["required_skills"] == {"matched": ["Python"], "missing": ["Kubernetes"]}
    assert bob["breakdown"]["preferred_skills"]["matched"] == ["Terraform", "Go"]
    assert bob["breakdown"]["experience"]["fit"] == 1.0
    assert bob["breakdown"]["experience"]["required"] == 5.0
    assert ann["breakdown"]["experience"]["fit"] < 1
    assert bob["breakdown"]["text_relevance"] == 1.0
    assert 0 <= ann["breakdown"]["text_relevance"] < 1
    top = await client.get(
        f"/api/v1/requisitions/{req['id']}/matches", headers=world.viewer, params={"min_score": 50}
    )
    assert [m["candidate"]["name"] for m in top.json()["items"]] == ["Bob Bravo", "Ann Alpha"]
    first = await client.get(
        f"/api/v1/requisitions/{req['id']}/matches", headers=world.viewer, params={"limit": 3}
    )
    rest = await client.get(
        f"/api/v1/requisitions/{req['id']}/matches",
        headers=world.viewer,
        params={"limit": 3, "cursor": first.json()["next_cursor"]},
    )
    paged = [m["candidate"]["name"] for m in first.json()["items"] + rest.json()["items"]]
    assert paged == [m["candidate"]["name"] for m in ranked]
    assert rest.json()["next_cursor"] is None


async def test_archive_refusals_store_nothing(
    app: Any, client: httpx.AsyncClient, owner_engine: Any
) -> None:
    world = await make_world(app, owner_engine)
    cv = simple_cv("Ann Alpha", "ann@example.com", ["Python"])
    bomb = zip_of({"cv.txt": cv, "big.txt": b"\0" * 5_000_000})
    answer = await import_files(client, world.member, [("ok.txt", cv), ("bomb.zip", bomb)])
    assert answer.status_code == 422, answer.text
    assert "zip bomb" in answer.json()["detail"]
    many = zip_of({f"cv{i}.txt": b"x" for i in range(10_001)})
    answer = await import_files(client, world.member, [("ok.txt", cv), ("many.zip", many)])
    assert answer.status_code == 422
    assert "10001 files" in answer.json()["detail"]
    huge = zip_of({"huge.txt": bytes(range(256)) * 420_000})  # 107 MB, incompressible-ish
    answer = await import_files(client, world.member, [("huge.zip", huge)])
    assert answer.status_code in (413, 422)
    rows = await run_sql(
        app, "SELECT count(*) AS n FROM documents WHERE tenant_id = :t", t=world.tenant.id
    )
    assert rows[0].n == 0
    jobs = await run_sql(
        app, "SELECT count(*) AS n FROM jobs WHERE tenant_id = :t", t=world.tenant.id
    )
    assert jobs[0].n == 0


async def test_permissions_and_isolation(
    app: Any, client: httpx.AsyncClient, owner_engine: Any
) -> None:
    world = await make_world(app, owner_engine)
    other = await make_world(app, owner_engine)
    cv = simple_cv("Ann Alpha", "ann@example.com", ["Python"])
    denied = await import_files(client, world.viewer, [("ann.txt", cv)])
    assert denied.status_code == 403
    await _import_and_parse(app, client, world.member, [("ann.txt", cv)])
    # The same CV in another tenant: its own document and candidate, no dedupe across.
    await _import_and_parse(app, client, other.member, [("ann.txt", cv)])
    (ann,) = await all_candidates(client, world.viewer)
    (other_ann,) = await all_candidates(client, other.viewer)
    assert ann["id"] != other_ann["id"]
    assert ann["document_ids"] != other_ann["document_ids"]
    for method, path in (
        ("GET", f"/api/v1/candidates/{ann['id']}"),
        ("PATCH", f"/api/v1/candidates/{ann['id']}"),
        ("DELETE", f"/api/v1/candidates/{ann['id']}"),
        ("POST", f"/api/v1/candidates/{ann['id']}/reparse"),
    ):
        answer = await client.request(
            method, path, headers=other.owner, json={} if method == "PATCH" else None
        )
        assert answer.status_code == 404, (method, path)
    merge = await client.post(
        "/api/v1/candidates/merge",
        headers=other.owner,
        json={"target_id": other_ann["id"], "source_id": ann["id"]},
    )
    assert merge.status_code == 404
    patch = await client.patch(
        f"/api/v1/candidates/{ann['id']}", headers=world.viewer, json={"status": "offer"}
    )
    assert patch.status_code == 403
    key = await make_api_key(app, world.tenant.id, ["documents:read"])
    assert (await client.get("/api/v1/candidates", headers=key.headers)).status_code == 403
    scoped = await make_api_key(app, world.tenant.id, ["candidates:read"])
    assert (await client.get("/api/v1/candidates", headers=scoped.headers)).status_code == 200
    # Matches rank the requisition's tenant's candidates only.
    req = await client.post(
        "/api/v1/requisitions",
        headers=other.member,
        json={"title": "Dev", "required_skills": ["Python"]},
    )
    ranked = (
        await client.get(f"/api/v1/requisitions/{req.json()['id']}/matches", headers=other.viewer)
    ).json()
    assert [m["candidate"]["id"] for m in ranked["items"]] == [other_ann["id"]]
    assert (
        await client.get(f"/api/v1/requisitions/{req.json()['id']}/matches", headers=world.viewer)
    ).status_code == 404
    # Soft delete and restore.
    assert (
        await client.delete(f"/api/v1/candidates/{ann['id']}", headers=world.member)
    ).status_code == 204
    assert await all_candidates(client, world.viewer) == []
    listed = await client.get(
        "/api/v1/candidates", headers=world.viewer, params={"include_deleted": "true"}
    )
    assert listed.status_code == 403
    listed = await client.get(
        "/api/v1/candidates", headers=world.member, params={"include_deleted": "true"}
    )
    assert [c["id"] for c in listed.json()["items"]] == [ann["id"]]
    restored = await client.post(f"/api/v1/candidates/{ann['id']}/restore", headers=world.member)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    async with owner_engine.begin() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM candidates"))
    assert count >= 2
