"""An application's allowed transitions, as versioned data per matter kind.

`data/workflows/<name>.v<N>.json` lists the states (with whether the statutory clock runs,
pauses or does not apply) and each transition (action, from, to, who may take it, whether a
reason is required). A workflow is checked when loaded: every state named exists, final states
lead nowhere, every state is reachable from the initial one and can reach a final one. The
newest version of the workflow naming a kind applies to new applications; an application keeps
the version it started under. `mermaid()` draws it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import Conflict

WORKFLOWS_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "workflows"
_FILE = re.compile(r"([a-z][a-z0-9_]*)\.v([1-9][0-9]*)\.json")
ACTORS = ("applicant", "reviewer", "system")
CLOCKS = ("none", "running", "paused")


class IllegalTransition(Conflict):
    code = "ILLEGAL_TRANSITION"
    message = "当前状态下不能进行该操作"


class WorkflowInvalid(ValueError):
    """A workflow file contradicts itself (a programming error caught when loading)."""


@dataclass(frozen=True)
class State:
    name: str
    label: str
    final: bool
    clock: str  # none | running | paused: whether the statutory limit counts meanwhile


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str
    by: str
    label: str
    reason_required: bool = False


@dataclass(frozen=True)
class Workflow:
    name: str
    version: int
    title: str
    kinds: tuple[str, ...]
    initial: str
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]

    def transition(self, state: str, action: str, by: str) -> Transition:
        """The transition `by` may take with `action` from `state`; IllegalTransition if none."""
        for candidate in self.transitions:
            if candidate.source == state and candidate.action == action and candidate.by == by:
                return candidate
        raise IllegalTransition(state=state, action=action)

    def entered_by_transition(self, state: str) -> bool:
        """Whether any transition leads to `state`. When none does, an application in it is
        still in the state it was created in and has no transitions recorded."""
        return any(t.target == state for t in self.transitions)

    def actions(self, state: str, by: str) -> list[str]:
        """What `by` may do from `state` (for the client's buttons)."""
        return sorted({t.action for t in self.transitions if t.source == state and t.by == by})

    def mermaid(self) -> str:
        """The workflow as a Mermaid state diagram."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for state in self.states.values():
            lines.append(f"    {state.name} : {state.label}")
        for t in self.transitions:
            lines.append(f"    {t.source} --> {t.target} : {t.label}（{t.by}）")
        for state in self.states.values():
            if state.final:
                lines.append(f"    {state.name} --> [*]")
        return "\n".join(lines) + "\n"


def parse(raw: Mapping[str, Any]) -> Workflow:
    """A workflow from its file's content, checked for consistency."""
    try:
        states = {
            name: State(name, spec["label"], bool(spec["final"]), spec["clock"])
            for name, spec in raw["states"].items()
        }
        transitions = tuple(
            Transition(t["action"], t["from"], t["to"], t["by"], t["label"], bool(t.get("reason")))
            for t in raw["transitions"]
        )
        workflow = Workflow(
            raw["name"],
            int(raw["version"]),
            raw["title"],
            tuple(raw["kinds"]),
            raw["initial"],
            states,
            transitions,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise WorkflowInvalid(f"malformed workflow: {error!r}") from error
    _check(workflow)
    return workflow


def _check(workflow: Workflow) -> None:
    states = workflow.states
    problems = []
    if workflow.initial not in states:
        problems.append(f"initial state {workflow.initial} is not a state")
    for state in states.values():
        if state.clock not in CLOCKS:
            problems.append(f"{state.name}: clock {state.clock!r}")
    for t in workflow.transitions:
        if t.source not in states or t.target not in states:
            problems.append(f"{t.action}: {t.source} -> {t.target} names an unknown state")
        elif states[t.source].final:
            problems.append(f"{t.action}: leaves the final state {t.source}")
        if t.by not in ACTORS:
            problems.append(f"{t.action}: actor {t.by!r}")
    if problems:
        raise WorkflowInvalid("; ".join(problems))
    reachable = _closure({workflow.initial}, {(t.source, t.target) for t in workflow.transitions})
    if set(states) - reachable:
        problems.append(f"unreachable: {sorted(set(states) - reachable)}")
    reverse = {(t.target, t.source) for t in workflow.transitions}
    finishing = _closure({s.name for s in states.values() if s.final}, reverse)
    if set(states) - finishing:
        problems.append(f"never reach a final state: {sorted(set(states) - finishing)}")
    if problems:
        raise WorkflowInvalid("; ".join(problems))


def _closure(start: set[str], edges: set[tuple[str, str]]) -> set[str]:
    seen, frontier = set(start), list(start)
    while frontier:
        node = frontier.pop()
        for source, target in edges:
            if source == node and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


@functools.cache
def load_all(directory: Path = WORKFLOWS_DIR) -> dict[tuple[str, int], Workflow]:
    """Every workflow file of `directory`, by (name, version)."""
    found = {}
    for path in sorted(directory.glob("*.json")):
        matched = _FILE.fullmatch(path.name)
        if not matched:
            raise WorkflowInvalid(f"{path.name}: name it <name>.v<N>.json")
        workflow = parse(json.loads(path.read_text(encoding="utf-8")))
        if (workflow.name, workflow.version) != (matched.group(1), int(matched.group(2))):
            raise WorkflowInvalid(f"{path.name}: its name and version differ from the file name")
        found[(workflow.name, workflow.version)] = workflow
    return found


def for_kind(kind: str, directory: Path = WORKFLOWS_DIR) -> Workflow:
    """The newest workflow for matters of `kind`."""
    candidates = [w for w in load_all(directory).values() if kind in w.kinds]
    if not candidates:
        raise WorkflowInvalid(f"no workflow for matters of kind {kind}")
    return max(candidates, key=lambda w: (w.version, w.name))
