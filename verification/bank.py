"""Is this bank account really the enterprise's? (收款账户核验)

Public money goes only to an account held in the enterprise's own registered name. Without a
bank connection the one checkable rule is the name given for the account (`ExactNameRule`);
with one, the bank also confirms the account number is held under that name.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Protocol

from verification.errors import UnexpectedAnswer
from verification.http import SignedJsonService, raise_for_400, require_field

SERVICE = "bank account service"


@dataclass(frozen=True)
class AccountCheck:
    """Whether an account may receive the enterprise's money, and by which check."""

    matches: bool
    method: str  # exact_name | bank_service
    reason: str | None = None  # name_differs | mismatch | no_such_account


class BankAccountVerifier(Protocol):
    """A check of a receiving account; ExactNameRule and HttpBankAccountService implement it."""

    def verify(
        self, *, registered_name: str, account_name: str, account_number: str, bank_name: str
    ) -> AccountCheck:
        """Whether the account is held in the enterprise's registered name."""
        ...


def comparable_company_name(name: str) -> str:
    """Width-folded (全角括号 as 半角), no blanks: how two spellings of one name compare."""
    return "".join(unicodedata.normalize("NFKC", name).split())


class ExactNameRule:
    """Embedded: the account holder's name must be the enterprise's registered name."""

    method = "exact_name"

    def verify(
        self, *, registered_name: str, account_name: str, account_number: str, bank_name: str
    ) -> AccountCheck:
        """Match when the account's name is the registered name, up to width and blanks."""
        if comparable_company_name(account_name) != comparable_company_name(registered_name):
            return AccountCheck(matches=False, method=self.method, reason="name_differs")
        return AccountCheck(matches=True, method=self.method)


class HttpBankAccountService(SignedJsonService):
    """The bank-account verification service: the exact-name rule, then the bank's word."""

    method = "bank_service"

    def verify(
        self, *, registered_name: str, account_name: str, account_number: str, bank_name: str
    ) -> AccountCheck:
        """The exact-name rule, then the bank: is the number held under the registered name?"""
        by_name = ExactNameRule().verify(
            registered_name=registered_name,
            account_name=account_name,
            account_number=account_number,
            bank_name=bank_name,
        )
        if not by_name.matches:
            return by_name  # no need to ask the bank about an account in another name
        status, answer = self._client.post(
            "/v1/bank/account-check",
            {
                "account_number": account_number,
                "bank_name": bank_name,
                "holder_name": registered_name,
            },
            service=SERVICE,
        )
        raise_for_400(status, answer, service=SERVICE)
        result = require_field(answer, "result", str, service=SERVICE)
        if result not in ("match", "mismatch", "no_such_account"):
            raise UnexpectedAnswer(f"{SERVICE}: result {result!r}")
        return AccountCheck(
            matches=result == "match",
            method=self.method,
            reason=None if result == "match" else result,
        )
