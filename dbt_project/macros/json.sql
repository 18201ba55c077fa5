{#- A JSON object text aggregated from key and value columns. -#}
{% macro json_object_agg(key_column, value_column) -%}
    {{ return(adapter.dispatch('json_object_agg', 'openmrr')(key_column, value_column)) }}
{%- endmacro %}

{% macro default__json_object_agg(key_column, value_column) -%}
    cast(json_object_agg({{ key_column }}, {{ value_column }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__json_object_agg(key_column, value_column) -%}
    cast(json_group_object({{ key_column }}, {{ value_column }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro snowflake__json_object_agg(key_column, value_column) -%}
    to_json(object_agg({{ key_column }}, to_variant({{ value_column }})))
{%- endmacro %}

{% macro bigquery__json_object_agg(key_column, value_column) -%}
    to_json_string(json_object(array_agg({{ key_column }}), array_agg({{ value_column }})))
{%- endmacro %}
