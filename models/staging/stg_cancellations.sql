{{ config(alias='cancellations') }}

with cancellations as (
    {{ latest_valid_rows('cancellations', key=['subscription_external_id', 'cancelled_at'],
                       scope_key=['subscription_external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('subscription_external_id') }} as subscription_external_id,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ to_utc_timestamp('cancelled_at') }} as cancelled_at,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from cancellations
)

select * from final
