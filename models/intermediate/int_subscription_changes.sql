-- mrr-rules §4: each subscription state valued in the account currency at its start day's rate;
-- the change is split into an MRR movement (the billing-currency change at the new rate) and an
-- FX adjustment (the old MRR's revaluation), so no cent is lost.
{{ incremental_config('int_touched_subscriptions', ['data_source', 'subscription_external_id']) }}

with timeline as (
    {{ touched_rows(
        'int_subscription_timeline',
        'int_touched_subscriptions',
        ['data_source', 'subscription_external_id']
    ) }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates') }}
),

rated as (
    select
        timeline.*,
        {{ rate_part('numerator', 'timeline.billing_currency', 'fx_rates') }} as rate_numerator,
        {{ rate_part('denominator', 'timeline.billing_currency', 'fx_rates') }} as rate_denominator
    from timeline
    {{ join_rate_on('fx_rates', 'timeline.billing_currency', 'timeline.effective_at') }}
),

valued as (
    select
        *,
        {{ convert_amount('mrr_billing_currency', 'rate_numerator', 'rate_denominator') }} as mrr,
        coalesce(lag(mrr_billing_currency) over (
            partition by data_source, subscription_external_id order by state_seq
        ), 0) as previous_mrr_billing_currency,
        lag(plan_external_id) over (
            partition by data_source, subscription_external_id order by state_seq
        ) as previous_plan_external_id,
        lag(plan_name) over (
            partition by data_source, subscription_external_id order by state_seq
        ) as previous_plan_name,
        coalesce(lag(quantity) over (
            partition by data_source, subscription_external_id order by state_seq
        ), 0) as previous_quantity,
        coalesce(lag(is_live) over (
            partition by data_source, subscription_external_id order by state_seq
        ), false) as was_live
    from rated
),

with_previous as (
    select
        *,
        coalesce(lag(mrr) over (
            partition by data_source, subscription_external_id order by state_seq
        ), 0) as previous_mrr,
        mrr_billing_currency - previous_mrr_billing_currency as mrr_movement_billing_currency
    from valued
),

movements as (
    select
        *,
        case
            -- a churn is valued at the rate of the interval it ends
            when not is_live then -previous_mrr
            else {{ convert_amount('mrr_movement_billing_currency', 'rate_numerator', 'rate_denominator') }}
        end as mrr_movement,
        -- informational only: all arithmetic uses the exact numerator / denominator
        {{ cast_decimal('rate_numerator / rate_denominator', 38, 12) }} as fx_rate
    from with_previous
),

final as (
    select
        *,
        mrr - previous_mrr - mrr_movement as fx_adjustment,
        -- stable across runs and warehouses: the activity id of a movement (datasets.md)
        {{ stable_id([
            'data_source', 'subscription_external_id', 'state_kind', epoch_seconds('effective_at'), 'item_seq'
        ]) }} as change_id
    from movements
)

select * from final
