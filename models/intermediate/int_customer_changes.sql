-- mrr-rules §5: every subscription change (movements and FX-only revaluations) in customer order,
-- with the customer's MRR, live subscriptions and subscriber state just before and after it.
-- The running states are computed on a narrow projection and joined back to the wide change rows
-- once: each window sorts its input, and sorting every column of the change costs several times more.
{{ incremental_config('int_touched_customers', ['customer_id']) }}
{%- set customer_order -%}
    partition by customer_map.customer_id
    order by
        changes.effective_at, changes.kind_rank, changes.event_order nulls last,
        changes.batch_seq, changes.line, changes.data_source, changes.subscription_external_id
{%- endset %}
{%- set live_subscription_delta -%}
    case
        when changes.is_live and not changes.was_live then 1
        when not changes.is_live and changes.was_live then -1
        else 0
    end
{%- endset %}
{%- set free_customers_churn = var('free_customers') == 'churn' %}

with changes as (
    {{ touched_rows('int_subscription_changes', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

-- one sort per customer: the running sums share the window of the sequence number (the order is unique:
-- a subscription has one state per moment)
customer_changes as (
    select
        customer_map.customer_id,
        changes.data_source,
        changes.subscription_external_id,
        changes.state_seq,
        changes.effective_at,
        changes.kind_rank,
        changes.batch_seq,
        changes.line,
        coalesce(changes.subscription_set_external_id, changes.subscription_external_id) as subscription_set_key,
        {{ live_subscription_delta }} as live_subscription_delta,
        changes.mrr - changes.previous_mrr as mrr_change,
        row_number() over ({{ customer_order }}) as customer_seq,
        sum({{ live_subscription_delta }}) over (
            {{ customer_order }} rows between unbounded preceding and current row
        ) as live_subscriptions_after,
        sum(changes.mrr - changes.previous_mrr) over (
            {{ customer_order }} rows between unbounded preceding and current row
        ) as customer_mrr_after
    from changes
    inner join customer_map
        on
            changes.data_source = customer_map.data_source
            and changes.customer_external_id = customer_map.customer_external_id
),

-- the state before a change is the state after it minus the change itself (no second window)
subscriber_states as (
    select
        *,
        case
            when live_subscriptions_after > 0
            {%- if free_customers_churn %} and customer_mrr_after > 0{% endif %}
                then 1
            else 0
        end as is_subscriber_after,
        case
            when live_subscriptions_after - live_subscription_delta > 0
            {%- if free_customers_churn %} and customer_mrr_after - mrr_change > 0{% endif %}
                then 1
            else 0
        end as is_subscriber_before
    from customer_changes
),

first_subscribed as (
    select
        customer_id,
        min(case when is_subscriber_after = 1 then customer_seq end) as first_subscriber_seq
    from subscriber_states
    group by customer_id
),

before_and_after as (
    select
        subscriber_states.*,
        case
            when first_subscribed.first_subscriber_seq < subscriber_states.customer_seq then 1 else 0
        end as was_ever_subscriber
    from subscriber_states
    inner join first_subscribed
        on subscriber_states.customer_id = first_subscribed.customer_id
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
        set_states.customer_id,
        changes.*,
        set_states.subscription_set_key,
        set_states.live_subscription_delta,
        set_states.customer_seq,
        set_states.live_subscriptions_after,
        set_states.customer_mrr_after,
        set_states.is_subscriber_after,
        set_states.is_subscriber_before,
        set_states.was_ever_subscriber,
        set_states.live_in_set_after,
        set_states.mrr_change,
        changes.quantity - changes.previous_quantity as quantity_change,
        case when set_states.live_in_set_after > 0 then 1 else 0 end
        - case
            when set_states.live_in_set_after - set_states.live_subscription_delta > 0 then 1 else 0
        end as live_set_delta
    from set_states
    inner join changes
        on
            set_states.data_source = changes.data_source
            and set_states.subscription_external_id = changes.subscription_external_id
            and set_states.state_seq = changes.state_seq
)

select * from final
