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

day_rates as (
    {{ rates_by_day('timeline', 'billing_currency', 'effective_at', 'fx_rates') }}
),

rated as (
    select
        timeline.*,
        {{ rate_part('numerator', 'timeline.billing_currency', 'day_rates') }} as rate_numerator,
        {{ rate_part('denominator', 'timeline.billing_currency', 'day_rates') }} as rate_denominator
    from timeline
    left join day_rates
        on
            timeline.billing_currency = day_rates.currency
            and cast(timeline.effective_at as date) = day_rates.day
),

valued as (
    select
        *,
        {{ convert_amount('mrr_billing_currency', 'rate_numerator', 'rate_denominator') }} as mrr
    from rated
),

-- the state before each one: state_seq counts 1, 2, 3... per subscription, so an equi-join finds it;
-- it streams the wide rows, where a window (lag) would sort all of them
with_previous as (
    select
        valued.*,
        coalesce(previous.mrr_billing_currency, 0) as previous_mrr_billing_currency,
        previous.plan_external_id as previous_plan_external_id,
        previous.plan_name as previous_plan_name,
        coalesce(previous.quantity, 0) as previous_quantity,
        coalesce(previous.is_live, false) as was_live,
        coalesce(previous.mrr, 0) as previous_mrr
    from valued
    left join valued as previous
        on
            valued.data_source = previous.data_source
            and valued.subscription_external_id = previous.subscription_external_id
            and valued.state_seq = previous.state_seq + 1
),

differences as (
    select
        *,
        mrr_billing_currency - previous_mrr_billing_currency as mrr_movement_billing_currency
    from with_previous
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
    from differences
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
