{#- Stable ids: the same input gives the same id on every run and every warehouse. -#}
{% macro stable_id(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
        {%- if not loop.last %}{% do parts.append("'/'") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{#- Whole seconds since 1970, a portable text form of a timestamp for ids. -#}
{% macro epoch_seconds(timestamp_column) -%}
    {{ dbt.datediff("cast('1970-01-01 00:00:00' as timestamp)", timestamp_column, 'second') }}
{%- endmacro %}
