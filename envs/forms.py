"""What a browser does on click and submit, for the browser-less http backend (HTML Living Standard, simplified).

Works on the parse tree that `envs.simplify` returns nodes of (lxml elements or BeautifulSoup tags).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

_FIELD_TAGS = {"input", "select", "textarea", "button"}
_SUBMIT_TYPES = {"submit", "image"}
_BUTTON_LIKE = {"submit", "image", "reset", "button"}


# --- a small adapter over lxml and bs4 nodes -------------------------------------------------------------------------
def _is_bs4(node: Any) -> bool:
    return hasattr(node, "attrs") and hasattr(node, "find_parent")


def tag(node: Any) -> str:
    return (node.name if _is_bs4(node) else str(node.tag)).lower()


def attr(node: Any, key: str) -> str | None:
    value = node.get(key)
    if isinstance(value, list):  # bs4 multi-valued attributes (class)
        return " ".join(value)
    return value


def set_attr(node: Any, key: str, value: str) -> None:
    if _is_bs4(node):
        node[key] = value
    else:
        node.set(key, value)


def del_attr(node: Any, key: str) -> None:
    if _is_bs4(node):
        node.attrs.pop(key, None)
    elif key in node.attrib:
        del node.attrib[key]


def ancestors(node: Any) -> Iterator[Any]:
    if _is_bs4(node):
        yield from (p for p in node.parents if getattr(p, "name", None) and p.name != "[document]")
    else:
        yield from node.iterancestors()


def root(node: Any) -> Any:
    last = node
    for last in ancestors(node):  # noqa: B007
        pass
    return last


def descendants(node: Any) -> Iterator[Any]:
    if _is_bs4(node):
        yield from node.find_all(True)
    else:
        yield from (el for el in node.iterdescendants() if isinstance(el.tag, str))


def text(node: Any) -> str:
    return node.get_text() if _is_bs4(node) else node.text_content()


def set_text(node: Any, value: str) -> None:
    if _is_bs4(node):
        node.string = value
    else:
        for child in list(node):
            node.remove(child)
        node.text = value


def serialize(node: Any) -> str:
    if _is_bs4(node):
        return str(node)
    import lxml.html

    return lxml.html.tostring(node, encoding="unicode", doctype="<!DOCTYPE html>")


# --- forms ------------------------------------------------------------------------------------------------------------
def _has(node: Any, key: str) -> bool:
    return attr(node, key) is not None


def input_type(node: Any) -> str:
    if tag(node) == "button":
        return (attr(node, "type") or "submit").lower()
    return (attr(node, "type") or "text").lower() if tag(node) == "input" else tag(node)


def form_owner(node: Any) -> Any | None:
    """The `<form>` a control belongs to: its `form=` attribute's target, else its nearest form ancestor."""
    form_id = attr(node, "form")
    if form_id:
        for el in descendants(root(node)):
            if tag(el) == "form" and attr(el, "id") == form_id:
                return el
        return None
    return next((a for a in ancestors(node) if tag(a) == "form"), None)


def form_controls(form: Any) -> list[Any]:
    """The form's listed controls in tree order, including those outside it that point at it with `form=`."""
    form_id = attr(form, "id")
    out = []
    for el in descendants(root(form)):
        if tag(el) not in _FIELD_TAGS:
            continue
        owner_id = attr(el, "form")
        if (owner_id and form_id and owner_id == form_id) or (not owner_id and form_owner(el) is form):
            out.append(el)
    return out


def _option_value(option: Any) -> str:
    value = attr(option, "value")
    return value if value is not None else " ".join(text(option).split())


def selected_options(select: Any) -> list[Any]:
    options = [o for o in descendants(select) if tag(o) == "option"]
    chosen = [o for o in options if _has(o, "selected")]
    if not chosen and options and not _has(select, "multiple"):
        chosen = [next((o for o in options if not _has(o, "disabled")), options[0])]
    return chosen if _has(select, "multiple") else chosen[-1:]


def entry_list(form: Any, submitter: Any | None) -> list[tuple[str, str]]:
    """The name/value pairs a browser submits for `form` when `submitter` (a button, or None) submits it."""
    entries: list[tuple[str, str]] = []
    for el in form_controls(form):
        name = attr(el, "name")
        if not name or _has(el, "disabled") or any(tag(a) == "datalist" for a in ancestors(el)):
            continue
        kind = input_type(el)
        if kind in _BUTTON_LIKE:
            if el is submitter and kind in _SUBMIT_TYPES and kind != "image":
                entries.append((name, attr(el, "value") or ""))
            continue
        if kind in ("checkbox", "radio"):
            if _has(el, "checked"):
                entries.append((name, attr(el, "value") or "on"))
        elif kind == "file":
            continue
        elif kind == "select":
            entries.extend((name, _option_value(o)) for o in selected_options(el))
        elif kind == "textarea":
            entries.append((name, text(el)))
        else:
            entries.append((name, attr(el, "value") or ""))
    return entries


def default_button(form: Any) -> Any | None:
    """The form's first submit button, which implicit submission (Enter in a field) activates."""
    return next((el for el in form_controls(form) if input_type(el) in _SUBMIT_TYPES and tag(el) != "select"), None)


@dataclass(frozen=True)
class Submission:
    method: str  # "GET" or "POST"
    url: str
    data: list[tuple[str, str]] | None  # the urlencoded body for POST


def submission(form: Any, submitter: Any | None, base_url: str) -> Submission:
    """The request a browser sends when `submitter` submits `form` on the page at `base_url`."""
    action = (submitter is not None and attr(submitter, "formaction")) or attr(form, "action") or base_url
    method = ((submitter is not None and attr(submitter, "formmethod")) or attr(form, "method") or "get").upper()
    url = urljoin(base_url, action.strip())
    entries = entry_list(form, submitter)
    if method == "POST":
        return Submission("POST", url, entries)
    parts = urlsplit(url)
    return Submission("GET", urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(entries), "")), None)


def check(node: Any) -> None:
    """Clicking a checkbox toggles it; clicking a radio checks it and unchecks its group."""
    if input_type(node) == "checkbox":
        if _has(node, "checked"):
            del_attr(node, "checked")
        else:
            set_attr(node, "checked", "")
        return
    name, form = attr(node, "name"), form_owner(node)
    scope = form_controls(form) if form is not None else list(descendants(root(node)))
    for el in scope:
        if el is not node and input_type(el) == "radio" and name and attr(el, "name") == name:
            del_attr(el, "checked")
    set_attr(node, "checked", "")


def select_option(option: Any) -> None:
    """Choosing an option selects it (and, for a single select, deselects the others)."""
    select = next((a for a in ancestors(option) if tag(a) == "select"), None)
    if select is not None and not _has(select, "multiple"):
        for o in descendants(select):
            if tag(o) == "option":
                del_attr(o, "selected")
    set_attr(option, "selected", "")


def fill(node: Any, value: str) -> None:
    """Typing into a field sets its value."""
    if tag(node) == "textarea":
        set_text(node, value)
    else:
        set_attr(node, "value", value)


def navigation_target(node: Any, base_url: str, *, submit: bool = False) -> str | None:
    """The URL a browser would load when `node` is clicked (or, with `submit`, when Enter is pressed in it).

    None when the action loads nothing: a same-document link, a checkbox, a field outside any form.
    """
    kind = input_type(node)
    if tag(node) == "a" and not submit:
        href = (attr(node, "href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith("javascript:"):
            return None
        return urljoin(base_url, href)
    if submit or (tag(node) in ("button", "input") and kind in _SUBMIT_TYPES):
        form = form_owner(node)
        if form is None:
            return None
        return submission(form, None if submit else node, base_url).url
    return None
