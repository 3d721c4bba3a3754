"""Application workflows as data: checked when loaded, enforced per actor, drawn as Mermaid."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from app.applications import workflow
from app.applications.workflow import IllegalTransition, WorkflowInvalid
from app.db import utcnow
from app.matters import catalogue
from app.matters.cli import CATALOGUE_DIR
from app.organisation.catalogue import DEPARTMENTS

SHIPPED = json.loads((workflow.WORKFLOWS_DIR / "licensing.v1.json").read_text(encoding="utf-8"))


def test_every_matter_kind_has_a_workflow_and_the_shipped_one_is_consistent() -> None:
    for kind in catalogue.KINDS:
        assert workflow.for_kind(kind).name == "licensing"


def test_transitions_are_allowed_only_to_their_actor_from_their_state() -> None:
    flow = workflow.for_kind("行政许可")

    assert flow.transition("draft", "submit", "applicant").target == "submitted"
    assert flow.transition("under_review", "request_supplement", "reviewer").reason_required
    assert flow.states["supplement_requested"].clock == "paused"  # 补正 stops the clock
    with pytest.raises(IllegalTransition):
        flow.transition("under_review", "approve", "applicant")  # not the applicant's call
    with pytest.raises(IllegalTransition):
        flow.transition("approved", "withdraw", "applicant")  # decided: too late
    # 补齐容缺材料 is the applicant's too (shown only while materials are promised).
    assert flow.actions("under_review", "applicant") == ["supply", "withdraw"]
    assert flow.actions("under_review", "reviewer") == [
        "approve",
        "reject",
        "request_supplement",
        "return",
        "transfer",
    ]


def test_only_the_initial_state_is_never_entered_by_a_transition() -> None:
    """Submitting a draft reads no recorded transitions: none can lead to a draft."""
    for flow in workflow.load_all().values():
        assert not flow.entered_by_transition(flow.initial)
        assert all(flow.entered_by_transition(s) for s in flow.states if s != flow.initial)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda w: w.update(initial="nowhere"), "initial state"),
        (lambda w: w["transitions"].append({**w["transitions"][0], "from": "approved"}), "final"),
        (lambda w: w["transitions"].append({**w["transitions"][0], "to": "limbo"}), "unknown"),
        (lambda w: w["transitions"].append({**w["transitions"][0], "by": "anyone"}), "actor"),
        (
            lambda w: w["states"].update(orphan={"label": "孤立", "final": False, "clock": "none"}),
            "unreachable",
        ),
        (
            lambda w: w["transitions"].__setitem__(
                slice(None), [t for t in w["transitions"] if t["from"] != "supplement_requested"]
            ),
            "never reach a final state",
        ),
    ],
)
def test_a_contradictory_workflow_is_refused_when_loaded(change, complaint: str) -> None:
    raw = copy.deepcopy(SHIPPED)
    change(raw)
    with pytest.raises(WorkflowInvalid, match=complaint):
        workflow.parse(raw)


def test_a_file_must_be_named_for_its_name_and_version(tmp_path: Path) -> None:
    (tmp_path / "licensing.v2.json").write_text(json.dumps(SHIPPED), encoding="utf-8")
    with pytest.raises(WorkflowInvalid, match="differ"):
        workflow.load_all(tmp_path)


def test_the_newest_version_applies(tmp_path: Path) -> None:
    shutil.copy(workflow.WORKFLOWS_DIR / "licensing.v1.json", tmp_path / "licensing.v1.json")
    newer = {**SHIPPED, "version": 2, "title": "第二版"}
    (tmp_path / "licensing.v2.json").write_text(json.dumps(newer), encoding="utf-8")
    assert workflow.for_kind("行政许可", tmp_path).title == "第二版"


def test_the_matter_shows_its_workflow_as_mermaid(client, session, create_department) -> None:
    for code, name in DEPARTMENTS:
        create_department(code=code, name=name)
    catalogue.load_directory(session, CATALOGUE_DIR, now=utcnow())

    shown = client.get("/api/v1/matters/PY-CGJ-LSGG/workflow")

    assert shown.status_code == 200
    body = shown.json
    assert (body["name"], body["version"], body["initial"]) == ("licensing", 2, "draft")
    assert {"from": "under_review", "to": "supplement_requested"}.items() <= next(
        t for t in body["transitions"] if t["action"] == "request_supplement"
    ).items()
    mermaid = body["mermaid"]
    assert mermaid.startswith("stateDiagram-v2\n    [*] --> draft\n")
    assert "    submitted --> approved : 秒批：规则全部满足（system）" in mermaid
    assert "    approved --> [*]" in mermaid
    assert "    under_review --> terminated : 容缺材料逾期未补，终止办理（system）" in mermaid
    assert client.get("/api/v1/matters/PY-NONE/workflow").status_code == 404
