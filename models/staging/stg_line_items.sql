{{ config(alias='line_items') }}

with line_items as (
    {{ latest_valid_rows('line_items', key=['external_id'], fallback_key=['invoice_external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('invoice_external_id') }} as invoice_external_id,
        {{ clean_text('type') }} as type,
        {{ to_money('amount') }} as amount,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('description') }} as description,
        {{ clean_text('subscription_external_id') }} as subscription_external_id,
        {{ clean_text('subscription_set_external_id') }} as subscription_set_external_id,
        {{ clean_text('plan_external_id') }} as plan_external_id,
        {{ to_utc_timestamp('service_period_start') }} as service_period_start,
        {{ to_utc_timestamp('service_period_end') }} as service_period_end,
        coalesce({{ to_bool('prorated') }}, false) as prorated,
        coalesce({{ clean_text('proration_type') }}, 'differential') as proration_type,
        coalesce({{ to_int('quantity') }}, 1) as quantity,
        {{ to_utc_timestamp('cancelled_at') }} as cancelled_at,
        {{ to_int('event_order') }} as event_order,
        coalesce({{ to_money('tax_amount') }}, 0) as tax_amount,
        coalesce({{ to_money('transaction_fees') }}, 0) as transaction_fees,
        coalesce({{ to_money('discount_amount') }}, 0) as discount_amount,
        {{ clean_text('discount_code') }} as discount_code,
        {{ clean_text('discount_description') }} as discount_description,
        coalesce({{ to_bool('balance_transfer') }}, false) as balance_transfer,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from line_items
)

select * from final
