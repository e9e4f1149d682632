"""Cascade letters: who is written to for which index case, and the rendered PDFs/HTML.

Letters (Danish or English, from ``templates/letters/``):

* ``index``: to a living index case still in the region (for a child under 18: to a
  parent, see ``_index_letters``), with the FAMILY LETTER enclosed
  (a second page, also written on its own as ``family_<id>.pdf``). The family letter names
  nobody, so the index case can pass it to anyone, and it also covers relatives the
  region holds no record of.
* ``relative``: only where the region allows direct contact
  (``cascade.direct_contact``): one letter per living relative in the region with an
  address in ``contacts`` whose status is ``untested`` or ``tested`` (already diagnosed,
  moved, outside the region and deceased relatives are never written to). For a child
  (< 18 on the run date) the letter goes to a parent recorded in ``relations`` who is
  alive, in the region and has an address; one letter per recipient and index case
  covers the recipient and all their children. A parent who is an index case (of this or
  another family) is preferred and not written to again: their own index letter, which
  asks them to have their children tested, covers the child, and the other parent does
  not learn of the index case's diagnosis from us. A direct letter never names the
  index case (their diagnosis is theirs to share).

Each (index case, recipient) pair is written to once, ever: a letter is generated the
first night the pair appears (``sent_on``), and regenerated only by a rerun of that night.
Stricter still, a relative gets one direct letter in all: when several confirmed cases
share a relative (a cascade in progress), the first letter covers them all.
Language: the recipient's ``contacts.language``, else ``cascade.default_language``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple

import polars as pl
from markupsafe import Markup

from fh_screen.store import files
from fh_screen.outputs import render
from fh_screen.config import Settings
from fh_screen.ages import age_at

ADULT_AGE = 18  # under 18: the letter goes to a parent (legal age of majority in Denmark)
LETTERS_SUBDIR = "letters"
_MONTHS = {
    "da": ["januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november", "december"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
}
_TITLES = {
    "index": {"da": "FH i din familie", "en": "FH in your family"},
    "family": {"da": "Information til familien om FH", "en": "Information for the family about FH"},
    "relative": {"da": "Invitation til en kolesteroltest", "en": "An invitation to a cholesterol test"},
}


@dataclass(frozen=True)
class LetterPlan:
    """All letters ever written for the current index cases, and what covers each row.

    Attributes:
        letters: one row per (index_patient_id, recipient_id): kind, language, file,
            sent_on, about_self, n_children, and the address fields of the recipient.
        coverage: per (index_patient_id, relative_id): ``direct_letter`` (the recipient's
            own or parent's letter, or the index case's letter for the index case's child),
            ``family_letter`` and ``covered_on`` (the earliest of their dates).
    """

    letters: pl.DataFrame
    coverage: pl.DataFrame


def file_id(patient_id: str) -> str:
    """An id as a file-name part; altered ids get a hash suffix so two never collide.

    An id with a lower-case letter counts as altered too: on a case-insensitive share
    (Windows, macOS) ``abc`` and ``ABC`` would otherwise name the same file."""
    safe = files.safe_name(patient_id)
    if safe == patient_id and patient_id == patient_id.upper():
        return safe
    return f"{safe}-{hashlib.sha256(patient_id.encode('utf-8')).hexdigest()[:8]}"


def letter_file(kind: str, index_id: str, recipient_id: str | None = None) -> str:
    """``letters/<kind>_<index>[_<recipient>].pdf`` (relative to the run's output folder).

    The name is one that ``files.child_path`` keeps as it is, for the PDF and for its
    ``.html`` twin, so the path recorded in ``cascade.csv`` and ``cascade_letters`` is the
    file written: long ids are cut and given a hash of the whole name."""
    parts = [kind, file_id(index_id)] + ([file_id(recipient_id)] if recipient_id else [])
    stem = "_".join(parts)
    if len(stem) + len(".html") > files.MAX_NAME:
        stem = f"{stem[:40]}-{hashlib.sha256(stem.encode('utf-8')).hexdigest()[:16]}"
    return f"{LETTERS_SUBDIR}/{stem}.pdf"


def _file_expr(kind: str, index_col: str, recipient_col: str | None = None) -> pl.Expr:
    """``letter_file`` as an expression (the one definition of a letter's name), called
    once per distinct pair of ids."""
    columns = [index_col] + ([recipient_col] if recipient_col else [])

    def names(pairs: pl.Series) -> pl.Series:
        cache: dict[tuple, str | None] = {}
        out = []
        for row in pairs.to_list():
            key = tuple(row[c] for c in columns)
            if key not in cache:
                cache[key] = None if key[0] is None else letter_file(kind, *key)
            out.append(cache[key])
        return pl.Series(out, dtype=pl.Utf8)

    return pl.struct(columns).map_batches(names, return_dtype=pl.Utf8)


def _in_region(patients: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Living patients who have not moved out, on the run date."""
    day = pl.lit(as_of, dtype=pl.Date)
    return patients.filter(
        (pl.col("deceased_date").is_null() | (pl.col("deceased_date") > day))
        & (pl.col("moved_out_date").is_null() | (pl.col("moved_out_date") > day))
    )


def _index_letters(
    index: pl.DataFrame, living: pl.DataFrame, addressable: pl.DataFrame, links: pl.DataFrame, as_of: date
) -> pl.DataFrame:
    """The index-case letters: to the index case, or for a child to a parent.

    A child index case (< 18) is not written to: the letter goes to a parent recorded in
    ``relations`` who is alive, in the region and has an address (lowest id first). With
    no such parent it is addressed to "the parents or guardians" of the child, using the
    child's address when known.
    """
    cases = index.join(living, left_on="index_patient_id", right_on="patient_id", how="inner").with_columns(
        (age_at(pl.col("birth_date"), pl.lit(as_of, dtype=pl.Date)) < ADULT_AGE).alias("for_child")
    )
    parents = (
        cases.filter(pl.col("for_child"))
        .join(links, left_on="index_patient_id", right_on="child_id")
        .join(addressable.select(pl.col("patient_id").alias("parent_id")), on="parent_id", how="semi")
        .group_by("index_patient_id")
        .agg(pl.col("parent_id").min())
    )
    return cases.join(parents, on="index_patient_id", how="left").select(
        "index_patient_id",
        pl.coalesce("parent_id", "index_patient_id").alias("recipient_id"),
        pl.lit("index").alias("kind"),
        pl.lit(False).alias("about_self"),
        pl.lit(0, pl.UInt32).alias("n_children"),
        "for_child",
    )


def plan(
    index: pl.DataFrame,
    rows: pl.DataFrame,
    links: pl.DataFrame,
    patients: pl.DataFrame,
    contacts: pl.DataFrame,
    settings: Settings,
    sent_before: pl.DataFrame,
    as_of: date,
) -> LetterPlan:
    """Decide who is written to on ``as_of`` and which letter covers each cascade row.

    Composed of the named policies below, in order: who can be written to, the index-case
    letters, the direct recipients, which index case owns each direct letter, the letters'
    language and file, the letters of earlier nights, and what covers each row."""
    living = _in_region(patients, as_of)
    addressable = _addressable(contacts, living)
    index_letters = _index_letters(index, living, addressable, links, as_of)
    # Adult index cases, written to themselves: their letter also covers their children.
    writeable_index = index_letters.filter(pl.col("index_patient_id") == pl.col("recipient_id"))[
        "index_patient_id"
    ].implode()
    direct = pl.DataFrame(schema={"index_patient_id": pl.Utf8, "relative_id": pl.Utf8, "recipient_id": pl.Utf8})
    if settings.cascade.direct_contact:
        direct = direct_recipients(rows, links, addressable, writeable_index)
    direct, relative_letters = _letter_owners(direct, index_letters, writeable_index, sent_before)
    needed = pl.concat(
        [index_letters, relative_letters.with_columns(pl.lit(False).alias("for_child")).select(index_letters.columns)]
    )
    needed = _addressed(needed, contacts, patients, settings.cascade.default_language)
    letters = _with_earlier_letters(needed, sent_before, as_of)
    return LetterPlan(letters=letters, coverage=_coverage(rows, letters, direct))


def _addressable(contacts: pl.DataFrame, living: pl.DataFrame) -> pl.DataFrame:
    """Who can be written to: a name and an address on record, alive and in the region."""
    return contacts.filter(pl.col("full_name").is_not_null() & pl.col("address").is_not_null()).join(
        living.select("patient_id"), on="patient_id", how="semi"
    )


def direct_recipients(
    rows: pl.DataFrame, links: pl.DataFrame, addressable: pl.DataFrame, writeable_index: pl.Series
) -> pl.DataFrame:
    """(index_patient_id, relative_id, recipient_id) for each relative a direct letter reaches.

    Only ``untested`` and ``tested`` relatives can act on a letter. An adult (18 or over)
    with an address is written to; for a child the letter goes to a parent, preferring a
    parent who is an index case written to themselves (their own letter covers the child),
    else the addressable parent with the lowest id."""
    eligible = rows.filter(pl.col("status").is_in(["untested", "tested"]))
    adults = eligible.filter(pl.col("age_now") >= ADULT_AGE).join(
        addressable.select(pl.col("patient_id").alias("relative_id")), on="relative_id", how="semi"
    )
    parents = (
        eligible.filter(pl.col("age_now") < ADULT_AGE)
        .join(links, left_on="relative_id", right_on="child_id")
        .with_columns(pl.col("parent_id").is_in(writeable_index).alias("_is_index"))
        .filter(pl.col("parent_id").is_in(addressable["patient_id"].implode()) | pl.col("_is_index"))
        .sort(
            ["index_patient_id", "relative_id", "_is_index", "parent_id"],
            descending=[False, False, True, False],
        )
        .unique(["index_patient_id", "relative_id"], keep="first", maintain_order=True)
    )
    return pl.concat(
        [
            adults.select("index_patient_id", "relative_id", pl.col("relative_id").alias("recipient_id")),
            parents.select("index_patient_id", "relative_id", pl.col("parent_id").alias("recipient_id")),
        ]
    )


def letter_owner(to_relatives: pl.DataFrame, sent_before: pl.DataFrame) -> pl.DataFrame:
    """(recipient_id, owner_index): the index case each direct letter belongs to.

    One direct letter per recipient, ever: it says "someone in your family", so a second
    confirmed case in the same family adds nothing to it (reminders do the chasing). The
    letter belongs to the index case it was first written for (earliest night, then lowest
    id); with none written before, to the lowest index id of tonight's."""
    earlier = (
        sent_before.filter(pl.col("kind") == "relative")
        .sort(["sent_on", "index_patient_id"])
        .unique("recipient_id", keep="first", maintain_order=True)
        .select("recipient_id", pl.col("index_patient_id").alias("earlier_index"))
    )
    return (
        to_relatives.group_by("recipient_id")
        .agg(pl.col("index_patient_id").min().alias("first_index"))
        .join(earlier, on="recipient_id", how="left")
        .select("recipient_id", pl.coalesce("earlier_index", "first_index").alias("owner_index"))
    )


def _letter_owners(
    direct: pl.DataFrame, index_letters: pl.DataFrame, writeable_index: pl.Series, sent_before: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``direct`` with the index case whose letter reaches each row (``letter_index``), and
    the relative letters to write (one per owner and recipient).

    A recipient of this index case's own letter (the parent of a child index case) is
    covered by it; one who is an adult index case by their own index letter; anyone else
    by the letter of ``letter_owner``."""
    index_recipient = index_letters.select("index_patient_id", pl.col("recipient_id").alias("_index_recipient"))
    direct = direct.join(index_recipient, on="index_patient_id", how="left").with_columns(
        (pl.col("recipient_id") == pl.col("_index_recipient")).fill_null(False).alias("_gets_index_letter")
    )
    to_relatives = direct.filter(~pl.col("recipient_id").is_in(writeable_index) & ~pl.col("_gets_index_letter"))
    owner = letter_owner(to_relatives, sent_before)
    direct = direct.join(owner, on="recipient_id", how="left").with_columns(
        pl.when(pl.col("_gets_index_letter"))
        .then(pl.col("index_patient_id"))
        .when(pl.col("recipient_id").is_in(writeable_index))
        .then(pl.col("recipient_id"))
        .otherwise(pl.col("owner_index"))
        .alias("letter_index")
    )
    relative_letters = (
        to_relatives.join(owner, on="recipient_id")
        .group_by(["owner_index", "recipient_id"])
        .agg(
            (pl.col("relative_id") == pl.col("recipient_id")).any().alias("about_self"),
            pl.col("relative_id")
            .filter(pl.col("relative_id") != pl.col("recipient_id"))
            .n_unique()
            .cast(pl.UInt32)
            .alias("n_children"),
        )
        .rename({"owner_index": "index_patient_id"})
        .with_columns(pl.lit("relative").alias("kind"))
    )
    return direct, relative_letters


def letter_language(language: pl.Expr, default: str) -> pl.Expr:
    """The recipient's ``contacts.language`` when it is one the letters exist in (da, en,
    any case), else the region's default."""
    return (
        pl.when(language.str.to_lowercase().is_in(["da", "en"]))
        .then(language.str.to_lowercase())
        .otherwise(pl.lit(default))
    )


def _addressed(needed: pl.DataFrame, contacts: pl.DataFrame, patients: pl.DataFrame, default: str) -> pl.DataFrame:
    """Each needed letter with the recipient's address, registered postcode, language and file."""
    address = contacts.select(
        pl.col("patient_id").alias("recipient_id"),
        "full_name",
        "address",
        pl.col("postcode").alias("contact_postcode"),
        "city",
        "language",
    )
    registered = patients.select(pl.col("patient_id").alias("recipient_id"), pl.col("postcode").alias("patient_postcode"))
    needed = needed.join(address, on="recipient_id", how="left").join(registered, on="recipient_id", how="left")
    return needed.with_columns(
        letter_language(pl.col("language"), default).alias("language"),
        pl.when(pl.col("kind") == "index")
        .then(_file_expr("index", "index_patient_id"))
        .otherwise(_file_expr("relative", "index_patient_id", "recipient_id"))
        .alias("file"),
    )


def _with_earlier_letters(needed: pl.DataFrame, sent_before: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Each (index case, recipient) pair is written to once, ever: tonight's new pairs are
    sent on ``as_of``; pairs written to before keep their letter and date."""
    keys = ["index_patient_id", "recipient_id"]
    new = needed.join(sent_before, on=keys, how="anti").with_columns(pl.lit(as_of, dtype=pl.Date).alias("sent_on"))
    old = sent_before.select(*keys, "kind", "language", "file", pl.col("sent_on").cast(pl.Date))
    return pl.concat([new, old], how="diagonal_relaxed").sort(keys)


def _coverage(rows: pl.DataFrame, letters: pl.DataFrame, direct: pl.DataFrame) -> pl.DataFrame:
    """Per cascade row: the direct letter that reaches the relative, the family letter
    enclosed with the index case's letter, and the earlier of their dates. An
    ``index_only`` row is covered by the index case's own letter (no family letter apart)."""
    keys = ["index_patient_id", "recipient_id"]
    sent = letters.select(*keys, "file", "sent_on")
    family = (
        letters.filter(pl.col("kind") == "index")
        .select("index_patient_id", pl.col("file").alias("index_letter"), pl.col("sent_on").alias("family_on"))
        .with_columns(_file_expr("family", "index_patient_id").alias("family_letter"))
    )
    own = direct.join(sent, left_on=["letter_index", "recipient_id"], right_on=keys, how="inner").select(
        "index_patient_id", "relative_id", pl.col("file").alias("direct_letter"), pl.col("sent_on").alias("direct_on")
    )
    only = pl.col("status") == "index_only"
    return (
        rows.select("index_patient_id", "relative_id", "status")
        .join(family, on="index_patient_id", how="left")
        .join(own, on=["index_patient_id", "relative_id"], how="left")
        .select(
            "index_patient_id",
            "relative_id",
            pl.when(only).then(pl.col("index_letter")).otherwise(pl.col("direct_letter")).alias("direct_letter"),
            pl.when(only).then(None).otherwise(pl.col("family_letter")).alias("family_letter"),
            pl.min_horizontal("family_on", "direct_on").alias("covered_on"),
        )
    )


def format_date(day: date, lang: str) -> str:
    """``23. november 2026`` (da) or ``23 November 2026`` (en)."""
    month = _MONTHS[lang][day.month - 1]
    return f"{day.day}. {month} {day.year}" if lang == "da" else f"{day.day} {month} {day.year}"


def clinic_name(settings: Settings, postcode: str | None) -> str | None:
    """The adult lipid clinic serving ``postcode`` (longest prefix), else the first adult clinic."""
    adult = [c for c in settings.clinics if not c.paediatric]
    if not adult:
        return None
    matches = [
        (len(prefix), c.name) for c in adult for prefix in c.postcodes if postcode and str(postcode).startswith(prefix)
    ]
    return max(matches)[1] if matches else adult[0].name


def paediatric_clinic_name(settings: Settings) -> str | None:
    for clinic in settings.clinics:
        if clinic.clinic_id == settings.paediatric_clinic_id:
            return clinic.name
    return None


def render_letter(kind: str, lang: str, **context) -> str:
    """One letter page as an HTML fragment (autoescaped)."""
    return render.render_html(f"letters/{kind}.{lang}.html.j2", lang=lang, **context)


class Document(NamedTuple):
    """One letter as HTML preview and PDF, with the PDF's page count (for the run report)."""

    html: str
    pdf: bytes
    pages: int


def _document(pages: list[str], title: str, lang: str) -> Document:
    html = render.render_html("letters/preview.html.j2", lang=lang, title=title, pages=[Markup(p) for p in pages])
    return Document(html, *render.pdf_from_html(pages, title))


def _write(folder: Path, pdf_name: str, document: Document) -> int:
    stem = Path(pdf_name).name
    files.write_bytes(files.child_path(folder, stem), document.pdf)
    files.write_text(files.child_path(folder, stem[: -len(".pdf")] + ".html"), document.html)
    return document.pages


def render_all(plan: LetterPlan, folder: Path, settings: Settings, as_of: date) -> dict[str, int]:
    """Render the letters first sent on ``as_of`` (PDF + HTML preview); returns the number
    of PDF files and of PDF pages written (each PDF has an HTML preview beside it) and the
    seconds it took, reported apart from the step's data work as the worklists' are."""
    started, started_cpu = time.perf_counter(), time.process_time()
    files.ensure_dir(folder)
    pdfs = pages = 0
    todays = plan.letters.filter(pl.col("sent_on") == as_of).sort(["index_patient_id", "recipient_id"])
    children_clinic = paediatric_clinic_name(settings)
    family_docs: dict[str, Document] = {}
    for letter in todays.iter_rows(named=True):
        lang = letter["language"]
        postcode = letter["contact_postcode"] or letter["patient_postcode"]
        recipient = None
        if letter["full_name"]:
            recipient = {k: letter[k] or "" for k in ("full_name", "address", "city")}
            recipient["postcode"] = letter["contact_postcode"] or ""
        context = {
            "recipient": recipient,
            "clinic": clinic_name(settings, postcode),
            "children_clinic": children_clinic,
            "region": settings.region.name,
            "date": format_date(as_of, lang),
        }
        if letter["kind"] == "index":
            # The family letter gets no recipient at all, so it cannot name anybody; being
            # the same for every family of a clinic and language, it is rendered once.
            family_page = render_letter("family", lang, **{k: v for k, v in context.items() if k != "recipient"})
            if family_page not in family_docs:
                family_docs[family_page] = _document([family_page], _TITLES["family"][lang], lang)
            for_child = bool(letter["for_child"])
            # a child index case with no parent on record: to the child's parents or guardians
            to_guardians = for_child and letter["recipient_id"] == letter["index_patient_id"]
            index_page = render_letter("index", lang, for_child=for_child, to_guardians=to_guardians, **context)
            index_pages = [index_page, family_page]
            pages += _write(folder, letter["file"], _document(index_pages, _TITLES["index"][lang], lang))
            family_pdf = letter_file("family", letter["index_patient_id"])
            pages += _write(folder, family_pdf, family_docs[family_page])
            pdfs += 2
        else:
            page = render_letter(
                "relative", lang, about_self=letter["about_self"], n_children=letter["n_children"], **context
            )
            pages += _write(folder, letter["file"], _document([page], _TITLES["relative"][lang], lang))
            pdfs += 1
    return {"letter_pdfs": pdfs, "letter_pdf_pages": pages,
            "render_seconds": round(time.perf_counter() - started, 3),
            "render_cpu_seconds": round(time.process_time() - started_cpu, 3)}
