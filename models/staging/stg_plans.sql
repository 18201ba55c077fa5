{{ config(alias='plans') }}

with plans as (
    {{ latest_valid_rows('plans', key=['external_id'], incremental=false) }}
),

final as (
    select
        data_source,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('name') }} as name,
        {{ to_int('interval_count') }} as interval_count,
        {{ clean_text('interval_unit') }} as interval_unit,
        extra,
        file,
        line,
        batch_id,
        batch_seq,
        loaded_at
    from plans
)

select * from final
