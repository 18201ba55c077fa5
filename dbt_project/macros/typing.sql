{#- Casts from the raw text columns. Raw values passed validation, so plain casts are safe. -#}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{% macro to_money(column) -%}
    cast({{ clean_text(column) }} as decimal(18, 2))
{%- endmacro %}

{% macro to_rate(column) -%}
    {{ return(adapter.dispatch('to_rate', 'openmrr')(column)) }}
{%- endmacro %}

{% macro default__to_rate(column) -%}
    cast({{ clean_text(column) }} as decimal(38, 12))
{%- endmacro %}

{#- BigQuery's NUMERIC keeps 9 decimals at most. -#}
{% macro bigquery__to_rate(column) -%}
    {{ cast_decimal(clean_text(column), 38, 12) }}
{%- endmacro %}

{#- An exact decimal with `scale` decimals (rounded half away from zero) and `precision` digits in all. -#}
{% macro cast_decimal(expression, precision, scale) -%}
    {{ return(adapter.dispatch('cast_decimal', 'openmrr')(expression, precision, scale)) }}
{%- endmacro %}

{% macro default__cast_decimal(expression, precision, scale) -%}
    cast({{ expression }} as decimal({{ precision }}, {{ scale }}))
{%- endmacro %}

{#- BigQuery: NUMERIC holds 29 integer digits and 9 decimals, BIGNUMERIC more; a parameterised
    NUMERIC(p, s) beyond that is an error, so the value is rounded to `scale` decimals instead. -#}
{% macro bigquery__cast_decimal(expression, precision, scale) -%}
    {%- set kind = 'numeric' if scale <= 9 and precision - scale <= 29 else 'bignumeric' -%}
    round(cast({{ expression }} as {{ kind }}), {{ scale }})
{%- endmacro %}

{#- Money the models derive (MRR, its sums and conversions, ARR, metrics): decimal(38, 2), the widest exact
    type every adapter has (BIGNUMERIC on BigQuery). Input money is decimal(18, 2) (to_money, |x| < 10^15),
    but an item's MRR reaches 31 x that (a daily plan), a conversion 10^15 x that (the largest valid rate),
    and sums add rows; docs/reference.md, "Money beyond the inputs' range", gives the bounds. -#}
{% macro derived_money(expression) -%}
    {{ cast_decimal(expression, 38, 2) }}
{%- endmacro %}

{#- The type of a UTC moment without a time zone. BigQuery calls it DATETIME: its TIMESTAMP is an
    absolute instant, and mixing the two makes a column change type. -#}
{% macro timestamp_type() -%}
    {{ return(adapter.dispatch('timestamp_type', 'openmrr')()) }}
{%- endmacro %}

{% macro default__timestamp_type() -%}
    timestamp
{%- endmacro %}

{% macro bigquery__timestamp_type() -%}
    datetime
{%- endmacro %}

{% macro to_int(column) -%}
    cast({{ clean_text(column) }} as integer)
{%- endmacro %}

{% macro to_bool(column) -%}
    case
        when lower({{ clean_text(column) }}) in ('true', 'yes', '1') then true
        when lower({{ clean_text(column) }}) in ('false', 'no', '0') then false
    end
{%- endmacro %}

{#- ISO 8601 text to a UTC timestamp without time zone; a date alone is midnight UTC. -#}
{% macro to_utc_timestamp(column) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'openmrr')(column)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
    cast(cast({{ clean_text(column) }} as timestamp with time zone) at time zone 'UTC' as timestamp)
{%- endmacro %}

{#- PostgreSQL reads a text without offset in the session time zone: only texts with an offset
    (Z, +hh, +hh:mm, +hhmm after the time, inputs.md ts) go through timestamptz, the rest are taken as UTC. -#}
{% macro postgres__to_utc_timestamp(column) -%}
    case
        when {{ clean_text(column) }} ~* '[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(z|[+-][0-9]{2}(:?[0-9]{2})?)$'
            then cast({{ clean_text(column) }} as timestamp with time zone) at time zone 'UTC'
        else cast({{ clean_text(column) }} as timestamp)
    end
{%- endmacro %}

{#- Redshift: the portable cast (not the postgres__ regex one, which dispatch would pick next); Redshift
    sessions read texts without an offset in UTC unless the user changes `timezone`. -#}
{% macro redshift__to_utc_timestamp(column) -%}
    {{ default__to_utc_timestamp(column) }}
{%- endmacro %}

{% macro bigquery__to_utc_timestamp(column) -%}
    datetime(timestamp({{ clean_text(column) }}), 'UTC')
{%- endmacro %}

{#- Snowflake reads a text without offset in the session time zone (the account's, often not UTC) and its
    AUTO format has no hours-only offset: the offset (inputs.md ts: date[(T| )hh:mm[:ss[.f]]][Z|±hh[[:]mm]])
    is split off and subtracted in minutes, the rest is parsed as a wall-clock time. -#}
{% macro snowflake__to_utc_timestamp(column) -%}
    {%- set text = clean_text(column) -%}
    {%- set clock = 'substr(' ~ text ~ ', 12)' -%}
    {%- set offset = 'regexp_substr(' ~ clock ~ ", '[+-][0-9:]+$')" -%}
    dateadd(
        minute,
        -coalesce(
            iff(left({{ offset }}, 1) = '-', -1, 1) * (
                cast(substr({{ offset }}, 2, 2) as integer) * 60
                + coalesce(cast(nullif(replace(substr({{ offset }}, 4), ':', ''), '') as integer), 0)
            ),
            0
        ),
        cast(
            left({{ text }}, 10) || ' '
            || coalesce(nullif(regexp_replace({{ clock }}, '([zZ]|[+-][0-9:]+)$', ''), ''), '00:00:00')
            as timestamp_ntz
        )
    )
{%- endmacro %}
