-- datasets.md mrr_intervals (mrr-rules §3): stretches of constant MRR per subscription. A new
-- stretch starts when MRR, its account-currency value, quantity or plan changes.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with changes as (
    {{ touched_rows('int_subscription_changes', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

boundaries as (
    select
        *,
        lag(mrr_billing_currency) over (
            partition by data_source, subscription_external_id order by state_seq
        ) as previous_billing_mrr,
        lag(quantity) over (
            partition by data_source, subscription_external_id order by state_seq
        ) as previous_state_quantity
    from changes
),

interval_starts as (
    select *
    from boundaries
    where
        not is_live
        or not was_live
        or mrr_billing_currency <> previous_billing_mrr
        or mrr <> previous_mrr
        or quantity <> previous_state_quantity
        or plan_external_id <> previous_plan_external_id
),

bounded as (
    select
        *,
        lead(effective_at) over (
            partition by data_source, subscription_external_id order by state_seq
        ) as next_start_at
    from interval_starts
),

final as (
    select
        {{ stable_id(['bounded.data_source', 'bounded.subscription_external_id']) }} as subscription_id,
        customer_map.customer_id,
        bounded.data_source,
        bounded.subscription_external_id,
        bounded.effective_at as start_at,
        bounded.next_start_at as end_at,
        bounded.mrr,
        bounded.mrr_billing_currency,
        bounded.billing_currency,
        bounded.fx_rate,
        bounded.quantity,
        bounded.plan_external_id,
        bounded.mrr_billing_currency = 0 as is_free
    from bounded
    inner join customer_map
        on
            bounded.data_source = customer_map.data_source
            and bounded.customer_external_id = customer_map.customer_external_id
    where bounded.is_live
)

select * from final
