"""The input contract of spec/inputs.md as data: every file, column, type, key and reference.

Ingestion reads column lists and keys from here; `openmrr.suites` turns the same
declarations into the Great Expectations suites under `expectations/`, which the
quality step compiles to SQL. One declaration, two uses, no drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["source", "account"]

# Column types of inputs.md. `str` is at most 255 characters unless max_length says otherwise.
ColumnType = Literal[
    "str", "ts", "money", "decimal", "int", "bool", "ccy", "country", "us_state", "email", "url", "attr_key"
]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "str"
    required: bool = False
    # Required only on rows matching (column, value), e.g. plan for subscription items.
    required_when: tuple[str, str] | None = None
    enum: tuple[str, ...] = ()
    max_length: int | None = 255
    minimum: Literal["positive", "non_negative", "non_zero"] | None = None
    # A derived boolean column (see InputFile.derived) that switches the minimum off.
    minimum_unless: str | None = None
    # A derived boolean column without which a negative value is refused (the minimum stays non_zero).
    negative_unless: str | None = None
    # An upper bound tighter than the type's (an `int` column's values feed date arithmetic).
    maximum: int | None = None
    # The value's type is named per row by another column (custom attribute values).
    type_from: str | None = None


@dataclass(frozen=True)
class Reference:
    """A column whose value must exist as a key of another input file."""

    column: str
    file: str
    target_column: str = "external_id"
    # The referenced row lives in the same data source (every per-source reference does).
    same_source: bool = True
    # Column of the referencing row that names the data source (account-level files).
    source_column: str | None = None
    when: tuple[str, str] | None = None
    # (this row's ts column, the target file's ts column): a valid target row holding the key must be
    # dated on or before this row (a cancellation needs an item that started by then).
    on_or_before: tuple[str, str] | None = None


@dataclass(frozen=True)
class DerivedLimit:
    """An upper bound on a value derived from the row (a numeric column of InputFile.derived): the value must
    stay below `limit`. The rule is reported on `column`, the input a user would change."""

    derived: str
    limit: int
    rule: str
    column: str
    message: str


@dataclass(frozen=True)
class InputFile:
    name: str
    level: Level
    columns: tuple[Column, ...]
    # Key columns; rows with a null in any key column fall back to `fallback_key`.
    key: tuple[str, ...]
    # Used when the key is not set: these columns plus the row's position among them.
    fallback_key: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    # (later, earlier) timestamp pairs: later must be strictly after earlier.
    ordered_pairs: tuple[tuple[str, str], ...] = ()
    # Helper columns, as SQL over normalised values: booleans for conditional rules, numbers for limits.
    derived: dict[str, str] = field(default_factory=dict)
    limits: tuple[DerivedLimit, ...] = ()
    # (currency column, date column): the amount must be convertible to the account currency that day.
    convertible: tuple[str, str] | None = None
    # (from source, from id, into source, into id) columns of a graph that must have no cycle.
    acyclic: tuple[str, str, str, str] | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


BOOL_TRUE = ("true", "yes", "1")
BOOL_FALSE = ("false", "no", "0")
LEAD_STATUSES = ("New Lead", "Working Lead", "Qualified Lead", "Unqualified Lead")
EVENT_TYPES = (
    "subscription_start",
    "subscription_start_scheduled",
    "scheduled_subscription_start_retracted",
    "subscription_updated",
    "subscription_update_scheduled",
    "scheduled_subscription_update_retracted",
    "subscription_cancelled",
    "subscription_cancellation_scheduled",
    "scheduled_subscription_cancellation_retracted",
    "subscription_event_retracted",
)
# Event types whose amount and quantity describe a (scheduled) subscription state.
AMOUNT_EVENT_TYPES = (
    "subscription_start",
    "subscription_start_scheduled",
    "subscription_updated",
    "subscription_update_scheduled",
)

C = Column

# inputs.md money: at most 2 decimals and an absolute value below 10^15 (leading zeros allowed).
MONEY_PATTERN = r"^-?0*[0-9]{1,15}(\.[0-9]{1,2})?$"
# An item's MRR must stay below this (docs/reference.md, "Money beyond the inputs' range"): the spec bounds
# amounts, not the MRR a prorated item's amount implies over a short service period.
IMPLIED_MRR_LIMIT = 10**17
# A month of any plan holds at most 31 days: a month plan's month is a calendar month, a day plan's is
# days_per_month days (at most 31), a year plan's a twelfth of a year.
LONGEST_MONTH_SECONDS = 31 * 24 * 60 * 60


def _absolute_cents(column: str) -> str:
    return f"cast(abs(try_cast(coalesce({column}, '0') as decimal(38, 2))) * 100 as hugeint)"


def _utc(column: str) -> str:
    return f"timezone('UTC', try_cast({column} as timestamptz))"


_SERVICE_SECONDS = f"date_diff('second', {_utc('service_period_start')}, {_utc('service_period_end')})"
# mrr-rules §2: a prorated item's MRR is its amount net of tax and deducted fees x (full period / item period)
# x (months per full period). Its size is at most (|amount| + tax + fees) x LONGEST_MONTH_SECONDS / the item's
# whole seconds (the models count whole seconds too): row-local, so no plan or setting changes the verdict.
# The value is that bound's whole units, exact; a period shorter than a whole second (0 seconds, which the
# models cannot divide by) counts as the limit. Unprorated items need no bound: their MRR is at most
# 31 x 3 x 10^15. Checked only on well-formed money and ordered periods (their own rules report the rest).
IMPLIED_MRR_SQL = f"""case
    when type = 'subscription' and prorated = 'true'
        and regexp_full_match(coalesce(amount, '0'), '{MONEY_PATTERN}')
        and regexp_full_match(coalesce(tax_amount, '0'), '{MONEY_PATTERN}')
        and regexp_full_match(coalesce(transaction_fees, '0'), '{MONEY_PATTERN}')
        and {_utc('service_period_end')} > {_utc('service_period_start')}
    then case
        when {_SERVICE_SECONDS} = 0 then cast({IMPLIED_MRR_LIMIT} as hugeint)
        else ({_absolute_cents('amount')} + {_absolute_cents('tax_amount')} + {_absolute_cents('transaction_fees')})
            * {LONGEST_MONTH_SECONDS} // ({_SERVICE_SECONDS} * 100)
    end
end"""

CUSTOMERS = InputFile(
    name="customers",
    level="source",
    key=("external_id",),
    columns=(
        C("external_id", required=True),
        C("company"),
        C("name"),
        C("email", "email"),
        C("country", "country"),
        C("state", "us_state"),
        C("city"),
        C("zip"),
        C("lead_created_at", "ts"),
        C("free_trial_started_at", "ts"),
        C("lead_status", enum=LEAD_STATUSES),
    ),
)

CONTACTS = InputFile(
    name="contacts",
    level="source",
    key=("customer_external_id", "email"),
    fallback_key=("customer_external_id",),
    columns=(
        C("customer_external_id", required=True),
        C("first_name"),
        C("last_name"),
        C("title"),
        C("email", "email"),
        C("phone"),
        C("linkedin", "url"),
        C("twitter", "url"),
        C("notes"),
    ),
    references=(Reference("customer_external_id", "customers"),),
)

PLANS = InputFile(
    name="plans",
    level="source",
    key=("external_id",),
    columns=(
        C("external_id", required=True),
        C("name", required=True),
        # at most 1000 intervals (1000 years): the models step one interval back from a period end
        C("interval_count", "int", required=True, minimum="positive", maximum=1000),
        C("interval_unit", required=True, enum=("day", "month", "year")),
    ),
)

INVOICES = InputFile(
    name="invoices",
    level="source",
    key=("external_id",),
    columns=(
        C("external_id", required=True),
        C("customer_external_id", required=True),
        C("date", "ts", required=True),
        C("due_date", "ts"),
        C("currency", "ccy", required=True),
        C("status", enum=("open", "paid", "refunded", "written_off", "voided")),
        C("collection_method", enum=("automatic", "manual")),
    ),
    references=(Reference("customer_external_id", "customers"),),
    convertible=("currency", "date"),
)

SUBSCRIPTION_ONLY = ("type", "subscription")

LINE_ITEMS = InputFile(
    name="line_items",
    level="source",
    key=("external_id",),
    fallback_key=("invoice_external_id",),
    columns=(
        C("invoice_external_id", required=True),
        C("type", required=True, enum=("subscription", "one_time")),
        C("amount", "money", required=True, minimum="non_negative", minimum_unless="negative_amount_allowed"),
        C("external_id"),
        C("description"),
        C("subscription_external_id", required_when=SUBSCRIPTION_ONLY),
        C("subscription_set_external_id"),
        C("plan_external_id", required_when=SUBSCRIPTION_ONLY),
        C("service_period_start", "ts", required_when=SUBSCRIPTION_ONLY),
        C("service_period_end", "ts", required_when=SUBSCRIPTION_ONLY),
        C("prorated", "bool", required_when=SUBSCRIPTION_ONLY),
        C("proration_type", enum=("differential", "full", "differential_mrr")),
        C("quantity", "int", minimum="non_zero", negative_unless="negative_quantity_allowed"),
        C("cancelled_at", "ts"),
        C("event_order", "int"),
        C("tax_amount", "money", minimum="non_negative"),
        C("transaction_fees", "money", minimum="non_negative"),
        C("discount_amount", "money", minimum="non_negative"),
        C("discount_code", max_length=64),
        C("discount_description"),
        C("balance_transfer", "bool"),
    ),
    references=(
        Reference("invoice_external_id", "invoices"),
        Reference("plan_external_id", "plans", when=SUBSCRIPTION_ONLY),
    ),
    ordered_pairs=(("service_period_end", "service_period_start"),),
    derived={
        # inputs.md: negative amounts only on prorated or one-time items.
        "negative_amount_allowed": "type = 'one_time' or prorated = 'true'",
        # inputs.md: a negative quantity only on a prorated differential item (the default type).
        "negative_quantity_allowed": "coalesce(type = 'subscription' and prorated = 'true'"
        " and coalesce(proration_type, 'differential') = 'differential', false)",
        "implied_mrr": IMPLIED_MRR_SQL,
    },
    limits=(
        DerivedLimit(
            "implied_mrr", IMPLIED_MRR_LIMIT, "implied_mrr_range", "amount",
            "amount '{value}' is too large for its prorated service period (or the period is shorter than a"
            " second): normalised to a month it implies an MRR of 10^17 or more (an item's MRR must be less"
            " than 10^17)",
        ),
    ),
)

TRANSACTIONS = InputFile(
    name="transactions",
    level="source",
    key=("external_id",),
    fallback_key=("invoice_external_id",),
    columns=(
        C("invoice_external_id", required=True),
        C("type", required=True, enum=("payment", "refund")),
        C("result", required=True, enum=("successful", "failed")),
        C("date", "ts", required=True),
        C("amount", "money", minimum="positive"),
        C("external_id"),
        C("transaction_fees", "money", minimum="non_negative"),
    ),
    references=(Reference("invoice_external_id", "invoices"),),
)

SUBSCRIPTION_EVENTS = InputFile(
    name="subscription_events",
    level="source",
    key=("external_id",),
    fallback_key=("subscription_external_id",),
    columns=(
        C("customer_external_id", required=True),
        C("subscription_external_id", required=True),
        C("subscription_set_external_id"),
        C("external_id"),
        C("event_type", required=True, enum=EVENT_TYPES),
        C("retracted_event_id", required_when=("event_type", "subscription_event_retracted")),
        C("event_date", "ts", required=True),
        C("effective_date", "ts", required=True),
        C("plan_external_id"),
        C("currency", "ccy"),
        C("amount", "money", required_when=("is_amount_event", "true")),
        C("tax_amount", "money", minimum="non_negative"),
        C("quantity", "int", minimum="non_zero", required_when=("is_amount_event", "true")),
        C("event_order", "int"),
    ),
    references=(
        Reference("customer_external_id", "customers"),
        Reference("plan_external_id", "plans"),
        Reference(
            "retracted_event_id",
            "subscription_events",
            when=("event_type", "subscription_event_retracted"),
        ),
    ),
    derived={
        "is_amount_event": "event_type in ("
        + ", ".join(f"'{t}'" for t in AMOUNT_EVENT_TYPES)
        + ")",
    },
)

CANCELLATIONS = InputFile(
    name="cancellations",
    level="source",
    key=("subscription_external_id", "cancelled_at"),
    columns=(
        C("subscription_external_id", required=True),
        C("customer_external_id", required=True),
        C("cancelled_at", "ts", required=True),
    ),
    references=(
        Reference("customer_external_id", "customers"),
        # inputs.md: a cancellation of a subscription with no item starting on or before it cancels
        # nothing, so it is quarantined rather than silently ignored.
        Reference("subscription_external_id", "line_items", target_column="subscription_external_id",
                  on_or_before=("cancelled_at", "service_period_start")),
    ),
)

CURRENCY_RATES = InputFile(
    name="currency_rates",
    level="account",
    key=("date", "from_currency", "to_currency"),
    columns=(
        C("date", "ts", required=True),
        C("from_currency", "ccy", required=True),
        C("to_currency", "ccy", required=True),
        # Rates carry more than two decimals: typed as a positive decimal, not money.
        C("rate", "decimal", required=True, minimum="positive"),
    ),
)

CUSTOMER_MERGES = InputFile(
    name="customer_merges",
    level="account",
    key=("from_source", "from_external_id"),
    columns=(
        C("from_source", required=True),
        C("from_external_id", required=True),
        C("into_source", required=True),
        C("into_external_id", required=True),
    ),
    references=(
        Reference("from_external_id", "customers", same_source=False, source_column="from_source"),
        Reference("into_external_id", "customers", same_source=False, source_column="into_source"),
    ),
    acyclic=("from_source", "from_external_id", "into_source", "into_external_id"),
)

TAGS = InputFile(
    name="tags",
    level="account",
    key=("source", "customer_external_id", "tag"),
    columns=(
        C("source", required=True),
        C("customer_external_id", required=True),
        C("tag", required=True),
    ),
    references=(
        Reference("customer_external_id", "customers", same_source=False, source_column="source"),
    ),
)

CUSTOM_ATTRIBUTES = InputFile(
    name="custom_attributes",
    level="account",
    key=("source", "customer_external_id", "key"),
    columns=(
        C("source", required=True),
        C("customer_external_id", required=True),
        C("key", "attr_key", required=True),
        C("type", required=True, enum=("String", "Integer", "Decimal", "Timestamp", "Boolean")),
        C("value", required=True, type_from="type"),
    ),
    references=(
        Reference("customer_external_id", "customers", same_source=False, source_column="source"),
    ),
)

# In dependency order: a file's references point only at files before it (or itself).
INPUT_FILES: tuple[InputFile, ...] = (
    CUSTOMERS,
    CONTACTS,
    PLANS,
    INVOICES,
    LINE_ITEMS,
    TRANSACTIONS,
    SUBSCRIPTION_EVENTS,
    CANCELLATIONS,
    CURRENCY_RATES,
    CUSTOMER_MERGES,
    TAGS,
    CUSTOM_ATTRIBUTES,
)
FILES_BY_NAME = {f.name: f for f in INPUT_FILES}
SOURCE_FILES = tuple(f for f in INPUT_FILES if f.level == "source")
ACCOUNT_FILES = tuple(f for f in INPUT_FILES if f.level == "account")
