-- datasets.md fx_adjustments: the account-currency revaluation of MRR that is not a movement.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with all_changes as (
    {{ touched_rows('int_subscription_changes', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

final as (
    select
        all_changes.effective_at as date,
        customer_map.customer_id,
        {{ stable_id(['all_changes.data_source', 'all_changes.subscription_external_id']) }} as subscription_id,
        all_changes.data_source,
        all_changes.customer_external_id,
        all_changes.subscription_external_id,
        all_changes.billing_currency,
        all_changes.fx_adjustment as amount
    from all_changes
    inner join customer_map
        on
            all_changes.data_source = customer_map.data_source
            and all_changes.customer_external_id = customer_map.customer_external_id
    where all_changes.fx_adjustment <> 0
)

select * from final
