"""`citizen_required_family_in_view`: nothing acts for the caller before the view has asked
about the login family."""

from __future__ import annotations

import pytest
from flask import Flask, g

from app.errors import TokenInvalid, Unauthenticated
from app.identity.access_tokens import Principal
from blueprints.authz import (
    caller_key,
    confirm_family,
    current_principal,
    unconfirmed_principal,
)

CITIZEN = Principal(kind="user", id=7, roles=(), scopes={}, family_id="f" * 32)


def test_the_caller_is_nobody_until_the_family_is_confirmed(app: Flask) -> None:
    with app.test_request_context():
        g.unconfirmed_principal = CITIZEN
        with pytest.raises(Unauthenticated):
            current_principal()
        assert unconfirmed_principal() is CITIZEN
        # The rate limit still counts the citizen's attempts, not their network's.
        assert caller_key() == "user:7"

        assert confirm_family(True) is CITIZEN

        assert current_principal() is CITIZEN
        assert "unconfirmed_principal" not in g


def test_a_family_found_inactive_is_refused_and_stays_nobody(app: Flask) -> None:
    with app.test_request_context():
        g.unconfirmed_principal = CITIZEN
        with pytest.raises(TokenInvalid):
            confirm_family(False)
        with pytest.raises(Unauthenticated):
            current_principal()


def test_no_token_read_means_nothing_to_confirm(app: Flask) -> None:
    with app.test_request_context():
        with pytest.raises(Unauthenticated):
            unconfirmed_principal()
        with pytest.raises(Unauthenticated):
            confirm_family(True)
