"""A user's or the machine's error inside a step, as a `dagster.Failure` whose metadata carries it.

The run's caller (`orchestration.refresh`) reads the failure back from the metadata, so the message and
exit code the command line shows are the error's own, whichever process or UI ran the job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import Failure, MetadataValue

from openmrr.errors import OpenMRRError, storage_error

EXIT_CODE = "exit_code"
KIND = "error"


@contextmanager
def reported_as_failure(writes: Path) -> Iterator[None]:
    """Re-raise our errors, and the machine's (a full disk, a read-only folder: errors.storage_error), as a
    Failure with the message as description and the exit code and error class as metadata. `writes` is
    the warehouse, named when the system did not say which file failed. Anything else is a bug and stays
    itself (its traceback is in the run's log)."""
    try:
        yield
    except OpenMRRError as error:
        raise _failure(error) from error
    except Exception as error:
        known = storage_error(error, writes)
        if known is None:
            raise
        raise _failure(known) from error


def _failure(error: OpenMRRError) -> Failure:
    metadata = {EXIT_CODE: MetadataValue.int(error.exit_code), KIND: MetadataValue.text(type(error).__name__)}
    return Failure(description=str(error), metadata=metadata, allow_retries=False)
