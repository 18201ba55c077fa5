-- datasets.md subscriptions: one row per subscription, its values and status at as_of (mrr-rules §6).
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with changes as (
    {{ touched_rows('int_subscription_changes', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

transactions as (
    {{ touched_rows('int_transactions', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by data_source, subscription_external_id order by state_seq desc
        ) as recency,
        min(effective_at) over (partition by data_source, subscription_external_id) as started_at
    from changes
),

latest_items as (
    select
        *,
        row_number() over (
            partition by data_source, subscription_external_id order by state_seq desc
        ) as recency
    from changes
    where is_live
),

invoice_payments as (
    select
        data_source,
        invoice_external_id,
        max(case when type = 'payment' and result = 'failed' then 1 else 0 end) as has_failed_payment,
        max(case when type = 'payment' and result = 'successful' then 1 else 0 end) as has_successful_payment
    from transactions
    group by data_source, invoice_external_id
),

final as (
    select
        {{ stable_id(['ranked.data_source', 'ranked.subscription_external_id']) }} as subscription_id,
        customer_map.customer_id,
        ranked.data_source,
        ranked.customer_external_id,
        ranked.subscription_external_id,
        ranked.subscription_set_external_id,
        latest_items.plan_external_id,
        latest_items.plan_name,
        latest_items.interval_unit,
        latest_items.interval_count,
        ranked.quantity,
        ranked.mrr,
        {{ annualised('ranked.mrr') }} as arr,
        ranked.billing_currency,
        ranked.mrr_billing_currency,
        case
            when not ranked.is_live then 'cancelled'
            when latest_items.paid_through < {{ as_of() }} then 'past_due'
            when invoice_payments.has_failed_payment = 1 and invoice_payments.has_successful_payment = 0
                then 'past_due'
            else 'active'
        end as status,
        ranked.started_at,
        case when not ranked.is_live then ranked.effective_at end as cancelled_at,
        latest_items.paid_through as current_period_end
    from ranked
    inner join customer_map
        on
            ranked.data_source = customer_map.data_source
            and ranked.customer_external_id = customer_map.customer_external_id
    left join latest_items
        on
            ranked.data_source = latest_items.data_source
            and ranked.subscription_external_id = latest_items.subscription_external_id
            and latest_items.recency = 1
    left join invoice_payments
        on
            latest_items.data_source = invoice_payments.data_source
            and latest_items.invoice_external_id = invoice_payments.invoice_external_id
    where ranked.recency = 1
)

select * from final
