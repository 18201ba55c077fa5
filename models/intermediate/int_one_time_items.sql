-- datasets.md non_recurring_cash_flow: one-time line items, in the account currency at the invoice date.
{{ incremental_config('int_touched_customers', ['data_source', 'customer_external_id']) }}

with line_items as (
    select * from {{ ref('stg_line_items') }}
),

invoices as (
    {{ touched_rows('stg_invoices', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates') }}
),

one_time as (
    select
        line_items.data_source,
        line_items.invoice_external_id,
        line_items.external_id as line_item_external_id,
        invoices.customer_external_id,
        invoices.currency,
        invoices.date as invoice_date,
        line_items.amount - line_items.tax_amount as amount_billing_currency,
        line_items.file,
        line_items.line
    from line_items
    inner join invoices
        on
            line_items.data_source = invoices.data_source
            and line_items.invoice_external_id = invoices.external_id
    where line_items.type = 'one_time'
),

final as (
    select
        one_time.*,
        {{ in_account_currency('one_time.amount_billing_currency', 'one_time.currency', 'fx_rates') }} as amount
    from one_time
    {{ join_rate_on('fx_rates', 'one_time.currency', 'one_time.invoice_date') }}
)

select * from final
