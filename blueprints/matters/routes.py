"""The matter catalogue: browse and search (public), one matter's guide and form, publishing a
new version (admins)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from app.applications import workflow
from app.db import get_session, utcnow
from app.matters import catalogue, parameters
from app.matters.errors import ParameterNotFound
from blueprints.authz import ADMIN_ROLE, current_principal, public, require_scope, staff_required
from blueprints.matters.schemas import (
    MatterPublishIn,
    MatterSearchArgs,
    MatterSummaryOut,
    MatterVersionOut,
    ParameterIn,
    ParametersOut,
    WorkflowOut,
    summary,
    version_out,
)
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_schema

blp = Blueprint(
    "matters",
    __name__,
    url_prefix="/matters",
    description="办事事项目录：按部门、标识、关键字查找，办事指南与申请表",
)


@blp.route("")
class Matters(MethodView):
    @blp.arguments(MatterSearchArgs, location="query")
    @blp.response(200, page_schema(MatterSummaryOut))
    @public
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The catalogue, by code; filters combine (department, flag such as 秒批, keyword)."""
        session = get_session()
        query = catalogue.search(
            department=args.get("department"),
            flag=args.get("flag"),
            kind=args.get("kind"),
            applicant=args.get("applicant"),
            keyword=args.get("q"),
        )
        request = PageRequest.of(args)
        rows, total = catalogue.page(session, query, offset=request.offset, limit=request.limit)
        items = [summary(matter, department.code, department.name) for matter, department in rows]
        return page_from(items, total, args)

    @blp.arguments(MatterPublishIn)
    @blp.response(201, MatterVersionOut)
    @blp.alt_response(200, schema=MatterVersionOut, description="内容与当前版本相同：未新建版本")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any]) -> Response | tuple[dict[str, Any], int]:
        """Publish a matter, or a new version of one (audited). Applications keep theirs."""
        session = get_session()
        published = catalogue.publish(session, body, staff_id=current_principal().id, now=utcnow())
        session.commit()
        matter = catalogue.get_matter(session, body["code"])
        out = version_out(matter.code, published.version, matter.current_version)
        if not published.created:
            return jsonify(MatterVersionOut().dump(out))
        return out, 201


@blp.route("/<string:code>")
class MatterCurrent(MethodView):
    @blp.response(200, MatterVersionOut)
    @blp.alt_response(404, description="事项不存在")
    @public
    def get(self, code: str) -> dict[str, Any]:
        """The matter's current version: its guide, application form and licence."""
        session = get_session()
        matter = catalogue.get_matter(session, code)
        return version_out(code, catalogue.get_version(session, code), matter.current_version)


@blp.route("/<string:code>/versions/<int:version>")
class MatterVersionView(MethodView):
    @blp.response(200, MatterVersionOut)
    @blp.alt_response(404, description="事项或版本不存在")
    @public
    def get(self, code: str, version: int) -> dict[str, Any]:
        """One published version, as an application filed under it saw it."""
        session = get_session()
        matter = catalogue.get_matter(session, code)
        found = catalogue.get_version(session, code, version)
        return version_out(code, found, matter.current_version)


@blp.route("/<string:code>/workflow")
class MatterWorkflow(MethodView):
    @blp.response(200, WorkflowOut)
    @blp.alt_response(404, description="事项不存在")
    @public
    def get(self, code: str) -> dict[str, Any]:
        """The states and transitions an application for this matter goes through, with a
        Mermaid diagram of them."""
        matter = catalogue.get_matter(get_session(), code)
        flow = workflow.for_kind(matter.kind)
        return {
            "name": flow.name,
            "version": flow.version,
            "title": flow.title,
            "initial": flow.initial,
            "states": list(flow.states.values()),
            "transitions": list(flow.transitions),
            "mermaid": flow.mermaid(),
        }


@blp.route("/<string:code>/parameters")
class MatterParameters(MethodView):
    @blp.response(200, ParametersOut)
    @blp.alt_response(404, description="事项不存在")
    @public
    def get(self, code: str) -> dict[str, Any]:
        """The current thresholds and lists of the matter's rules (staff set them)."""
        session = get_session()
        matter = catalogue.get_matter(session, code)
        rule_set = catalogue.rule_set_of(catalogue.get_version(session, code))
        return _parameters_out(session, matter, rule_set)


@blp.route("/<string:code>/parameters/<string:name>")
class MatterParameter(MethodView):
    @blp.arguments(ParameterIn)
    @blp.response(200, ParametersOut)
    @blp.alt_response(404, description="MATTER_NOT_FOUND / MATTER_PARAMETER_NOT_FOUND")
    @blp.alt_response(422, description="MATTER_INVALID：取值类型不符")
    @staff_required("reviewer")
    def put(self, body: dict[str, Any], code: str, name: str) -> dict[str, Any]:
        """Set one threshold or list of the matter's rules (audited; decisions record the
        values they used). Admins, or reviewers of the matter's department."""
        session = get_session()
        matter = catalogue.get_matter(session, code)
        require_scope(("reviewer",), matter.department_id)
        rule_set = catalogue.rule_set_of(catalogue.get_version(session, code))
        if rule_set is None:
            raise ParameterNotFound(name=name)
        parameters.set_value(
            session,
            matter,
            rule_set,
            name,
            body["value"],
            staff_id=current_principal().id,
            now=utcnow(),
        )
        session.commit()
        return _parameters_out(session, matter, rule_set)


def _parameters_out(session: Any, matter: Any, rule_set: Any) -> dict[str, Any]:
    if rule_set is None:
        return {"items": []}
    values = parameters.current_values(session, matter, rule_set)
    return {
        "items": [
            {
                "name": name,
                "label": spec["label"],
                "kind": spec["kind"],
                "unit": spec.get("unit", ""),
                "value": values[name],
                "default": spec["value"],
            }
            for name, spec in rule_set.parameters.items()
        ]
    }
