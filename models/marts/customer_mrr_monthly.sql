-- datasets.md customer_mrr_monthly: each customer's MRR at every month end while it had MRR, for
-- cohorts. Joins each customer's constant stretches to the month ends inside them (no day spine).
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with customer_changes as (
    {{ touched_rows('int_customer_changes', 'int_touched_customers', ['customer_id']) }}
),

stretches as (
    select
        customer_id,
        effective_at as valid_from,
        lead(effective_at) over (partition by customer_id order by customer_seq) as valid_to,
        customer_mrr_after as mrr,
        live_subscriptions_after,
        is_subscriber_after,
        sum(quantity_change) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as subscription_quantity
    from customer_changes
),

bounds as (
    select
        cast({{ dbt.date_trunc('month', 'min(valid_from)') }} as date) as first_month,
        cast({{ dbt.date_trunc('month', as_of()) }} as date) as last_month
    from stretches
),

numbers as (
    {{ integers(4) }}
),

month_ends as (
    select
        cast({{ dbt.dateadd('month', 'numbers.n', 'bounds.first_month') }} as date) as month,
        cast(
            {{ dbt.dateadd('month', 'numbers.n + 1', 'bounds.first_month') }} as {{ timestamp_type() }}
        ) as next_month_start
    from bounds
    inner join numbers
        on numbers.n <= {{ dbt.datediff('bounds.first_month', 'bounds.last_month', 'month') }}
),

final as (
    select
        month_ends.month,
        stretches.customer_id,
        stretches.mrr,
        cast(stretches.subscription_quantity as bigint) as subscription_quantity,
        case when stretches.is_subscriber_after = 1 then 'Active' else 'Cancelled' end as status
    from stretches
    inner join month_ends
        on
            stretches.valid_from < month_ends.next_month_start
            and (stretches.valid_to is null or stretches.valid_to >= month_ends.next_month_start)
    where stretches.mrr <> 0
)

select * from final
