"""Every model module, imported so the metadata (and Alembic) sees all tables."""

from __future__ import annotations

import importlib

MODEL_MODULES = [
    "app.audit.models",
    "app.organisation.models",
    "app.identity.models",
    "app.enterprises.models",
    "app.notify.models",
    "app.seals.models",
    "app.policies.models",
    "app.halls.models",
    "app.queueing.models",
    "app.appointments.models",
    "app.ratings.models",
    "app.matters.models",
    "app.shared_data.models",
    "app.applications.models",
    "app.licences.models",
    "app.materials.models",
    "app.integrations.wechat",
]


def import_all_models() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)
