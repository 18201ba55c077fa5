-- mrr-rules §4 / inputs.md: the rate for a day is the latest one on or before it; the inverse
-- pair may be used. Rates are kept as numerator / denominator so an inverse stays exact.
with currency_rates as (
    select * from {{ ref('stg_currency_rates') }}
),

candidates as (
    select
        from_currency,
        to_currency,
        cast(date as date) as rate_date,
        rate as rate_numerator,
        {{ cast_decimal('1', 38, 12) }} as rate_denominator,
        0 as preference
    from currency_rates
    union all
    select
        to_currency as from_currency,
        from_currency as to_currency,
        cast(date as date) as rate_date,
        {{ cast_decimal('1', 38, 12) }} as rate_numerator,
        rate as rate_denominator,
        1 as preference
    from currency_rates
),

preferred as (
    select
        *,
        row_number() over (
            partition by from_currency, to_currency, rate_date
            order by preference
        ) as preference_rank
    from candidates
),

final as (
    select
        from_currency,
        to_currency,
        rate_date as valid_from,
        lead(rate_date) over (partition by from_currency, to_currency order by rate_date) as valid_to,
        rate_numerator,
        rate_denominator
    from preferred
    where preference_rank = 1
)

select * from final
