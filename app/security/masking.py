"""How personal data is shown in responses: enough to recognise, never enough to use."""

from __future__ import annotations


def mask_id_number(id_number: str) -> str:
    """440113199001011234 -> 4401**********1234."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    """张三 -> *三, 欧阳小明 -> **小明: the given name stays, the family name is hidden."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return "*" + name[-1]
    return "*" * (len(name) - 2) + name[-2:]


def mask_account(account: str) -> str:
    """A bank account: only the last four digits."""
    return "*" * max(len(account) - 4, 0) + account[-4:]
