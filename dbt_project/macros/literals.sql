{#-
    The one audited way a setting (a dbt var) becomes SQL text: a string literal with every character
    the warehouse's literal syntax treats specially escaped, so a value such as a source folder named
    `o'reilly` (or a crafted settings key) stays data and can never end the literal (spec inputs.md,
    "Bad input": text is never pasted into SQL). Models never write '{{ var(...) }}' themselves.
-#}

{#- A string literal holding exactly `value`. -#}
{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string', 'openmrr')(value | string)) }}
{%- endmacro %}

{#- DuckDB and PostgreSQL (standard_conforming_strings): only the quote is special; it is doubled. -#}
{% macro default__sql_string(value) -%}
    {{ return("'" ~ value | replace("'", "''") ~ "'") }}
{%- endmacro %}

{#- Snowflake and Redshift also read backslash escapes inside '...': the backslash is doubled first. -#}
{% macro snowflake__sql_string(value) -%}
    {{ return("'" ~ value | replace("\\", "\\\\") | replace("'", "''") ~ "'") }}
{%- endmacro %}

{% macro redshift__sql_string(value) -%}
    {{ return("'" ~ value | replace("\\", "\\\\") | replace("'", "''") ~ "'") }}
{%- endmacro %}

{#- BigQuery: backslash escapes only (no doubled quote), and a quoted string may not span lines. -#}
{% macro bigquery__sql_string(value) -%}
    {%- set escaped = value | replace("\\", "\\\\") | replace("'", "\\'") | replace("\n", "\\n")
        | replace("\r", "\\r") -%}
    {{ return("'" ~ escaped ~ "'") }}
{%- endmacro %}

{#- A parenthesised list of string literals, for `column in (...)`; `values` must not be empty. -#}
{% macro sql_string_list(values) -%}
    {%- set literals = [] -%}
    {%- for value in values %}{% do literals.append(sql_string(value)) %}{% endfor -%}
    {{ return('(' ~ literals | join(', ') ~ ')') }}
{%- endmacro %}
