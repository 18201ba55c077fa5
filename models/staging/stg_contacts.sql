{{ config(alias='contacts') }}

with contacts as (
    {{ latest_valid_rows('contacts', key=['customer_external_id', 'email'], fallback_key=['customer_external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('customer_external_id') }} as customer_external_id,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('title') }} as title,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('phone') }} as phone,
        {{ clean_text('linkedin') }} as linkedin,
        {{ clean_text('twitter') }} as twitter,
        {{ clean_text('notes') }} as notes,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from contacts
)

select * from final
