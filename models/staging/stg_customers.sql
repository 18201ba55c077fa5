{{ config(alias='customers') }}

with customers as (
    {{ latest_valid_rows('customers', key=['external_id']) }}
),

final as (
    select
        data_source,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('company') }} as company,
        {{ clean_text('name') }} as name,
        lower({{ clean_text('email') }}) as email,
        upper({{ clean_text('country') }}) as country,
        upper({{ clean_text('state') }}) as state,
        {{ clean_text('city') }} as city,
        {{ clean_text('zip') }} as zip,
        {{ to_utc_timestamp('lead_created_at') }} as lead_created_at,
        {{ to_utc_timestamp('free_trial_started_at') }} as free_trial_started_at,
        coalesce({{ clean_text('lead_status') }}, 'New Lead') as lead_status,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from customers
)

select * from final
