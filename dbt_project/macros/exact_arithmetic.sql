{#-
    Exact money arithmetic (spec/README.md, "Money"). Division is done once, on integers, with
    explicit half-away-from-zero rounding, because some engines (DuckDB) turn decimal / decimal
    into a binary double and lose the half cent.
-#}

{#- round(numerator / denominator) to cents, half away from zero; both are integer-valued, denominator > 0.
    The numerator is in cents, so the result is cents / 100 as derived money (typing.sql). -#}
{% macro round_cents_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('round_cents_div', 'openmrr')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__round_cents_div(numerator, denominator) -%}
    {%- set cents -%}
        sign({{ numerator }}) * div(abs({{ numerator }}) * 2 + ({{ denominator }}), ({{ denominator }}) * 2)
    {%- endset -%}
    {{ derived_money('cast(' ~ cents ~ ' as decimal(38, 0)) * 0.01') }}
{%- endmacro %}

{% macro duckdb__round_cents_div(numerator, denominator) -%}
    {%- set cents -%}
        sign(cast({{ numerator }} as hugeint))
            * ((abs(cast({{ numerator }} as hugeint)) * 2 + cast({{ denominator }} as hugeint))
               // (cast({{ denominator }} as hugeint) * 2))
    {%- endset -%}
    {{ derived_money('cast(' ~ cents ~ ' as decimal(38, 0)) * 0.01') }}
{%- endmacro %}

{#- PostgreSQL: numeric is exact at any size; the casts keep integer operands from overflowing bigint. -#}
{% macro postgres__round_cents_div(numerator, denominator) -%}
    {%- set cents -%}
        sign(cast({{ numerator }} as numeric))
            * div(abs(cast({{ numerator }} as numeric)) * 2 + cast({{ denominator }} as numeric),
                  cast({{ denominator }} as numeric) * 2)
    {%- endset -%}
    {{ derived_money(cents ~ ' * 0.01') }}
{%- endmacro %}

{#- Snowflake, Redshift and BigQuery have no div() on decimals. The floor of n / d (both >= 0) is
    (n - mod(n, d)) / d, an exact division because the remainder goes first; cast back to an integer type,
    since the division's type keeps 6 decimals that would leave too few integer digits in a product. -#}
{% macro round_cents_div_by_mod(numerator, denominator, integer_type) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as ' ~ integer_type ~ ')' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as ' ~ integer_type ~ ')' -%}
    {%- set doubled = '(abs(' ~ n ~ ') * 2 + ' ~ d ~ ')' -%}
    {{ derived_money('sign(' ~ n ~ ') * cast((' ~ doubled ~ ' - mod(' ~ doubled ~ ', ' ~ d ~ ' * 2)) / (' ~ d
                     ~ ' * 2) as ' ~ integer_type ~ ') * 0.01') }}
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
    {{ derived_money('sign(' ~ n ~ ') * ((' ~ doubled ~ ' - mod(' ~ doubled ~ ', ' ~ d ~ ' * 2)) / (' ~ d
                     ~ ' * 2)) / 100') }}
{%- endmacro %}

{#- The floor of numerator / denominator, and its remainder, for integer-valued numerator >= 0 and
    denominator > 0: the pieces that keep a product's intermediate values small (multiply_ratio). -#}
{% macro whole_quotient(numerator, denominator) -%}
    {{ return(adapter.dispatch('whole_quotient', 'openmrr')(numerator, denominator)) }}
{%- endmacro %}

{#- (n - mod(n, d)) / d: exact, as in round_cents_div_by_mod. -#}
{% macro default__whole_quotient(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as decimal(38, 0))' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as decimal(38, 0))' -%}
    cast(({{ n }} - mod({{ n }}, {{ d }})) / {{ d }} as decimal(38, 0))
{%- endmacro %}

{% macro duckdb__whole_quotient(numerator, denominator) -%}
    (cast({{ numerator }} as hugeint) // cast({{ denominator }} as hugeint))
{%- endmacro %}

{% macro postgres__whole_quotient(numerator, denominator) -%}
    div(cast({{ numerator }} as numeric), cast({{ denominator }} as numeric))
{%- endmacro %}

{% macro snowflake__whole_quotient(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as number(38, 0))' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as number(38, 0))' -%}
    cast(({{ n }} - mod({{ n }}, {{ d }})) / {{ d }} as number(38, 0))
{%- endmacro %}

{#- Redshift dispatches to postgres__ next, and has no div() on decimals. -#}
{% macro redshift__whole_quotient(numerator, denominator) -%}
    {{ default__whole_quotient(numerator, denominator) }}
{%- endmacro %}

{% macro bigquery__whole_quotient(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as bignumeric)' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as bignumeric)' -%}
    (({{ n }} - mod({{ n }}, {{ d }})) / {{ d }})
{%- endmacro %}

{#- In parentheses: a translator that writes mod(a, b) as `a % b` (sqlglot, in the BigQuery emulator) would
    otherwise turn `c * mod(a, b)` into `(c * a) % b`. -#}
{% macro whole_remainder(numerator, denominator) -%}
    {{ return(adapter.dispatch('whole_remainder', 'openmrr')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__whole_remainder(numerator, denominator) -%}
    (mod(cast({{ numerator }} as decimal(38, 0)), cast({{ denominator }} as decimal(38, 0))))
{%- endmacro %}

{% macro duckdb__whole_remainder(numerator, denominator) -%}
    (cast({{ numerator }} as hugeint) % cast({{ denominator }} as hugeint))
{%- endmacro %}

{% macro postgres__whole_remainder(numerator, denominator) -%}
    (mod(cast({{ numerator }} as numeric), cast({{ denominator }} as numeric)))
{%- endmacro %}

{% macro snowflake__whole_remainder(numerator, denominator) -%}
    (mod(cast({{ numerator }} as number(38, 0)), cast({{ denominator }} as number(38, 0))))
{%- endmacro %}

{% macro redshift__whole_remainder(numerator, denominator) -%}
    {{ default__whole_remainder(numerator, denominator) }}
{%- endmacro %}

{% macro bigquery__whole_remainder(numerator, denominator) -%}
    (mod(cast({{ numerator }} as bignumeric), cast({{ denominator }} as bignumeric)))
{%- endmacro %}

{#- amount x numerator / denominator rounded to cents (numerator >= 0, denominator > 0, both integer-valued).
    With q, r the quotient and remainder of numerator / denominator it is amount x q + amount x r / denominator:
    amount x q is exact and r < min(numerator, denominator), so no intermediate value is much larger than
    the result or than amount x min(numerator, denominator). The direct product amount x numerator would
    overflow 38 digits for a valid amount (17 digits in cents) at a valid rate (27 digits scaled). Rounding the
    second term alone is exact: both terms have the amount's sign and the first is a whole number of cents. -#}
{% macro multiply_ratio(amount, numerator, denominator) -%}
    ({{ derived_money(amount) }} * {{ whole_quotient(numerator, denominator) }}
        + {{ round_cents_div(to_cents(amount) ~ ' * ' ~ whole_remainder(numerator, denominator), denominator) }})
{%- endmacro %}

{#- numerator / denominator rounded half away from zero to 6 decimals; both integer-valued, denominator <> 0.
    Split like multiply_ratio, and the remainder's 6 decimals found 3 at a time, so that nothing
    exceeds 1000 x the denominator: rates of account-level sums stay exact up to 10^35 cents. A rate is
    decimal(35, 6), which BigQuery holds as NUMERIC, and null from 10^29 on (a churn of 10^27 against an MRR
    of 0.01; docs/reference.md, "Money beyond the inputs' range"); floats suffice for that test. -#}
{% macro round_ratio(numerator, denominator) -%}
    {%- set n = 'abs(' ~ numerator ~ ')' -%}
    {%- set d = 'abs(' ~ denominator ~ ')' -%}
    {%- set remainder = whole_remainder(n, d) -%}
    {%- set first_digits = whole_quotient(remainder ~ ' * 1000', d) -%}
    {%- set rest = whole_remainder(remainder ~ ' * 1000', d) -%}
    {%- set millionths -%}
        sign({{ numerator }}) * sign({{ denominator }}) * (
            {{ whole_quotient(n, d) }} * 1000000 + {{ first_digits }} * 1000
            + {{ whole_quotient(rest ~ ' * 2000 + ' ~ d, d ~ ' * 2') }}
        )
    {%- endset -%}
    case
        when cast({{ n }} as {{ dbt.type_float() }}) < cast({{ d }} as {{ dbt.type_float() }}) * 1e29
            then {{ shifted_decimal(millionths, 35, 6) }}
    end
{%- endmacro %}

{#- An integer-valued expression / 10^scale as an exact decimal(precision, scale). -#}
{% macro shifted_decimal(expression, precision, scale) -%}
    {{ return(adapter.dispatch('shifted_decimal', 'openmrr')(expression, precision, scale)) }}
{%- endmacro %}

{% macro default__shifted_decimal(expression, precision, scale) -%}
    {{ cast_decimal('cast(' ~ expression ~ ' as decimal(38, 0)) * 0.' ~ '0' * (scale - 1) ~ '1', precision, scale) }}
{%- endmacro %}

{#- BigQuery: a decimal literal is a FLOAT64, so the shift is an exact BIGNUMERIC division. -#}
{% macro bigquery__shifted_decimal(expression, precision, scale) -%}
    {{ cast_decimal('cast(' ~ expression ~ ' as bignumeric) / 1' ~ '0' * scale, precision, scale) }}
{%- endmacro %}

{#- An amount in cents as an exact integer-valued decimal; widened first, so amount x 100 cannot overflow
    the amount's own type. -#}
{% macro to_cents(amount) -%}
    {{ return(adapter.dispatch('to_cents', 'openmrr')(amount)) }}
{%- endmacro %}

{% macro default__to_cents(amount) -%}
    cast({{ derived_money(amount) }} * 100 as decimal(38, 0))
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

{#- amount x rate_numerator / rate_denominator, rounded to cents: a currency conversion. One of the two
    rate parts is 1 (int_fx_rates), so the remainder multiplying the amount stays below 10^12. -#}
{% macro convert_amount(amount, rate_numerator, rate_denominator) -%}
    {{ multiply_ratio(amount, scaled_rate(rate_numerator), scaled_rate(rate_denominator)) }}
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

{#- MRR x 12 as ARR, in derived money (inputs.md "Bad input": a value that passes validation never fails
    the build). -#}
{% macro annualised(mrr) -%}
    {{ derived_money(mrr) }} * 12
{%- endmacro %}
