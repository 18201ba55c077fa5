-- The account settings (dbt vars) this build ran with, as one JSON text, and the refresh it built
-- (the moment validation checked the data): a warehouse destination in compute mode rebuilds that
-- refresh with exactly these settings, so its tables match the embedded warehouse's.
{%- set names = [
    'account_currency', 'as_of', 'churn_recognition', 'churn_after_days', 'free_customers',
    'smart_classification_minutes', 'deduct_transaction_fees', 'fee_deduction_sources',
    'fee_keeping_sources', 'days_per_month'
] -%}
{%- set settings = {} -%}
{%- for name in names %}{% do settings.update({name: var(name)}) %}{% endfor %}

with import_reports as (
    select * from {{ source('reports', 'import_reports') }}
),

final as (
    select
        max(checked_at) as checked_at,
        {{ sql_string(tojson(settings, sort_keys=true)) }} as dbt_vars
    from import_reports
)

select * from final
