"""What the console's WTForms forms share: checkbox lists and choices built from pairs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, widgets

from app.errors import DomainError


class CheckboxesField(SelectMultipleField):
    """A list of checkboxes (towns, sizes, tags, categories): easier on a counter PC than a
    multi-select."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def choices(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def show_beside(form: FlaskForm, refused: DomainError, default: str) -> None:
    """A service's refusal beside the field its `details.field` names (its first part, for a
    path like "criteria_form.towns"), or beside `default`."""
    name = str(refused.details.get("field", "")).split(".")[0]
    field = form._fields.get(name) or form._fields[default]
    field.errors = [*field.errors, refused.message]
