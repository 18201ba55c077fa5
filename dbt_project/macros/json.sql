{#- A JSON object text aggregated from key and value columns. -#}
{% macro json_object_agg(key_column, value_column) -%}
    {{ return(adapter.dispatch('json_object_agg', 'openmrr')(key_column, value_column)) }}
{%- endmacro %}

{% macro default__json_object_agg(key_column, value_column) -%}
    cast(json_object_agg({{ key_column }}, {{ value_column }}) as {{ dbt.type_string() }})
{%- endmacro %}

{#- Keys sorted: json_group_object keeps the rows' order, which differs between runs. -#}
{% macro duckdb__json_object_agg(key_column, value_column) -%}
    '{' || string_agg(
        cast(to_json({{ key_column }}) as varchar) || ':' || coalesce(cast(to_json({{ value_column }}) as varchar), 'null'),
        ',' order by {{ key_column }}
    ) || '}'
{%- endmacro %}

{#- PostgreSQL's json_object_agg writes '{ "k" : "v" }': build DuckDB's compact text instead (keys sorted). -#}
{% macro postgres__json_object_agg(key_column, value_column) -%}
    '{' || string_agg(
        to_json(cast({{ key_column }} as text))::text || ':' || coalesce(to_json({{ value_column }})::text, 'null'),
        ',' order by {{ key_column }}
    ) || '}'
{%- endmacro %}

{% macro snowflake__json_object_agg(key_column, value_column) -%}
    to_json(object_agg({{ key_column }}, to_variant({{ value_column }})))
{%- endmacro %}

{#- BigQuery: not json_object(array_agg(k), array_agg(v)), whose two aggregates need not list the rows in
    the same order; one string_agg pairs each key with its value (keys sorted, as for PostgreSQL). -#}
{% macro bigquery__json_object_agg(key_column, value_column) -%}
    '{' || string_agg(
        to_json_string({{ key_column }}) || ':' || coalesce(to_json_string({{ value_column }}), 'null'),
        ',' order by {{ key_column }}
    ) || '}'
{%- endmacro %}

{#- Redshift has no JSON functions for this: keys and values become JSON strings by hand. Redshift reads
    backslashes in literals as escapes, so '\\' is one backslash and '\\"' a backslash and a quote. -#}
{% macro redshift__json_object_agg(key_column, value_column) -%}
    '{' || listagg(
        {{ redshift_json_string(key_column) }} || ':' || coalesce({{ redshift_json_string(value_column) }}, 'null'),
        ','
    ) within group (order by {{ key_column }}) || '}'
{%- endmacro %}

{% macro redshift_json_string(column) -%}
    '"' || replace(replace({{ column }}, '\\', '\\\\'), '"', '\\"') || '"'
{%- endmacro %}
