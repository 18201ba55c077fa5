{#-
    Overrides of dbt's cross-database date macros (the root project's `<adapter>__datediff` wins the
    dispatch). dbt-postgres's datediff returns a double precision built from date_part(), which
    breaks the exact integer arithmetic (div) and turns epoch seconds into float text in ids:
    these return a bigint counting unit boundaries, like DuckDB's date_diff().
-#}

{% macro postgres__datediff(first_date, second_date, datepart) -%}
    {%- set seconds = {'second': 1, 'minute': 60, 'hour': 3600} -%}
    {%- set months = {'month': 1, 'quarter': 3, 'year': 12} -%}
    {%- if datepart in seconds -%}
        cast(
            floor(extract(epoch from cast({{ second_date }} as timestamp)) / {{ seconds[datepart] }})
            - floor(extract(epoch from cast({{ first_date }} as timestamp)) / {{ seconds[datepart] }})
        as bigint)
    {%- elif datepart == 'day' -%}
        cast(cast({{ second_date }} as date) - cast({{ first_date }} as date) as bigint)
    {%- elif datepart in months -%}
        cast(
            floor((extract(year from cast({{ second_date }} as date)) * 12
                   + extract(month from cast({{ second_date }} as date)) - 1) / {{ months[datepart] }})
            - floor((extract(year from cast({{ first_date }} as date)) * 12
                     + extract(month from cast({{ first_date }} as date)) - 1) / {{ months[datepart] }})
        as bigint)
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff: unsupported datepart " ~ datepart ~ " on postgres") }}
    {%- endif -%}
{%- endmacro %}

{#- Redshift dispatches to postgres__ after redshift__, and the root project comes first: use Redshift's
    native datediff/dateadd (integer counts of boundaries; month steps keep the day, like DuckDB). The
    datepart is a quoted literal, which Redshift accepts, so the SQL also parses on a PostgreSQL
    stand-in that defines datediff(text, ...) and dateadd(text, ...) (tests/redshift_proxy.py). -#}
{% macro redshift__datediff(first_date, second_date, datepart) -%}
    datediff('{{ datepart }}', {{ first_date }}, {{ second_date }})
{%- endmacro %}

{% macro redshift__dateadd(datepart, interval, from_date_or_timestamp) -%}
    dateadd('{{ datepart }}', {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
