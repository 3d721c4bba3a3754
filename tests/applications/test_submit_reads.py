"""A 秒批 submission reads the application's own rows once: the application (held), its
applicant, enterprise, matter version and signed documents in one statement, not each again."""

from __future__ import annotations

import re

from tests.applications.conftest import advert_form, sign, upload_materials
from tests.support.database import statements_sent


def _tables_read(statements: list[str]) -> list[str]:
    """The table each SELECT reads first (its FROM), in order."""
    return [
        found.group(1)
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        and (found := re.search(r"\bFROM (\w+)", sql)) is not None
    ]


def test_a_submission_reads_its_application_rows_in_one_statement(
    app, client, session, district, citizen_headers
):
    headers = citizen_headers(district.legal_rep)
    body = {"matter_code": "PY-CGJ-LSGG", "form": advert_form(), "submit": False}
    body["enterprise_id"] = district.enterprise.id
    draft = client.post("/api/v1/applications", json=body, headers=headers).json
    number = draft["number"]
    upload_materials(client, headers, number, "PY-CGJ-LSGG", draft["matter_version"])
    assert sign(client, headers, number).status_code == 200
    # Nothing held from the set-up: the request must find every row itself.
    session.expunge_all()

    with statements_sent(app.extensions["db"].engine) as sent:
        answer = client.post(f"/api/v1/applications/{number}/submit", headers=headers)

    assert answer.status_code == 200 and answer.json["status"] == "approved"
    assert answer.json["signature"]["commitment_document"] is not None
    tables = _tables_read([statement for statement, _ in sent])
    applications_read = [t for t in tables if t == "applications"]
    assert applications_read == ["applications"]
    # Read with the application, not again: the applicant (the caller), the matter and its
    # version, and the signed documents the answer names (the licence's is the one issued).
    assert "users" not in tables and "matters" not in tables
    documents = [
        statement
        for statement, _ in sent
        if re.search(r"FROM issued_documents WHERE issued_documents\.id\b", statement)
    ]
    assert documents == []
