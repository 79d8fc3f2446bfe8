"""The OpenAPI description: every JSON request body carries an example, and
each example is a valid body for its route (its JSON schema and its model)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel


def _json_bodies(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    bodies = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                bodies.append((method.upper(), path, content["application/json"]))
    return bodies


def _examples(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    found = list(schema.get("examples", []))
    found += [item["value"] for item in media.get("examples", {}).values()]
    if "example" in media:
        found.append(media["example"])
    return found


def test_every_json_request_body_has_a_valid_example(app: Any) -> None:
    spec = app.openapi()
    bodies = _json_bodies(spec)
    assert len(bodies) > 20  # the platform's create and update routes, at least
    missing = [f"{method} {path}" for method, path, media in bodies if not _examples(spec, media)]
    assert not missing, "request bodies without an example:\n" + "\n".join(missing)

    invalid = []
    for method, path, media in bodies:
        validator = Draft202012Validator({**media["schema"], "components": spec["components"]})
        invalid += [
            f"{method} {path}: {error.message}"
            for example in _examples(spec, media)
            for error in validator.iter_errors(example)
        ]
    assert not invalid, "\n".join(invalid)


def _models(base: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for model in base.__subclasses__():
        found.append(model)
        found += _models(model)
    return found


def test_examples_pass_the_models_own_validation(app: Any) -> None:
    """Beyond the JSON schema: the models' validators (known permission and
    event names, limits, normalisation) accept every example they declare."""
    checked: list[str] = []
    for model in _models(BaseModel):
        if not model.__module__.startswith("backend."):
            continue
        extra = model.model_config.get("json_schema_extra")
        for example in extra.get("examples", []) if isinstance(extra, dict) else []:
            assert isinstance(example, dict)
            model.model_validate(example)
            checked.append(f"{model.__module__}.{model.__qualname__}")
    models_of_bodies = {
        body["schema"]["$ref"]
        for _, _, body in _json_bodies(app.openapi())
        if "$ref" in body["schema"]
    }
    assert len(set(checked)) >= len(models_of_bodies)
