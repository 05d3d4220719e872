"""English (US) number and date words for ivr.prompts.words.

Cardinals follow US usage without "and" inside a number ("one hundred one"); "and" joins the
main unit and the cents ("eighteen dollars and fifty cents"). Dates read as "November
twenty-fifth"; years as people say them ("twenty twenty-five", "two thousand five").
"""

from __future__ import annotations

ZERO = "zero"
UNITS = ("", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES = ("thousand", "million", "billion")

_ORD_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

# currency -> (singular, plural) main unit, (singular, plural) fraction
CURRENCIES = {
    "USD": (("dollar", "dollars"), ("cent", "cents")),
    "EUR": (("euro", "euros"), ("cent", "cents")),
    "RUB": (("rouble", "roubles"), ("kopeck", "kopecks")),
    "UAH": (("hryvnia", "hryvnias"), ("kopiyka", "kopiykas")),
}


def below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{UNITS[hundreds]} hundred"] if hundreds else []
    if 10 <= rest <= 19:
        words.append(TEENS[rest - 10])
    elif rest:
        tens, units = divmod(rest, 10)
        if tens and units:
            words.append(f"{TENS[tens]}-{UNITS[units]}")
        else:
            words.append(TENS[tens] or UNITS[units])
    return " ".join(words)


def cardinal(n: int) -> str:
    if n == 0:
        return ZERO
    groups: list[str] = []
    scale = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            word = below_1000(group)
            groups.append(f"{word} {SCALES[scale - 1]}" if scale else word)
        scale += 1
    return " ".join(reversed(groups))


def ordinal(n: int) -> str:
    """"twenty-fifth", "first", "thirtieth" (the last word of the cardinal made ordinal)."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    prefix, dash, tail = last.rpartition("-")
    if tail in _ORD_IRREGULAR:
        tail = _ORD_IRREGULAR[tail]
    elif tail.endswith("y"):
        tail = tail[:-1] + "ieth"
    else:
        tail += "th"
    return f"{head}{sep}{prefix}{dash}{tail}"


def year(y: int) -> str:
    """How a year is said: 2025 "twenty twenty-five", 2005 "two thousand five", 1900 "nineteen hundred"."""
    century, rest = divmod(y, 100)
    if y % 1000 < 10:  # 2000-2009: "two thousand five"
        return cardinal(y)
    if rest == 0:
        return f"{cardinal(century)} hundred"
    if rest < 10:
        return f"{cardinal(century)} oh {cardinal(rest)}"
    return f"{cardinal(century)} {cardinal(rest)}"
