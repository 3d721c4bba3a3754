"""What the console's WTForms forms share: checkbox lists and choices built from pairs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms import SelectChoice, SelectMultipleField, widgets


class CheckboxesField(SelectMultipleField):
    """A list of checkboxes (towns, sizes, tags, categories): easier on a counter PC than a
    multi-select."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def choices(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]
