{#-
    datasets.md metrics for one period grain ('day' or 'month'). Balances at a period's end are
    running sums of the changes inside each period, so no customer x period spine is built.
    Rates are exact decimals (6 places) and null when their denominator is 0.
-#}
{% macro saas_metrics(period) %}

with customer_changes as (
    select * from {{ ref('int_customer_changes') }}
),

movements as (
    select * from {{ ref('int_customer_movements') }}
),

transactions as (
    select * from {{ ref('int_transactions') }}
),

one_time_items as (
    select * from {{ ref('int_one_time_items') }}
),

change_periods as (
    select
        cast({{ dbt.date_trunc(period, 'effective_at') }} as date) as period_start,
        sum(mrr_change) as mrr_change,
        sum(fx_adjustment) as fx_impact,
        sum(is_subscriber_after - is_subscriber_before) as customer_change,
        sum(quantity_change) as quantity_change,
        sum(case when quantity_change < 0 then -quantity_change else 0 end) as quantity_lost,
        sum(live_set_delta) as subscription_change
    from customer_changes
    group by 1
),

movement_periods as (
    select
        cast({{ dbt.date_trunc(period, 'effective_at') }} as date) as period_start,
        sum(case when movement_type = 'new_biz' then mrr_movement else 0 end) as new_biz_mrr,
        sum(case when movement_type = 'expansion' then mrr_movement else 0 end) as expansion_mrr,
        sum(case when movement_type = 'contraction' then mrr_movement else 0 end) as contraction_mrr,
        sum(case when movement_type = 'churn' then mrr_movement else 0 end) as churn_mrr,
        sum(case when movement_type = 'reactivation' then mrr_movement else 0 end) as reactivation_mrr,
        sum(mrr_movement) as net_mrr_movement,
        count(distinct case when movement_type = 'new_biz' then customer_id end) as new_customers,
        count(distinct case when movement_type = 'reactivation' then customer_id end) as reactivated_customers,
        count(distinct case when movement_type = 'churn' then customer_id end) as churned_customers
    from movements
    group by 1
),

-- customer churn rate: churned customers who did not also join or come back in the same period
churned_for_good as (
    select
        churned.period_start,
        count(distinct churned.customer_id) as churned_customers_net
    from (
        select distinct
            cast({{ dbt.date_trunc(period, 'effective_at') }} as date) as period_start,
            customer_id
        from movements
        where movement_type = 'churn'
    ) as churned
    left join (
        select distinct
            cast({{ dbt.date_trunc(period, 'effective_at') }} as date) as period_start,
            customer_id
        from movements
        where movement_type in ('new_biz', 'reactivation')
    ) as joined
        on churned.period_start = joined.period_start and churned.customer_id = joined.customer_id
    where joined.customer_id is null
    group by churned.period_start
),

cash_periods as (
    select
        cast({{ dbt.date_trunc(period, 'date') }} as date) as period_start,
        sum(case when type = 'payment' and result = 'successful' then amount else 0 end) as gross_cash_flow,
        sum(case when type = 'refund' and result = 'successful' then amount else 0 end) as refunds,
        sum(case when type = 'payment' and result = 'successful' then 1 else 0 end) as successful_payments,
        count(distinct case when result = 'failed' then customer_external_id || '/' || data_source end)
            as failed_transactions
    from transactions
    where date <= {{ as_of() }}
    group by 1
),

one_time_periods as (
    select
        cast({{ dbt.date_trunc(period, 'invoice_date') }} as date) as period_start,
        sum(amount) as non_recurring_cash_flow
    from one_time_items
    where invoice_date <= {{ as_of() }}
    group by 1
),

bounds as (
    select
        min(period_start) as first_period,
        cast({{ dbt.date_trunc(period, as_of()) }} as date) as last_period
    from change_periods
),

numbers as (
    {{ integers(5 if period == 'day' else 4) }}
),

spine as (
    select cast({{ dbt.dateadd(period, 'numbers.n', 'bounds.first_period') }} as date) as period_start
    from bounds
    inner join numbers
        on numbers.n <= {{ dbt.datediff('bounds.first_period', 'bounds.last_period', period) }}
),

combined as (
    select
        spine.period_start,
        coalesce(change_periods.mrr_change, 0) as mrr_change,
        coalesce(change_periods.fx_impact, 0) as fx_impact,
        coalesce(change_periods.customer_change, 0) as customer_change,
        coalesce(change_periods.quantity_change, 0) as quantity_change,
        coalesce(change_periods.quantity_lost, 0) as quantity_lost,
        coalesce(change_periods.subscription_change, 0) as subscription_change,
        coalesce(movement_periods.new_biz_mrr, 0) as new_biz_mrr,
        coalesce(movement_periods.expansion_mrr, 0) as expansion_mrr,
        coalesce(movement_periods.contraction_mrr, 0) as contraction_mrr,
        coalesce(movement_periods.churn_mrr, 0) as churn_mrr,
        coalesce(movement_periods.reactivation_mrr, 0) as reactivation_mrr,
        coalesce(movement_periods.net_mrr_movement, 0) as net_mrr_movement,
        coalesce(movement_periods.new_customers, 0) as new_customers,
        coalesce(movement_periods.reactivated_customers, 0) as reactivated_customers,
        coalesce(movement_periods.churned_customers, 0) as churned_customers,
        coalesce(churned_for_good.churned_customers_net, 0) as churned_customers_net,
        coalesce(cash_periods.gross_cash_flow, 0) as gross_cash_flow,
        coalesce(cash_periods.refunds, 0) as refunds,
        coalesce(cash_periods.successful_payments, 0) as successful_payments,
        coalesce(cash_periods.failed_transactions, 0) as failed_transactions,
        coalesce(one_time_periods.non_recurring_cash_flow, 0) as non_recurring_cash_flow
    from spine
    left join change_periods on spine.period_start = change_periods.period_start
    left join movement_periods on spine.period_start = movement_periods.period_start
    left join churned_for_good on spine.period_start = churned_for_good.period_start
    left join cash_periods on spine.period_start = cash_periods.period_start
    left join one_time_periods on spine.period_start = one_time_periods.period_start
),

balances as (
    select
        combined.*,
        sum(mrr_change) over (order by period_start rows between unbounded preceding and current row) as mrr,
        sum(customer_change) over (
            order by period_start rows between unbounded preceding and current row
        ) as customers,
        sum(quantity_change) over (
            order by period_start rows between unbounded preceding and current row
        ) as subscription_quantity,
        sum(subscription_change) over (
            order by period_start rows between unbounded preceding and current row
        ) as subscriptions
    from combined
),

with_start as (
    select
        balances.*,
        mrr - mrr_change as mrr_at_start,
        customers - customer_change as customers_at_start,
        subscription_quantity - quantity_change as quantity_at_start
    from balances
),

rates as (
    select
        with_start.*,
        case when customers > 0 then {{ round_cents_div(to_cents('mrr'), 'customers') }} end as arpa,
        case
            when new_customers > 0 then {{ round_cents_div(to_cents('new_biz_mrr'), 'new_customers') }}
        end as asp,
        case
            when customers_at_start > 0
                then {{ round_ratio('churned_customers_net', 'customers_at_start') }}
        end as customer_churn_rate,
        case
            when mrr_at_start <> 0
                then {{ round_ratio(to_cents('-(churn_mrr + contraction_mrr)'), to_cents('mrr_at_start')) }}
        end as gross_mrr_churn_rate,
        case
            when mrr_at_start <> 0
                then {{ round_ratio(
                    to_cents('-(churn_mrr + contraction_mrr + expansion_mrr + reactivation_mrr)'),
                    to_cents('mrr_at_start')
                ) }}
        end as net_mrr_churn_rate,
        case
            when quantity_at_start > 0 then {{ round_ratio('quantity_lost', 'quantity_at_start') }}
        end as quantity_churn_rate
    from with_start
),

final as (
    select
        period_start as {{ period }},
        mrr,
        {{ annualised('mrr') }} as arr,
        cast(customers as bigint) as customers,
        arpa,
        asp,
        new_biz_mrr,
        expansion_mrr,
        contraction_mrr,
        churn_mrr,
        reactivation_mrr,
        net_mrr_movement,
        fx_impact,
        new_customers,
        reactivated_customers,
        churned_customers,
        customer_churn_rate,
        gross_mrr_churn_rate,
        net_mrr_churn_rate,
        cast(subscription_quantity as bigint) as subscription_quantity,
        quantity_churn_rate,
        cast(subscriptions as bigint) as subscriptions,
        gross_cash_flow,
        refunds,
        gross_cash_flow - refunds as net_cash_flow,
        non_recurring_cash_flow,
        cast(successful_payments as bigint) as successful_payments,
        failed_transactions,
        mrr_at_start,
        cast(customers_at_start as bigint) as customers_at_start
    from rates
)

select * from final
{% endmacro %}

{#- Whether ltv = arpa x churn_rate_months / churn_rate_sum stays below 10^35 of the account currency: a
    churn rate of 0.000001 multiplies arpa by up to 6 million, past what derived money holds (10^36). Above
    it ltv is null (docs/reference.md, "Money beyond the inputs' range"); floats suffice for the test. -#}
{% macro ltv_fits(arpa, churn_rate_months, churn_rate_sum) -%}
    abs(cast({{ arpa }} as {{ dbt.type_float() }})) * {{ churn_rate_months }}
    < cast({{ churn_rate_sum }} as {{ dbt.type_float() }}) * 1e35
{%- endmacro %}
