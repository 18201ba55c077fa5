-- datasets.md mrr_activities: one row per MRR movement, in the account currency.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with movements as (
    {{ touched_rows('int_customer_movements', 'int_touched_customers', ['customer_id']) }}
),

customers as (
    select * from {{ ref('stg_customers') }}
),

described as (
    select
        *,
        case
            when not is_live then 'cancelled the ' || previous_plan_name || ' plan'
            when not was_live and movement_type = 'reactivation'
                then 'reactivated with the ' || plan_name || ' plan'
            when not was_live then 'purchased the ' || plan_name || ' plan'
            when previous_plan_external_id <> plan_external_id
                then
                    case when mrr_movement_billing_currency > 0 then 'upgraded' else 'downgraded' end
                    || ' from ' || previous_plan_name || ' to ' || plan_name
            when mrr_movement_billing_currency > 0 then 'expanded the ' || plan_name || ' plan'
            else 'contracted the ' || plan_name || ' plan'
        end as description
    from movements
),

final as (
    select
        described.change_id as activity_id,
        described.effective_at as date,
        row_number() over (
            partition by described.customer_id, cast(described.effective_at as date)
            order by described.customer_seq
        ) as rank,
        described.customer_id,
        described.customer_external_id,
        coalesce(customers.company, customers.name) as customer_name,
        described.data_source,
        described.subscription_external_id,
        described.plan_external_id,
        described.previous_plan_external_id,
        described.movement_type as type,
        described.mrr_movement,
        described.customer_mrr_after as mrr,
        {{ annualised('described.customer_mrr_after') }} as arr,
        {{ sql_string(var("account_currency")) }} as account_currency,
        described.billing_currency,
        described.mrr_movement_billing_currency,
        described.quantity as subscription_quantity,
        described.description,
        described.customer_seq
    from described
    left join customers
        on
            described.data_source = customers.data_source
            and described.customer_external_id = customers.external_id
)

select * from final
