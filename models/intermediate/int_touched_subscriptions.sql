-- The subscriptions an incremental build recomputes: every subscription of a changed customer, from
-- every version of its invoices' line items, events and cancellations. Empty in a full build.
with changed_customers as (
    select * from {{ ref('int_changed_customers') }}
),

raw_invoices as (
    {{ raw_invoice_versions() }}
),

raw_line_items as (
    {{ raw_invoice_row_versions('line_items') }}
),

raw_subscription_rows as (
    {{ raw_subscription_versions() }}
),

changed_invoices as (
    select
        data_source,
        invoice_external_id
    from raw_invoices
    where exists (
        select 1
        from changed_customers
        where
            changed_customers.data_source = raw_invoices.data_source
            and changed_customers.customer_external_id = raw_invoices.customer_external_id
    )
),

final as (
    select distinct
        data_source,
        subscription_external_id
    from (
        select
            raw_line_items.data_source,
            raw_line_items.subscription_external_id
        from raw_line_items
        where
            exists (
                select 1
                from changed_invoices
                where
                    changed_invoices.data_source = raw_line_items.data_source
                    and changed_invoices.invoice_external_id = raw_line_items.invoice_external_id
            )
        union all
        select
            raw_subscription_rows.data_source,
            raw_subscription_rows.subscription_external_id
        from raw_subscription_rows
        where exists (
            select 1
            from changed_customers
            where
                changed_customers.data_source = raw_subscription_rows.data_source
                and changed_customers.customer_external_id = raw_subscription_rows.customer_external_id
        )
    ) as subscriptions
    where subscription_external_id is not null
)

select * from final
