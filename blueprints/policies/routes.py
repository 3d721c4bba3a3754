"""Policies: the officer's API (department-scoped), the enterprise feed, the public calculator."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g
from flask.views import MethodView

from app.db import get_session, utcnow
from app.enterprises.models import BindingRole, RegistryEnterprise
from app.enterprises.service import require_enterprise_access
from app.errors import NotFound
from app.identity.models import User
from app.integrations.verification import get_verification
from app.policies import accounts, jobs, matching, profiles, reference, service
from app.policies.models import (
    EnterpriseProfile,
    Policy,
    PolicyStatus,
    ReceivingAccount,
)
from app.security import get_cipher
from blueprints.authz import (
    citizen_required,
    current_principal,
    public,
    require_scope,
    staff_required,
)
from blueprints.logins import keeping_writes
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, PageRequest, page_from, page_of, page_schema
from blueprints.policies import schemas

blp = Blueprint("policies", __name__, url_prefix="", description="惠企政策与精准推送")

OFFICER = "policy_officer"
_POLICY_FIELDS = service.EDITABLE
# The part of the title and summary a push carries may hold no mobile or ID number.
_TEXT_NOT_PUSHABLE = "POLICY_TEXT_NOT_PUSHABLE：标题或摘要的推送部分含手机号码或身份证号码"
_REFUSED_INPUT = f"条件有误，或{_TEXT_NOT_PUSHABLE}（字段见 details.field）"


def _policy_out(policy: Policy) -> dict[str, Any]:
    session = get_session()
    out = {k: getattr(policy, k) for k in (*_POLICY_FIELDS, "id", "department_id")}
    out |= {
        "status": service.effective_status(policy, utcnow()).value,
        "published_at": policy.published_at,
        "criteria_version": policy.criteria_version,
        "criteria": [c.as_json() for c in service.current_criteria(session, policy)],
    }
    return out


def _officer_policy(policy_id: int) -> Policy:
    policy = service.get_policy(get_session(), policy_id)
    require_scope([OFFICER], policy.department_id)
    return policy


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in _POLICY_FIELDS}


# -- policy officers ---------------------------------------------------------------------------


@blp.route("/staff/policies")
class Policies(MethodView):
    @blp.arguments(schemas.PolicyListArgs, location="query")
    @blp.response(200, page_schema(schemas.PolicyOut))
    @staff_required(OFFICER)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The department's policies, newest first."""
        require_scope([OFFICER], args["department_id"])
        policies = service.department_policies(
            get_session(), args["department_id"], status=args.get("status")
        )
        page = page_of(policies, args)
        return {**page, "items": [_policy_out(p) for p in page["items"]]}

    @blp.arguments(schemas.PolicyCreateIn)
    @blp.response(201, schemas.PolicyOut)
    @blp.alt_response(422, description=_REFUSED_INPUT)
    @blp.alt_response(403, description="其他部门")
    @staff_required(OFFICER)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a draft policy with its first criteria version."""
        require_scope([OFFICER], body["department_id"])
        session = get_session()
        criteria = service.parse_input_criteria(body, body["doc_number"])
        policy = service.create_policy(
            session,
            department_id=body["department_id"],
            fields=_fields(body),
            criteria=criteria,
            staff_id=current_principal().id,
            now=utcnow(),
        )
        session.commit()
        return _policy_out(policy)


@blp.route("/staff/policies/<int:policy_id>")
class PolicyItem(MethodView):
    @blp.response(200, schemas.PolicyOut)
    @staff_required(OFFICER)
    def get(self, policy_id: int) -> dict[str, Any]:
        """One policy with its current criteria."""
        return _policy_out(_officer_policy(policy_id))

    @blp.arguments(schemas.PolicyEditIn)
    @blp.response(200, schemas.PolicyOut)
    @blp.alt_response(422, description=_REFUSED_INPUT)
    @blp.alt_response(409, description="已撤回或已过期")
    @staff_required(OFFICER)
    def patch(self, body: dict[str, Any], policy_id: int) -> dict[str, Any]:
        """Edit; new criteria become a new version (re-matched at once if published)."""
        policy = _officer_policy(policy_id)
        session = get_session()
        criteria = service.parse_input_criteria(body, body.get("doc_number", policy.doc_number))
        service.edit_policy(
            session,
            policy,
            fields=_fields(body),
            criteria=criteria,
            staff_id=current_principal().id,
            now=utcnow(),
        )
        session.commit()
        jobs.kick()
        return _policy_out(policy)


@blp.route("/staff/policies/<int:policy_id>/preview")
class PolicyPreview(MethodView):
    @blp.response(200, schemas.PreviewOut)
    @staff_required(OFFICER)
    def get(self, policy_id: int) -> matching.Preview:
        """How many enterprises match now (eligible, maybe, near misses per criterion)."""
        return service.preview(get_session(), _officer_policy(policy_id))


@blp.route("/staff/policies/<int:policy_id>/publish")
class PolicyPublish(MethodView):
    @blp.response(200, schemas.PublishOut)
    @blp.alt_response(422, description=_TEXT_NOT_PUSHABLE)
    @blp.alt_response(409, description="不是草稿，或已过有效期")
    @staff_required(OFFICER)
    def post(self, policy_id: int) -> dict[str, Any]:
        """Publish: match all enterprises and queue the pushes."""
        policy = _officer_policy(policy_id)
        session = get_session()
        matched = service.publish(session, policy, staff_id=current_principal().id, now=utcnow())
        session.commit()
        jobs.kick()
        return {"policy": _policy_out(policy), "matched": matched}


@blp.route("/staff/policies/<int:policy_id>/withdraw")
class PolicyWithdraw(MethodView):
    @blp.arguments(schemas.WithdrawIn)
    @blp.response(200, schemas.PolicyOut)
    @blp.alt_response(409, description="未发布")
    @staff_required(OFFICER)
    def post(self, body: dict[str, Any], policy_id: int) -> dict[str, Any]:
        """Withdraw a published policy; unsent pushes are cancelled."""
        policy = _officer_policy(policy_id)
        session = get_session()
        service.withdraw(
            session, policy, reason=body["reason"], staff_id=current_principal().id, now=utcnow()
        )
        session.commit()
        return _policy_out(policy)


@blp.route("/staff/policies/<int:policy_id>/stats")
class PolicyReach(MethodView):
    @blp.response(200, schemas.ReachOut)
    @staff_required(OFFICER)
    def get(self, policy_id: int) -> dict[str, int]:
        """Reach: matched, pushed, delivered, read, applied (enterprises)."""
        return service.reach(get_session(), _officer_policy(policy_id).id)


@blp.route("/staff/policy-facts/pending")
class PendingFacts(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.PendingFactsOut))
    @staff_required(OFFICER)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Enterprises whose self-declared facts wait for confirmation (待核实), oldest first."""
        return page_of(profiles.awaiting_review(get_session()), args)


@blp.route("/staff/enterprises/<int:enterprise_id>/policy-facts/review")
class FactReview(MethodView):
    @blp.arguments(schemas.FactReviewIn)
    @blp.response(200, schemas.ProfileOut)
    @blp.alt_response(404, description="企业不存在")
    @blp.alt_response(409, description="该信息不是待核实的企业自报信息")
    @staff_required(OFFICER)
    def post(self, body: dict[str, Any], enterprise_id: int) -> EnterpriseProfile:
        """Confirm a self-declared fact (it then counts as authoritative) or reject it (the
        value is withdrawn); audited, and the enterprise is re-matched."""
        session = get_session()
        profile = session.get(EnterpriseProfile, enterprise_id)
        if profile is None:
            raise NotFound("企业不存在或尚无企业画像")
        profiles.review_fact(
            session,
            profile,
            body["fact"],
            confirm=body["decision"] == "confirm",
            staff_id=current_principal().id,
            reason=body["reason"],
            now=utcnow(),
        )
        session.commit()
        return profile


@blp.route("/staff/policies/<int:policy_id>/beneficiaries.csv")
class PolicyBeneficiaries(MethodView):
    @blp.response(200, description="CSV（UTF-8 BOM）", content_type="text/csv")
    @blp.alt_response(409, description="不是免申即享政策")
    @staff_required(OFFICER)
    def get(self, policy_id: int) -> Response:
        """The 免申即享 beneficiary list (accounts masked)."""
        policy = _officer_policy(policy_id)
        body = "\ufeff" + service.beneficiaries_csv(get_session(), policy)
        return Response(
            body,
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename=policy-{policy.id}.csv"},
        )


# -- enterprise users --------------------------------------------------------------------------


def _enterprise(enterprise_id: int, *, legal_rep_only: bool = False) -> EnterpriseProfile:
    session = get_session()
    roles = (
        (BindingRole.LEGAL_REPRESENTATIVE,)
        if legal_rep_only
        else (BindingRole.LEGAL_REPRESENTATIVE, BindingRole.AGENT)
    )
    # A refusal of a representative the registry no longer names is audited: keep that entry.
    with keeping_writes(session):
        require_enterprise_access(
            session,
            current_principal().id,
            enterprise_id,
            roles=roles,
            now=utcnow(),
            request_id=g.get("request_id"),
        )
    enterprise = session.get(RegistryEnterprise, enterprise_id)
    assert enterprise is not None
    # A read: the registry's view when no profile is stored yet; nothing is written.
    return profiles.profile_for_reading(session, enterprise, now=utcnow())


@blp.route("/enterprises/<int:enterprise_id>/policy-profile")
class EnterpriseProfileView(MethodView):
    @blp.response(200, schemas.ProfileOut)
    @citizen_required
    def get(self, enterprise_id: int) -> EnterpriseProfile:
        """The enterprise's profile as matching sees it."""
        return _enterprise(enterprise_id)

    @blp.arguments(schemas.ProfileIn)
    @blp.response(200, schemas.ProfileOut)
    @blp.alt_response(422, description="字段有误")
    @citizen_required
    def patch(self, body: dict[str, Any], enterprise_id: int) -> EnterpriseProfile:
        """Update self-declared fields; recorded in the history and re-matched at once."""
        _enterprise(enterprise_id)
        session = get_session()
        enterprise = session.get(RegistryEnterprise, enterprise_id)
        assert enterprise is not None  # the access check found it
        profile = profiles.ensure_profile(session, enterprise, now=utcnow())
        values = profiles.clean(body, profiles.SELF_DECLARED)
        profiles.update_profile(
            session, profile, values, source="self", user_id=current_principal().id, now=utcnow()
        )
        session.commit()
        jobs.kick()
        return profile


@blp.route("/enterprises/<int:enterprise_id>/policy-profile/history")
class EnterpriseProfileHistory(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.ProfileChangeOut))
    @citizen_required
    def get(self, args: dict[str, Any], enterprise_id: int) -> dict[str, Any]:
        """Every change of the profile, newest first."""
        _enterprise(enterprise_id)
        return page_of(profiles.history(get_session(), enterprise_id), args)


@blp.route("/enterprises/<int:enterprise_id>/policy-feed")
class Feed(MethodView):
    @blp.arguments(schemas.FeedArgs, location="query")
    @blp.response(200, schemas.FeedOut)
    @citizen_required
    def get(self, args: dict[str, Any], enterprise_id: int) -> dict[str, Any]:
        """Policies matched to the enterprise, newest first, with reasons and unread count."""
        _enterprise(enterprise_id)
        page = PageRequest.of(args)
        items, total, unread = service.feed(
            get_session(),
            user_id=current_principal().id,
            enterprise_id=enterprise_id,
            now=utcnow(),
            benefit_kind=args.get("benefit_kind"),
            keyword=args.get("q"),
            unread_only=args["unread"],
            favourites_only=args["favourite"],
            offset=page.offset,
            limit=page.limit,
        )
        return page_from(items, total, args, unread=unread)


def _published(policy_id: int) -> Policy:
    policy = get_session().get(Policy, policy_id)
    if policy is None or policy.status is PolicyStatus.DRAFT:
        raise NotFound("政策不存在", policy_id=policy_id)
    return policy


@blp.route("/enterprises/<int:enterprise_id>/policy-feed/<int:policy_id>")
class FeedItem(MethodView):
    @blp.response(200, schemas.PolicyDetailOut)
    @citizen_required
    def get(self, enterprise_id: int, policy_id: int) -> dict[str, Any]:
        """A policy's detail and why the enterprise does (not) qualify, per criterion."""
        _enterprise(enterprise_id)
        policy = _published(policy_id)
        explained = service.explain(get_session(), policy, enterprise_id, now=utcnow())
        return {"policy": _policy_out(policy), **explained}

    @blp.arguments(schemas.FeedMarkIn)
    @blp.response(200, schemas.FeedMarkOut)
    @blp.alt_response(404, description="该政策不在本企业的推送列表中")
    @citizen_required
    def put(self, body: dict[str, Any], enterprise_id: int, policy_id: int) -> Any:
        """Mark read/unread and favourite."""
        _enterprise(enterprise_id)
        session = get_session()
        mark = service.mark_feed(
            session,
            user_id=current_principal().id,
            enterprise_id=enterprise_id,
            policy_id=policy_id,
            read=body.get("read"),
            favourite=body.get("favourite"),
            now=utcnow(),
        )
        session.commit()
        return mark


@blp.route("/enterprises/<int:enterprise_id>/policy-near-misses")
class NearMisses(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.NearMissOut))
    @citizen_required
    def get(self, args: dict[str, Any], enterprise_id: int) -> dict[str, Any]:
        """Policies the enterprise misses by exactly one criterion, with what is missing."""
        profile = _enterprise(enterprise_id)
        misses = service.near_misses(get_session(), matching.profile_values(profile), now=utcnow())
        return page_of(misses, args)


@blp.route("/enterprises/<int:enterprise_id>/policy-account")
class Account(MethodView):
    @blp.response(200, schemas.AccountOut)
    @blp.alt_response(404, description="尚未确认收款账户")
    @citizen_required
    def get(self, enterprise_id: int) -> ReceivingAccount:
        """The confirmed 免申即享 receiving account (masked)."""
        _enterprise(enterprise_id)
        account = get_session().get(ReceivingAccount, enterprise_id)
        if account is None:
            raise NotFound("尚未确认收款账户")
        return account

    @blp.arguments(schemas.AccountIn)
    @blp.response(200, schemas.AccountOut)
    @blp.alt_response(403, description="仅法定代表人可确认，且须近期完成人脸核验（已记录）")
    @blp.alt_response(422, description="账户名称与企业登记名称不一致，或银行核验不符（已记录）")
    @blp.alt_response(503, description="银行账户核验服务暂时不可用")
    @citizen_required
    def put(self, body: dict[str, Any], enterprise_id: int) -> ReceivingAccount:
        """Confirm the receiving account (legal representative, face-verified): held in the
        enterprise's registered name; stored encrypted; lifts a freeze."""
        _enterprise(enterprise_id, legal_rep_only=True)
        session = get_session()
        enterprise = session.get(RegistryEnterprise, enterprise_id)
        user = session.get(User, current_principal().id)
        assert enterprise is not None and user is not None  # the access check found both
        with keeping_writes(session):
            account = accounts.confirm_account(
                session,
                get_cipher(),
                get_verification().bank,
                enterprise=enterprise,
                user=user,
                now=utcnow(),
                face_recent_seconds=current_app.config["FACE_RECENT_SECONDS"],
                request_id=g.get("request_id"),
                **body,
            )
        session.commit()
        return account


@blp.route("/enterprises/<int:enterprise_id>/policy-push-optout")
class OptOut(MethodView):
    @blp.response(200, schemas.OptOutOut)
    @citizen_required
    def put(self, enterprise_id: int) -> dict[str, bool]:
        """Stop policy pushes to me for this enterprise (the feed stays)."""
        _enterprise(enterprise_id)
        session = get_session()
        service.set_push_opt_out(
            session, current_principal().id, enterprise_id, opted_out=True, now=utcnow()
        )
        session.commit()
        return {"opted_out": True}

    @blp.response(200, schemas.OptOutOut)
    @citizen_required
    def delete(self, enterprise_id: int) -> dict[str, bool]:
        """Receive policy pushes again."""
        _enterprise(enterprise_id)
        session = get_session()
        service.set_push_opt_out(
            session, current_principal().id, enterprise_id, opted_out=False, now=utcnow()
        )
        session.commit()
        return {"opted_out": False}


# -- the public calculator ---------------------------------------------------------------------


@blp.route("/policy-calculator")
class Calculator(MethodView):
    @blp.arguments(schemas.CalculatorIn)
    @blp.response(200, schemas.CalculatorOut)
    @blp.alt_response(422, description="字段有误")
    @public
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """政策计算器: which active policies a typed-in profile would get; nothing is stored."""
        values = profiles.clean(body, profiles.IMPORTED)
        code = values.get("industry_code")
        size = reference.size_class(code, values.get("employees"), values.get("revenue_yuan"))
        tags = values.pop("tags", None)
        profile = {name: values.get(name) for name in matching.PROFILE_FIELDS}
        profile["size_class"] = size.value if size else None
        profile["tag_bits"] = None if tags is None else reference.tags_to_bits(tags)
        result = service.calculate(get_session(), profile, now=utcnow())
        return {"size_class": profile["size_class"], **result}
