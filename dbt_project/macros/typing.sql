{#- Casts from the raw text columns. Raw values passed validation, so plain casts are safe. -#}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{% macro to_money(column) -%}
    cast({{ clean_text(column) }} as decimal(18, 2))
{%- endmacro %}

{% macro to_rate(column) -%}
    cast({{ clean_text(column) }} as decimal(38, 12))
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

{% macro bigquery__to_utc_timestamp(column) -%}
    datetime(timestamp({{ clean_text(column) }}), 'UTC')
{%- endmacro %}

{% macro snowflake__to_utc_timestamp(column) -%}
    convert_timezone('UTC', to_timestamp_tz({{ clean_text(column) }}))::timestamp_ntz
{%- endmacro %}
