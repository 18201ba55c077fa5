{{ config(alias='tags') }}

with tags as (
    {{ latest_valid_rows('tags', key=['source', 'customer_external_id', 'tag']) }}
),

final as (
    select
        {{ clean_text('source') }} as source,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ clean_text('tag') }} as tag,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from tags
)

select * from final
