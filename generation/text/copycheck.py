"""The product-copy checker: is every given attribute stated, and is nothing claimed that the
attributes do not say? Pure Python (no Django, no model), shared by the ``copy`` and
``recommendation`` runners and ``manage.py copy_evaluate``.

``copy_check(text, attributes)`` reports:

- **coverage**: the share of *facts* the text states. A fact is one attribute value, or one item
  of a list value (each size, each feature, each colour of "black/white"). Matching is on
  normalised words: case, accents and punctuation ignored, plurals folded ("shoes" = "shoe"),
  spelling variants and synonyms merged ("gray" = "grey", "trainers" = "sneakers", "jumper" =
  "sweater"). A phrase is stated when at least 60% of its content words are (all of them for
  one or two words); a colour when one of its colour words is; a price when its number is; a
  size when its token is.
- **unsupported claims**: words of five vocabularies that the attributes do not support:
  colours (a colour's family is allowed: "navy" allows "blue"), materials ("genuine leather" for
  a faux-leather bag too), brands (a built-in list, the input's brand, and ``known_brands`` the
  caller adds: the catalogue's other brands, stored brand voices), sizes (XS..XXXL, "one size",
  "size 42", "EU 38") and product-category nouns ("sneaker" for a sling bag; a noun of the
  input's category, its synonyms and its family's generic words are fine; a noun that follows
  "with", "for", "on" ... is about something else, not a claim about the product). Numbers with a
  unit or a currency (``15 inch``, ``2 years``, ``$49``) that no attribute holds are claims too.
- **repetition**: the first repeated word 4-gram (a loop), or None.

``claims_filter(text, attributes)`` drops the sentences that hold an unsupported claim or
repeat a 4-gram of the text kept before them: the sentence-level filter applied to generated
descriptions before they are checked again.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from generation.text.placeholders import key_normalise
from generation.text.repetition import repeated_ngram_text
from generation.text.sentences import sentences_split

STOPWORDS = frozenset(
    "a an the and or with for of in on to by from at as is are be it its this that these those your our you "
    "we their them into onto per via plus x".split()
)

# --- vocabularies -----------------------------------------------------------------------------

# Colour word -> family (a family member in the input allows the family's base word).
COLOURS: dict[str, str] = {
    "black": "black", "jet": "black", "onyx": "black", "ebony": "black",
    "white": "white", "ivory": "white", "cream": "white", "ecru": "white", "snow": "white",
    "grey": "grey", "charcoal": "grey", "slate": "grey", "graphite": "grey", "anthracite": "grey",
    "silver": "grey", "ash": "grey", "heather": "grey",
    "red": "red", "burgundy": "red", "maroon": "red", "crimson": "red", "scarlet": "red", "wine": "red",
    "cherry": "red", "oxblood": "red", "brick": "red", "rust": "red",
    "blue": "blue", "navy": "blue", "cobalt": "blue", "indigo": "blue", "azure": "blue", "sky": "blue",
    "denim": "blue", "teal": "blue", "turquoise": "blue", "aqua": "blue", "cyan": "blue", "petrol": "blue",
    "green": "green", "olive": "green", "khaki": "green", "sage": "green", "emerald": "green", "mint": "green",
    "forest": "green", "lime": "green", "moss": "green", "bottle": "green", "frost": "green",
    "yellow": "yellow", "mustard": "yellow", "lemon": "yellow", "ochre": "yellow", "gold": "yellow",
    "golden": "yellow",
    "orange": "orange", "coral": "orange", "peach": "orange", "apricot": "orange", "amber": "orange",
    "terracotta": "orange", "copper": "orange",
    "purple": "purple", "violet": "purple", "lilac": "purple", "lavender": "purple", "plum": "purple",
    "mauve": "purple", "aubergine": "purple", "magenta": "purple",
    "pink": "pink", "rose": "pink", "blush": "pink", "fuchsia": "pink", "salmon": "pink",
    "brown": "brown", "tan": "brown", "beige": "brown", "camel": "brown", "chocolate": "brown",
    "cognac": "brown", "taupe": "brown", "sand": "brown", "mocha": "brown", "chestnut": "brown",
    "walnut": "brown", "espresso": "brown", "caramel": "brown", "nude": "brown", "stone": "brown",
}
# Colour words that are also everyday words: they count as a colour claim only next to a word
# that makes them one ("rose gold", "sky blue", "mint green") or when the input names them.
_WEAK_COLOURS = frozenset(
    "jet snow ash heather wine cherry brick rust sky denim petrol forest lime moss bottle frost lemon gold golden "
    "peach apricot amber copper plum rose blush salmon sand stone mocha chestnut walnut espresso caramel "
    "chocolate nude cream sage mint camel emerald onyx ebony slate graphite silver lavender".split()
)
_COLOUR_IDIOMS = frozenset(
    {("white", "noise"), ("black", "friday"), ("gold", "standard"), ("silver", "lining"), ("red", "carpet"),
     ("go", "green"), ("green", "energy"), ("white", "glove"), ("blue", "light"), ("red", "tape")}
)

MATERIALS: dict[str, str] = {
    # word -> class (a class word in the input allows the class's generic word: "oak" allows "wood")
    "leather": "leather", "suede": "leather", "nubuck": "leather", "patent": "leather",
    "cotton": "fibre", "wool": "fibre", "merino": "fibre", "cashmere": "fibre", "alpaca": "fibre", "mohair": "fibre",
    "silk": "fibre", "linen": "fibre", "hemp": "fibre", "jute": "fibre", "polyester": "fibre", "nylon": "fibre",
    "elastane": "fibre", "spandex": "fibre", "lycra": "fibre", "acrylic": "fibre", "viscose": "fibre",
    "rayon": "fibre", "lyocell": "fibre", "tencel": "fibre", "polyamide": "fibre", "microfibre": "fibre",
    "canvas": "fabric", "denim": "fabric", "fleece": "fabric", "velvet": "fabric", "satin": "fabric",
    "chiffon": "fabric", "tweed": "fabric", "corduroy": "fabric", "flannel": "fabric", "twill": "fabric",
    "mesh": "fabric", "neoprene": "fabric", "knit": "fabric", "jersey": "fabric", "ripstop": "fabric",
    "rubber": "rubber", "latex": "rubber", "silicone": "rubber", "eva": "rubber", "foam": "rubber",
    "plastic": "plastic", "polycarbonate": "plastic", "vinyl": "plastic", "pvc": "plastic", "pu": "plastic",
    "polyurethane": "plastic", "resin": "plastic", "abs": "plastic", "acetate": "plastic",
    "aluminium": "metal", "steel": "metal", "stainless": "metal", "titanium": "metal", "brass": "metal",
    "bronze": "metal", "copper": "metal", "chrome": "metal", "zinc": "metal", "gold": "metal", "silver": "metal",
    "metal": "metal", "metallic": "metal",
    "wood": "wood", "wooden": "wood", "oak": "wood", "walnut": "wood", "bamboo": "wood", "pine": "wood",
    "teak": "wood", "beech": "wood", "acacia": "wood", "birch": "wood", "ash": "wood", "rattan": "wood",
    "wicker": "wood", "cork": "wood", "plywood": "wood", "mdf": "wood",
    "glass": "ceramic", "ceramic": "ceramic", "porcelain": "ceramic", "stoneware": "ceramic",
    "earthenware": "ceramic", "marble": "ceramic", "granite": "ceramic", "concrete": "ceramic",
    "terracotta": "ceramic", "crystal": "ceramic",
    "down": "fill", "feather": "fill",
}
# Material words a text uses for other things: a claim only with a material cue next to them
# ("made of", "... leather"), or when the input names them.
_WEAK_MATERIALS = frozenset(
    "patent knit jersey down feather eva abs pu glass crystal ash walnut pine gold silver copper bronze chrome "
    "metallic foam concrete stone".split()
)
_GENERIC_MATERIAL = {"metal": "metal", "metallic": "metal", "wood": "wood", "wooden": "wood"}
_FAUX_WORDS = frozenset({"faux", "vegan", "synthetic", "pu", "imitation", "artificial", "recycled"})
_GENUINE_WORDS = frozenset({"genuine", "real", "full", "grain", "top", "natural", "calfskin", "cowhide"})

KNOWN_BRANDS: tuple[str, ...] = (
    # apparel, shoes, bags
    "Nike", "Adidas", "Puma", "Reebok", "New Balance", "Asics", "Converse", "Vans", "Skechers", "Hoka", "Saucony",
    "Brooks", "On Running", "Salomon", "Merrell", "Timberland", "Dr. Martens", "Birkenstock", "Clarks", "Ecco",
    "Veja", "Allbirds", "UGG", "Crocs", "Levi's", "Wrangler", "Lee", "Uniqlo", "Zara", "H&M", "Mango", "COS",
    "Gap", "Patagonia", "The North Face", "Columbia", "Arc'teryx", "Fjällräven", "Fjallraven", "Herschel",
    "Eastpak", "JanSport", "Osprey", "Samsonite", "Rimowa", "Tumi", "Longchamp", "Michael Kors", "Coach",
    "Kate Spade", "Gucci", "Prada", "Louis Vuitton", "Chanel", "Hermès", "Hermes", "Burberry", "Ralph Lauren",
    "Tommy Hilfiger", "Calvin Klein", "Hugo Boss", "Lacoste", "Carhartt", "Barbour", "Hunter", "Superdry",
    "Under Armour", "Lululemon", "Champion", "Fila", "Diesel", "Armani", "Versace", "Moncler", "Canada Goose",
    "Ray-Ban", "Oakley", "Casio", "Seiko", "Citizen", "Fossil", "Swatch", "Rolex", "Timex", "Garmin", "Fitbit",
    # electronics
    "Apple", "Samsung", "Sony", "LG", "Panasonic", "Philips", "Bose", "JBL", "Sennheiser", "Beats",
    "Bang & Olufsen", "Jabra", "Anker", "Logitech", "Razer", "Microsoft", "Google", "Huawei", "Xiaomi",
    "OnePlus", "Motorola", "Nokia", "Lenovo", "Dell", "HP", "Asus", "Acer", "Canon", "Nikon", "Fujifilm",
    "GoPro", "DJI", "Kindle", "Sonos", "Marshall", "Dyson", "Nintendo", "PlayStation", "Xbox",
    "Belkin", "Kobo", "Braun", "Bosch", "Siemens", "Miele", "Tefal", "Kenwood", "KitchenAid", "Nespresso",
    "DeLonghi", "Smeg", "Breville",
    # home
    "IKEA", "Le Creuset", "Staub", "Zwilling", "Wüsthof", "Lodge", "Muji", "Habitat", "West Elm",
    "Muuto", "Alessi", "Bodum", "Joseph Joseph", "Villeroy & Boch", "Dunelm", "Casper", "Yankee Candle",
    "Stanley", "Hydro Flask", "Yeti", "Chilly's", "Brabantia",
    # the hand-built catalogues' own brands (bench/data/catalogue*.csv)
    "Northwind", "Alder & Co", "Kestrel", "Lumen", "Voltra", "Hearthstone", "Tidewater", "Marlowe", "Brightside",
    "Copperleaf", "Solace", "Arcadia", "Fernhill", "Quillon", "Oakhurst", "Pebble & Pine", "Ravenna", "Urbano",
    "Strata", "Halcyon",
)

# Category noun -> family. Synonyms are merged by ``_CANON`` first.
CATEGORIES: dict[str, str] = {}
for _family, _nouns in {
    "footwear": "shoe sneaker boot sandal loafer slipper clog espadrille mule moccasin brogue flip-flop footwear",
    "bags": "bag backpack tote clutch handbag satchel wallet duffel briefcase pouch luggage suitcase "
    "crossbody purse cardholder holdall bumbag",
    "apparel": "shirt tshirt dress skirt jacket coat jean trouser shortpants hoodie sweatshirt sweater cardigan "
    "blouse legging sock hat cap beanie scarf glove vest blazer suit parka raincoat jumpsuit polo "
    "bra underwear swimsuit bikini pyjama robe gilet anorak tracksuit chino overshirt tanktop",
    "electronics": "headphone earbud headset speaker phone laptop tablet smartwatch camera charger cable "
    "keyboard mouse monitor tv router drone console powerbank ereader soundbar microphone "
    "projector printer webcam",
    "home": "lamp chair table sofa desk rug cushion pillow blanket duvet mug plate bowl pan pot kettle "
    "vase candle shelf mirror towel curtain knife blender toaster bed mattress stool bench cabinet "
    "wardrobe dresser teapot cutlery glassware jug tray basket planter clock bottle tumbler flask "
    "skillet saucepan wok sheet duvet-cover",
    "accessories": "sunglass belt necklace bracelet earring umbrella keyring",
}.items():
    for _noun in _nouns.split():
        CATEGORIES[_noun] = _family
# Generic words of a family that any of its products may be called.
FAMILY_GENERIC: dict[str, frozenset[str]] = {
    "footwear": frozenset({"shoe", "footwear"}),
    "bags": frozenset({"bag"}),
    "apparel": frozenset(),
    "electronics": frozenset(),
    "home": frozenset(),
    "accessories": frozenset(),
}
_CATEGORY_SYNONYMS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "sneaker shoe", "boot shoe", "loafer shoe", "brogue shoe", "sandal flip-flop", "mule clog", "backpack bag", "tote bag", "handbag purse bag", "crossbody bag",
        "clutch bag purse", "duffel holdall bag", "satchel bag", "briefcase bag", "wallet purse cardholder",
        "suitcase luggage", "tshirt shirt tanktop", "polo shirt", "overshirt shirt jacket", "sweater cardigan",
        "hoodie sweatshirt", "trouser chino", "jacket coat parka raincoat anorak", "gilet vest",
        "headphone headset", "earbud headphone", "speaker soundbar", "phone", "smartwatch",
        "laptop", "tv monitor", "pillow cushion", "blanket", "duvet", "rug", "sofa", "mug",
        "pan skillet wok", "pot saucepan", "bottle flask tumbler", "knife cutlery", "sheet duvet-cover",
    )
)
# Nouns that are also verbs or everyday words: only a claim after an article or adjective.
_WEAK_CATEGORIES = frozenset("mule sheet flask pot pan boot monitor mouse console bottle clock tray basket plate "
                             "bench cap mirror suit".split())
# A category noun after one of these is about something else ("fits a laptop", "pairs with jeans").
_OTHER_THING_CUES = frozenset(
    "with for on onto beside by next under into alongside near over like than around inside fits fit "
    "holds hold carry carries store stores protect protects keep keeps pair pairs match matches "
    "in to at above below beneath behind across your their any every".split()
)

# Canonical forms: synonyms and spelling variants fold into one token (applied after singular()).
_CANON: dict[str, str] = {
    "gray": "grey", "aluminum": "aluminium", "colour": "color", "trainer": "sneaker", "kick": "sneaker",
    "jumper": "sweater", "pullover": "sweater", "pant": "trouser", "tee": "tshirt", "rucksack": "backpack",
    "daypack": "backpack", "earphone": "earbud", "smartphone": "phone", "cellphone": "phone", "mobile": "phone",
    "television": "tv", "lense": "lens", "couch": "sofa", "settee": "sofa", "comforter": "duvet", "quilt": "duvet",
    "carpet": "rug", "cup": "mug", "frypan": "pan", "weekender": "duffel", "bumbag": "bumbag",
    "fanny": "bumbag", "handset": "phone", "notebook": "laptop", "timepiece": "smartwatch", "polyamide": "nylon",
    "microfiber": "microfibre", "fiber": "fibre", "sneakers": "sneaker", "jeans": "jean", "pyjamas": "pyjama",
    "pajama": "pyjama", "flipflop": "flip-flop", "ereader": "ereader",
}
SIZE_TOKENS = frozenset({"XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL", "2XL", "3XL", "4XL", "5XL"})
_SIZE_TOKEN = re.compile(r"(?<![\w'’&.-])(XXS|XS|S|M|L|XL|XXL|XXXL|[2-5]XL)(?![\w'’&-])")
_SIZE_PHRASE = re.compile(
    r"\b(?:[Ss]izes?|(?:UK|US|EU|IT|FR|JP)\s+[Ss]izes?)\s+(?:UK\s+|US\s+|EU\s+)?(\d+(?:[.,]5)?)\b"
    r"|\b(?:UK|US|EU)\s+(\d+(?:[.,]5)?)\b"
)
_ONE_SIZE = re.compile(r"\bone[\s-]size\b", re.I)
# A size said in words ("a tote bag for women in medium size", "a large-sized mug", "size small").
_SIZE_WORD = re.compile(r"\b(small|medium|large|extra[\s-]large)[\s-]siz(?:e|ed)\b|\bsize\s+(small|medium|large)\b|"
                        r"\b(?:size|length|fit|width) of (small|medium|large|extra[\s-]large)\b", re.I)
_UNIT = (
    r"mm|cm|m|km|in|inch|inches|\"|”|ft|feet|ml|cl|l|litres?|liters?|oz|g|kg|lbs?|pounds?|gb|tb|mb|mah|wh|w|watts?|"
    r"(?:milli|centi|kilo)?(?:metres?|meters?)|millilitres?|milliliters?|grams?|kilograms?|kilos?|ounces?|"
    r"v|volts?|hz|khz|mhz|ghz|mp|megapixels?|hours?|hrs?|h|mins?|minutes?|days?|weeks?|months?|years?|yrs?|"
    r"pieces?|pcs|pack|layers?|pockets?|compartments?|speeds?|settings?|ports?|cores?|db|lumens?|rpm|k|p|fps|x"
)
_NUMBER_UNIT = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*-?\s*(" + _UNIT + r")(?![\w])", re.I)
_CURRENCY = re.compile(
    r"(?:[$€£¥]\s?(\d+(?:[.,]\d+)?))|(?:(\d+(?:[.,]\d+)?)\s?(?:usd|eur|gbp|dollars?|euros?|pounds?\s+sterling|bucks)\b)",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD_NUMBERS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "twelve": "12", "single": "1", "dual": "2", "double": "2", "triple": "3",
}
_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")

LIST_SEPARATORS = re.compile(r"\s*[;|\n]\s*")
SHORT_LIST_SEPARATORS = re.compile(r"\s*(?:[;|/,\n]|\band\b|&)\s*", re.I)
# Keys whose values are short lists ("S, M, L"; "black/white"; "men, women").
SHORT_LIST_KEYS = frozenset({"colour", "color", "colours", "colors", "sizes", "size", "audience"})
PRICE_KEYS = frozenset({"price"})
KNOWN_KEYS = ("name", "brand", "category", "colour", "material", "price", "sizes", "features", "audience")


# --- normalisation ---------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case, accents off, "t-shirt" as one word, "flip flops" as one."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"\bt[\s-]?shirts?\b", "tshirt", text)
    text = re.sub(r"\bflip[\s-]?flops?\b", "flip-flop", text)
    text = re.sub(r"\be[\s-]?readers?\b", "ereader", text)
    text = re.sub(r"\bpower[\s-]?banks?\b", "powerbank", text)
    text = re.sub(r"\bduvet[\s-]covers?\b", "duvet-cover", text)
    text = re.sub(r"\bkey[\s-]?rings?\b", "keyring", text)
    text = re.sub(r"\bbum[\s-]?bags?\b", "bumbag", text)
    text = re.sub(r"\bshorts\b", "shortpants", text)
    text = re.sub(r"\btank[\s-]?tops?\b", "tanktop", text)
    return text


def singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "as", "ics")) or word[-1].isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("'s"):
        return word[:-1]
    if word.endswith("'s"):
        return word[:-2]
    return word


def words(text: str) -> list[str]:
    """Normalised words of ``text``: folded, singular, synonyms merged."""
    out = []
    for token in _TOKEN.findall(_fold(text)):
        token = _CANON.get(token, token)
        token = singular(token)
        out.append(_CANON.get(token, token))
    return out


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def _numbers(text: str) -> set[str]:
    found = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", ".")
        try:
            found.add(_number_key(float(value)))
        except ValueError:
            continue
    for word in _TOKEN.findall(text.lower()):
        if word in _WORD_NUMBERS:
            found.add(_WORD_NUMBERS[word])
    return found


def _number_key(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0")


# --- attributes -> facts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    key: str
    value: str

    def label(self) -> str:
        return f"{self.key}: {self.value}"


def attribute_items(key: str, value) -> list[str]:
    """The items of one attribute value: a list's items, a short-list key split on , / and;
    a long text split on ; | and lines."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        raw = [str(v) for v in value]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        raw = [_number_key(float(value))]
    else:
        text = str(value)
        splitter = SHORT_LIST_SEPARATORS if key_normalise(key) in SHORT_LIST_KEYS else LIST_SEPARATORS
        raw = splitter.split(text) if key_normalise(key) != "price" else [text]
    return [item.strip() for item in raw if item and item.strip()]


def attribute_facts(attributes: Mapping[str, object]) -> list[Fact]:
    facts = []
    for key, value in attributes.items():
        for item in attribute_items(key, value):
            facts.append(Fact(key_normalise(key), item))
    return facts


def attributes_text(attributes: Mapping[str, object]) -> str:
    parts = []
    for key, value in attributes.items():
        parts.append(str(key))
        parts.extend(attribute_items(key, value))
    return "\n".join(parts)


# --- coverage --------------------------------------------------------------------------------


@dataclass
class _Text:
    """A text prepared once for the checks."""

    raw: str
    words: list[str]
    word_set: set[str]
    numbers: set[str]
    raw_upper_tokens: set[str]

    @classmethod
    def of(cls, text: str) -> _Text:
        ws = words(text)
        return cls(
            raw=text,
            words=ws,
            word_set=set(ws),
            numbers=_numbers(text),
            raw_upper_tokens={t.upper() for t in re.findall(r"\w+", text)},
        )


def _phrase_mentioned(item: str, text: _Text) -> bool:
    needed = content_words(item) or words(item)
    if not needed:
        return True
    unique = list(dict.fromkeys(needed))
    required = len(unique) if len(unique) <= 2 else math.ceil(0.6 * len(unique))
    hits = sum(1 for w in unique if w in text.word_set or (w.isdigit() and w in text.numbers))
    return hits >= required


def fact_mentioned(fact: Fact, text: _Text) -> bool:
    key = fact.key
    if key in PRICE_KEYS or key.endswith(" price"):
        numbers = _numbers(fact.value)
        return bool(numbers & text.numbers) if numbers else _phrase_mentioned(fact.value, text)
    if key in ("colour", "color", "colours", "colors"):
        colour_words = [w for w in words(fact.value) if w in COLOURS]
        if colour_words:
            return any(w in text.word_set for w in colour_words)
        return _phrase_mentioned(fact.value, text)
    if key in ("size", "sizes"):
        token = fact.value.strip().upper()
        if token in SIZE_TOKENS:
            return token in text.raw_upper_tokens and bool(
                re.search(r"(?<![\w'’])" + re.escape(fact.value.strip()) + r"(?![\w'’])", text.raw, re.I)
            )
        return _phrase_mentioned(fact.value, text)
    return _phrase_mentioned(fact.value, text)


def facts_stated(text: str, facts: Sequence[Fact]) -> list[Fact]:
    """The ``facts`` that ``text`` states, as coverage counts them."""
    prepared = _Text.of(text)
    return [f for f in facts if fact_mentioned(f, prepared)]


# --- unsupported claims ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    # colour | material | brand | size | category | number, and the strict ones: part | pattern | fit |
    # closure | technology | care | sustainability | discount | superlative | name | currency |
    # comparison | meta | template
    type: str
    claim: str
    sentence: str = ""


@dataclass
class _Allowed:
    """What the input supports."""

    words: set[str]
    colours: set[str]
    colour_families: set[str]
    material_classes: set[str]
    faux: bool
    brands: set[str]  # folded
    other_brands: list[tuple[str, re.Pattern]]
    size_tokens: set[str]
    numbers: set[str]
    categories: set[str]
    category_families: set[str]
    folded: str  # the input's normalised words, in order, space-separated
    money: dict[str, set[str]] = field(default_factory=dict)  # number -> currencies the input gives it in
    raw: str = ""  # the input's text, lower-cased, as written
    items: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (key, words) of each attribute item
    units: dict[str, set[str]] = field(default_factory=dict)  # number -> the units the input gives it with
    material_words: set[str] = field(default_factory=set)  # the words of the material items
    feature_words: set[str] = field(default_factory=set)  # words only the features have ("gooseneck")
    key_words: set[str] = field(default_factory=set)  # the attributes' names ("runtime", "battery")
    ages: bool = False  # an attribute about age ("age range": "for kids" is given)


def _allowed(attributes: Mapping[str, object], extra_texts: Sequence[str], known_brands: Iterable[str]) -> _Allowed:
    text = attributes_text(attributes) + "\n" + "\n".join(extra_texts)
    ws = set(words(text))
    colours = {w for w in ws if w in COLOURS}
    families = {COLOURS[w] for w in colours}
    materials = {w for w in ws if w in MATERIALS}
    cats = {w for w in ws if w in CATEGORIES}
    for group in _CATEGORY_SYNONYMS:
        if group & cats:
            cats |= group
    cat_families = {CATEGORIES[w] for w in cats if w in CATEGORIES}
    folded_text = " " + " ".join(words(text)) + " "
    brands_given = {str(attributes.get("brand") or "")} | set(
        b for b in known_brands if b and (" " + " ".join(words(b)) + " ") in folded_text
    )
    brand_folds = {" ".join(words(b)) for b in brands_given if b.strip()}
    others = []
    for brand in dict.fromkeys([*KNOWN_BRANDS, *known_brands]):
        if not brand or not brand.strip():
            continue
        fold = " ".join(words(brand))
        if not fold or fold in brand_folds or any(fold in given or given in fold for given in brand_folds if given):
            continue
        if f" {fold} " in folded_text:  # the input itself names it ("Lumen Tee"): not another brand
            continue
        others.append((brand, re.compile(r"(?<![\w'])" + re.escape(brand) + r"(?![\w])")))
    items = [(f.key, tuple(words(f.value))) for f in attribute_facts(attributes)]
    return _Allowed(
        words=ws,
        colours=colours,
        colour_families=families,
        material_classes={MATERIALS[w] for w in materials},
        faux=bool(ws & _FAUX_WORDS) and "leather" in ws,
        brands=brand_folds,
        other_brands=others,
        size_tokens=_size_tokens(attributes, text),
        numbers=_numbers(text),
        categories=cats,
        category_families=cat_families,
        folded=folded_text,
        money=_given_money({**attributes, **{f"_text{i}": t for i, t in enumerate(extra_texts)}}),
        raw=text.lower(),
        items=items,
        units=_given_units(text),
        material_words={w for k, item in items if k == "material" for w in item},
        feature_words={w for k, item in items if k in ("features", "feature")
                       for w in item if w not in STOPWORDS and not w[:1].isdigit()}
        - {w for k, item in items if k not in ("features", "feature") for w in item},
        key_words={w for k, _ in items for w in words(k)},
        ages=any("age" in k for k, _ in items),
    )


def _size_tokens(attributes: Mapping[str, object], text: str) -> set[str]:
    """Size tokens the input gives: any item of a size key (any case), or an upper-case token."""
    tokens = set(re.findall(r"[\w]+", text)) & SIZE_TOKENS
    for key, value in attributes.items():
        if key_normalise(key) in ("size", "sizes"):
            tokens |= {item.upper() for item in attribute_items(key, value)} & SIZE_TOKENS
            tokens |= {t.upper() for t in re.findall(r"[\w]+", " ".join(attribute_items(key, value)))} & SIZE_TOKENS
    return tokens


def _sentence_claims(sentence: str, allowed: _Allowed) -> list[Claim]:
    claims: list[Claim] = []
    ws = words(sentence)
    seen: set[tuple[str, str]] = set()

    def add(kind: str, claim: str) -> None:
        if (kind, claim) not in seen:
            seen.add((kind, claim))
            claims.append(Claim(kind, claim, sentence.strip()))

    for i, w in enumerate(ws):
        prev = ws[i - 1] if i else ""
        nxt = ws[i + 1] if i + 1 < len(ws) else ""
        # colours
        if w in COLOURS and w not in allowed.colours and (prev, w) not in _COLOUR_IDIOMS and (w, nxt) not in _COLOUR_IDIOMS:
            family = COLOURS[w]
            weak = w in _WEAK_COLOURS
            cue = nxt in COLOURS or prev in COLOURS or nxt in ("color", "tone", "hue", "shade", "finish") or prev in (
                "in", "color", "shade", "dyed", "bright", "dark", "light", "pale", "deep"
            )
            is_base = family == w
            if w in MATERIALS and (w in allowed.words or MATERIALS[w] in allowed.material_classes):
                pass
            elif is_base and family in allowed.colour_families:
                pass  # "blue" for a navy product
            elif not weak or cue:
                add("colour", w)
        # materials
        if w in MATERIALS and w not in allowed.words:
            klass = MATERIALS[w]
            generic_ok = w in _GENERIC_MATERIAL and _GENERIC_MATERIAL[w] in allowed.material_classes
            weak = w in _WEAK_MATERIALS
            cue = prev in ("of", "in", "from", "genuine", "real", "solid", "pure", "100", "recycled", "organic") or (
                nxt in MATERIALS or nxt in ("upper", "lining", "sole", "shell", "frame", "body", "construction")
            )
            if w in COLOURS and (w in allowed.colours or COLOURS[w] in allowed.colour_families):
                pass
            elif not generic_ok and (not weak or cue) and not (klass == "wood" and w in COLOURS and not cue):
                add("material", w)
        # leather kinds
        if w == "leather" and "leather" in allowed.words:
            if allowed.faux and prev in _GENUINE_WORDS:
                add("material", f"{prev} leather")
            if not allowed.faux and prev in _FAUX_WORDS:
                add("material", f"{prev} leather")
        # category nouns
        if w in CATEGORIES and w not in allowed.categories:
            family = CATEGORIES[w]
            if w in FAMILY_GENERIC.get(family, ()) and family in allowed.category_families:
                continue
            window = ws[max(0, i - 3) : i]
            if any(cue in _OTHER_THING_CUES for cue in window):
                continue
            if w in _WEAK_CATEGORIES and prev not in ("a", "an", "the", "this", "that", "our", "these", "new") and not (
                prev and prev not in STOPWORDS and prev.isalpha()
            ):
                continue
            if w in ("monitor", "boot") and nxt in ("your", "up", "time", "the"):
                continue
            if w == "suit" and nxt in ("you", "your", "the", "all", "any", "most", "every", "a", "an", "it", "them", "both"):
                continue  # "the one that suits you": the verb
            add("category", w)
    # brands
    for brand, pattern in allowed.other_brands:
        if pattern.search(sentence):
            add("brand", brand)
    # sizes
    for match in _SIZE_TOKEN.finditer(sentence):
        token = match.group(1)
        if token not in allowed.size_tokens and not _size_token_is_word(sentence, match):
            add("size", token)
    for match in _SIZE_PHRASE.finditer(sentence):
        number = match.group(1) or match.group(2)
        if _numbers(number) - allowed.numbers:
            add("size", match.group(0).strip())
    if _ONE_SIZE.search(sentence) and " one size " not in allowed.folded:
        add("size", "one size")
    for match in _SIZE_WORD.finditer(sentence):
        if not set(words(match.group(1) or match.group(2) or match.group(3))) <= allowed.words:
            add("size", match.group(0).strip())
    # numbers with units, prices
    for match in _NUMBER_UNIT.finditer(sentence):
        if _numbers(match.group(1)) - allowed.numbers:
            add("number", match.group(0).strip())
    for match in _CURRENCY.finditer(sentence):
        value = match.group(1) or match.group(2)
        if _numbers(value) - allowed.numbers:
            add("number", match.group(0).strip())
    for kind, claim in _strict_claims(sentence, allowed):
        add(kind, claim)
    for kind, claim in _sense_claims(sentence, allowed):
        add(kind, claim)
    return claims


# --- strict claims: what a reader would call invented ------------------------------------------
# Vocabularies of claims a product text must not make unless the attributes say them. A phrase is
# supported when every one of its content words is among the input's words (attributes and
# extra texts), so "machine washable" passes for care "machine washable at 30 degrees".

STRICT_TERMS: dict[str, tuple[str, ...]] = {
    "part": (
        "sole", "outsole", "midsole", "insole", "footbed", "lining", "lined", "strap", "straps", "buckle", "hood",
        "collar", "cuff", "cuffs", "heel", "toe cap", "toe box", "tongue", "handle", "handles", "lid", "drawstring",
        "pocket", "pockets", "compartment", "compartments", "sleeve", "panel", "cushioning", "padding", "padded",
        "frame", "wheels", "hinge", "lens", "lenses", "cable", "battery", "display", "screen", "speaker", "microphone",
        "mic", "charging case", "cord", "filter", "blade", "nozzle", "tray", "shelf", "shelves", "drawer",
        "drawers", "legs", "cushion", "hook", "lever", "bracket", "armrest", "loop", "loops", "clip", "zipper pull", "waistband", "hem", "seam",
        "seams", "stitching", "trim", "laces", "eyelets", "gusset", "vent", "vents", "kickstand",
    ),
    "pattern": (
        "striped", "stripe", "stripes", "floral", "plaid", "checked", "checkered", "gingham", "polka dot", "dotted",
        "paisley", "camo", "camouflage", "ombre", "gradient", "tie dye", "herringbone", "houndstooth", "leopard",
        "animal print", "graphic", "print", "printed", "embroidered", "embroidery", "jacquard", "geometric",
        "logo", "monogram", "quilted", "ribbed", "cable knit", "marled", "textured", "glitter", "sequin", "sequins",
    ),
    "fit": (
        "slim fit", "slim", "regular fit", "relaxed fit", "oversized", "loose fit", "tailored", "skinny",
        "straight leg", "wide leg", "cropped", "fitted cut", "fitted silhouette", "boxy", "athletic fit", "bodycon",
        "a line", "high waisted", "high rise", "low rise", "true to size", "stretchy", "stretch fabric",
        "two way stretch", "four way stretch", "flattering",
    ),
    "closure": (
        "zip", "zipped", "zipper", "zippered", "button", "buttons", "buttoned", "snap", "snaps", "velcro",
        "hook and loop", "lace up", "buckled", "magnetic", "toggle", "clasp", "press stud", "slip on", "pull on",
        "drawcord",
    ),
    "technology": (
        "waterproof", "water resistant", "water repellent", "windproof", "breathable", "moisture wicking",
        "sweat wicking", "quick dry", "quick drying", "anti slip", "non slip", "slip resistant", "shock absorbing",
        "memory foam", "gel", "bluetooth", "wireless", "noise cancelling", "noise canceling", "active noise",
        "usb c", "usb", "fast charging", "quick charge", "hd", "4k", "led", "app", "touch control",
        "touchscreen", "gore tex", "thermal", "insulated", "insulation", "uv protection", "uv", "spf", "antibacterial",
        "antimicrobial", "odour resistant", "odor resistant", "stain resistant", "wrinkle free", "crease resistant",
        "non stick", "ergonomic", "adjustable", "foldable", "collapsible", "rechargeable", "lightweight", "ultralight",
        "durable", "hard wearing", "long lasting", "sturdy", "robust", "heavy duty", "reflective", "shockproof",
        "scratch resistant", "dustproof", "hypoallergenic", "dermatologically tested", "clinically proven",
        "patented", "proprietary", "technology", "cushioned", "supportive", "arch support", "grip", "traction",
        "leakproof", "leak proof", "airtight", "bpa free", "dishwasher safe", "oven safe", "microwave safe",
        "induction", "cordless", "portable", "compact", "ip67", "ip68", "ipx4", "ipx7",
    ),
    "care": (
        "machine wash", "machine washable", "hand wash", "hand washable", "dry clean", "tumble dry", "iron",
        "wipe clean", "easy to clean", "easy care", "low maintenance",
    ),
    "sustainability": (
        "eco", "eco friendly", "sustainable", "sustainably", "organic", "recycled", "biodegradable", "compostable",
        "vegan", "ethical", "ethically", "fair trade", "carbon neutral", "carbon", "planet", "environment",
        "environmentally", "plastic free", "cruelty free", "responsibly", "upcycled", "natural dye",
    ),
    "discount": (
        "discount", "discounted", "sale", "on sale", "special offer", "deal", "reduced", "bargain",
        "cheap", "clearance", "limited time", "free shipping", "free delivery", "free returns", "coupon", "promo",
        "affordable", "budget", "value for money", "special price",
    ),
    "superlative": (
        "best", "finest", "ultimate", "perfect", "perfectly", "renowned", "world class", "world leading", "number one",
        "top rated", "award", "award winning", "unbeatable", "unrivalled", "unrivaled", "unmatched", "luxury",
        "luxurious", "high end", "high quality", "top quality", "premium quality", "best selling", "bestseller",
        "iconic", "legendary", "famous", "popular", "loved by", "trusted", "professional grade", "state of the art",
        "cutting edge", "revolutionary", "innovative", "exclusive", "guaranteed", "guarantee", "warranty",
        "flawless", "superior", "exceptional", "unparalleled", "timeless",
    ),
    # Seasons, weather and activities that can be wrong ("a down parka made for warm days"); praise
    # that cannot ("for the everyday", "a thoughtful gift") is left alone.
    "use": (
        "warm days", "cold days", "hot days", "rainy days", "sunny days", "chilly days", "warm weather",
        "cold weather", "hot weather", "wet weather", "summer", "summery", "winter", "wintry", "autumn", "autumnal",
        "beach", "gym", "workout", "hiking", "camping", "party", "wedding", "date night", "night out", "evening wear",
        "outdoors", "the outdoors", "adventure", "adventures", "evening", "evenings",
    ),
    # Where it comes from and who made it: "bamboo is a material from the forest".
    "origin": (
        "forest", "farm", "locally", "sourced", "imported", "artisan", "artisans", "craftsmen", "craftspeople",
        "heritage", "traditional", "tradition", "family run", "small batch",
    ),
    # How it is made, when the attributes do not say: "an extra layer of borosilicate", "woven in".
    "construction": (
        "layer of", "extra layer", "layered", "woven", "handwoven", "knitted", "hand knitted", "hand stitched",
        "hand finished", "moulded", "molded", "forged", "welded", "lacquered", "varnished", "coated",
    ),
}
# Words that say the text is about the task, not the product.
META_PATTERNS = re.compile(
    r"\b(?:information|details|facts|attributes|data) (?:provided|given|above|below|listed)\b|\bthe (?:list|facts|"
    r"attributes|prompt|input|instructions?) (?:above|below|given|provided)?\b|\bas an ai\b|\blanguage model\b|"
    r"\bthis is (?:just )?(?:one|an) example\b|\bproduct description\b|\bhere(?: is|'s) (?:a|the|your) (?:product )?"
    r"(?:description|text|copy)\b|"
    r"\bword count\b|\bas requested\b|\bi hope\b|\bi have\b|\bi've\b|\bnote:|\bin (?:about )?\d+ words\b|"
    r"\busing only\b|\bdescription of\b",
    re.I,
)
# "Key: value" facts written as a label instead of prose.
KEY_VALUE = re.compile(r"(?:^|\s)(?:price|colou?rs?|materials?|sizes?|features?|highlights|brand|category|audience)\s*:\s", re.I)
# The short fact sentences a template appends after the prose ("It comes in white. Price: 28 USD.
# Made for Women."): two or more of them in a row at the end of a text are a template tail.
_TAIL_SENTENCE = re.compile(
    r"^(?:it comes in [^.]{1,40}|(?:it is )?made for [^.]{1,40}|available in (?:sizes? )?[^.]{1,40}|"
    r"it belongs to our [^.]{1,40} range|it is made (?:of|from) [^.]{1,40}|(?:price|colou?r|material|sizes?|"
    r"features?|highlights|audience)\s*:[^.]{1,60}|this is (?:the |an? )?[^.]{1,40})\.?$",
    re.I,
)


def template_tail(text: str) -> str | None:
    """The template tail ending ``text`` (two or more short fact sentences), or None."""
    sentences = sentences_split(text)
    tail: list[str] = []
    for sentence in reversed(sentences):
        if len(sentence.split()) <= 10 and _TAIL_SENTENCE.match(sentence.strip()):
            tail.insert(0, sentence)
        else:
            break
    return " ".join(tail) if len(tail) >= 2 and len(tail) < len(sentences) else None


COMPARISON = re.compile(r"\b(?:\w+er|more \w+|less \w+) than\b|\bcompared (?:to|with)\b|\bunlike (?:other|most|any)\b|"
                        r"\b(?:than|like) ever\b|\boutperforms?\b|\bbeats (?:the|any|every|most|other)\b", re.I)
# Currencies as written, to their ISO codes ("$" is any dollar).
_CURRENCY_NAMES = {
    "$": "$", "usd": "USD", "dollar": "$", "dollars": "$", "bucks": "$", "€": "EUR", "eur": "EUR", "euro": "EUR",
    "euros": "EUR", "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "¥": "JPY",
    "jpy": "JPY", "yen": "JPY", "sek": "SEK", "kr": "KR", "nok": "NOK", "dkk": "DKK", "chf": "CHF", "cad": "CAD",
    "aud": "AUD", "nzd": "NZD", "inr": "INR", "rs": "INR", "rupees": "INR", "₹": "INR",
}
_MONEY = re.compile(
    r"(?P<pre>[$€£¥₹]|\b(?:usd|eur|gbp|jpy|sek|nok|dkk|chf|cad|aud|nzd|inr|rs\.?)\b)\s?(?P<a>\d[\d,]*(?:\.\d+)?)"
    r"|(?P<b>\d[\d,]*(?:\.\d+)?)\s?(?P<post>usd|eur|gbp|jpy|sek|nok|dkk|chf|cad|aud|nzd|inr|kr|dollars?|euros?|"
    r"pounds?(?:\s+sterling)?|yen|rupees|bucks)\b",
    re.I,
)
# A part after one of these is where the product goes, not a part of it ("a simple addition to your shelf").
_PLACE_CUES = frozenset("on in onto into to at by beside above below beneath behind across over under near from your their".split())
_NAME_TOKEN = re.compile(r"(?<![\w'’-])([A-Z][a-z]+(?:[-'’][A-Za-z]+)?)(?![\w])")
# Capitalised words that are not names (a sentence may start any of them; these also mid-sentence).
_NOT_NAMES = frozenset(
    {"I", "OK"}
    | {d + s for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday") for s in ("", "s")}
    | {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
       "December"}
)


def _phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tuple(words(phrase))


_STRICT_PHRASES: list[tuple[str, tuple[str, ...]]] = sorted(
    ((kind, _phrase_tokens(p)) for kind, phrases in STRICT_TERMS.items() for p in phrases),
    key=lambda item: -len(item[1]),
)


def _currency_iso(name: str) -> str:
    return _CURRENCY_NAMES.get(name.lower().rstrip(".").split()[0], name.upper())


def _currency_matches(written: str, given: str) -> bool:
    if written == given:
        return True
    return written == "$" and given.endswith("D") or given == "$" and written.endswith("D") or {written, given} <= {"KR", "SEK", "NOK", "DKK"}


def _given_money(attributes: Mapping[str, object]) -> dict[str, set[str]]:
    """number -> the currencies the attributes give it in."""
    money: dict[str, set[str]] = {}
    for key, value in attributes.items():
        for item in attribute_items(key, value):
            for match in _MONEY.finditer(item):
                amount = match.group("a") or match.group("b")
                currency = _currency_iso(match.group("pre") or match.group("post"))
                for number in _numbers(amount.replace(",", "")):
                    money.setdefault(number, set()).add(currency)
    return money


def _strict_claims(sentence: str, allowed: _Allowed, *, first_word_is_start: bool = True) -> list[tuple[str, str]]:
    """(type, claim) pairs of the strict vocabularies, names, money, comparisons, meta-text and
    template tails in one sentence."""
    found: list[tuple[str, str]] = []
    ws = words(sentence)
    used = [False] * len(ws)
    for kind, phrase in _STRICT_PHRASES:
        n = len(phrase)
        if not n:
            continue
        for i in range(len(ws) - n + 1):
            if any(used[i : i + n]) or tuple(ws[i : i + n]) != phrase:
                continue
            content = [w for w in phrase if w not in STOPWORDS]
            if content and all(w in allowed.words for w in content):
                continue
            window = ws[max(0, i - 3) : i]
            if kind == "part" and _PLACE_CUES & set(window) and not {"its", "their"} & set(window):
                continue  # "to your shelf" is where it goes; "on its shoulder strap" is a part of it
            for j in range(i, i + n):
                used[j] = True
            found.append((kind, " ".join(phrase)))
    # Proper names: capitalised words past the sentence's first word that the input does not hold.
    tokens = list(_NAME_TOKEN.finditer(sentence))
    leading = len(sentence) - len(sentence.lstrip(" \"'(“‘-•*"))
    for match in tokens:
        word = match.group(1)
        if first_word_is_start and match.start() <= leading:
            continue
        folded = words(word)
        if word in _NOT_NAMES or not folded or all(w in allowed.words for w in folded):
            continue
        if re.search(r"(?<![\w])" + re.escape(word.lower()) + r"(?![\w])", allowed.raw):
            continue  # as the input writes it ("Power Bank", folded to one word elsewhere)
        found.append(("name", word))
    # Money: a number in a currency the attributes do not give it in.
    for match in _MONEY.finditer(sentence):
        amount = match.group("a") or match.group("b")
        currency = _currency_iso(match.group("pre") or match.group("post"))
        for number in _numbers(amount.replace(",", "")):
            given = allowed.money.get(number)
            if given and not any(_currency_matches(currency, g) for g in given):
                found.append(("currency", match.group(0).strip()))
            elif not given and allowed.money:  # the input gives prices, not this one: "EU 39" said as "39 EUR"
                found.append(("number", match.group(0).strip()))
    # Bare numbers the attributes do not hold (one with a unit or a currency is a claim of its own).
    spans = [m.span() for pattern in (_NUMBER_UNIT, _CURRENCY) for m in pattern.finditer(sentence)]
    for match in _NUMBER.finditer(sentence):
        if any(a <= match.start() < b for a, b in spans):
            continue
        if _numbers(match.group(0)) - allowed.numbers:
            found.append(("number", match.group(0)))
    for match in re.finditer(r"\b(two|three|four|five|six|seven|eight|nine|ten|twelve)\b", sentence, re.I):
        if _WORD_NUMBERS[match.group(1).lower()] not in allowed.numbers:
            found.append(("number", match.group(0)))  # "Nine pieces of linen make up the shirt"
    for match in re.finditer(r"\b([a-z]+)-free\b", sentence, re.I):
        if match.group(1).lower() not in allowed.words:
            found.append(("technology", match.group(0)))  # "it is battery-free"
    first = re.match(r"\s*[\"'“‘(]?([A-Z][a-z]+)['’]s\b", sentence)
    if first_word_is_start and first and first.group(1).lower() not in allowed.words \
            and first.group(1).lower() not in STOPWORDS | _CONTRACTED and first.group(1) not in _NOT_NAMES:
        found.append(("name", first.group(1)))  # "Cheleach's Chelsea Boot": an invented owner
    if re.search(r"\d+\s?%\s?off\b", sentence, re.I):
        found.append(("discount", re.search(r"\d+\s?%\s?off\b", sentence, re.I).group(0)))
    for match in COMPARISON.finditer(sentence):
        if not all(w in allowed.words for w in words(match.group(0)) if w not in STOPWORDS):
            found.append(("comparison", match.group(0)))
    for match in META_PATTERNS.finditer(sentence):
        found.append(("meta", match.group(0)))
    if KEY_VALUE.search(sentence.strip()) and not sentence.lstrip().startswith(("•", "-", "*")):  # bullets are lists
        found.append(("template", sentence.strip()[:60]))
    return found


# A run of capitalised words, a product's name as a text writes it ("Bop Bar Stool", "Steadi M3",
# "Cirrus 55"): a capitalised word, then capitalised words, numbers or model codes.
_NAME_RUN = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*(?:\s+(?:[A-Z][\w'’-]*|\d[\w.]*))+")
_RUN_OPENERS = frozenset({"the", "a", "an", "it", "its", "this", "these", "our", "your", "meet", "with", "and", "for",
                          "in", "on", "from", "by", "at", "to", "of", "or", "so", "if", "when", "each", "every"})


def name_runs(text: str) -> list[str]:
    """The runs of two or more capitalised words ``text`` writes (a product's name: "Everyday Link
    Bracelet", "Steadi M3"), their opening article or pronoun left out ("The", "Its")."""
    runs = []
    for sentence in sentences_split(text):
        for match in _NAME_RUN.finditer(sentence):
            parts = match.group(0).split()
            while parts and parts[0].lower() in _RUN_OPENERS | STOPWORDS:
                parts = parts[1:]
            if len(parts) >= 2:
                runs.append(" ".join(parts))
    return runs


def altered_names(text: str, source: str) -> list[str]:
    """Names ``text`` writes that ``source`` does not: a run of two or more capitalised words whose
    words, read in order, are no run of the source's (case aside, so "sage green" may open a
    sentence as "Sage green"). A rewrite that joins a brand to a material or a colour ("the Jetset
    Satin" of the Jetset Bomber in satin, "Larkspun Green" of Larkspun's shirt in sage green)
    renames the product: every word is the source's, the name is not. A run's opening article or
    pronoun ("The", "Its") is not part of the name."""
    given = " " + " ".join(words(source)) + " "
    return [run for run in name_runs(text) if (folded := " ".join(words(run))) and f" {folded} " not in given]


# What a sentence says the product is: "<subject> is a/an [words] <noun>", the noun phrase ending
# where a preposition, a relative word or a verb form begins ("is a jacket in red", "is a smart
# watch that ..."). Words a product of any type is called are no type ("a pair of", "a piece").
_TYPE_CLAIM = re.compile(r"\b(?:is|are)\s+(?:a|an)\s+((?:pair|set|pack|range|kind|type)\s+of\s+)?([^,.;:!?()]+)")
_TYPE_PHRASE_END = frozenset(
    "in of with for from by that which who to and or but at on as so made built cut shaped designed crafted "
    "finished priced sold dressed rated ready available".split()
)
_NO_TYPE = frozenset(
    "pair set pack piece kit selection duo outfit device unit tool mix run head top light case cover stand holder "
    "machine maker flat isolate bank can wash note game food drink house kitchen gym thing item product way choice "
    "classic essential favourite staple companion option design gift".split()
)


def claimed_types(text: str, types: frozenset[str] | set[str]) -> list[str]:
    """The product types ``text`` says its product is: the last word of each "is a/an ..." noun
    phrase that is one of ``types`` (normalised as ``words``: singular, synonyms merged), less
    the words any product may be called (``_NO_TYPE``)."""
    out = []
    for match in _TYPE_CLAIM.finditer(text):
        phrase = []
        for raw in match.group(2).split():
            if raw.lower() in _TYPE_PHRASE_END:
                break
            phrase.append(raw)
        if not phrase:
            continue
        last = words(phrase[-1].split("-")[-1])
        if last and last[-1] in types and last[-1] not in _NO_TYPE:
            out.append(last[-1])
    return out


def changed_types(text: str, source: str, types: frozenset[str] | set[str]) -> list[str]:
    """Types ``text`` says its product is (``claimed_types``) that ``source`` never names, nor a
    synonym of one it names: "The Bop Bar Stool ... is a floor mat", "... is a smart watch"."""
    given = set(words(source))
    for group in _CATEGORY_SYNONYMS:
        if given & group:
            given |= group
    return [noun for noun in claimed_types(text, types) if noun not in given]


# --- sense: an attribute's value used as what it is -------------------------------------------
# A small model states every fact and still writes nonsense with it: "it measures 65 EUR" (a price
# as a size), "finished with a suede brush" (a care instruction as a finish), "a goody-goody welted
# sole" (a feature's name altered), "45 cm" for a bag of "45 litres". Each is a claim of its own.

_UNIT_CANON = {
    "l": "l", "litre": "l", "liter": "l", "ml": "ml", "cl": "cl", "mm": "mm", "cm": "cm", "m": "m", "km": "km",
    "in": "in", "inch": "in", "inche": "in", '"': "in", "”": "in", "ft": "ft", "feet": "ft", "oz": "oz", "g": "g",
    "kg": "kg", "lb": "lb", "pound": "lb", "gb": "gb", "tb": "tb", "mb": "mb", "mah": "mah", "wh": "wh", "w": "w",
    "watt": "w", "v": "v", "volt": "v", "hz": "hz", "khz": "khz", "mhz": "mhz", "ghz": "ghz", "hour": "h", "hr": "h",
    "h": "h", "min": "min", "minute": "min", "day": "day", "week": "week", "month": "month", "year": "year",
    "yr": "year", "db": "db", "lumen": "lumen", "rpm": "rpm", "metre": "m", "meter": "m", "centimetre": "cm",
    "centimeter": "cm", "millimetre": "mm", "millimeter": "mm", "kilometre": "km", "kilometer": "km",
    "millilitre": "ml", "milliliter": "ml", "gram": "g", "kilogram": "kg", "kilo": "kg", "ounce": "oz",
}
_MASS_UNITS = frozenset({"g", "kg", "lb", "oz"})
_VOLUME_UNITS = frozenset({"ml", "cl", "l"})
_MEASURE_VERB = re.compile(r"\b(weigh(?:s|ing)?|measur(?:es|ing))\s+(?:about\s+|just\s+|only\s+|up\s+to\s+)?"
                           r"(\d[\d.,]*)\s*([a-zA-Z]+)?", re.I)
_MEASURE_UNITS = frozenset({"mm", "cm", "m", "km", "ft", "ml", "cl", "l", "oz", "g", "kg", "lb"})
# The nouns of measured keys: a value of one key said as another's ("a 1.4 kg capacity" for a weight).
_KEY_NOUNS = frozenset("capacity weight length width height depth diameter volume price".split())
# Words that, just before a price, make it a measure ("measures 65 EUR", "a capacity of 39 EUR").
_MEASURE_WORDS = frozenset("measures measuring weighs weighing holds capacity lasts".split())
# Before a care or warranty value, these say it is one ("they are dishwasher safe", "asks for
# professional cleaning only"); "it" stands for "it's" (folded).
_ROLE_LEADS = frozenset("is are be been stays stay remains remain it they they're for".split())
_ARTICLES = frozenset({"a", "an", "the"})
# A value of these keys must be said as what it is: with one of its cue words outside the value
# itself, or as an instruction the sentence starts with ("Wipe clean after use.").
ROLE_CUES = {
    "care": frozenset(
        "care caring cared clean cleaning cleaned wash washing washed washable look looking maintain maintenance "
        "keep keeping instruction treat treated condition conditioning launder laundering".split()
    ),
    "warranty": frozenset("warranty warranted guarantee guaranteed covered cover backed".split()),
}


_GENERIC_VERBS = frozenset("use using do not avoid".split())


def _unit_canon(unit: str) -> str | None:
    unit = unit.lower()
    return _UNIT_CANON.get(unit) or _UNIT_CANON.get(singular(unit))


def _given_units(text: str) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for match in _NUMBER_UNIT.finditer(text):
        unit = _unit_canon(match.group(2))
        if unit:
            for number in _numbers(match.group(1)):
                units.setdefault(number, set()).add(unit)
    return units


def _sense_claims(sentence: str, allowed: _Allowed) -> list[tuple[str, str]]:
    """(type, claim) pairs for attribute values used as something else: ``unit`` (a number with
    another unit than the input gives it, a price as a measure), ``role`` (a care or warranty value
    without saying it is one), ``altered`` (an attribute's words with one of them replaced)."""
    found: list[tuple[str, str]] = []
    for match in _NUMBER_UNIT.finditer(sentence):
        unit = _unit_canon(match.group(2))
        for number in _numbers(match.group(1)):
            given = allowed.units.get(number)
            if unit and given and unit not in given and not (unit == "m" and "min" in given):
                found.append(("unit", match.group(0).strip()))
            elif unit in _MEASURE_UNITS and not given and number in allowed.numbers:
                found.append(("unit", match.group(0).strip()))  # sizes 40-46 written as "43 centimetres"
        after = re.findall(r"^\s+([a-z]+)", sentence[match.end() :].lower())  # the next word, no punctuation between
        if after and singular(after[0]) in _KEY_NOUNS:
            number = next(iter(_numbers(match.group(1))), "")
            keys = {k for k, item in allowed.items if number and number in item}
            noun = singular(after[0])
            if keys and not any(noun in k.split() or noun in item for k, item in allowed.items if k in keys):
                found.append(("role", f"{match.group(0).strip()} {after[0]}"))
    for match in re.finditer(r"\bmeasures\b((?:\s+\S+){1,3})", sentence, re.I):
        if not re.search(r"\d", match.group(1)):
            found.append(("unit", match.group(0).strip()))  # "measures one size", "measures S, M and L"
    for match in _MONEY.finditer(sentence):
        after = re.findall(r"^\s+([a-z]+)", sentence[match.end() :].lower())
        if after and singular(after[0]) in _KEY_NOUNS | {"warranty", "battery", "guarantee"} and after[0] != "price":
            found.append(("role", f"{match.group(0).strip()} {after[0]}"))  # "runs on a 139 EUR warranty"
        before = _TOKEN.findall(sentence[: match.start()].lower())[-3:]
        if _MEASURE_WORDS & set(before):
            found.append(("unit", f"{' '.join(before)} {match.group(0).strip()}"))
    for match in _MEASURE_VERB.finditer(sentence):
        verb, unit = match.group(1).lower(), _unit_canon(match.group(3) or "")
        numbers = _numbers(match.group(2))
        holders = {k for k, item in allowed.items for n in numbers if n in item}
        if verb.startswith("weigh"):
            if (unit and unit not in _MASS_UNITS) or (holders and not any("weight" in k for k in holders)):
                found.append(("unit", match.group(0).strip()))  # "it weighs 50 kg" for a capacity of 50 kg
        elif unit in _MASS_UNITS | _VOLUME_UNITS:
            found.append(("unit", match.group(0).strip()))  # "it measures 68 g"
    ws = words(sentence)
    for key, item in allowed.items:
        content = [w for w in item if w not in STOPWORDS]
        if not content:
            continue
        inside_other = any(other != item and _phrase_in(item, list(other)) for _, other in allowed.items)
        if len(item) >= 2 and key not in ("name", "brand", "category") and not inside_other and sum(tuple(ws[i : i + len(item)]) == item for i in range(len(ws))) >= 2:
            found.append(("repeat", " ".join(item)))  # "Weighted pieces include weighted pieces"
        cues = ROLE_CUES.get(key)
        if cues and all(w in ws for w in content if w not in _GENERIC_VERBS) and not (set(ws) - set(item)) & cues:
            if not _role_said(item, content, ws, sentence):
                found.append(("role", f"{key}: {' '.join(item)}"))
        for i in ([] if item[0][:1].isdigit() else _phrase_starts(item, ws)):  # "a length of full-grain leather"
            j = i - 1
            while j >= 0 and ws[j] in _ARTICLES:
                j -= 1
            if j >= 1 and ws[j] == "of" and ws[j - 1] in _KEY_NOUNS and ws[j - 1] not in key.split() \
                    and ws[j - 1] not in item:
                found.append(("role", f"{ws[j - 1]} of {' '.join(item)}"))
        if len(item) >= 2 and not _phrase_in(item, ws) and not item[-2][:1].isdigit():
            for size in range(len(item) - 1, 1, -1):  # the longest tail of the item the sentence has
                tail = item[-size:]
                starts = [i for i in range(len(ws) - size + 1) if tuple(ws[i : i + size]) == tail]
                for i in starts:
                    prev = ws[i - 1] if i else ""
                    if prev.isalpha() and prev not in STOPWORDS and prev not in allowed.words:
                        found.append(("altered", f"{prev} {' '.join(tail)} (given: {' '.join(item)})"))
                if starts:
                    break
    found += _swapped_roles(sentence, ws, allowed)
    return found


_COLOUR_MADE_OF = re.compile(
    r"\bcolou?r\s+(?:is\s+|was\s+)?(?:rendered|made|woven|crafted|formed|created|drawn|taken|cut)\s+(?:from|of|in|out)\b",
    re.I,
)
_MAKER_WORDS = frozenset("brand company label maker house studio".split())
# "made from <colour>" where no material follows it: a colour said as what the thing is made of.
_MADE_OF_WORD = re.compile(r"\bmade (?:from|of) (?:an? |the )?((?:\w+[ -]){0,2}\w+)", re.I)
# colour names that are also what things are made of ("made from stone", "made of cherry")
_MATERIALS_TOO = frozenset("stone sand charcoal coral cherry olive slate clay concrete cork bamboo jade pearl amber marble "
                           "granite terracotta rattan teak mahogany oak ash walnut copper bronze brass gold silver".split())
_SHADES = frozenset({"dark", "light", "pale", "deep", "bright", "soft", "matt", "matte", "rich", "warm", "cool"})
_MEASURE_FILLERS = frozenset(words("room space storage fun goodness whatever use life play playtime wear"))
_MADE_OF_COLOUR = re.compile(r"\bmade (?:from|of) (?:a |an |the )?(?:\w+ )?colou?r\b", re.I)
# Who it is for, when the attributes say someone else: "a pair of boots for runners".
_FOR_PEOPLE = re.compile(
    r"\b(?:for|designed for|made for)\s+(?:the\s+)?(?:little\s+|young\s+)?(ladies|gentlemen|women|men|girls|boys|kids|"
    r"children|teens|teenagers|adults|babies|toddlers|runners|cyclists|hikers|climbers|swimmers|athletes|gamers|"
    r"students|commuters|travellers|travelers|professionals|chefs|cooks|gardeners|parents|mums|dads|seniors)\b",
    re.I,
)
_CONTRACTED = frozenset("it there here that what who where how let today everyone everything nothing sun".split())
_AGED = re.compile(r"\bag(?:ed|es)\s+(\d+(?:\s*[-–]\s*\d+)?)", re.I)
# An adjective of the attributes said as a thing: "an IP67 waterproof", "made for the stovetop-safe".
_ADJECTIVE_AS_NOUN = re.compile(
    r"\b(?:a|an|the)\s+(?:[\w-]+\s+)?[\w-]*(?:-safe|proof|-free|-resistant|-ready|-compatible)(?=\s*(?:[,.;!?]|and\b|$))",
    re.I,
)
# A measure, a duration or a battery said with the words of a price or a colour.
_AVAILABLE_AS = re.compile(r"\b(comes?|is available|are available|available)\s+(?:in|at|for)\s+((?:a\s+)?battery\b|"
                           r"\d[\d.,]*\s*[a-z]+)", re.I)


# What a thing is made of or comes from, just before an item: a feature there is a relation nobody
# gave ("Its quick-drying waffle weave comes from a hanging loop").
_FROM_LEAD = re.compile(r"\b(?:comes?|came|made|derived|crafted|woven|cut)\s+(?:from|of|out\s+of)(?:\s+(?:a|an|the|its))?$")


def _swapped_roles(sentence: str, ws: list[str], allowed: _Allowed) -> list[tuple[str, str]]:
    """(type, claim) for one attribute said as another (``role``: a material as the colour, "Suede
    is the colour"; a colour as the material, "made from dark brown"; the name as the brand, "from
    the Insulated Bottle brand"; the brand as the product, "Kestrel is a water bottle"; a measure in
    a price's words, "available at 7 litres"; sizes as ages; an adjective as a thing, "an IP67
    waterproof"; a measure of a feature, "1 litre of gooseneck"; a feature as what another comes
    from, "comes from a hanging loop"), what a measure holds that nobody
    gave (``number``: "45 litres of juice") and an audience nobody gave (``audience``: "boots for
    runners")."""
    found: list[tuple[str, str]] = []
    for pattern in (_COLOUR_MADE_OF, _MADE_OF_COLOUR, _ADJECTIVE_AS_NOUN):
        found += [("role", match.group(0)) for match in pattern.finditer(sentence)]
    for match in _MADE_OF_WORD.finditer(sentence):  # "made from graphite" of "The colour is graphite"
        said = [w for w in words(match.group(1)) if w not in _SHADES]
        after = next((w for w in said if w not in COLOURS), "")  # "sage green linen": what follows the colours
        if said and said[0] in COLOURS and said[0] not in MATERIALS and said[0] not in _MATERIALS_TOO and after not in MATERIALS \
                and not re.search(r"\bmade (?:from|of) (?:\w+ )?" + re.escape(said[0]) + r"\b", allowed.folded):
            found.append(("role", f"made of {said[0]} (a colour)"))
    for match in _AVAILABLE_AS.finditer(sentence):  # "available at 7 litres", "comes in a battery life of 70 days"
        said = match.group(2)
        numbers = _numbers(said)
        keys = {k for k, item in allowed.items for n in numbers if n in item}
        if "battery" in said.lower() or any(re.search(r"capacity|battery|weight|warranty|volume|life|power|time|dur", k)
                                            for k in keys):
            found.append(("role", match.group(0).strip()))
    for match in _AGED.finditer(sentence):  # "made for men aged 6-12" where 6-12 are UK sizes
        holders = [(k, item) for k, item in allowed.items for n in _numbers(match.group(1)) if n in item]
        if holders and not any("age" in k or {"age", "aged", "year"} & set(item) for k, item in holders):
            found.append(("role", match.group(0)))
    for i, w in enumerate(ws[:-3]):  # "<number> <unit> of <what>"
        if not (w[:1].isdigit() and ws[i + 2] == "of" and _NUMBER_UNIT.search(f"{w} {ws[i + 1]}")):
            continue
        held = ws[i + 3]
        if held in allowed.feature_words:
            found.append(("role", " ".join(ws[i : i + 4])))  # "1 litre of gooseneck": a measure of a feature
        elif held not in STOPWORDS | _MEASURE_FILLERS | allowed.words | allowed.key_words:
            found.append(("number", " ".join(ws[i : i + 4])))  # "it holds 45 litres of juice"
    for match in _FOR_PEOPLE.finditer(sentence):  # "a pair of boots for runners" (audience: men)
        if not set(words(match.group(1))) <= allowed.words and not allowed.ages \
                and not re.match(r"\s+ag(?:ed|es)\b", sentence[match.end() :]):
            found.append(("audience", match.group(0)))
    for key, item in allowed.items:
        n = len(item)
        for i in _phrase_starts(item, ws):
            after = ws[i + n : i + n + 3]
            if key in ("colour", "color") and i >= 2 and ws[i - 2 : i] in (["made", "from"], ["made", "of"]) \
                    and not set(item) <= allowed.material_words:
                found.append(("role", f"made of {' '.join(item)} (a colour)"))  # "made from dark brown"
            elif key == "material" and (after[:1] == ["color"] or (after[:1] == ["is"] and "color" in ws[i + n + 1 : i + n + 4])):
                found.append(("role", f"{' '.join(item)} as the colour"))
            elif key in ("features", "feature", "fit") and _FROM_LEAD.search(" ".join(ws[max(0, i - 4) : i])) \
                    and not set(item) & allowed.material_words:
                # "waffle weave comes from a hanging loop"; "Made from a true to size"
                found.append(("role", f"from {' '.join(item)} (a {'fit' if key == 'fit' else 'feature'})"))
            elif key == "name" and after[:1] == ["brand"]:
                found.append(("role", f"{' '.join(item)} as the brand"))
            elif key == "brand" and (i == 0 or ws[i - 1] in ("and", "but")) and after[:1] == ["is"] \
                    and after[1:2] in (["a"], ["an"]) and not _MAKER_WORDS & set(ws[i + n + 2 : i + n + 6]):
                found.append(("role", f"{' '.join(item)} as the product"))
    return found


def _role_said(item: tuple[str, ...], content: list[str], ws: list[str], sentence: str) -> bool:
    """A care/warranty value said as an instruction or a property: the sentence or a clause starts
    with it ("Machine wash cold.", "..., store with cedar shoe trees"), or it follows "is", "are",
    "for"."""
    if ws and ws[0] == item[0]:
        return True
    if re.search(r"[,;:]\s*" + re.escape(item[0]) + r"\b", _fold(sentence)):
        return True
    key_word = next((w for w in content if w not in _GENERIC_VERBS), None)
    for i, w in enumerate(ws):
        if w != key_word:
            continue
        j = i - 1
        while j >= 0 and (ws[j] in _ARTICLES or ws[j] in item):
            j -= 1
        if j >= 0 and ws[j] in _ROLE_LEADS:
            return True
    return False


def _phrase_starts(phrase: tuple[str, ...], ws: list[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(ws) - n + 1) if tuple(ws[i : i + n]) == phrase]


def _phrase_in(phrase: tuple[str, ...], ws: list[str]) -> bool:
    n = len(phrase)
    return any(tuple(ws[i : i + n]) == phrase for i in range(len(ws) - n + 1))


def _size_token_is_word(sentence: str, match: re.Match) -> bool:
    """"M" in "M&M", "L" as a list letter, "S" after an apostrophe: not a size."""
    before = sentence[max(0, match.start() - 2) : match.start()]
    token = match.group(1)
    if token in ("S", "M", "L") and (before.endswith(("'", "’")) or before.strip().endswith(("(",))):
        return True
    return False


def unsupported_claims(
    text: str, attributes: Mapping[str, object], *, extra_texts: Sequence[str] = (), known_brands: Iterable[str] = ()
) -> list[Claim]:
    allowed = _allowed(attributes, extra_texts, known_brands)
    claims: list[Claim] = []
    for sentence in sentences_split(text):
        claims.extend(_sentence_claims(sentence, allowed))
    return claims


# --- the check -------------------------------------------------------------------------------


@dataclass
class CopyCheck:
    coverage: float
    covered: list[str]
    missing: list[str]
    unsupported: list[dict]
    repetition: str | None
    passed: bool
    facts: int = 0
    template_tail: str | None = None
    extras: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("extras")
        data.update(self.extras)
        return data


def copy_check(
    text: str,
    attributes: Mapping[str, object],
    *,
    extra_texts: Sequence[str] = (),
    known_brands: Iterable[str] = (),
    repetition_text: str | None = None,
    min_coverage: float = 1.0,
) -> CopyCheck:
    """Check ``text`` (a candidate's title, description and bullets together) against the
    attributes. ``extra_texts`` are other words the text may use (an audience segment's
    description); ``repetition_text`` is the prose part, checked for loops and for a template
    tail (default: all of ``text``). Passed: coverage at least ``min_coverage``, no unsupported
    claim (strict: see ``STRICT_TERMS``), no repeated 4-gram, no template tail."""
    prepared = _Text.of(text)
    facts = attribute_facts(attributes)
    covered, missing = [], []
    for fact in facts:
        (covered if fact_mentioned(fact, prepared) else missing).append(fact.label())
    coverage = len(covered) / len(facts) if facts else 1.0
    claims = unsupported_claims(text, attributes, extra_texts=extra_texts, known_brands=known_brands)
    prose = text if repetition_text is None else repetition_text
    repetition = repeated_ngram_text(prose)
    tail = template_tail(prose)
    return CopyCheck(
        coverage=round(coverage, 4),
        covered=covered,
        missing=missing,
        unsupported=[asdict(c) for c in claims],
        repetition=repetition,
        passed=coverage >= min_coverage - 1e-9 and not claims and repetition is None and tail is None,
        facts=len(facts),
        template_tail=tail,
    )


def claims_filter(
    text: str, attributes: Mapping[str, object], *, extra_texts: Sequence[str] = (), known_brands: Iterable[str] = ()
) -> tuple[str, list[Claim], int]:
    """``text`` without the sentences that hold an unsupported claim or repeat a word 4-gram of
    what is kept before them. Returns (text, the claims removed, sentences dropped)."""
    allowed = _allowed(attributes, extra_texts, known_brands)
    kept: list[str] = []
    removed: list[Claim] = []
    dropped = 0
    for sentence in sentences_split(text):
        claims = _sentence_claims(sentence, allowed)
        if claims:
            removed.extend(claims)
            dropped += 1
            continue
        if repeated_ngram_text(" ".join([*kept, sentence])) is not None:
            dropped += 1
            continue
        kept.append(sentence.strip())
    return " ".join(s for s in kept if s), removed, dropped


# --- grounding: every sentence says something the attributes hold ------------------------------
# A small model writes its own "tone" as sentences about nothing the product has ("Wear it on the
# Saturday train...", "...so it can be tucked away when your hand gets to work"): no claim a
# checker can name, and a reader would not publish them. Prose is kept where it states a fact.

MIN_GROUNDED_WORDS = 5  # a sentence cut shorter than this ("At 42 EUR.") is dropped whole
# Where a sentence's own-words tail starts ("... a pull tab that lets you change the front cover").
_SUBORDINATE = re.compile(
    r"\s(?:that|which|who|so|when|whenever|while|until|as if|to let|to keep|to make|to help|for those|for when|"
    r"and (?:keeps|lets|makes|brings|gives|helps|is ready|ready))\s", re.I
)


def _segment_grounded(segment: str, facts: Sequence[Fact], input_words: set[str] | None = None) -> bool:
    """The segment states a fact; with ``input_words`` (for a clause), also when most of its
    content words are the input's ("..., dry flat" of care "hand wash cold, dry flat")."""
    prepared = _Text.of(segment)
    if any(fact_mentioned(f, prepared) for f in facts):
        return True
    if input_words is None:
        return False
    content = [w for w in prepared.words if w not in STOPWORDS]
    return bool(content) and sum(w in input_words for w in content) * 2 > len(content)


def ungrounded_cut(text: str, attributes: Mapping[str, object]) -> tuple[str, list[dict]]:
    """``text`` without its sentences that state no attribute, and each kept sentence without the
    trailing comma-separated parts that state none ("..., ready to turn up wherever the day
    leads."). Returns (text, what was cut: ``{"type": "ungrounded", "sentence"|"clause": ...}``)."""
    facts = attribute_facts(attributes)
    input_words = set(words(attributes_text(attributes)))
    kept: list[str] = []
    cut: list[dict] = []
    for sentence in sentences_split(text):
        if not _segment_grounded(sentence, facts):
            cut.append({"type": "ungrounded", "sentence": sentence[:300]})
            continue
        body = sentence.rstrip()
        end = body[-1] if body[-1:] in ".!?" else "."
        body = body.rstrip(".!?")
        parts = body.split(", ")
        clauses = []
        while len(parts) > 1 and not _segment_grounded(parts[-1], facts, input_words):
            clauses.append({"type": "ungrounded", "clause": parts.pop()[:300]})
        # "... and a pull tab that lets you change the front cover whenever the day calls for it"
        last = parts[-1]
        for match in _SUBORDINATE.finditer(last):
            tail = last[match.start() :]
            if match.start() > 0 and not _segment_grounded(tail, facts, input_words):
                clauses.append({"type": "ungrounded", "clause": tail.strip()[:300]})
                parts[-1] = last[: match.start()]
                break
        if not clauses:
            kept.append(body + end)
            continue
        shortened = re.sub(r"[,;:\s]+$", "", ", ".join(parts))
        if len(shortened.split()) < MIN_GROUNDED_WORDS:
            cut.append({"type": "ungrounded", "sentence": sentence[:300]})
            continue
        cut.extend(reversed(clauses))
        kept.append(shortened + ".")
    return " ".join(kept), cut
