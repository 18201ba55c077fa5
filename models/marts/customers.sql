-- datasets.md customers: one row per calculated customer (after merges), status at as_of (mrr-rules §6).
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with source_customers as (
    select * from {{ ref('stg_customers') }}
),

customer_map as (
    {{ touched_rows('int_customer_map', 'int_touched_customers', ['customer_id']) }}
),

subscriptions as (
    {{ touched_rows('subscriptions', 'int_touched_customers', ['customer_id']) }}
),

transactions as (
    {{ touched_rows('int_transactions', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

tags as (
    select * from {{ ref('stg_tags') }}
),

custom_attributes as (
    select * from {{ ref('stg_custom_attributes') }}
),

roots as (
    select
        customer_map.customer_id,
        source_customers.*
    from customer_map
    inner join source_customers
        on
            customer_map.root_data_source = source_customers.data_source
            and customer_map.root_external_id = source_customers.external_id
    where
        customer_map.data_source = customer_map.root_data_source
        and customer_map.customer_external_id = customer_map.root_external_id
),

members as (
    select
        customer_id,
        {{ dbt.listagg('customer_external_id', "', '", 'order by customer_external_id') }} as external_ids,
        {{ dbt.listagg('data_source', "', '", 'order by data_source') }} as data_sources
    from (select distinct
        customer_id,
        customer_external_id,
        data_source
    from customer_map) as distinct_members
    group by customer_id
),

subscription_rollup as (
    select
        customer_id,
        sum(case when status <> 'cancelled' then mrr else 0 end) as mrr,
        cast(sum(case when status <> 'cancelled' then 1 else 0 end) as bigint) as active_subscriptions,
        cast(sum(case when status <> 'cancelled' then quantity else 0 end) as bigint) as subscription_quantity,
        max(case when status = 'past_due' then 1 else 0 end) as has_past_due,
        max(case when status <> 'cancelled' then 1 else 0 end) as has_live,
        min(started_at) as customer_since
    from subscriptions
    group by customer_id
),

plan_rollup as (
    select
        customer_id,
        {{ dbt.listagg('plan_name', "'|'", 'order by is_cancelled, plan_name') }} as plan_names,
        {{ dbt.listagg('billing_cycle', "'|'", 'order by is_cancelled, billing_cycle') }} as billing_cycles
    from (
        select
            customer_id,
            plan_name,
            cast(interval_count as {{ dbt.type_string() }}) || ' ' || interval_unit as billing_cycle,
            min(case when status = 'cancelled' then 1 else 0 end) as is_cancelled
        from subscriptions
        group by customer_id, plan_name, interval_count, interval_unit
    ) as plans
    group by customer_id
),

currency_rollup as (
    select
        customer_id,
        {{ dbt.listagg('billing_currency', "', '", 'order by billing_currency') }} as billing_currencies
    from (select distinct
        customer_id,
        billing_currency
    from subscriptions) as currencies
    group by customer_id
),

payments as (
    select
        customer_map.customer_id,
        sum(
            case
                when transactions.result = 'successful' and transactions.type = 'payment' then transactions.amount
                when transactions.result = 'successful' and transactions.type = 'refund' then -transactions.amount
                else 0
            end
        ) as net_payments
    from transactions
    inner join customer_map
        on
            transactions.data_source = customer_map.data_source
            and transactions.customer_external_id = customer_map.customer_external_id
    group by customer_map.customer_id
),

tag_rollup as (
    select
        customer_map.customer_id,
        {{ dbt.listagg('tags.tag', "', '", 'order by tags.tag') }} as tags
    from tags
    inner join customer_map
        on
            tags.source = customer_map.data_source
            and tags.customer_external_id = customer_map.customer_external_id
    group by customer_map.customer_id
),

attribute_rollup as (
    select
        customer_map.customer_id,
        {{ json_object_agg('custom_attributes.key', 'custom_attributes.value') }} as custom_attributes
    from custom_attributes
    inner join customer_map
        on
            custom_attributes.source = customer_map.data_source
            and custom_attributes.customer_external_id = customer_map.customer_external_id
    group by customer_map.customer_id
),

final as (
    select
        roots.customer_id,
        roots.data_source,
        roots.external_id as customer_external_id,
        roots.name,
        roots.company,
        roots.email,
        roots.country,
        roots.state,
        roots.city,
        roots.zip,
        case
            when subscription_rollup.has_past_due = 1 then 'Past Due'
            {%- if var('free_customers') == 'churn' %}
                when subscription_rollup.has_live = 1 and subscription_rollup.mrr = 0 then 'Cancelled'
            {%- endif %}
            when subscription_rollup.has_live = 1 then 'Active'
            when subscription_rollup.customer_id is not null then 'Cancelled'
            else roots.lead_status
        end as status,
        roots.lead_status,
        subscription_rollup.customer_since,
        roots.lead_created_at,
        roots.free_trial_started_at,
        coalesce(subscription_rollup.mrr, 0) as mrr,
        {{ annualised('coalesce(subscription_rollup.mrr, 0)') }} as arr,
        currency_rollup.billing_currencies,
        plan_rollup.plan_names,
        plan_rollup.billing_cycles,
        coalesce(subscription_rollup.active_subscriptions, 0) as active_subscriptions,
        coalesce(subscription_rollup.subscription_quantity, 0) as subscription_quantity,
        coalesce(payments.net_payments, 0) as net_payments,
        members.external_ids,
        members.data_sources,
        tag_rollup.tags,
        attribute_rollup.custom_attributes
    from roots
    left join subscription_rollup on roots.customer_id = subscription_rollup.customer_id
    left join plan_rollup on roots.customer_id = plan_rollup.customer_id
    left join currency_rollup on roots.customer_id = currency_rollup.customer_id
    left join payments on roots.customer_id = payments.customer_id
    left join members on roots.customer_id = members.customer_id
    left join tag_rollup on roots.customer_id = tag_rollup.customer_id
    left join attribute_rollup on roots.customer_id = attribute_rollup.customer_id
)

select * from final
