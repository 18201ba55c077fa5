-- The source customers whose inputs changed since the last build (docs/scale.md: incremental
-- builds): rows of a batch newer than the last build, every earlier version of their keys (a re-sent
-- invoice can move to another customer), and the dates the later as_of and newly appended exchange
-- rates reach. Empty in a full build.
{#- a full build passes no scope: no batch is newer, no day is newer, the result is empty -#}
{%- set scope = var('incremental', none) or {} %}
{%- set since = scope.get('since_batch_seq', 2147483647) | int %}
{%- set rates_from = "cast(" ~ (sql_string(scope['rates_from']) if scope.get('rates_from') else 'null')
    ~ " as " ~ timestamp_type() ~ ")" %}

with raw_invoices as (
    {{ raw_invoice_versions() }}
),

raw_line_items as (
    {{ raw_invoice_row_versions('line_items') }}
),

raw_transactions as (
    {{ raw_invoice_row_versions('transactions') }}
),

raw_subscription_rows as (
    {{ raw_subscription_versions() }}
),

line_items as (
    select * from {{ ref('stg_line_items') }}
),

invoices as (
    select * from {{ ref('stg_invoices') }}
),

transactions as (
    select * from {{ ref('stg_transactions') }}
),

cancellations as (
    select * from {{ ref('stg_cancellations') }}
),

subscription_events as (
    select * from {{ ref('stg_subscription_events') }}
),

-- every invoice a new invoice, line item or transaction row touches, old versions included
{%- set versioned = {'raw_line_items': 'line_items', 'raw_transactions': 'transactions'} %}
changed_invoices as (
    select
        data_source,
        invoice_external_id
    from raw_invoices
    where batch_seq > {{ since }}
    {%- for relation in versioned %}
        union all
        select
            all_versions.data_source,
            all_versions.invoice_external_id
        from {{ relation }} as all_versions
        where
            all_versions.batch_seq > {{ since }}
            or exists (
                select 1
                from {{ relation }} as new_rows
                where
                    new_rows.batch_seq > {{ since }}
                    and new_rows.data_source = all_versions.data_source
                    and new_rows.external_id = all_versions.external_id
            )
    {%- endfor %}
),

invoice_customers as (
    select
        data_source,
        customer_external_id
    from raw_invoices
    where exists (
        select 1
        from changed_invoices
        where
            changed_invoices.data_source = raw_invoices.data_source
            and changed_invoices.invoice_external_id = raw_invoices.invoice_external_id
    )
),

subscription_customers as (
    select
        data_source,
        customer_external_id
    from raw_subscription_rows as all_versions
    where exists (
        select 1
        from raw_subscription_rows as new_rows
        where
            new_rows.batch_seq > {{ since }}
            and new_rows.data_source = all_versions.data_source
            and (
                new_rows.subscription_external_id = all_versions.subscription_external_id
                or new_rows.external_id = all_versions.external_id
            )
    )
),

own_rows as (
    select
        data_source,
        {{ clean_text('external_id') }} as customer_external_id
    from {{ source('raw', 'customers') }}
    where batch_seq > {{ since }}
    union all
    select
        data_source,
        {{ clean_text('customer_external_id') }} as customer_external_id
    from {{ source('raw', 'contacts') }}
    where batch_seq > {{ since }}
    {%- for account_file in ['tags', 'custom_attributes'] %}
        union all
        select
            {{ clean_text('source') }} as data_source,
            {{ clean_text('customer_external_id') }} as customer_external_id
        from {{ source('raw', account_file) }}
        where batch_seq > {{ since }}
    {%- endfor %}
),

-- mrr-rules §3/§6: what a later as_of changes (new states, churn after days, past due), and what a
-- rate for a day after the previous as_of changes (conversions dated from that day on)
dated_customers as (
    select
        invoices.data_source,
        invoices.customer_external_id
    from line_items
    inner join invoices
        on
            line_items.data_source = invoices.data_source
            and line_items.invoice_external_id = invoices.external_id
    where
        line_items.type = 'subscription'
        and (
            {{ reached_since_previous_as_of('line_items.service_period_start') }}
            or {{ reached_since_previous_as_of('line_items.service_period_end') }}
            or {{ reached_since_previous_as_of('line_items.cancelled_at') }}
            {%- if var('churn_after_days') is not none %}
            or {{ reached_since_previous_as_of(
                dbt.dateadd('day', var('churn_after_days'), 'line_items.service_period_end')
            ) }}
            {%- endif %}
        )
    union all
    select
        data_source,
        customer_external_id
    from cancellations
    where {{ reached_since_previous_as_of('cancelled_at') }}
    union all
    select
        data_source,
        customer_external_id
    from subscription_events
    where
        {{ reached_since_previous_as_of('event_date') }}
        or {{ reached_since_previous_as_of('effective_date') }}
        or effective_date >= {{ rates_from }}
    union all
    select
        data_source,
        customer_external_id
    from invoices
    where date >= {{ rates_from }}
    union all
    select
        invoices.data_source,
        invoices.customer_external_id
    from transactions
    inner join invoices
        on
            transactions.data_source = invoices.data_source
            and transactions.invoice_external_id = invoices.external_id
    where transactions.date >= {{ rates_from }}
),

final as (
    select distinct
        data_source,
        customer_external_id
    from (
        select * from invoice_customers
        union all
        select * from subscription_customers
        union all
        select * from own_rows
        union all
        select * from dated_customers
    ) as changed
    where customer_external_id is not null
)

select * from final
