"""The paper's action space, defined once: `click`, `type_and_submit` and `terminate`.

Everyone uses these models: the env executes them, the agent's output schema embeds them, training scores them.

>>> parse_action('{"type": "click", "name": "search_results.acme_boots.title"}')
Click(type='click', name='search_results.acme_boots.title')
>>> parse_action({"type": "type_and_submit", "name": "search_input", "text": "trail shoes"}).text
'trail shoes'
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_NAME_LEN = 256
MAX_TEXT_LEN = 1000


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Click(_Action):
    """Click the element whose `name` attribute is `name`: follow a link, press a button, pick an option.

    Example: `{"type": "click", "name": "product_options.color.navy"}`
    """

    type: Literal["click"] = "click"
    name: str = Field(min_length=1, max_length=MAX_NAME_LEN, pattern=r"\S", description="The element name.")


class TypeAndSubmit(_Action):
    """Type `text` into the input named `name`, then press Enter to submit it.

    Example: `{"type": "type_and_submit", "name": "search_input", "text": "waterproof hiking boots"}`
    """

    type: Literal["type_and_submit"] = "type_and_submit"
    name: str = Field(min_length=1, max_length=MAX_NAME_LEN, pattern=r"\S", description="The input's `name` attribute.")
    text: str = Field(max_length=MAX_TEXT_LEN, description="The text to type.")


class Terminate(_Action):
    """Leave the site without buying anything.

    Example: `{"type": "terminate"}`
    """

    type: Literal["terminate"] = "terminate"


Action = Annotated[Click | TypeAndSubmit | Terminate, Field(discriminator="type")]
ACTION_TYPES: tuple[str, ...] = ("click", "type_and_submit", "terminate")
ACTION_MODELS: tuple[type[_Action], ...] = (Click, TypeAndSubmit, Terminate)
action_adapter: TypeAdapter[Click | TypeAndSubmit | Terminate] = TypeAdapter(Action)


class ActionError(ValueError):
    """An action that is not one of the paper's three, with a message saying what was expected and what came."""


def parse_action(action: Any) -> Click | TypeAndSubmit | Terminate:
    """Accept an action model, a plain dict or a JSON string; raise `ActionError` with a clear message otherwise."""
    if isinstance(action, ACTION_MODELS):
        return action  # type: ignore[return-value]
    if isinstance(action, str | bytes):
        try:
            action = json.loads(action)
        except (ValueError, RecursionError) as exc:
            raise ActionError(f"Expect an action as a JSON object, actually: not JSON ({exc})") from None
    if not isinstance(action, dict):
        raise ActionError(f"Expect an action object with a 'type', actually: {type(action).__name__}")
    try:
        return action_adapter.validate_python(action)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'action'}: {e['msg']}" for e in exc.errors()[:3])
        raise ActionError(f"Expect one of {', '.join(ACTION_TYPES)} with its fields, actually: {problems}") from None


def action_to_dict(action: Click | TypeAndSubmit | Terminate) -> dict[str, str]:
    """The action as the paper's JSON object (`type` first)."""
    return action.model_dump()
