{{ config(alias='customer_merges') }}

with customer_merges as (
    {{ latest_valid_rows('customer_merges', key=['from_source', 'from_external_id'], incremental=false) }}
),

final as (
    select
        {{ clean_text('from_source') }} as from_source,
        {{ clean_text('from_external_id') }} as from_external_id,
        {{ clean_text('into_source') }} as into_source,
        {{ clean_text('into_external_id') }} as into_external_id,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from customer_merges
)

select * from final
