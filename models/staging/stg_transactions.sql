{{ config(alias='transactions') }}

with transactions as (
    {{ latest_valid_rows('transactions', key=['external_id'], fallback_key=['invoice_external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('invoice_external_id') }} as invoice_external_id,
        {{ clean_text('type') }} as type,
        {{ clean_text('result') }} as result,
        {{ to_utc_timestamp('date') }} as date,
        {{ to_money('amount') }} as amount,
        {{ clean_text('external_id') }} as external_id,
        coalesce({{ to_money('transaction_fees') }}, 0) as transaction_fees,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from transactions
)

select * from final
