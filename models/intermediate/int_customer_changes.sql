-- mrr-rules §5: every subscription change (movements and FX-only revaluations) in customer order,
-- with the customer's MRR, live subscriptions and subscriber state just before and after it.
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
        coalesce(changes.subscription_set_external_id, changes.subscription_external_id) as subscription_set_key,
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

-- datasets.md `subscriptions` metric: a subscription set counts once while any of it is live
set_states as (
    select
        *,
        sum(live_subscription_delta) over (
            partition by data_source, subscription_set_key
            order by effective_at, kind_rank, batch_seq, line, subscription_external_id
            rows between unbounded preceding and current row
        ) as live_in_set_after
    from before_and_after
),

final as (
    select
        *,
        mrr - previous_mrr as mrr_change,
        quantity - previous_quantity as quantity_change,
        case when live_in_set_after > 0 then 1 else 0 end
        - case when live_in_set_after - live_subscription_delta > 0 then 1 else 0 end as live_set_delta
    from set_states
)

select * from final
