-- The calculated customers an incremental build recomputes, one row per source customer of each:
-- the changed customers and every customer a touched subscription was billed to (any version), with
-- all the source customers merged with them. Empty in a full build.
with changed_customers as (
    select * from {{ ref('int_changed_customers') }}
),

touched_subscriptions as (
    select * from {{ ref('int_touched_subscriptions') }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
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

subscription_invoices as (
    select
        data_source,
        invoice_external_id
    from raw_line_items
    where exists (
        select 1
        from touched_subscriptions
        where
            touched_subscriptions.data_source = raw_line_items.data_source
            and touched_subscriptions.subscription_external_id = raw_line_items.subscription_external_id
    )
),

source_customers as (
    select
        data_source,
        customer_external_id
    from changed_customers
    union all
    select
        raw_invoices.data_source,
        raw_invoices.customer_external_id
    from raw_invoices
    where
        exists (
            select 1
            from subscription_invoices
            where
                subscription_invoices.data_source = raw_invoices.data_source
                and subscription_invoices.invoice_external_id = raw_invoices.invoice_external_id
        )
    union all
    select
        raw_subscription_rows.data_source,
        raw_subscription_rows.customer_external_id
    from raw_subscription_rows
    where exists (
        select 1
        from touched_subscriptions
        where
            touched_subscriptions.data_source = raw_subscription_rows.data_source
            and touched_subscriptions.subscription_external_id = raw_subscription_rows.subscription_external_id
    )
),

touched_ids as (
    select distinct customer_map.customer_id
    from customer_map
    inner join source_customers
        on
            customer_map.data_source = source_customers.data_source
            and customer_map.customer_external_id = source_customers.customer_external_id
),

final as (
    select
        customer_map.data_source,
        customer_map.customer_external_id,
        customer_map.customer_id
    from customer_map
    inner join touched_ids on customer_map.customer_id = touched_ids.customer_id
)

select * from final
