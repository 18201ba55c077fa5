{#-
    mrr-rules §4: the rate of a day is the latest one on or before it (int_fx_rates holds validity
    ranges). One join and one conversion used by every model that values money in the account currency.
-#}

{#- left join of `rates` (int_fx_rates) holding the billing currency's rate to the account currency on `day`. -#}
{% macro join_rate_on(rates, currency, day) -%}
    {{ return(adapter.dispatch('join_rate_on', 'openmrr')(rates, currency, day)) }}
{%- endmacro %}

{% macro default__join_rate_on(rates, currency, day) -%}
    left join {{ rates }}
        on
            {{ currency }} = {{ rates }}.from_currency
            and {{ rates }}.to_currency = {{ sql_string(var("account_currency")) }}
            and cast({{ day }} as date) >= {{ rates }}.valid_from
            and ({{ rates }}.valid_to is null or cast({{ day }} as date) < {{ rates }}.valid_to)
{%- endmacro %}

{#- DuckDB plans the range join above as a hash join on the currency that pairs each row with every
    rate of its currency before filtering; an as-of join finds the latest rate directly (9x faster). -#}
{% macro duckdb__join_rate_on(rates, currency, day) -%}
    asof left join (
        select * from {{ rates }} where to_currency = {{ sql_string(var("account_currency")) }}
    ) as {{ rates }}
        on
            {{ currency }} = {{ rates }}.from_currency
            and cast({{ day }} as date) >= {{ rates }}.valid_from
{%- endmacro %}

{#-
    The rate of every (currency, day) that `relation` holds, for an equi-join on both: joining the rates
    to the distinct days instead of to every row keeps the range (or as-of) join small, which otherwise
    sorts every wide row of the relation (millions at scale).
-#}
{% macro rates_by_day(relation, currency, day, rates) -%}
    select
        days.currency,
        days.day,
        {{ rates }}.rate_numerator,
        {{ rates }}.rate_denominator
    from (
        select distinct
            {{ currency }} as currency,
            cast({{ day }} as date) as day
        from {{ relation }}
    ) as days
    {{ join_rate_on(rates, 'days.currency', 'days.day') }}
{%- endmacro %}

{#- `amount` in `currency` valued in the account currency with the rate joined by join_rate_on. -#}
{% macro in_account_currency(amount, currency, rates) -%}
    case
        when {{ currency }} = {{ sql_string(var("account_currency")) }} then {{ amount }}
        else {{ convert_amount(amount, rates ~ '.rate_numerator', rates ~ '.rate_denominator') }}
    end
{%- endmacro %}

{#- The rate's numerator / denominator, 1 / 1 for the account currency itself. -#}
{% macro rate_part(part, currency, rates) -%}
    case
        when {{ currency }} = {{ sql_string(var("account_currency")) }} then {{ cast_decimal('1', 38, 12) }}
        else {{ rates }}.rate_{{ part }}
    end
{%- endmacro %}
