{{ config(alias='currency_rates') }}

with currency_rates as (
    {{ latest_valid_rows('currency_rates', key=['date', 'from_currency', 'to_currency'], incremental=false) }}
),

final as (
    select
        {{ to_utc_timestamp('date') }} as date,
        upper({{ clean_text('from_currency') }}) as from_currency,
        upper({{ clean_text('to_currency') }}) as to_currency,
        {{ to_rate('rate') }} as rate,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from currency_rates
)

select * from final
