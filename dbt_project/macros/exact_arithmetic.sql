{#-
    Exact money arithmetic (spec/README.md, "Money"). Division is done once, on integers, with
    explicit half-away-from-zero rounding, because some engines (DuckDB) turn decimal / decimal
    into a binary double and lose the half cent.
-#}

{#- round(numerator / denominator) to cents, half away from zero; both are integer-valued, denominator > 0.
    The numerator is in cents, so the result is cents / 100 as a decimal(18, 2). -#}
{% macro round_cents_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('round_cents_div', 'openmrr')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__round_cents_div(numerator, denominator) -%}
    cast(
        cast(sign({{ numerator }}) * div(abs({{ numerator }}) * 2 + ({{ denominator }}), ({{ denominator }}) * 2)
            as decimal(38, 0)) * 0.01
        as decimal(18, 2))
{%- endmacro %}

{% macro duckdb__round_cents_div(numerator, denominator) -%}
    cast(
        cast(sign(cast({{ numerator }} as hugeint))
            * ((abs(cast({{ numerator }} as hugeint)) * 2 + cast({{ denominator }} as hugeint))
               // (cast({{ denominator }} as hugeint) * 2))
            as decimal(38, 0)) * 0.01
        as decimal(18, 2))
{%- endmacro %}

{#- PostgreSQL: numeric is exact at any size; the casts keep integer operands from overflowing bigint. -#}
{% macro postgres__round_cents_div(numerator, denominator) -%}
    cast(
        sign(cast({{ numerator }} as numeric))
            * div(abs(cast({{ numerator }} as numeric)) * 2 + cast({{ denominator }} as numeric),
                  cast({{ denominator }} as numeric) * 2)
            * 0.01
        as decimal(18, 2))
{%- endmacro %}

{#- Snowflake, Redshift and BigQuery have no div() on decimals. The floor of n / d (both >= 0) is
    (n - mod(n, d)) / d, an exact division because the remainder goes first. -#}
{% macro round_cents_div_by_mod(numerator, denominator, integer_type) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as ' ~ integer_type ~ ')' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as ' ~ integer_type ~ ')' -%}
    {%- set doubled = '(abs(' ~ n ~ ') * 2 + ' ~ d ~ ')' -%}
    cast(
        sign({{ n }}) * (({{ doubled }} - mod({{ doubled }}, {{ d }} * 2)) / ({{ d }} * 2)) * 0.01
        as decimal(18, 2))
{%- endmacro %}

{% macro snowflake__round_cents_div(numerator, denominator) -%}
    {{ round_cents_div_by_mod(numerator, denominator, 'number(38, 0)') }}
{%- endmacro %}

{% macro redshift__round_cents_div(numerator, denominator) -%}
    {{ round_cents_div_by_mod(numerator, denominator, 'decimal(38, 0)') }}
{%- endmacro %}

{#- BigQuery: NUMERIC holds 29 integer digits and 9 decimals, so exact integers go through BIGNUMERIC;
    cents become units by an exact division (a literal 0.01 would be a FLOAT64). -#}
{% macro bigquery__round_cents_div(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as bignumeric)' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as bignumeric)' -%}
    {%- set doubled = '(abs(' ~ n ~ ') * 2 + ' ~ d ~ ')' -%}
    {{ cast_decimal('sign(' ~ n ~ ') * ((' ~ doubled ~ ' - mod(' ~ doubled ~ ', ' ~ d ~ ' * 2)) / (' ~ d ~ ' * 2)) / 100',
                    18, 2) }}
{%- endmacro %}

{#- numerator / denominator rounded half away from zero to 6 decimals; both integer-valued, denominator > 0. -#}
{% macro round_ratio(numerator, denominator) -%}
    {{ cast_decimal(round_cents_div('(' ~ numerator ~ ') * 1000000', denominator) ~ ' * 0.0001', 18, 6) }}
{%- endmacro %}

{#- An amount in cents as an exact integer-valued decimal. -#}
{% macro to_cents(amount) -%}
    {{ return(adapter.dispatch('to_cents', 'openmrr')(amount)) }}
{%- endmacro %}

{% macro default__to_cents(amount) -%}
    cast(({{ amount }}) * 100 as decimal(38, 0))
{%- endmacro %}

{#- BigQuery: NUMERIC(38, 0) is out of range (29 integer digits at most). -#}
{% macro bigquery__to_cents(amount) -%}
    cast(({{ amount }}) * 100 as bignumeric)
{%- endmacro %}

{#- A decimal rate part scaled to an exact integer (12 decimals are kept). The integer and fractional
    parts are scaled apart: `rate * 10^12` keeps the rate's 12 decimals in the product, whose 15 + 12 + 12
    digits overflow decimal(38) for a rate of 10^14 or more (inputs.md allows 15 integer digits). -#}
{% macro scaled_rate(rate) -%}
    {{ return(adapter.dispatch('scaled_rate', 'openmrr')(rate)) }}
{%- endmacro %}

{% macro default__scaled_rate(rate) -%}
    (cast(floor({{ rate }}) as decimal(38, 0)) * 1000000000000
        + cast(({{ rate }} - floor({{ rate }})) * 1000000000000 as decimal(38, 0)))
{%- endmacro %}

{% macro bigquery__scaled_rate(rate) -%}
    cast({{ rate }} * 1000000000000 as bignumeric)
{%- endmacro %}

{#- amount x rate_numerator / rate_denominator, rounded to cents: a currency conversion. -#}
{% macro convert_amount(amount, rate_numerator, rate_denominator) -%}
    {{ round_cents_div(to_cents(amount) ~ ' * ' ~ scaled_rate(rate_numerator), scaled_rate(rate_denominator)) }}
{%- endmacro %}

{#- The settings' days_per_month in millionths, an integer (30.4375 -> 30437500). -#}
{% macro days_per_month_millionths() -%}
    {{ (var('days_per_month') | float * 1000000) | round | int }}
{%- endmacro %}

{#- True where transaction fees are deducted for the row's data source (settings). -#}
{% macro deducts_transaction_fees(data_source_column) -%}
    {%- set deducting = var('fee_deduction_sources') -%}
    {%- set keeping = var('fee_keeping_sources') -%}
    {%- if var('deduct_transaction_fees') -%}
        {%- if keeping %}{{ data_source_column }} not in {{ sql_string_list(keeping) }}{% else %}true{% endif -%}
    {%- else -%}
        {%- if deducting %}{{ data_source_column }} in {{ sql_string_list(deducting) }}{% else %}false{% endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The as_of setting as a timestamp literal. -#}
{% macro as_of() -%}
    {{ return(adapter.dispatch('as_of', 'openmrr')()) }}
{%- endmacro %}

{% macro default__as_of() -%}
    cast({{ sql_string(var("as_of")) }} as timestamp)
{%- endmacro %}

{#- BigQuery: timestamps without a zone are DATETIME (see bigquery__to_utc_timestamp). -#}
{% macro bigquery__as_of() -%}
    cast({{ sql_string(var("as_of")) }} as datetime)
{%- endmacro %}

{#- MRR x 12 as ARR: widened first, since a valid MRR (money < 10^15, decimal(18, 2)) times 12 may not fit
    decimal(18, 2) (inputs.md "Bad input": a value that passes validation never fails the build). -#}
{% macro annualised(mrr) -%}
    {{ cast_decimal(mrr, 38, 2) }} * 12
{%- endmacro %}
