"""The family graph: who is a first- or second-degree relative of whom.

The ONE definition of the family used by the product: the patient features (and so the
DLCN, Simon Broome and MEDPED family items and the scorer's inputs) and the cascade both
call :func:`relatives`, so a relative cannot be first degree on one output and second
degree on another. Pure polars functions over the ``relations`` table (``relationship`` =
what ``relative_id`` is to ``patient_id``). No database, no files.

Decisions:
    * Parent/child links are symmetric: ``A parent-of B`` is the same fact whether it was
      recorded as (B, A, parent) or (A, B, child); registers often record one direction only.
    * Siblings come from explicit ``sibling`` rows (either direction) and from a shared
      recorded parent.
    * Half-siblings are SECOND-degree relatives (they share on average 25% of their DNA,
      like grandparents, aunts/uncles and nieces/nephews): NHS Genomics Education Programme
      glossary, "Second degree relative" (genomicseducation.hee.nhs.uk/glossary/
      second-degree-relative). A pair is called half-siblings only when both have two
      recorded parents and exactly one is shared. With a parent missing from the data we
      cannot tell, and treat the pair as full siblings: the error then falls on the side of
      inviting a relative for testing rather than skipping them.
    * An explicit ``sibling`` row is kept as a (full) sibling even when the recorded parents
      disagree: the register's word is all we have.
    * Second-degree relatives are reached through a first-degree relative: parent ->
      grandparents (their parents), aunts/uncles (their siblings), half-siblings (their
      other children); child -> grandchildren; sibling -> nieces/nephews. Half-aunts and
      cousins (third degree) are out of scope. A co-parent (the other parent of one's
      child) and a step-parent are not blood relatives and never appear.
    * The cascade moves outward one CONFIRMED generation at a time (NICE CG71 cascade
      process, 2008 updated 2019): it passes ``confirmed``, and only a confirmed
      first-degree relative opens the second degree. Features pass ``confirmed=None``:
      every first-degree relative opens it (the DLCN, Simon Broome and MEDPED items ask
      about second-degree relatives whether or not anyone in between was tested).
"""

from __future__ import annotations

import polars as pl

# Preferred label when one person is reachable along several paths (closest first).
RELATIONSHIP_ORDER = [
    "parent",
    "child",
    "sibling",
    "half_sibling",
    "grandparent",
    "grandchild",
    "aunt_uncle",
    "niece_nephew",
]
DEGREE = {
    "parent": 1,
    "child": 1,
    "sibling": 1,
    "half_sibling": 2,
    "grandparent": 2,
    "grandchild": 2,
    "aunt_uncle": 2,
    "niece_nephew": 2,
}

RELATIVES_SCHEMA = {
    "index_patient_id": pl.Utf8,
    "relative_id": pl.Utf8,
    "relationship": pl.Utf8,
    "degree": pl.Int32,
    "via_id": pl.Utf8,
}


def parent_child(relations: pl.DataFrame) -> pl.DataFrame:
    """Unique (parent_id, child_id) links, whichever direction they were recorded in."""
    as_parent = relations.filter(pl.col("relationship") == "parent").select(
        pl.col("relative_id").alias("parent_id"), pl.col("patient_id").alias("child_id")
    )
    as_child = relations.filter(pl.col("relationship") == "child").select(
        pl.col("patient_id").alias("parent_id"), pl.col("relative_id").alias("child_id")
    )
    return (
        pl.concat([as_parent, as_child])
        .filter(pl.col("parent_id") != pl.col("child_id"))
        .unique()
        .sort(["parent_id", "child_id"])
    )


def sibling_pairs(relations: pl.DataFrame, links: pl.DataFrame, among: pl.Series | None = None) -> pl.DataFrame:
    """Ordered sibling pairs (a_id, b_id, kind) with kind ``full`` or ``half``, both directions.

    ``among`` keeps only the pairs whose ``a_id`` is in it (each pair is still judged on
    everybody's links): the cascade needs the siblings of its index cases, and pairing
    every child of every parent in a region costs far more than the rest of the step.
    """
    explicit = relations.filter(pl.col("relationship") == "sibling").select(
        pl.col("patient_id").alias("a_id"), pl.col("relative_id").alias("b_id")
    )
    reverse = explicit.select(pl.col("b_id").alias("a_id"), pl.col("a_id").alias("b_id"))
    explicit = pl.concat([explicit, reverse])
    a_links = links
    if among is not None:
        wanted = among.implode()
        explicit = explicit.filter(pl.col("a_id").is_in(wanted))
        a_links = links.filter(pl.col("child_id").is_in(wanted))
    shared = (
        a_links.rename({"child_id": "a_id"})
        .join(links.rename({"child_id": "b_id"}), on="parent_id")
        .filter(pl.col("a_id") != pl.col("b_id"))
        .group_by(["a_id", "b_id"])
        .agg(pl.col("parent_id").n_unique().alias("shared"))
    )
    n_parents = links.group_by("child_id").agg(pl.len().alias("n"))
    pairs = (
        pl.concat(
            [
                explicit.with_columns(pl.lit(True).alias("explicit")),
                shared.select("a_id", "b_id", pl.lit(False).alias("explicit")),
            ]
        )
        .filter(pl.col("a_id") != pl.col("b_id"))
        .group_by(["a_id", "b_id"])
        .agg(pl.col("explicit").any())
        .join(shared, on=["a_id", "b_id"], how="left")
        .join(n_parents.rename({"child_id": "a_id", "n": "n_a"}), on="a_id", how="left")
        .join(n_parents.rename({"child_id": "b_id", "n": "n_b"}), on="b_id", how="left")
    )
    half = (
        ~pl.col("explicit")
        & (pl.col("shared").fill_null(0) == 1)
        & (pl.col("n_a").fill_null(0) >= 2)
        & (pl.col("n_b").fill_null(0) >= 2)
    )
    return pairs.select(
        "a_id", "b_id", pl.when(half).then(pl.lit("half")).otherwise(pl.lit("full")).alias("kind")
    ).sort(["a_id", "b_id"])


# A second-degree relative by the first-degree relative they are reached through and the
# step from there: (what the connector is to the index case, what the relative is to the
# connector) -> what the relative is to the index case.
SECOND_DEGREE = {
    ("parent", "parent"): "grandparent",
    ("parent", "sibling"): "aunt_uncle",
    ("parent", "child"): "half_sibling",
    ("child", "child"): "grandchild",
    ("sibling", "child"): "niece_nephew",
}


def one_step(links: pl.DataFrame, sibs: pl.DataFrame) -> pl.DataFrame:
    """Every first-degree step (from_id, to_id, relationship: what ``to_id`` is to ``from_id``):
    parents, children and full siblings."""

    def edge(frame: pl.DataFrame, src: str, dst: str, label: str) -> pl.DataFrame:
        return frame.select(pl.col(src).alias("from_id"), pl.col(dst).alias("to_id"), pl.lit(label).alias("relationship"))

    return pl.concat([
        edge(links, "child_id", "parent_id", "parent"),
        edge(links, "parent_id", "child_id", "child"),
        edge(sibs.filter(pl.col("kind") == "full"), "a_id", "b_id", "sibling"),
    ])


def second_degree(openers: pl.DataFrame, steps: pl.DataFrame) -> pl.DataFrame:
    """Second-degree relatives one ``steps`` further out from each first-degree relative in
    ``openers`` (index_patient_id, relative_id, relationship), labelled by ``SECOND_DEGREE``
    (steps it has no label for, e.g. a parent's other partner, are no relatives)."""
    labels = pl.DataFrame({"relationship": [k[0] for k in SECOND_DEGREE], "step": [k[1] for k in SECOND_DEGREE],
                           "second": list(SECOND_DEGREE.values())})
    return (
        openers
        .join(steps.rename({"relationship": "step"}), left_on="relative_id", right_on="from_id")
        .join(labels, on=["relationship", "step"])
        .select("index_patient_id", pl.col("to_id").alias("relative_id"), pl.col("second").alias("relationship"),
                pl.col("relative_id").alias("via_id"))
    )


def closest(candidates: pl.DataFrame) -> pl.DataFrame:
    """One row per (index case, relative), the closest relationship of ``RELATIONSHIP_ORDER``
    when several paths reach them (then the path without a ``via_id``, then the first
    ``via_id``), with its degree; never the index case itself."""
    order = {name: rank for rank, name in enumerate(RELATIONSHIP_ORDER)}
    return (
        candidates.filter(pl.col("relative_id") != pl.col("index_patient_id"))
        .with_columns(pl.col("relationship").replace_strict(order, return_dtype=pl.Int32).alias("_rank"))
        .sort(["index_patient_id", "relative_id", "_rank", "via_id"], nulls_last=False)
        .unique(["index_patient_id", "relative_id"], keep="first", maintain_order=True)
        .with_columns(pl.col("relationship").replace_strict(DEGREE, return_dtype=pl.Int32).alias("degree"))
        .select(list(RELATIVES_SCHEMA))
        .cast(RELATIVES_SCHEMA)
    )


def relatives(
    relations: pl.DataFrame, index_ids: pl.Series, confirmed: pl.Series | None, links: pl.DataFrame | None = None
) -> pl.DataFrame:
    """First-degree relatives of every index case, and second-degree ones behind them.

    Args:
        relations: the curated ``relations`` table (patient_id, relative_id, relationship).
        index_ids: the index cases (the features pass everybody).
        confirmed: people confirmed to have FH (the cascade passes its index cases); only a
            first-degree relative in this set opens the second degree behind them. ``None``:
            every first-degree relative does (patient features).
        links: ``parent_child(relations)`` when the caller already has it (it is the
            costly part of a region-wide relations table).

    Returns:
        One row per (index_patient_id, relative_id): relationship, degree and ``via_id``
        (the confirmed relative a second-degree relative was reached through, else null).
    """
    index = pl.DataFrame({"index_patient_id": index_ids.cast(pl.Utf8).unique()})
    links = parent_child(relations) if links is None else links
    # Siblings are stepped from only: from an index case, or from a relative who opens the
    # second degree (everybody, for the features).
    among = None if confirmed is None else pl.concat([index_ids.cast(pl.Utf8), confirmed.cast(pl.Utf8)])
    steps = one_step(links, sibling_pairs(relations, links, among=among))
    first = index.join(steps, left_on="index_patient_id", right_on="from_id").select(
        "index_patient_id", pl.col("to_id").alias("relative_id"), "relationship", pl.lit(None, pl.Utf8).alias("via_id")
    )
    openers = first if confirmed is None else first.filter(
        pl.col("relative_id").is_in(confirmed.cast(pl.Utf8).unique().implode()))
    return closest(pl.concat([first, second_degree(openers, steps)]))
