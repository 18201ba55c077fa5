-- mrr-rules §5: every subscription change, in customer order, with the customer's subscriber state
-- just before and after it, classified into new business, expansion, contraction, churn and
-- reactivation, then smart-classified within the settings' window.
with changes as (
    select * from {{ ref('int_subscription_changes') }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

customer_changes as (
    select
        customer_map.customer_id,
        changes.*,
        case
            when changes.is_live and not changes.was_live then 1
            when not changes.is_live and changes.was_live then -1
            else 0
        end as live_subscription_delta,
        row_number() over (
            partition by customer_map.customer_id
            order by
                changes.effective_at, changes.kind_rank, changes.event_order nulls last,
                changes.batch_seq, changes.line, changes.data_source, changes.subscription_external_id
        ) as customer_seq
    from changes
    inner join customer_map
        on
            changes.data_source = customer_map.data_source
            and changes.customer_external_id = customer_map.customer_external_id
),

running as (
    select
        *,
        sum(live_subscription_delta) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as live_subscriptions_after,
        sum(mrr - previous_mrr) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as customer_mrr_after
    from customer_changes
),

subscriber_states as (
    select
        *,
        case
            when live_subscriptions_after > 0
            {%- if var('free_customers') == 'churn' %} and customer_mrr_after > 0{% endif %}
                then 1
            else 0
        end as is_subscriber_after
    from running
),

before_and_after as (
    select
        *,
        coalesce(lag(is_subscriber_after) over (
            partition by customer_id order by customer_seq
        ), 0) as is_subscriber_before,
        coalesce(max(is_subscriber_after) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and 1 preceding
        ), 0) as was_ever_subscriber
    from subscriber_states
),

movements as (
    select
        *,
        case
            when is_subscriber_before = 0 and is_subscriber_after = 1 and was_ever_subscriber = 0 then 'new_biz'
            when is_subscriber_before = 0 and is_subscriber_after = 1 then 'reactivation'
            when is_subscriber_before = 1 and is_subscriber_after = 0 then 'churn'
            when mrr_movement_billing_currency > 0 then 'expansion'
            else 'contraction'
        end as base_type
    from before_and_after
    where mrr_movement_billing_currency <> 0
),

smart_windows as (
    select
        *,
        max(case when base_type = 'new_biz' then effective_at end) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as last_new_biz_at,
        max(case when base_type = 'reactivation' then effective_at end) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as last_reactivation_at,
        min(case when base_type = 'churn' then effective_at end) over (
            partition by customer_id order by customer_seq rows between current row and unbounded following
        ) as next_churn_at
    from movements
),

final as (
    select
        *,
        {%- set window = var('smart_classification_minutes') | int %}
        case
            {%- if window > 0 %}
                when
                    base_type in ('expansion', 'contraction')
                    and last_reactivation_at is not null
                    and (last_new_biz_at is null or last_reactivation_at >= last_new_biz_at)
                    and effective_at <= {{ dbt.dateadd('minute', window, 'last_reactivation_at') }}
                    then 'reactivation'
                when
                    base_type in ('expansion', 'contraction')
                    and last_new_biz_at is not null
                    and effective_at <= {{ dbt.dateadd('minute', window, 'last_new_biz_at') }}
                    then 'new_biz'
                when
                    base_type in ('expansion', 'contraction')
                    and next_churn_at is not null
                    and next_churn_at <= {{ dbt.dateadd('minute', window, 'effective_at') }}
                    then 'churn'
            {%- endif %}
            else base_type
        end as movement_type
    from smart_windows
)

select * from final
