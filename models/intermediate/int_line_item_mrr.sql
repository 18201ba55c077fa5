-- mrr-rules §2: the MRR of one subscription line item, in its invoice currency.
{{ incremental_config('int_touched_subscriptions', ['data_source', 'subscription_external_id']) }}

with line_items as (
    {{ touched_rows('stg_line_items', 'int_touched_subscriptions', ['data_source', 'subscription_external_id']) }}
),

invoices as (
    select * from {{ ref('stg_invoices') }}
),

plans as (
    select * from {{ ref('stg_plans') }}
),

subscription_items as (
    select
        line_items.data_source,
        line_items.invoice_external_id,
        line_items.external_id as line_item_external_id,
        line_items.subscription_external_id,
        line_items.subscription_set_external_id,
        line_items.plan_external_id,
        plans.name as plan_name,
        plans.interval_unit,
        plans.interval_count,
        invoices.customer_external_id,
        invoices.currency as billing_currency,
        line_items.service_period_start,
        line_items.service_period_end,
        line_items.prorated,
        line_items.proration_type,
        line_items.quantity,
        line_items.cancelled_at,
        line_items.event_order,
        line_items.amount,
        line_items.tax_amount,
        case
            when {{ deducts_transaction_fees('line_items.data_source') }} then line_items.transaction_fees
            else 0
        end as deducted_fees,
        line_items.file,
        line_items.line,
        line_items.batch_seq
    from line_items
    inner join invoices
        on
            line_items.data_source = invoices.data_source
            and line_items.invoice_external_id = invoices.external_id
    inner join plans
        on
            line_items.data_source = plans.data_source
            and line_items.plan_external_id = plans.external_id
    where line_items.type = 'subscription'
),

normalised as (
    select
        *,
        amount - tax_amount - deducted_fees as base_amount,
        -- plan ratio as numerator (millionths) / denominator: month 1/count, year 1/(12*count),
        -- day days_per_month/count
        case
            when interval_unit = 'day' then {{ days_per_month_millionths() }}
            else 1000000
        end as ratio_numerator,
        case
            when interval_unit = 'year' then 12 * interval_count
            else interval_count
        end as ratio_denominator,
        -- one plan interval ending at the item's end, in calendar arithmetic
        case
            when interval_unit = 'day'
                then {{ dbt.dateadd('day', '-1 * interval_count', 'service_period_end') }}
            when interval_unit = 'month'
                then {{ dbt.dateadd('month', '-1 * interval_count', 'service_period_end') }}
            else {{ dbt.dateadd('month', '-12 * interval_count', 'service_period_end') }}
        end as full_period_start
    from subscription_items
),

factored as (
    select
        *,
        case
            when prorated then {{ dbt.datediff('full_period_start', 'service_period_end', 'second') }}
            else 1
        end as full_period_seconds,
        case
            when prorated then {{ dbt.datediff('service_period_start', 'service_period_end', 'second') }}
            else 1
        end as item_period_seconds
    from normalised
),

final as (
    select
        data_source,
        customer_external_id,
        subscription_external_id,
        subscription_set_external_id,
        invoice_external_id,
        line_item_external_id,
        plan_external_id,
        plan_name,
        interval_unit,
        interval_count,
        billing_currency,
        service_period_start,
        service_period_end,
        prorated,
        proration_type,
        quantity,
        cancelled_at,
        event_order,
        amount,
        tax_amount,
        deducted_fees,
        base_amount,
        ratio_numerator,
        ratio_denominator,
        full_period_seconds,
        item_period_seconds,
        {{ round_cents_div(
            to_cents('base_amount') ~ ' * ratio_numerator * full_period_seconds',
            'ratio_denominator * 1000000 * item_period_seconds'
        ) }} as mrr_item,
        file,
        line,
        batch_seq
    from factored
)

select * from final
