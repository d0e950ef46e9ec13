"""The one root of every error Veil raises on purpose, and its few meaningful subclasses.

Each class's docstring is written for the user: the CLI prints the message on one line and
exits with the class's ``exit_code``. Lower-layer exceptions (OSError, ssl.SSLError, cbor2
errors, cryptography's InvalidTag ...) are translated into these at each boundary.
Imports nothing from Veil.
"""

from __future__ import annotations


class VeilError(Exception):
    """Something went wrong in Veil."""

    exit_code = 1


class UsageError(VeilError):
    """The command was called in a way that cannot work (bad argument, file exists, ...)."""

    exit_code = 2


class CapError(UsageError):
    """The cap or link is garbled, truncated or of an unknown kind; check that it was copied whole."""


class IntegrityError(VeilError):
    """Data failed an integrity check: it was corrupted or tampered with.

    Every cryptographic failure collapses into this one opaque error, so an attacker learns
    nothing from which check failed.
    """

    exit_code = 3


class WrongKeyError(IntegrityError):
    """The key does not open this file: the cap's key and the stored file do not belong together."""


class NotFoundError(VeilError):
    """No node has the thing asked for."""

    exit_code = 4


class UnavailableError(VeilError):
    """Not enough healthy nodes or shares could be reached to finish the operation."""

    exit_code = 5


class RemoteError(VeilError):
    """A node answered with an error or broke the protocol."""

    exit_code = 6


class StorageFullError(RemoteError):
    """A node has no space left for the data sent to it."""


class PaymentRequiredError(VeilError):
    """The operation needs payment: the free allowance is spent or a spending limit was reached."""

    exit_code = 7


class LedgerError(VeilError):
    """The ledger refused a transaction or a request; the message names the rule it broke."""

    exit_code = 8

    def __init__(self, message: str, code: str = "rejected") -> None:
        super().__init__(message)
        self.code = code


class WriteConflictError(VeilError):
    """Someone else changed the same folder entry at the same time; your change was not saved.

    Nothing was lost: list the folder again and redo the change if it still makes sense.
    """

    exit_code = 9


class NotAllowedError(VeilError):
    """You may not do this: only the file's uploader can delete it (with the deletion secret the
    upload was made with), and a file uploaded without one cannot be deleted at all."""

    exit_code = 10
