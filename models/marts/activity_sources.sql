-- The lineage of every MRR movement: the input row (file, line) that produced it and the arithmetic
-- from amount to account-currency movement (mrr-rules §2-§4). `openmrr explain` reads this table.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with movements as (
    {{ touched_rows('int_customer_movements', 'int_touched_customers', ['customer_id']) }}
),

line_item_mrr as (
    select * from {{ ref('int_line_item_mrr') }}
),

final as (
    select
        movements.change_id as activity_id,
        movements.customer_id,
        movements.data_source,
        movements.customer_external_id,
        movements.subscription_external_id,
        movements.effective_at as date,
        movements.state_kind as source_kind,
        movements.file,
        movements.line,
        movements.invoice_external_id,
        movements.line_item_external_id,
        line_item_mrr.amount,
        line_item_mrr.tax_amount,
        line_item_mrr.deducted_fees,
        line_item_mrr.base_amount,
        line_item_mrr.interval_unit,
        line_item_mrr.interval_count,
        line_item_mrr.ratio_numerator,
        line_item_mrr.ratio_denominator,
        line_item_mrr.prorated,
        line_item_mrr.proration_type,
        line_item_mrr.full_period_seconds,
        line_item_mrr.item_period_seconds,
        line_item_mrr.mrr_item,
        movements.previous_mrr_billing_currency,
        movements.mrr_billing_currency,
        movements.mrr_movement_billing_currency,
        movements.billing_currency,
        movements.rate_numerator,
        movements.rate_denominator,
        movements.previous_mrr,
        movements.mrr,
        movements.mrr_movement,
        movements.movement_type
    from movements
    left join line_item_mrr
        on
            movements.state_kind = 'line_item'
            and movements.data_source = line_item_mrr.data_source
            and movements.batch_seq = line_item_mrr.batch_seq
            and movements.line = line_item_mrr.line
)

select * from final
