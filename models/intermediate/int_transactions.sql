-- inputs.md transactions: the amount defaults to the invoice total; cash converts to the account
-- currency at the transaction date (mrr-rules §4).
{{ incremental_config('int_touched_customers', ['data_source', 'customer_external_id']) }}

with transactions as (
    select * from {{ ref('stg_transactions') }}
),

invoices as (
    {{ touched_rows('stg_invoices', 'int_touched_customers', ['data_source', 'customer_external_id']) }}
),

line_items as (
    select * from {{ ref('stg_line_items') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates') }}
),

invoice_totals as (
    select
        data_source,
        invoice_external_id,
        sum(amount) as invoice_total
    from line_items
    group by data_source, invoice_external_id
),

amounts as (
    select
        transactions.data_source,
        transactions.external_id,
        transactions.invoice_external_id,
        invoices.customer_external_id,
        invoices.currency,
        transactions.type,
        transactions.result,
        transactions.date,
        coalesce(transactions.amount, invoice_totals.invoice_total, 0) as amount_billing_currency,
        transactions.transaction_fees,
        transactions.file,
        transactions.line
    from transactions
    inner join invoices
        on
            transactions.data_source = invoices.data_source
            and transactions.invoice_external_id = invoices.external_id
    left join invoice_totals
        on
            transactions.data_source = invoice_totals.data_source
            and transactions.invoice_external_id = invoice_totals.invoice_external_id
),

final as (
    select
        amounts.*,
        {{ in_account_currency('amounts.amount_billing_currency', 'amounts.currency', 'fx_rates') }} as amount
    from amounts
    {{ join_rate_on('fx_rates', 'amounts.currency', 'amounts.date') }}
)

select * from final
