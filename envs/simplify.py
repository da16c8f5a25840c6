"""The agent's observation: a page's HTML simplified, with a unique dotted ``name`` on every interactable.

This is the observation of the Shop-R1 paper (see ``shared/PAPER.md``, "Observation"): scripts, styles, hidden and
layout-only parts are removed, content and structure stay, and every element the model can act on carries a ``name``
built from page structure and labels, e.g. ``search_input``, ``refinements.brand.acme``,
``search_results.acme_trail_runner.title``, ``pagination.next``, ``product_options.color.navy``, ``buy_now``.

:func:`simplify` is pure: the output depends only on the DOM the HTML describes, so the raw HTML a server sent and
Chromium's ``page.content()`` of the same DOM (with the browser backend's ``data-shop-id`` / ``data-shop-hidden``
attributes) give byte-identical output and names.

>>> page = simplify('<nav aria-label="Pagination"><a href="/p/2">Next</a></nav>')
>>> page.html
'<nav aria-label="Pagination"><a name="pagination.next">Next</a></nav>'
>>> page.elements["pagination.next"].kind
'clickable'
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from lxml import etree
from lxml.html import HTMLParser

from envs.slug import cut_segment, fit_segments, slugify

if TYPE_CHECKING:
    from lxml.html import HtmlElement

__all__ = ["Element", "SimplifiedPage", "SimplifyConfig", "count_interactables", "is_hidden", "simplify"]

logger = logging.getLogger(__name__)

# Subtrees that never reach the observation.
_DROP = frozenset(
    "script style noscript template meta link head base title svg math canvas iframe frame frameset object "
    "applet param audio video map area datalist hr".split()
)  # not embed/source/track/wbr: void, but lxml nests what follows them inside, so they are unwrapped instead
# Kept, each on its own line.
_BLOCK = frozenset(
    "header nav main aside footer section article search form fieldset legend h1 h2 h3 h4 h5 h6 p ul ol menu li dl "
    "dt dd table caption tr th td pre blockquote figure figcaption details summary dialog address".split()
)
# Kept inline (interactables are always kept, whatever their tag).
_INLINE = frozenset("label img del s".split())
# Unwrapped, but their content is separated from its neighbours by a line break.
_BREAKING = frozenset("div center tbody thead tfoot colgroup br".split())
_TEXT_INPUTS = frozenset(("", "text", "search", "email", "number", "tel", "url", "password"))
_CLICK_INPUTS = frozenset(("submit", "button", "image", "reset", "checkbox", "radio"))
_CLICK_ROLES = frozenset(("button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch"))
_SCOPE_ROLES = frozenset(
    ("navigation", "search", "banner", "main", "complementary", "contentinfo", "region", "list", "group",
     "radiogroup", "dialog")
)  # fmt: skip
_KEEP_ROLES = _CLICK_ROLES | _SCOPE_ROLES | {"listitem", "tabpanel", "menu", "listbox"}
# The word an unlabelled landmark contributes to names (used only where no labelled scope is nearer).
_LANDMARK_WORD = {
    "header": "header", "banner": "header", "footer": "footer", "contentinfo": "footer", "nav": "nav",
    "navigation": "nav", "aside": "sidebar", "complementary": "sidebar", "search": "search", "dialog": "dialog",
}  # fmt: skip
_SCOPE_TAGS = frozenset("nav aside search dialog main form section article fieldset ul ol li menu".split())
_IMPLICIT_ROLE = {
    "nav": "navigation", "ul": "list", "ol": "list", "menu": "list", "li": "listitem", "header": "banner",
    "footer": "contentinfo", "main": "main", "aside": "complementary", "section": "region", "dialog": "dialog",
    "a": "link", "button": "button", "option": "option", "fieldset": "group", "search": "search",
}  # fmt: skip
_HEADING_LABELLED = frozenset(("section", "article", "fieldset", "nav", "aside", "dialog"))
_SECTIONING = frozenset(("article", "section", "aside", "nav", "main", "fieldset", "dialog"))
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BOOL_ATTRS = ("checked", "selected", "disabled", "readonly", "required", "multiple")
_ARIA_STATE = ("aria-current", "aria-pressed", "aria-selected", "aria-checked", "aria-expanded", "aria-disabled")
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\b", re.I)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_COUNT = re.compile(r"\s*\(\s*[\d.,]+\s*\)\s*$")
_TAGS_OR_SYMBOLS = re.compile(r"(?:<[^>]*>|[^\w<])*")
_LINE_SPACE = re.compile(r"[ \t]*\n\s*")
_SPACES = re.compile(r"  +")


@dataclass(frozen=True)
class SimplifyConfig:
    """Knobs of :func:`simplify`. The defaults give terse names and keep every interactable."""

    max_name_len: int = 64
    """Hard cap on a name's length, including any ``_2`` de-duplication suffix."""
    max_text_len: int = 300
    """Text nodes longer than this are cut and end in ``…`` (the ``text`` of an :class:`Element` too)."""
    max_segment_len: int = 40
    """Soft cap on the element's own label segment (cut at a word boundary)."""
    max_scope_len: int = 24
    """Soft cap on each scope segment of the prefix (a long product title), so siblings share a prefix pattern."""
    max_scopes: int = 2
    """At most this many labelled ancestors (landmarks, labelled sections, fieldsets) prefix an element's own label."""
    include_title: bool = True
    """Start the simplified HTML with ``<title>…</title>`` when the page has a title."""

    def __post_init__(self) -> None:
        if self.max_name_len < 8:
            raise ValueError(f"Expect max_name_len >= 8 (room for a '_NN' suffix), actually: {self.max_name_len}")
        if min(self.max_text_len, self.max_segment_len, self.max_scope_len) < 1 or self.max_scopes < 0:
            raise ValueError(
                "Expect max_text_len, max_segment_len, max_scope_len >= 1 and max_scopes >= 0, actually: "
                f"{self.max_text_len}, {self.max_segment_len}, {self.max_scope_len}, {self.max_scopes}"
            )


@dataclass(frozen=True)
class Element:
    """One interactable of the page, as the model refers to it."""

    name: str
    """Unique dotted name, also the ``name`` attribute in :attr:`SimplifiedPage.html`."""
    kind: Literal["clickable", "input"]
    """``"input"``: a text-like ``<input>`` or ``<textarea>`` (a ``type_and_submit`` target); else ``"clickable"``."""
    tag: str
    text: str
    """The visible label the name was built from, whitespace-normalised (for debugging and prompting)."""
    dom_id: str | None
    """The element's ``data-shop-id`` attribute in the source, if it had one."""
    node: HtmlElement | None = field(default=None, compare=False, repr=False)
    """The source lxml element (its ``href``, ``value``, original ``name``, ``.form`` and so on are there)."""


@dataclass(frozen=True)
class SimplifiedPage:
    """What :func:`simplify` returns."""

    html: str
    title: str
    elements: dict[str, Element]
    """Name → element, in document order."""

    @property
    def names(self) -> list[str]:
        """The element names, in document order."""
        return list(self.elements)


MAX_PAGE_CHARS = 5_000_000
"""The largest page the env reads (characters of HTML; bytes of body on the http backend). Larger pages are refused
(http) or cut (browser) with `error_kind="page_too_large"`. lxml silently drops text past 10 MB in one node, so the cap
also keeps every page whole."""


def simplify(html: str | bytes, config: SimplifyConfig | None = None) -> SimplifiedPage:
    """Simplify ``html`` and name its interactables. Never raises: junk gives an empty page."""
    cfg = config or SimplifyConfig()
    try:
        root = _parse(html)
        if root is None:
            return SimplifiedPage(html="", title="", elements={})
        return _Simplifier(root, cfg).run()
    except Exception:  # the observation must never crash an episode; a bug here is logged instead
        logger.exception("simplify failed on a %d-character page", len(html) if html else 0)
        return SimplifiedPage(html="", title="", elements={})


def _parse(html: str | bytes) -> HtmlElement | None:
    """Parse with lxml's HTML parser, as UTF-8 whatever a ``<meta charset>`` says; ``None`` for an empty document."""
    if isinstance(html, bytes | bytearray):
        html = bytes(html).decode("utf-8", "replace")
    if not isinstance(html, str) or not html.strip():
        return None
    data = _CONTROL_CHARS.sub("", html).encode("utf-8", "replace")
    parser = HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    return etree.fromstring(data, parser)


def is_hidden(el: Any) -> bool:
    """Whether ``el`` is hidden by its own attributes (``hidden``, ``aria-hidden``, inline style, ...).

    Also true for ``input type=hidden`` and for ``data-shop-hidden`` (set by the browser backend on elements that
    are not rendered), unless that attribute is ``"0"`` or ``"false"``.
    """
    a = el.attrib
    if not a:
        return False
    if "hidden" in a or (a.get("aria-hidden") or "").strip().lower() == "true":
        return True
    marker = a.get("data-shop-hidden")
    if marker is not None and marker.strip().lower() not in ("0", "false"):
        return True
    if el.tag == "input" and (a.get("type") or "").strip().lower() == "hidden":
        return True
    style = a.get("style")
    return bool(style) and _HIDDEN_STYLE.search(style) is not None


def _norm(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _attr(el: Any, key: str) -> str:
    return _norm(el.get(key))


def _input_type(el: Any) -> str:
    return (el.get("type") or "").strip().lower()


def _role(el: Any) -> str:
    role = el.get("role")
    return role.split()[0].lower() if role and role.strip() else ""


def _closed_away(el: Any, parent_tag: str, parent: Any) -> bool:
    """Content of a closed ``<details>`` (except its summary) is not rendered."""
    return parent_tag == "details" and el.tag != "summary" and parent.get("open") is None


class _Ctx(NamedTuple):
    """Where the walk is: labelled scopes (full slugs, outermost first), the nearest unlabelled landmark word."""

    strong: tuple[str, ...] = ()
    weak: str | None = None
    in_sectioning: bool = False


class _Simplifier:
    """One run over one parsed document (state: used names, elements, lazily built id/label maps)."""

    def __init__(self, root: HtmlElement, cfg: SimplifyConfig) -> None:
        self.root = root
        self.cfg = cfg
        self.elements: dict[str, Element] = {}
        self._next_suffix: dict[tuple[str, ...], int] = {}  # per base name: the first de-duplication suffix to try
        self._ids: dict[str, Any] | None = None
        self._label_for: dict[str, str] | None = None

    # ----------------------------------------------------------------------------------------------- document
    def run(self) -> SimplifiedPage:
        title = ""
        for t in self.root.iter("title"):
            if not any(a.tag in ("svg", "math") for a in t.iterancestors()):
                title = _norm(t.text_content())
                break
        body = self.root.find("body")
        html = self._children(body if body is not None else self.root, _Ctx())
        html = _SPACES.sub(" ", _LINE_SPACE.sub("\n", html)).strip()
        if title and self.cfg.include_title:
            html = f"<title>{escape(self._cut(title), quote=False)}</title>\n{html}".rstrip()
        return SimplifiedPage(html=html, title=title, elements=self.elements)

    def _cut(self, text: str) -> str:
        n = self.cfg.max_text_len
        return text if len(text) <= n else text[: n - 1].rstrip() + "…"

    def _text_node(self, text: str) -> str:
        core = " ".join(text.split())
        if not core:
            return " "
        lead = " " if text[0].isspace() else ""
        trail = " " if text[-1].isspace() else ""
        return lead + escape(self._cut(core), quote=False) + trail

    def _children(self, el: Any, ctx: _Ctx) -> str:
        parts: list[str] = []
        if el.text:
            parts.append(self._text_node(el.text))
        tag = el.tag
        for child in el:
            if isinstance(child.tag, str) and not _closed_away(child, tag, el):
                parts.append(self._render(child, ctx))
            if child.tail:
                parts.append(self._text_node(child.tail))
        return "".join(parts)

    # ------------------------------------------------------------------------------------------------ elements
    def _render(self, el: Any, ctx: _Ctx) -> str:
        tag = el.tag
        if tag in _DROP or is_hidden(el):
            return ""
        if tag == "dialog" and el.get("open") is None:
            return ""
        if tag == "img" and not (el.get("onclick") is not None or _role(el) in _CLICK_ROLES):
            alt = _attr(el, "alt")
            return f' <img alt="{escape(self._cut(alt))}"> ' if alt else ""
        role = _role(el)
        kind = self._kind(el, tag, role)
        if kind is not None:
            return self._render_interactable(el, tag, role, kind, ctx)
        scope = self._scope(el, tag, role, ctx.in_sectioning)
        if scope is not None:
            seg, strong = scope
            ctx = ctx._replace(strong=ctx.strong + (seg,)) if strong else ctx._replace(weak=seg)
        if tag in _SECTIONING and not ctx.in_sectioning:
            ctx = ctx._replace(in_sectioning=True)
        named_before = len(self.elements)
        inner = self._children(el, ctx)
        keep_role = role in _KEEP_ROLES
        keep = tag in _BLOCK or tag in _INLINE or keep_role
        if tag == "form" and scope is None and not keep_role:
            keep = False  # an unlabelled form groups nothing the names don't already say
        elif tag == "label" and len(self.elements) == named_before:
            keep = False  # a <label for=...>: its text stays, the association is in the control's name
        if keep:
            body = inner.strip()
            if not body and tag not in ("td", "th"):
                return " " if inner else ""
            attrs = self._attrs(el, tag, role if keep_role else "", None, body)
            open_close = f"<{tag}{attrs}>{body}</{tag}>"
            if tag in _BLOCK or role in _SCOPE_ROLES:
                return f"\n{open_close}\n"
            return _pad(inner, open_close)
        if tag in _BREAKING or tag == "form":
            return f"\n{inner}\n"
        return inner

    def _kind(self, el: Any, tag: str, role: str) -> Literal["clickable", "input"] | None:
        if tag == "a" and el.get("href") is not None:
            return "clickable"
        if tag == "input":
            itype = _input_type(el)
            if itype in _TEXT_INPUTS:
                return "input"
            return "clickable" if itype != "hidden" else None
        if tag == "textarea":
            return "input"
        if tag in ("button", "select", "summary"):
            return "clickable"
        if role in _CLICK_ROLES or el.get("onclick") is not None:
            return "clickable"
        return None

    def _render_interactable(self, el: Any, tag: str, role: str, kind: Literal["clickable", "input"], ctx: _Ctx) -> str:
        label, own, from_alt = self._label(el, tag, role, kind)
        name = self._claim(self._segments(ctx, own, tag, kind, from_alt))
        self.elements[name] = Element(
            name=name, kind=kind, tag=tag, text=self._cut(label), dom_id=el.get("data-shop-id"), node=el
        )
        if tag == "select":
            inner = "".join(self._option(o, name) for o in el.iter("option") if not _hidden_in(o, el))
        elif tag == "textarea":
            inner = escape(self._cut(_norm(el.text_content())), quote=False)
        elif tag in ("input", "img"):
            return f" <{tag}{self._attrs(el, tag, role, name, '')}> "
        else:
            inner = self._children(el, ctx)
        body = inner.strip()
        open_close = f"<{tag}{self._attrs(el, tag, role, name, body)}>{body}</{tag}>"
        return f"\n{open_close}\n" if tag == "summary" else _pad(inner, open_close)

    def _option(self, opt: Any, select_name: str) -> str:
        text = _norm(opt.get("label")) or _norm(opt.text_content()) or _attr(opt, "value")
        own = cut_segment(slugify(text), self.cfg.max_segment_len) or "option"
        name = self._claim([*select_name.split("."), own])
        self.elements[name] = Element(
            name=name, kind="clickable", tag="option", text=self._cut(text), dom_id=opt.get("data-shop-id"), node=opt
        )
        return f"<option{self._attrs(opt, 'option', '', name, text)}>{escape(self._cut(text), quote=False)}</option>"

    def _attrs(self, el: Any, tag: str, role: str, name: str | None, body: str) -> str:
        """Whitelisted attributes with normalised values, in a fixed order."""
        out: list[tuple[str, str | None]] = []
        if name is not None:
            out.append(("name", name))
        if role and _IMPLICIT_ROLE.get(tag) != role:
            out.append(("role", role))
        itype = _input_type(el) if tag == "input" else ""
        if itype and itype != "text":
            out.append(("type", itype))
        if tag == "input" and itype not in ("checkbox", "radio", "image"):
            value = _attr(el, "value")
            if value:
                out.append(("value", self._cut(value)))
        if tag in ("input", "textarea"):
            placeholder = _attr(el, "placeholder")
            if placeholder:
                out.append(("placeholder", self._cut(placeholder)))
        label = _attr(el, "aria-label")
        if label and escape(label, quote=False) not in body:  # only where it adds to the visible content
            out.append(("aria-label", self._cut(label)))
        title = _attr(el, "title")
        if title and name is not None and not label and _TAGS_OR_SYMBOLS.fullmatch(body) is not None:
            out.append(("title", self._cut(title)))  # an icon-only control: the title is its only words
        if tag == "img" or itype == "image":
            alt = _attr(el, "alt")
            if alt:
                out.append(("alt", self._cut(alt)))
        a = el.attrib
        out.extend((key, None) for key in _BOOL_ATTRS if key in a)
        for key in _ARIA_STATE:
            value = (a.get(key) or "").strip().lower()
            if value and value != "false":
                out.append((key, value))
        return "".join(f' {k}="{escape(v)}"' if v is not None else f" {k}" for k, v in out)

    # --------------------------------------------------------------------------------------------------- names
    def _scope(self, el: Any, tag: str, role: str, in_sectioning: bool) -> tuple[str, bool] | None:
        """``(segment, labelled)`` if ``el`` is a landmark or labelled container, else ``None``."""
        if role in _SCOPE_ROLES:
            landmark = role
        elif tag in ("header", "footer"):
            if in_sectioning:  # an article's header/footer is not a landmark
                return None
            landmark = tag
        elif tag in _SCOPE_TAGS:
            landmark = tag
        else:
            return None
        text = self._aria_label(el)
        if not text and tag == "fieldset":
            legend = el.find("legend")
            text = self._visible_text(legend) if legend is not None and not is_hidden(legend) else ""
        if not text and tag in _HEADING_LABELLED:
            text = self._heading(el)
        seg = slugify(text) if text else ""
        if seg:
            return seg, True
        word = _LANDMARK_WORD.get(landmark)
        return (word, False) if word else None

    def _aria_label(self, el: Any) -> str:
        label = _attr(el, "aria-label")
        if label:
            return label
        ref = el.get("aria-labelledby")
        if not ref:
            return ""
        ids = self._id_map()
        return _norm(" ".join(self._visible_text(ids[i]) for i in ref.split() if i in ids))

    def _heading(self, el: Any) -> str:
        """Text of the first visible heading that belongs to ``el`` (not to a nested sectioning element)."""
        for h in el.iter(*_HEADINGS):
            owner = h.getparent()
            while owner is not None and owner is not el and owner.tag not in _SECTIONING:
                owner = owner.getparent()
            if owner is el and not _hidden_in(h, el):
                text = self._visible_text(h)
                if text:
                    return text
        return ""

    def _label(self, el: Any, tag: str, role: str, kind: str) -> tuple[str, str, bool]:
        """``(label text, own slug, label came from an image alt)``: the first label source that slugs non-empty."""
        first = ""
        for text, from_alt in self._label_candidates(el, tag, kind):
            slug = slugify(_TRAILING_COUNT.sub("", text)) or slugify(text)
            if slug:
                return text, slug, from_alt
            first = first or text
        itype = _input_type(el) if tag == "input" else ""
        fallback = role or {"a": "link", "input": itype if itype not in ("", "text") else "input"}.get(tag, tag)
        return first, slugify(fallback) or "element", False

    def _label_candidates(self, el: Any, tag: str, kind: str) -> Iterator[tuple[str, bool]]:
        """Label sources, best first: ARIA, ``<label>``, placeholder/value/alt, visible text, image alts, title."""
        yield self._aria_label(el), False
        if tag in ("input", "select", "textarea", "button"):
            ident = el.get("id")
            if ident:
                yield self._labels_for().get(ident, ""), False
            wrapping = next(el.iterancestors("label"), None)
            if wrapping is not None:
                yield self._visible_text(wrapping, skip=el), False
        itype = _input_type(el) if tag == "input" else ""
        if kind == "input":
            yield _attr(el, "placeholder"), False
        elif itype in ("submit", "reset", "button", "image"):
            yield _attr(el, "alt" if itype == "image" else "value"), False
        elif tag not in ("input", "select"):
            yield self._visible_text(el), False
            yield self._visible_text(el, alts=True), True
        yield _attr(el, "title"), False
        if itype in ("checkbox", "radio"):
            yield _attr(el, "value"), False
        elif itype in ("submit", "reset"):
            yield itype.capitalize(), False
        yield _attr(el, "name"), False

    def _segments(self, ctx: _Ctx, own: str, tag: str, kind: str, from_alt: bool) -> list[str]:
        """The name's segments: labelled scopes (nearest ``max_scopes``), else the nearest landmark word, then own.

        The own label loses what its scope already says: ``search`` + ``search`` → ``search_input``,
        ``acme_trail_runner`` + ``add_to_cart_acme_trail_runner`` → ``acme_trail_runner.add_to_cart``; a link that
        only repeats its card's label becomes ``title`` (``image`` when it is the card's picture).
        """
        if ctx.strong:
            segs = [s for i, s in enumerate(ctx.strong) if i == 0 or s != ctx.strong[i - 1]]
            last = segs[-1]
            if own == last:
                if tag == "a":
                    own = "image" if from_alt else "title"
                else:
                    segs.pop()
            else:
                own = _remove_words(own, last)
        elif ctx.weak:
            segs = [] if own == ctx.weak or own.startswith(ctx.weak + "_") else [ctx.weak]
        else:
            segs = []
        n = self.cfg.max_scopes
        prefix = [cut_segment(s, self.cfg.max_scope_len) for s in (segs[-n:] if n else [])]
        own = cut_segment(own, self.cfg.max_segment_len)
        if kind == "input" and not own.endswith("input"):
            own += "_input"
        return [*prefix, own]

    def _claim(self, segs: list[str]) -> str:
        """Fit ``segs`` into ``max_name_len`` and make the name unique with ``_2``, ``_3``, ... in document order."""
        limit = self.cfg.max_name_len
        key = tuple(segs)
        k = self._next_suffix.get(key, 1)
        name = fit_segments(segs, limit)
        if k == 1 and name not in self.elements:
            self._next_suffix[key] = 2
            return name
        # Every suffix below `k` is taken already (names are never released), so the search resumes there: each
        # base name costs O(1) amortised, and 20,000 identical labels take linear time, not quadratic.
        k = max(k, 2)
        while (name := fit_segments(segs, limit - len(f"_{k}")) + f"_{k}") in self.elements:
            k += 1
        self._next_suffix[key] = k + 1
        return name

    # ---------------------------------------------------------------------------------------------------- text
    def _visible_text(self, el: Any, *, skip: Any = None, alts: bool = False) -> str:
        parts: list[str] = []
        self._collect(el, parts, skip, alts)
        return _norm("".join(parts))

    def _collect(self, el: Any, parts: list[str], skip: Any, alts: bool) -> None:
        if el.text:
            parts.append(el.text)
        for ch in el:
            t = ch.tag
            if (
                isinstance(t, str)
                and ch is not skip
                and t not in _DROP
                and t not in ("select", "textarea")
                and not is_hidden(ch)
                and not _closed_away(ch, el.tag, el)
            ):
                if t == "img":
                    if alts:
                        parts.append(f" {ch.get('alt') or ''} ")
                elif t == "br":
                    parts.append(" ")
                elif t == "input":
                    if _input_type(ch) in ("submit", "button", "reset"):
                        parts.append(f" {ch.get('value') or ''} ")
                elif t in _BLOCK or t in _BREAKING:
                    parts.append(" ")
                    self._collect(ch, parts, skip, alts)
                    parts.append(" ")
                else:
                    self._collect(ch, parts, skip, alts)
            if ch.tail:
                parts.append(ch.tail)

    def _id_map(self) -> dict[str, Any]:
        if self._ids is None:
            self._ids = {}
            for node in self.root.iter():
                ident = node.get("id") if isinstance(node.tag, str) else None
                if ident:
                    self._ids.setdefault(ident, node)
        return self._ids

    def _labels_for(self) -> dict[str, str]:
        if self._label_for is None:
            self._label_for = {}
            for label in self.root.iter("label"):
                target = label.get("for")
                if target and target not in self._label_for and not is_hidden(label):
                    self._label_for[target] = self._visible_text(label)
        return self._label_for


def _remove_words(own: str, words: str) -> str:
    """``own`` without the ``_``-bounded run ``words`` (``save_acme_to_list`` - ``acme`` → ``save_to_list``)."""
    trimmed = f"_{own}_".replace(f"_{words}_", "_", 1).strip("_")
    return trimmed or own


def _pad(inner: str, element: str) -> str:
    """Keep the whitespace that surrounded an inline element's content outside of it."""
    if not inner:
        return element
    return (" " if inner[0].isspace() else "") + element + (" " if inner[-1].isspace() else "")


def _hidden_in(el: Any, top: Any) -> bool:
    """Whether ``el`` or an ancestor below ``top`` is hidden."""
    while el is not None and el is not top:
        if is_hidden(el):
            return True
        el = el.getparent()
    return False


# ----------------------------------------------------------------------------------------------- independent count
_INTERACTABLE_CSS = (
    "a[href], button, input:not([type='hidden' i]), select, select option, textarea, "
    "summary, [role~=button], [role~=link], [role~=checkbox], [role~=radio], [role~=tab], [role~=menuitem], "
    "[role~=option], [role~=switch], [onclick]"
)
_DROP_SELECTOR = ", ".join(sorted(_DROP - {"title", "head"}))


def count_interactables(html: str) -> int:
    """Count the visible interactables of ``html``, independently of :func:`simplify` (BeautifulSoup + CSS).

    Meant for checks like "every interactable got a name": ``len(simplify(html).elements)`` should equal it.
    """
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)  # XHTML pages are HTML to a browser too
            soup = BeautifulSoup(_CONTROL_CHARS.sub("", html), "lxml")
    except Exception:
        return 0
    body = soup.body or soup
    for dropped in body.select(_DROP_SELECTOR):
        dropped.decompose()
    count = 0
    for tag in body.select(_INTERACTABLE_CSS):
        node: Any = tag
        visible = True
        while node is not None and node is not body:
            if _soup_hidden(node) or (node.name == "dialog" and node.get("open") is None):
                visible = False
                break
            parent = node.parent
            closed = parent is not None and parent.name == "details" and parent.get("open") is None
            if closed and node.name != "summary":
                visible = False
                break
            node = parent
        count += visible
    return count


def _soup_hidden(tag: Any) -> bool:
    """:func:`is_hidden` for a BeautifulSoup tag, written separately so that the count stays independent."""
    attrs = tag.attrs
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if "data-shop-hidden" in attrs and str(attrs["data-shop-hidden"]).strip().lower() not in ("0", "false"):
        return True
    if tag.name == "input" and str(attrs.get("type", "")).strip().lower() == "hidden":
        return True
    style = re.sub(r"\s+", "", str(attrs.get("style", ""))).lower()
    return any(rule in style for rule in ("display:none", "visibility:hidden", "visibility:collapse"))
