#!/usr/bin/env python3
"""Check Portcullis' OpenAPI document with validators no one on the project wrote.

usage: check_openapi.py OPENAPI_JSON [SAMPLES_JSON]

1. The document is validated as OpenAPI 3.1 by `openapi-spec-validator` (PyPI), which
   also resolves every `$ref`.
2. With SAMPLES_JSON (a list of {"path", "method", "status", "content_type", "body"} taken
   from real answers of the server), each answer body is validated, with
   `openapi-schema-validator` (PyPI, OAS 3.1 dialect), against the schema the document
   declares for that path, method, status and content type: the document must describe
   what the server really sends.

Exits non-zero with every problem listed.
"""

import json
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    problems = []
    if not str(doc.get("openapi", "")).startswith("3.1"):
        problems.append(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    for err in OpenAPIV31SpecValidator(doc).iter_errors():
        problems.append(f"spec: {err.message} at {'/'.join(map(str, err.absolute_path))}")

    checked = 0
    if len(sys.argv) > 2:
        with open(sys.argv[2], encoding="utf-8") as f:
            samples = json.load(f)
        for s in samples:
            where = f"{s['method'].upper()} {s['path']} -> {s['status']}"
            op = doc.get("paths", {}).get(s["path"], {}).get(s["method"].lower())
            if op is None:
                problems.append(f"{where}: the document has no such operation")
                continue
            resp = op.get("responses", {}).get(str(s["status"]))
            if resp is None:
                problems.append(f"{where}: status not documented")
                continue
            ct = s["content_type"].split(";")[0].strip()
            if s.get("body") is None:
                if resp.get("content"):
                    problems.append(f"{where}: documented with a body, answered without")
                checked += 1
                continue
            media = resp.get("content", {}).get(ct)
            if media is None:
                problems.append(
                    f"{where}: content type {ct} not documented "
                    f"(documented: {sorted(resp.get('content', {}))})"
                )
                continue
            schema = dict(media.get("schema", {}))
            # Resolve `#/components/...` against the whole document.
            schema["components"] = doc.get("components", {})
            validator = OAS31Validator(schema)
            for err in validator.iter_errors(s["body"]):
                problems.append(
                    f"{where}: body does not match the documented schema: {err.message} "
                    f"at /{'/'.join(map(str, err.absolute_path))}"
                )
            checked += 1

    if problems:
        print(f"{len(problems)} problem(s):")
        for p in problems:
            print(" -", p)
        return 1
    print(
        f"ok: OpenAPI {doc['openapi']}, {len(doc.get('paths', {}))} paths, "
        f"{len(doc.get('components', {}).get('schemas', {}))} schemas, "
        f"{checked} real answers match their documented schemas"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
