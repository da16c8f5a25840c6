"""Reading a shopping request written by anyone: the product phrase, its qualities and the budget, filler dropped.

Used by :mod:`agent.policy.scripted_text`. The rules are plain and explainable, no model:

1. Normalise: lowercase, straight quotes, "w/" -> "with", typos of the common request words fixed ("lokoing" ->
   "looking"); measurements ("50 by 60 inch", "16 oz") and the budget ("under 30 dollars", "<$30") are taken out.
2. Split into clauses at sentence ends, commas, dashes and colons.
3. The request clause is the first one with an intent phrase ("i am looking for", "need", "find me", "do you have"):
   the noun phrase follows it. Without one, it is the clause that reads like a bare noun phrase (no pronouns), the
   longest.
4. The noun phrase ends at the first constraint word ("that", "with", "for", "in", "from", "under", "and it", ...).
   Articles, quantities and vague words in front are dropped ("a pair of", "some kind of"); the head noun is its
   last word.
5. What follows the noun phrase, and clauses such as "that is navy blue" or "please make sure they're vegan", give the
   qualities: their words minus filler ("navy blue", "vegan"). Clauses about the shopper ("it's a gift for my sister")
   are not qualities.

>>> r = read_request("i am looking for a headphones case that is apple compatible and is navy blue colored")
>>> r.thing, r.qualities
('headphones case', ('apple compatible', 'navy blue'))
>>> r = read_request("find me some gluten free snack bars under 30 dollars, please make sure they're vegan")
>>> r.thing, r.qualities, r.max_price
('gluten free snack bars', ('vegan',), 30.0)
>>> read_request("i need a 50 by 60 inch machine washable throw blanket").thing
'machine washable throw blanket'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FILLER", "Request", "one_slip", "read_request"]

FILLER = frozenset(
    "i im i'm i'd id i've ive me my mine we our us you your it its it's they they're them their this that these those "
    "there here is are was were be been being am do does did have has had will would should could can must may "
    "might shall need needs want wants wanna like love looking look searching search shopping shop hunting trying try "
    "find get buy order show help please pls plz thanks thank thx ty cheers hi hey hello hiya yo ok okay so well "
    "hmm um just really very also too maybe ideally preferably possibly possible if make sure sure definitely "
    "something anything some any a an the one ones to of for in on at by with from and or but as about around "
    "what which who where when how kind sort type great good nice decent awesome perfect would be colored coloured "
    "color colour brand size sz item items thing things stuff product products market after asap appreciated advance "
    "pack flavor flavour scent finish material style capacity thats whats wat nothing not too pricey expensive "
    "fancy few lol under over below than less more up each hundred thousand bucks dollars dollar".split()
)
"""Words that never belong in a query: intent verbs, politeness, pronouns, function words."""

# Request words people misspell; a word one swap, drop or extra letter away is read as the word (length >= 4).
_FIXABLE = tuple(sorted({w for w in FILLER if len(w) >= 4 and w.isalpha()} - {"thanks", "those", "thing", "things"}
                        | {"than", "price", "bucks", "below", "less", "lower", "cheaper", "spend", "dollars", "budget",
                           "under", "more", "over", "most", "maximum", "ideally", "also", "with", "some", "something"}))
_UNITS = (r"cans?|inch(?:es)?|in\b|\"|cm|mm|ft|feet|foot|fl\.? ?oz|oz|ounces?|ml|l\b|liters?|litres?|gallons?|lbs?"
          r"|pounds?|kg|g\b|grams?|pack|pk|count|ct|pcs|pieces?|w\b|watts?|mah|gb|tb|qt|quarts?|cups?|piece|inches")
_MEASURE = re.compile(
    rf"\bspf\s*\d+|\b(\d+(?:\.\d+)?)\s*(?:by|x|×)\s*(\d+(?:\.\d+)?)(?:\s*-?\s*(?:{_UNITS}))?|\b\d+(?:\.\d+)?\s*-?\s*(?:{_UNITS})")
_MONEY = r"\$?\s*(\d+(?:,\d{3})*(?:\.\d+)?)\s*(?:dollars?|bucks|usd|\$)?"
_BUDGET = re.compile(
    r"(?:\band\s+)?(?:\b(?:for|at|with|on|of|priced|price|costs?|costing)\s+)?"
    r"(?:\bunder|\bless than|\blower than|\bbelow|\bat most|\bno more than|\bnot more than|\bnot over|\bup to"
    r"|\bcheaper than|\bmax(?:imum)?(?: of)?|\bwithin|\bcan'?t spend more than|\bcannot spend more than"
    r"|\b(?:my\s+)?budget(?:\s+is)?(?:\s+(?:around|about|of))?|<"
    r"|\b(?:around|about)(?=\s*\$|\s*\d+(?:\.\d+)?\s*(?:dollars?|bucks|usd)))\s*"
    + _MONEY + r"(?:\s*(?:max|tops|or less))?"
    r"|\$\s*(\d+(?:\.\d+)?)\s*(?:max|tops|or less|budget)\b",
    re.I,
)
_GREETING = re.compile(r"^(?:(?:hi|hey|hello|hiya|yo|ok|okay|so|well|um|hmm|oh|and|also|but|plus|then|quick question"
                       r"|good (?:morning|afternoon|evening)|there)\b[\s,!:]*)+")
_INTENT = re.compile(
    r"\b(?:(?:i\s*'?\s*a?m|im|we\s*'?\s*re|we are)\s+)?(?:really\s+|just\s+)?"
    r"(?:(?:looking|searching|shopping|hunting)\s+(?:around\s+)?for|in the market for|trying to (?:find|get|buy)"
    r"|after\b(?=\s+(?:a|an|some|the|one|new)\b)"
    r"|(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?(?:help\s+me\s+)?(?:find|get|show|order)(?:\s+me)?"
    r"|(?:i\s+|we\s+|she\s+|he\s+)?(?:really\s+)?(?:needs?|wants?|wanna)(?!\s+(?:it|them|this|that|to be|one that)\b)"
    r"(?:\s+to\s+(?:buy|get|find|order|grab))?(?:\s+(?:buy|get))?"
    r"|(?:i'?d|i would|we'?d)\s+(?:really\s+)?(?:like|love)(?:\s+to\s+(?:get|buy|find|order|have))?"
    r"|do you (?:have|sell|carry|stock)(?:\s+any)?|where can i (?:find|get|buy)|(?:i\s+)?wanna buy)\b",
    re.I,
)
_CUT = re.compile(
    r"\s(?:that|thats|which|who|with|without|for|in|under|below|from|so|because|since|to|but|please|ideally|preferably"
    r"|size|sz|colou?r|it|its|it's|they|they're|should|must|needs?|if|like|asap|though|thanks|thank|thx|made|priced"
    r"|(?<!\d\s)by(?!\s\d)"
    r"|and(?=\s(?:is|are|it|its|it's|has|have|should|must|make|price|preferably|ideally|also|that|with|under|in"
    r"|size|colou?r|not|no|can|i|please|they|needs?|be|pack|max|below|less|budget|my|for|from|by)\b)"
    r"|(?=\S+\s(?:colou?red|colou?r|flavou?red|flavou?r|scented)\b))\b",
    re.I,
)
_LEAD = re.compile(
    r"^(?:(?:(?:my|our)\s+\w+|him|her|them|me|us)\s+(?=(?:a|an|some|the)\s)"
    r"|~|(?:a|an|the|some|any|one|two|three|new|is|of|a new|another|more|few|a few|couple(?: of)?|a couple(?: of)?|my"
    r"|good|nice|decent|great|cheap|really|very|quality|high quality|something like|something|some kind of"
    r"|some sort of|kind of|sort of|type of|any kind of|(?:pair|pack|set|box|bottle|bag|bunch|case|roll|tube|jar)s?"
    r" of)\s+)+",
    re.I,
)
_CONTEXT = re.compile(
    r"\b(?:i|im|i'm|i've|ive|i'll|my|mine|we|our|us|it's|was|were|been|friend|gift|birthday|kid|sister|brother|mom"
    r"|dad|wife|husband|holidays?|broke|broken|time|weeks?|recommended|told|asking|restocking|falling|thanks?|thx|ty"
    r"|cheers|appreciated|advance|asap)\b",
    re.I,
)
_QUALITY_CLAUSE = re.compile(
    r"^(?:please\s+)?(?:make sure\s+)?(?:(?:it|they|that|which|this|these|both|one)\s*(?:'s|'re|is|are)?\s*)?"
    r"(?:(?:should|must|has to|have to|needs? to|would)\s+be\s+|is\s+|are\s+|'s\s+|'re\s+|be\s+)?"
    r"(?!a\s|an\s|for\s|my\s|the\s|gift|from\s+my)",
    re.I,
)
_SIZE = re.compile(
    r"\b(queen|king|twin|full|travel|family|plus)[- ]size\b|\b(?:size|sz)\s*(?::|is)?\s*([a-z0-9.]{1,4})\b"
    r"|\bin an?\s+(x{0,3}[sml]|\d{1,2}(?:\.5)?)\b(?!\s*\w)", re.I)
_WORD = re.compile(r"[a-z0-9][a-z0-9'&+-]*")


@dataclass(frozen=True)
class Request:
    """What a request asks for."""

    thing: str
    """The noun phrase, lowercase, its head noun last ("machine washable throw blanket"); "" when there is none."""
    qualities: tuple[str, ...] = ()
    """Short attribute phrases from the constraints, in order ("apple compatible", "navy blue"); measurements last."""
    max_price: float | None = None
    """The budget the text names ("under 30 dollars"), if any."""
    size: str | None = None
    """A size the text names ("size 10", "sz m")."""
    body: str = ""
    """The request clause from the noun phrase on, lowercase (for department and vagueness checks)."""


def read_request(text: str) -> Request:
    """Read `text` with the rules in the module docstring."""
    t = _normalise(text)
    measures = []
    for m in _MEASURE.finditer(t):  # before the budget: "up to 50 lbs" is a weight, not a price
        said = f"{m.group(1)}x{m.group(2)}" if m.group(1) else m.group(0).replace(" ", "")
        if not re.search(r"\d(?:pack|pk|count|ct|pcs|pieces?|piece|cans?)$", said):  # counts say little
            measures.append(said)
    t = _MEASURE.sub(" ~ ", t)
    max_price = None
    budget = _BUDGET.search(t)
    if budget:
        amount = budget.group(1) or budget.group(2)
        max_price = float(amount.replace(",", "")) if amount else None
        t = _BUDGET.sub(" ", t)
    size = None
    size_said = _SIZE.search(t)
    if size_said:
        said = size_said.group(1) or size_said.group(2) or size_said.group(3)
        size = said if said[0].isdigit() else said.upper()
    t = _SIZE.sub(" ", t)
    clauses = [c for c in (_GREETING.sub("", c.strip(" '\"*~")).strip() for c in re.split(
        r"[.!?;:]+(?:\s|$)|[,()\n]|\s[-–—]+\s|\s[-–—]+$|^[-–—]+\s", t)) if c]

    chosen, raw, thing, tail = -1, "", "", ""
    for i, clause in enumerate(clauses):  # the first clause with an intent phrase that names a product
        intent = _INTENT.search(clause)
        if intent and clause[intent.end():].strip():
            thing, tail = _noun_phrase(clause[intent.end():])
            if thing.split()[-1:] != ["gift"] or " from " in clause:  # "shopping for a gift: a soy candle"
                chosen, raw = i, clause[intent.end():].strip()
                break
    if chosen < 0:  # no intent phrase: the bare noun phrase with the most words, the first of equals
        bare = [(len(_content(c)), -i, i) for i, c in enumerate(clauses)
                if _content(c) and not _CONTEXT.search(c) and not _is_quality_clause(c, bare_ok=True)]
        if not bare:  # "i wat a kettle": the clause with the most content, without its subject and verb
            bare = [(len(_content(c)), -i, i) for i, c in enumerate(clauses) if _content(c)]
        if bare:
            chosen = max(bare)[2]
            raw = re.sub(r"^(?:i|we)\s+\S+\s+", "", clauses[chosen])
            thing, tail = _noun_phrase(raw)

    ranked = _qualities(tail)
    for i, clause in enumerate(clauses):
        if i != chosen and not _CONTEXT.search(clause) and (_is_quality_clause(clause) or i > chosen >= 0):
            ranked.extend(_qualities(clause))
    ranked.sort(key=lambda rq: rq[0])  # stable: descriptive qualities first, "with ..." after
    qualities = [q for q in dict.fromkeys(q for _, q in ranked)
                 if q and q not in thing.split() and not (q in _CONTAINERS or q == "~")]
    return Request(thing=thing, qualities=tuple([*qualities, *dict.fromkeys(measures)]), max_price=max_price,
                   size=size, body=raw.replace("~", "").strip())


def _noun_phrase(body: str) -> tuple[str, str]:
    """(the noun phrase, the rest) of a request body: cut at the first constraint word, or at a measurement that
    follows the noun ("blackout curtains ~ long grey"), leading articles and quantities dropped."""
    body = _LEAD.sub("", body.strip())
    cut = _CUT.search(" " + body)
    end = max(0, cut.start() - 1) if cut else len(body)
    measure = body.find("~", 1)
    if 0 < measure < end and _content(body[:measure]):
        end = measure
    phrase, tail = body[:end], body[end:]
    phrase = _of_phrase(_LEAD.sub("", phrase.strip()))
    words = [w for w in _WORD.findall(phrase) if not w.isdigit()]
    while words and words[-1] in FILLER:
        words.pop()
    return " ".join(words[-6:]), tail


def _normalise(text: str) -> str:
    t = text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    t = re.sub(r"\bw/\s*", "with ", t)
    t = re.sub(r"\bthats\b", "that is", t)
    t = re.sub(r"\b(looking|searching|shopping|hunting)\s+4\b", r"\1 for", t)
    t = re.sub(r"[:;]-?[)(dp]\B|<3", " ", t)  # emoticons
    t = re.sub(r"\b(colou?r|size|scent|flavou?r|finish|material|style|capacity)\s*:\s*", r"\1 ", t)
    t = re.sub(r"\s+", " ", t)
    return " ".join(_fix(w) for w in t.split(" "))


def _fix(word: str) -> str:
    core = word.strip(".,!?;:")
    if len(core) < 4 or core in FILLER or not core.isalpha():
        return word
    for target in _FIXABLE:
        if abs(len(core) - len(target)) <= 1 and one_slip(core, target):
            return word.replace(core, target)
    return word


def one_slip(typed: str, word: str) -> bool:
    """True when `typed` is `word` with one adjacent swap, one letter doubled, or (for words of 6+ letters, so that
    "hose" is not read as "those") one letter dropped."""
    if len(typed) == len(word):
        diff = [i for i in range(len(typed)) if typed[i] != word[i]]
        return (len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == word[diff[1]]
                and typed[diff[1]] == word[diff[0]])
    if len(typed) == len(word) + 1:
        return any(typed[i] == typed[i - 1] and typed[:i] + typed[i + 1:] == word for i in range(1, len(typed)))
    return len(word) >= 6 and len(typed) == len(word) - 1 and any(
        word[:i] + word[i + 1:] == typed for i in range(len(word)))


def _content(clause: str) -> list[str]:
    return [w for w in _WORD.findall(clause) if w not in FILLER and not w.isdigit()]


def _is_quality_clause(clause: str, bare_ok: bool = False) -> bool:
    """ "that is navy blue", "must be vegan", "please make sure they're vegan", or (unless `bare_ok`) a bare 1-3 word
    attribute."""
    c = clause.strip()
    if re.match(r"^(?:that|which|it|they|please|make sure|must|should|needs?|has to|and is|is|are|preferably|no|non|not"
                r"|ideally|in|with|without|from|by|made by)\b", c):
        return True
    return not bare_ok and 0 < len(_content(c)) <= 3 and len(c.split()) <= 4 and not _INTENT.search(c)


_SEGMENT = re.compile(r"\s(?=(?:with|without|for|because|since|so|to|if|though|like|and|that|which|in|from|by)\s)")
_DROPPED = ("for ", "because ", "since ", "so ", "to ", "if ", "though ", "like ")  # purposes and reasons


def _qualities(text: str) -> list[tuple[int, str]]:
    """(rank, attribute phrase) in a constraint: content words, split at "and", commas and filler runs.

    Segments about purpose or reasons ("for the beach", "because my back hurts") and verb clauses ("that keeps drinks
    cold") give none; "with ..." ranks after plain descriptions ("navy blue", "vegan")."""
    out: list[tuple[int, str]] = []
    for segment in _SEGMENT.split(" " + text.strip()):
        segment = segment.strip()
        if not segment or segment.startswith(_DROPPED):
            continue
        if re.match(r"(?:that|which)\s+(?!is\b|are\b|'s\b|'re\b|should\b|must\b|has to\b|needs?\b)", segment):
            continue
        rank = 1 if segment.startswith(("with ", "without ")) else 0
        segment = _QUALITY_CLAUSE.sub("", re.sub(r"^(?:and|that|which|in|from|by|with|without)\s+", "", segment))
        run: list[str] = []
        for w in [*_WORD.findall(segment), "and"]:
            w = w.rstrip("'")
            if w in FILLER or w.isdigit():
                if run:
                    out.append((rank, " ".join(run[:3])))
                    run = []
            else:
                run.append(w)
    return out


_CONTAINERS = frozenset("pair pairs pack packs set sets box boxes bottle bottles bag bags bunch case cases roll rolls "
                        "tube tubes jar jars can cans couple kind sort type piece pieces".split())


def _of_phrase(phrase: str) -> str:
    """ "bottle of red wine" -> "red wine"; "bag of dog food" -> "dog food"; other "X of Y" keep X."""
    if " of " not in phrase:
        return phrase
    before, after = phrase.split(" of ", 1)
    return after if before.split()[-1:] and before.split()[-1] in _CONTAINERS else before
