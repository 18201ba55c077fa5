{{ config(alias='custom_attributes') }}

with custom_attributes as (
    {{ latest_valid_rows('custom_attributes', key=['source', 'customer_external_id', 'key']) }}
),

final as (
    select
        {{ clean_text('source') }} as source,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ clean_text('key') }} as key,
        {{ clean_text('type') }} as type,
        {{ clean_text('value') }} as value,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from custom_attributes
)

select * from final
