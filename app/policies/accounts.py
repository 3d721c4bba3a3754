"""The bank account an enterprise's 免申即享 money is paid into (收款账户).

Only the enterprise's legal representative, face-verified moments ago, confirms it, and only
an account held in the enterprise's registered name: the embedded rule compares the name given
for the account with the registry's, and a bank-account service (where configured) confirms
the bank holds the number under that name. When the legal representative changes, the account
is frozen until the new one confirms it: a stranger who once bound the enterprise must not
keep receiving its subsidies.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import affected_rows
from app.enterprises.models import RegistryEnterprise
from app.identity.assurance import DEFAULT_FACE_RECENT_SECONDS, require_level
from app.identity.models import User
from app.policies.errors import (
    AccountNotVerified,
    AccountVerificationUnavailable,
    InvalidProfile,
)
from app.policies.models import ReceivingAccount
from app.security.crypto import FieldCipher
from app.security.masking import mask_account
from verification.bank import BankAccountVerifier
from verification.errors import VerificationError

ACCOUNT_CONTEXT = "policy_receiving_account"


def confirm_account(
    session: Session,
    cipher: FieldCipher,
    bank: BankAccountVerifier,
    *,
    enterprise: RegistryEnterprise,
    user: User,
    bank_name: str,
    account_name: str,
    account_number: str,
    now: dt.datetime,
    face_recent_seconds: int = DEFAULT_FACE_RECENT_SECONDS,
    request_id: str | None = None,
) -> ReceivingAccount:
    """The legal representative confirms where 免申即享 money goes (the caller has checked the
    binding); the number is sealed at rest. Confirming lifts a freeze."""
    digits = "".join(account_number.split())
    if not digits.isdigit() or not 8 <= len(digits) <= 32:
        raise InvalidProfile("银行账号应为8至32位数字", field="account_number")
    require_level(
        session,
        user,
        "enterprise.set_receiving_account",
        now=now,
        face_recent_seconds=face_recent_seconds,
        request_id=request_id,
    )
    try:
        check = bank.verify(
            registered_name=enterprise.name,
            account_name=account_name,
            account_number=digits,
            bank_name=bank_name,
        )
    except VerificationError as exc:
        raise AccountVerificationUnavailable() from exc
    if not check.matches:
        record(
            session, "policy.account_refused", actor=Actor("user", user.id), now=now,
            subject_type="enterprise", subject_id=enterprise.id,
            details={"reason": check.reason, "method": check.method}, request_id=request_id,
        )  # fmt: skip
        session.flush()
        raise AccountNotVerified(
            reason=check.reason,
            fields={"account_name": [f"账户名称须为企业登记名称“{enterprise.name}”"]}
            if check.reason == "name_differs"
            else {"account_number": ["银行核验该账户不属于本企业"]},
        )
    account = session.get(ReceivingAccount, enterprise.id) or ReceivingAccount(
        enterprise_id=enterprise.id
    )
    account.bank_name = bank_name
    account.account_name = enterprise.name  # as registered, whichever width the user typed
    account.account_number_sealed = cipher.encrypt(digits, context=ACCOUNT_CONTEXT)
    account.account_number_masked = mask_account(digits)
    account.confirmed_by_user_id = user.id
    account.confirmed_at = now
    account.verified_by = check.method
    account.frozen_at = None
    account.frozen_reason = None
    session.add(account)
    record(
        session, "policy.account_confirmed", actor=Actor("user", user.id), now=now,
        subject_type="enterprise", subject_id=enterprise.id,
        details={"method": check.method}, request_id=request_id,
    )  # fmt: skip
    session.flush()
    return account


def freeze_receiving_account(
    session: Session, enterprise_id: int, *, reason: str, actor: Actor, now: dt.datetime
) -> bool:
    """Stop payments into the enterprise's account until it is confirmed again; returns
    whether there was an account to freeze."""
    result = session.execute(
        update(ReceivingAccount)
        .where(
            ReceivingAccount.enterprise_id == enterprise_id, ReceivingAccount.frozen_at.is_(None)
        )
        .values(frozen_at=now, frozen_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    frozen = affected_rows(result)
    if frozen:
        record(
            session, "policy.account_frozen", actor=actor, now=now,
            subject_type="enterprise", subject_id=enterprise_id, details={"reason": reason},
        )  # fmt: skip
    return bool(frozen)
