{{ config(alias='subscription_events') }}

with subscription_events as (
    {{ latest_valid_rows('subscription_events', key=['external_id'], fallback_key=['subscription_external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ clean_text('subscription_external_id') }} as subscription_external_id,
        {{ clean_text('subscription_set_external_id') }} as subscription_set_external_id,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('event_type') }} as event_type,
        {{ clean_text('retracted_event_id') }} as retracted_event_id,
        {{ to_utc_timestamp('event_date') }} as event_date,
        {{ to_utc_timestamp('effective_date') }} as effective_date,
        {{ clean_text('plan_external_id') }} as plan_external_id,
        upper({{ clean_text('currency') }}) as currency,
        {{ to_money('amount') }} as amount,
        coalesce({{ to_money('tax_amount') }}, 0) as tax_amount,
        {{ to_int('quantity') }} as quantity,
        {{ to_int('event_order') }} as event_order,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from subscription_events
)

select * from final
