-- mrr-rules §4: per customer, movements + FX adjustments = current MRR. Returns the customers where not.
-- an asset check of mrr_activities in Dagster (a test of several models names the one it checks)
{{ config(meta={'dagster': {'ref': {'name': 'mrr_activities'}}}) }}

with customers as (
    select * from {{ ref('customers') }}
),

movements as (
    select
        customer_id,
        sum(mrr_movement) as total
    from {{ ref('mrr_activities') }}
    group by customer_id
),

adjustments as (
    select
        customer_id,
        sum(amount) as total
    from {{ ref('fx_adjustments') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.mrr,
    coalesce(movements.total, 0) + coalesce(adjustments.total, 0) as bridged_mrr
from customers
left join movements on customers.customer_id = movements.customer_id
left join adjustments on customers.customer_id = adjustments.customer_id
where customers.mrr <> coalesce(movements.total, 0) + coalesce(adjustments.total, 0)
