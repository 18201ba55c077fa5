-- mrr-rules §3: a cancellation comes from a line item's cancelled_at, a cancellations.csv row, or a
-- subscription_cancelled event at its effective date that no retraction removed.
with line_items as (
    select * from {{ ref('stg_line_items') }}
),

cancellations as (
    select * from {{ ref('stg_cancellations') }}
),

subscription_events as (
    select * from {{ ref('stg_subscription_events') }}
),

retractions as (
    select
        data_source,
        retracted_event_id
    from subscription_events
    where event_type = 'subscription_event_retracted'
),

from_line_items as (
    select
        data_source,
        subscription_external_id,
        cancelled_at,
        'line_item' as origin,
        file,
        line,
        batch_seq
    from line_items
    where type = 'subscription' and cancelled_at is not null
),

from_cancellations as (
    select
        data_source,
        subscription_external_id,
        cancelled_at,
        'cancellation' as origin,
        file,
        line,
        batch_seq
    from cancellations
),

from_events as (
    select
        subscription_events.data_source,
        subscription_events.subscription_external_id,
        subscription_events.effective_date as cancelled_at,
        'subscription_event' as origin,
        subscription_events.file,
        subscription_events.line,
        subscription_events.batch_seq
    from subscription_events
    left join retractions
        on
            subscription_events.data_source = retractions.data_source
            and subscription_events.external_id = retractions.retracted_event_id
    where
        subscription_events.event_type = 'subscription_cancelled'
        and retractions.retracted_event_id is null
),

final as (
    select * from from_line_items
    union all
    select * from from_cancellations
    union all
    select * from from_events
)

select * from final
