-- datasets.md cmrr_activities: committed MRR movements from scheduled events (mrr-rules §7),
-- classified with the table of §5 on the timeline of MRR plus committed changes.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with committed as (
    {{ touched_rows('int_committed_changes', 'int_touched_customers', ['customer_id']) }}
),

customers as (
    select * from {{ ref('stg_customers') }}
),

final as (
    select
        {{ stable_id(['committed.data_source', 'committed.subscription_external_id',
                      'committed.event_type', 'committed.batch_seq', 'committed.line']) }} as activity_id,
        committed.effective_date as date,
        row_number() over (
            partition by committed.customer_id, cast(committed.effective_date as date)
            order by committed.customer_seq
        ) as rank,
        committed.customer_id,
        committed.customer_external_id,
        coalesce(customers.company, customers.name) as customer_name,
        committed.data_source,
        committed.subscription_external_id,
        committed.plan_external_id,
        committed.previous_plan_external_id,
        case
            when
                committed.is_subscriber_before = 0 and committed.is_subscriber_after = 1
                and committed.was_ever_subscriber = 0 then 'new_biz'
            when committed.is_subscriber_before = 0 and committed.is_subscriber_after = 1 then 'reactivation'
            when committed.is_subscriber_before = 1 and committed.is_subscriber_after = 0 then 'churn'
            when committed.movement_billing_currency > 0 then 'expansion'
            else 'contraction'
        end as type,
        committed.cmrr_movement as mrr_movement,
        committed.cmrr,
        {{ annualised('committed.cmrr') }} as carr,
        {{ sql_string(var("account_currency")) }} as account_currency,
        committed.billing_currency,
        committed.movement_billing_currency as mrr_movement_billing_currency,
        committed.quantity as subscription_quantity,
        committed.event_type,
        committed.event_external_id,
        committed.event_date,
        committed.effective_date,
        committed.file,
        committed.line
    from committed
    left join customers
        on
            committed.data_source = customers.data_source
            and committed.customer_external_id = customers.external_id
)

select * from final
