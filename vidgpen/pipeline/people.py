"""The persons stage of a run, built from the user's settings (:mod:`vidgpen.faces.persons`).

It is state, not plan: the book of persons grows as the video plays, and a segmented run
hands the one built here from segment to segment.
"""

from __future__ import annotations

from vidgpen.config import RestoreConfig
from vidgpen.faces.identity import Reference, load_references
from vidgpen.faces.persons import Identity, PersonBook, PersonFilter


def make_identity(config: RestoreConfig, always: bool = False) -> Identity | None:
    """Persons for a run that needs them (``always``, or selection by person or photo, a
    persons file, ``--model auto``), else None: embedding costs about a dozen detection runs
    per track (README, Persons).
    Reference photos are read here, so a bad one fails before any output exists."""
    wanted_ids = config.person_ids()
    if not (always or wanted_ids or config.faces_of or config.skip_faces_of or config.persons
            or (config.model == "auto" and not config.weights)):
        return None
    book = PersonBook.load(config.persons) if config.persons else PersonBook()
    references: list[list[Reference]] = [[], []]
    if config.faces_of or config.skip_faces_of:
        references = [load_references(paths, config.detector, config.min_face)
                      for paths in (config.faces_of, config.skip_faces_of)]
    selection = PersonFilter(set(wanted_ids) if wanted_ids else None, references[0], references[1], book.threshold)
    return Identity(book, selection)


def check_photos(config: RestoreConfig) -> None:
    """Read every ``faces_of`` / ``skip_faces_of`` photo: a batch fails once, before any file,
    on one without exactly one face (each file's run reads them again: a Ray worker may be
    another machine)."""
    load_references([*config.faces_of, *config.skip_faces_of], config.detector, config.min_face)
