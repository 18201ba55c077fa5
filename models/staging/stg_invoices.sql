{{ config(alias='invoices') }}

with invoices as (
    {{ latest_valid_rows('invoices', key=['external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ to_utc_timestamp('date') }} as date,
        {{ to_utc_timestamp('due_date') }} as due_date,
        upper({{ clean_text('currency') }}) as currency,
        {{ clean_text('status') }} as status,
        {{ clean_text('collection_method') }} as collection_method,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from invoices
)

select * from final
